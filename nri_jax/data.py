"""Datasets as the model sees them: splits of normalised frames and edge labels.

Reading the files is `nri_jax.original_format`'s (the paper's systems) or `nri_jax.own_data`'s
(a user's own trajectories, config.data.system = 'own'); this module normalises as the original
does (REFERENCE.md §2): particles' loc and vel each min-max scaled to [-1, 1] with scalars
taken over the training split; Kuramoto and own data per feature dim over the training split.
Valid and test (and other datasets evaluated by a trained run) reuse the training split's
normalisation. It also maps own data's frames onto the config (`resolve_own_config`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import ml_collections
import numpy as np

from nri_jax import own_data
from nri_jax.config import CNN_MIN_FRAMES, OWN
from nri_jax.graph import matrix_to_edges
from nri_jax.original_format import SPLITS, edge_labels, read_split, suffix

PER_FEATURE = ("kuramoto", OWN)  # normalised per feature dim (the particles: loc / vel scalars)


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: `features` [samples, objects, time, dims] float32, `labels` [samples, edges].

    `labelled` is False for own data without edges: `labels` are then zeros, which the loss
    never reads (unsupervised), and no accuracy is reported. `source` names the split's file
    in messages.
    """

    features: np.ndarray
    labels: np.ndarray
    labelled: bool = True
    source: str = ""

    @property
    def num_objects(self) -> int:
        return self.features.shape[1]

    @property
    def name(self) -> str:
        return self.source or "split"


@dataclasses.dataclass(frozen=True)
class Normalisation:
    """Min/max of the training split, applied to every split (and to other datasets in eval)."""

    system: str
    minimum: list[float]
    maximum: list[float]

    @property
    def dims(self) -> int:
        """Features per object per frame."""
        return len(self.minimum) * (1 if self.system in PER_FEATURE else 2)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.asarray(self.minimum, np.float64)
        hi = np.asarray(self.maximum, np.float64)
        if self.system not in PER_FEATURE:  # [x, y] share loc's scalars, [vx, vy] share vel's
            lo, hi = np.repeat(lo, 2), np.repeat(hi, 2)
        return lo, hi

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Raw frames `[..., dims]` -> model units (the training split spans [-1, 1]), float32."""
        lo, hi = self._bounds()
        return ((features - lo) * 2.0 / (hi - lo) - 1.0).astype(np.float32)

    def invert(self, features: np.ndarray) -> np.ndarray:
        """Model units `[..., dims]` -> raw frames (float64): the inverse of `apply`."""
        lo, hi = self._bounds()
        return (np.asarray(features, np.float64) + 1.0) * (hi - lo) / 2.0 + lo

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Normalisation:
        return cls(**json.loads(text))


def fit_normalisation(
    system: str, train_features: np.ndarray, source: str = "training split"
) -> Normalisation:
    """Min/max over the training split `[samples, objects, time, dims]`: scalars for loc and
    vel, per feature dim for Kuramoto and own data."""
    if system in PER_FEATURE:
        lo = train_features.min(axis=(0, 1, 2))
        hi = train_features.max(axis=(0, 1, 2))
    else:
        lo = np.array([train_features[..., :2].min(), train_features[..., 2:].min()])
        hi = np.array([train_features[..., :2].max(), train_features[..., 2:].max()])
    if np.any(hi <= lo):
        constant = [int(i) for i in np.flatnonzero(hi <= lo)]
        raise ValueError(
            f"{source}: feature dim(s) {constant} are constant over the training split, so "
            f"they cannot be scaled to [-1, 1]; drop them (they carry no information)"
        )
    return Normalisation(system, [float(v) for v in lo], [float(v) for v in hi])


def _check_labels(labels: np.ndarray, edge_types: int, name: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= max(edge_types, 2)):
        raise ValueError(
            f"{name}: edge labels span [{labels.min()}, {labels.max()}] but must lie in "
            f"[0, {max(edge_types, 2) - 1}]; check the edges or set config.model.edge_types"
        )


def make_split(
    features: np.ndarray,
    edges: np.ndarray,
    norm: Normalisation,
    edge_types: int,
    name: str,
    source: str = "",
) -> Split:
    """A Split of the original's format: labels `original_format.edge_labels(edges)`."""
    labels = edge_labels(edges)
    _check_labels(labels, edge_types, name)
    return Split(norm.apply(features), labels, source=source)


