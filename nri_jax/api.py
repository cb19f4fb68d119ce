"""The Python API: train a run, load it, apply it to trajectories (docs/usage.md).

    run = nri_jax.fit(config, "runs/mine")          # what train.py runs, then `load`
    run = nri_jax.load("runs/mine")                 # a finished (or interrupted) run
    probs = run.infer_edges(x)                      # [samples, objects, objects, edge_types]
    future = run.predict(x, steps=20)               # [samples, objects, 20, dims], raw units
    result = run.evaluate()                         # what eval.py reports (eval.json's keys)

Everything here reuses the job's own path: `training.train_and_evaluate`,
`checkpoints.restore_run`, `evaluation.evaluate_model`, `data.load_dataset`; `Run` only adds the
conversion between raw units and the run's normalisation (`data.Normalisation`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from nri_jax import checkpoints, evaluation, inference, own_data, training
from nri_jax.baselines import CORRELATION
from nri_jax.data import Normalisation, load_dataset
from nri_jax.graph import matrix_to_edges
from nri_jax.model import NRI, fixed_edges


def fit(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    data: Mapping[str, Any] | None = None,
) -> Run:
    """Train as `train.py` does (resuming a run already in `workdir`), then `load(workdir)`.

    `data` (own data, configs/own_data.py) replaces config.data.dir with arrays in memory:
    `{"train": (trajectories, edges or None), "valid": ..., "test": ... (optional)}`,
    trajectories `[samples, objects, time, dims]`, edges `[samples, objects, objects]` (the
    format of `nri_jax.own_data`). Nothing of it is written: to evaluate such a run later, pass
    the data again (`Run.evaluate(data)`, or write it with `own_data.write_dataset`).
    """
    training.train_and_evaluate(config, workdir, data)
    return load(workdir)


def load(workdir: str | os.PathLike) -> Run:
    """The run in `workdir` at its best-validation checkpoint (the latest if none)."""
    config, norm, model, variables, epoch = checkpoints.restore_run(workdir)
    return Run(Path(workdir), config, norm, model, variables, epoch)


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """A trained run: its config, normalisation, model and restored variables.

    Methods take and return raw (unnormalised) trajectories `[samples, objects, time, dims]`,
    with the run's dims; any number of objects >= 2 (the model is shared over objects).
    """

    workdir: Path
    config: ml_collections.ConfigDict
    normalisation: Normalisation
    model: Any  # NRI, a recurrent baseline, or None (Static / Corr. (path))
    variables: dict
    epoch: int | None  # the checkpoint's epoch (None: a baseline with no parameters)

    @property
    def timesteps(self) -> int:
        """Frames the encoder reads: the first `timesteps` of each trajectory."""
        return int(self.config.train.timesteps)

    @property
    def edge_types(self) -> int:
        return int(self.config.model.edge_types)

    def infer_edges(self, trajectories: np.ndarray) -> np.ndarray:
        """q(z|x): edge-type probabilities `[samples, objects, objects, edge_types]` (numpy).

        Entry [s, i, j, k] is the probability that sender j acts on receiver i by type k: each
        off-diagonal [s, i, j] sums to 1, the diagonal is zero. The encoder reads the first
        `timesteps` frames, as the test protocol does, so the argmax over types on a test split
        gives eval.json's `edge_accuracy_raw`. Unsupervised edge types are unlabelled clusters:
        eval.json's `edge_type_permutation` maps them to a labelling.
        """
        if not isinstance(self.model, NRI):
            raise ValueError(
                f"config.model.baseline={self.config.model.baseline!r} infers no edge types"
            )
        x = self._normalised(trajectories, self.timesteps)
        return inference.edge_probabilities(self._logits(x), x.shape[1])

    def predict(
        self, trajectories: np.ndarray, steps: int, edges: np.ndarray | None = None
    ) -> np.ndarray:
        """The next `steps` frames after the last given one: `[samples, objects, steps, dims]`,
        raw units (float64).

        The graph is the most probable type of each edge (argmax of `infer_edges`, the first
        `timesteps` frames), or `edges` `[samples, objects, objects]` (integer types, row =
        receiver) if given; a run trained on the true graph needs them. The MLP decoder starts
        from the last given frame; the RNN decoder (and the LSTM baselines) read all given
        frames first.
        """
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"steps={steps!r} must be an integer >= 1")
        baseline = self.config.model.get("baseline", "none")
        if baseline in CORRELATION:
            raise ValueError(f"config.model.baseline={baseline!r} predicts no frames")
        x = self._normalised(trajectories, self.timesteps if baseline == "none" else 1)
        z = self._edges_one_hot(x, edges) if isinstance(self.model, NRI) else None
        predictor = self._predictor

        def batch(x_batch, *z_batch):
            return predictor(self.variables, x_batch, z_batch[0] if z_batch else None, steps)

        arrays = (x,) if z is None else (x, z)
        future = inference.map_batches(batch, arrays, self._batch_size)
        return self.normalisation.invert(future)

    def evaluate(
        self,
        data: str | os.PathLike | Mapping[str, Any] | tuple | np.ndarray | None = None,
        prediction_steps: int | None = None,
        dynamic_graph: bool = False,
    ) -> dict:
        """The test protocol of eval.py: the same dict (eval.json's keys), nothing written.

        `data`: None for the run's own test split; a folder (its test split: test.npz for own
        data, the original's files for the paper's systems); own data in memory, a test split
        `(trajectories, edges or None)` or a mapping like `fit`'s (its 'test', and 'valid' for a
        correlation baseline's cut). `prediction_steps` overrides config.eval.prediction_steps.
        """
        data_config = ml_collections.ConfigDict(self.config.data.to_dict())
        arrays = None
        if isinstance(data, str | os.PathLike):
            data_config.dir = str(data)
        elif isinstance(data, Mapping):
            arrays = data
        elif data is not None:
            arrays = {"test": data}
        wanted = ("test", "valid") if arrays is not None and "valid" in arrays else ("test",)
        splits, _ = load_dataset(
            data_config, self.edge_types, wanted, self.normalisation, arrays=arrays
        )
        result = evaluation.evaluate_model(
            self.config,
            self.normalisation,
            self.model,
            self.variables,
            self.epoch,
            splits["test"],
            valid=splits.get("valid"),
            dynamic_graph=dynamic_graph,
            prediction_steps=prediction_steps,
        )
        result["data_dir"] = None if arrays is not None else str(data_config.dir)
        return result

    # ------------------------------------------------------------------------------------------

    @property
    def _batch_size(self) -> int:
        return evaluation.eval_batch_size(self.config)

    @functools.cached_property
    def _encoder(self):
        return inference.make_encoder(self.model)

    @functools.cached_property
    def _predictor(self):
        return inference.make_predictor(self.model, self.config.model.decoder)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        """Encoder logits `[samples, E, K]` of normalised `x`'s first `timesteps` frames."""
        frames = x[:, :, : self.timesteps]
        encode = functools.partial(self._encoder, self.variables)
        return inference.map_batches(encode, (frames,), self._batch_size)

    def _normalised(self, trajectories: Any, min_frames: int) -> np.ndarray:
        """Raw trajectories, checked like a split of own data, in the run's units."""
        raw = own_data.check_split("trajectories", trajectories)
        if raw.dims != self.normalisation.dims:
            raise ValueError(
                f"trajectories have {raw.dims} feature dims (axis 3 of {own_data.LAYOUT}); this "
                f"run was trained on {self.normalisation.dims}"
            )
        frames = raw.trajectories.shape[2]
        if frames < min_frames:
            raise ValueError(
                f"trajectories have {frames} frames; the encoder reads the first "
                f"config.train.timesteps={min_frames}"
            )
        return self.normalisation.apply(raw.trajectories)

    def _edges_one_hot(self, x: np.ndarray, edges: np.ndarray | None) -> np.ndarray:
        """The decoder's graph `[samples, E, K]` for `predict`."""
        samples, objects = x.shape[:2]
        graph = self.config.model.get("graph", "learned")
        if edges is not None:
            types = matrix_to_edges(own_data.check_edges("edges", edges, samples, objects))
            if types.min() < 0 or types.max() >= self.edge_types:
                raise ValueError(
                    f"edges: types must lie in [0, {self.edge_types - 1}], found "
                    f"[{types.min()}, {types.max()}]"
                )
        elif graph == "true":
            raise ValueError(
                "this run decodes the true graph (config.model.graph='true'): pass edges"
            )
        elif graph == "full":
            shape = (samples, objects * (objects - 1))
            return np.asarray(fixed_edges("full", shape, self.edge_types))
        else:
            types = self._logits(x).argmax(-1)  # the argmax of infer_edges, edge by edge
        return np.asarray(jax.nn.one_hot(types, self.edge_types), np.float32)