def make_own_split(raw: own_data.RawSplit, norm: Normalisation, edge_types: int) -> Split:
    """A Split of own data: its edge types off the diagonal are the labels; none -> unlabelled."""
    if raw.dims != norm.dims:
        raise ValueError(
            f"{raw.source}: {raw.dims} feature dims but the run was trained on {norm.dims}"
        )
    samples, objects = raw.trajectories.shape[:2]
    if raw.edges is None:
        labels = np.zeros((samples, objects * (objects - 1)), np.int32)
        return Split(norm.apply(raw.trajectories), labels, labelled=False, source=raw.source)
    labels = matrix_to_edges(raw.edges).astype(np.int32)
    _check_labels(labels, edge_types, f"{raw.source}: '{own_data.EDGES}'")
    return Split(norm.apply(raw.trajectories), labels, source=raw.source)


def _load_own(
    data_config: Mapping,
    edge_types: int,
    splits: tuple[str, ...],
    normalisation: Normalisation | None,
    arrays: Mapping | None,
    optional: tuple[str, ...],
) -> tuple[dict[str, Split], Normalisation]:
    source = arrays if arrays is not None else data_config.get("dir", "")
    if not source:
        raise ValueError(
            "no own data: config.data.dir is empty (a run trained on in-memory arrays has "
            "none); give a folder (train.py --config.data.dir, eval.py --data_dir) or the "
            "arrays (nri_jax.fit(data=...), Run.evaluate(data))"
        )
    wanted = splits if normalisation is not None or "train" in splits else ("train", *splits)
    raw = own_data.read_splits(source, wanted, optional)
    if normalisation is None:
        train = raw["train"]
        normalisation = fit_normalisation(OWN, train.trajectories, train.source)
    out = {s: make_own_split(raw[s], normalisation, edge_types) for s in splits if s in raw}
    return out, normalisation


def refuse_arrays(system: str) -> None:
    """In-memory arrays are own data; the paper's systems are read from their files."""
    raise ValueError(
        f"in-memory arrays are own data: use configs/own_data.py (config.data.system='own'), "
        f"not config.data.system={system!r}, whose files are read from config.data.dir"
    )


def load_dataset(
    data_config: Mapping,
    edge_types: int = 2,
    splits: tuple[str, ...] = SPLITS,
    normalisation: Normalisation | None = None,
    arrays: Mapping | None = None,
    optional: tuple[str, ...] = (),
) -> tuple[dict[str, Split], Normalisation]:
    """Read and normalise `splits` from `data_config.dir`.

    The normalisation is fitted on the training split unless one is given (evaluation of a
    trained model on another dataset keeps the training run's). Own data only
    (config.data.system = 'own'): `arrays` `{"train": (trajectories, edges or None), ...}`
    instead of the folder, and `optional` splits that are skipped when absent.
    """
    system = data_config["system"]
    if system == OWN:
        return _load_own(data_config, edge_types, splits, normalisation, arrays, optional)
    if arrays is not None:
        refuse_arrays(system)
    n = int(data_config["num_objects"])
    kind = data_config.get("features", "successors")
    raw = {s: read_split(data_config["dir"], system, n, s, kind) for s in splits}
    if normalisation is None:
        train_features = raw["train"][0] if "train" in raw else None
        if train_features is None:
            train_features, _ = read_split(data_config["dir"], system, n, "train", kind)
        normalisation = fit_normalisation(system, train_features)
    out = {
        s: make_split(
            f, e, normalisation, edge_types, f"edges_{s}{suffix(system, n)}.npy", f"{s} split"
        )
        for s, (f, e) in raw.items()
    }
    dims = {s.features.shape[-1] for s in out.values()}
    if len(dims) > 1:
        raise ValueError(f"splits have different feature dims {sorted(dims)}; regenerate them")
    return out, normalisation


def check_splits(config: ml_collections.ConfigDict, splits: Mapping[str, Split]) -> None:
    """The loaded training splits (and a test split, if given) fit the config: sizes, frames,
    the labels the config needs; one-line ValueError."""
    train = splits["train"]
    if config.train.batch_size > len(train.features):
        raise ValueError(
            f"config.train.batch_size={config.train.batch_size} is larger than the training "
            f"split ({len(train.features)} samples); lower it or add data"
        )
    for name, split in splits.items():
        if len(split.features) == 0:
            raise ValueError(f"{name} split is empty; set config.data.num_{name} > 0")
        if name == "test":
            eval_horizon(config, split)
        elif split.features.shape[2] < config.train.timesteps:
            raise ValueError(
                f"{split.name}: {split.features.shape[2]} frames but config.train.timesteps="
                f"{config.train.timesteps}; lower it or give longer sequences"
            )
    for name in ("train", "valid"):
        need = _labels_needed(config, name)
        if need and not splits[name].labelled:
            raise ValueError(
                f"{splits[name].name}: no '{own_data.EDGES}', but {need} needs the true edge "
                f"types; add them or train unsupervised (config.train.mode='unsupervised')"
            )


def _labels_needed(config: ml_collections.ConfigDict, split: str) -> str:
    """The setting that needs `split`'s edge labels, or '' if none does."""
    if config.train.mode == "supervised":  # training loss; valid: the checkpoint's score
        return "config.train.mode='supervised'"
    if config.model.get("graph", "learned") == "true":
        return "config.model.graph='true'"
    if split == "valid" and config.model.get("baseline", "none") in ("corr_path", "corr_lstm"):
        return f"config.model.baseline={config.model.baseline!r} (its cut is fitted on them)"
    return ""


def eval_horizon(
    config: ml_collections.ConfigDict, test: Split, prediction_steps: int | None = None
) -> int:
    """The Table 2 horizon on `test` (`prediction_steps`, default config.eval.prediction_steps;
    0: every frame after true frame train.timesteps); ValueError if the frames do not fit."""
    timesteps = config.train.timesteps
    horizon = config.eval.prediction_steps if prediction_steps is None else prediction_steps
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0:
        raise ValueError(f"prediction_steps={horizon!r} must be an integer >= 0 (0: all that fit)")
    frames = test.features.shape[2]
    if frames < timesteps:
        raise ValueError(
            f"{test.name}: {frames} frames, but the encoder reads the first "
            f"config.train.timesteps={timesteps}; give longer test trajectories"
        )
    if horizon == 0:
        return max(frames - timesteps - 1, 0)
    if frames < timesteps + horizon + 1:
        raise ValueError(
            f"{test.name}: {frames} frames, but the test protocol needs config.train.timesteps "
            f"+ config.eval.prediction_steps + 1 = {timesteps + horizon + 1} (the encoder's "
            f"frames, then {horizon} predicted from frame {timesteps}); give longer test "
            f"trajectories or lower the horizon (eval.py --prediction_steps; 0: all that fit)"
        )
    return horizon


def resolve_own_config(
    config: ml_collections.ConfigDict, splits: Mapping[str, Split]
) -> ml_collections.ConfigDict:
    """A copy of `config` with own data's objects and frames read from the loaded splits.

    train.timesteps = 0 becomes the training split's frame count (a given count takes each
    trajectory's first frames); data.num_objects = 0 the files' objects. The frame checks that
    `config.check_config` would make about keys are made here about the file that is short.
    """
    config = ml_collections.ConfigDict(config.to_dict())
    train = splits["train"]
    objects, frames = train.num_objects, train.features.shape[2]
    if config.data.num_objects not in (0, objects):
        raise ValueError(
            f"config.data.num_objects={config.data.num_objects} but {train.name} holds "
            f"{objects} objects; leave it 0 (as the files hold)"
        )
    config.data.num_objects = objects
    timesteps = config.train.timesteps or frames
    if timesteps > frames:
        raise ValueError(
            f"{train.name}: {frames} frames, fewer than config.train.timesteps={timesteps}; "
            f"lower it (0: all {frames})"
        )
    if config.model.encoder == "cnn" and timesteps < CNN_MIN_FRAMES:
        raise ValueError(
            f"{train.name}: the CNN encoder needs >= {CNN_MIN_FRAMES} frames "
            f"(config.CNN_MIN_FRAMES), got {timesteps}; give longer trajectories or use "
            f"config.model.encoder='mlp'"
        )
    if config.train.prediction_steps >= timesteps:
        raise ValueError(
            f"{train.name}: {timesteps} frames, too few for config.train.prediction_steps="
            f"{config.train.prediction_steps} (training predicts that many steps within them); "
            f"lower it below {timesteps} or give longer trajectories"
        )
    config.train.timesteps = timesteps
    return config
