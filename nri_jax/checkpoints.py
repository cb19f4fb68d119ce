"""A run's folder: orbax checkpoints, the stored config and normalisation, loading a run.

`workdir/` holds `config.json` (the run's whole config), `normalisation.json` (the training
split's min/max, reused to evaluate on other data), `checkpoints/latest/` (the newest state,
for resuming, numbered by train step: the end of the last completed epoch or, with
`train.checkpoint_every_steps`, a step inside the next) and `checkpoints/best/` (the epoch of
lowest validation score, for evaluation), besides the metric log (`nri_jax.metrics_log`).
Orbax writes each checkpoint to a temporary folder and renames it when complete, once for
all processes of a multi-host run; the JSON files are written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from nri_jax import atomic, train_state
from nri_jax.config import base_config
from nri_jax.data import Normalisation
from nri_jax.model import NRI, make_model
from nri_jax.sim_decoder import physics_from_config

CONFIG_FILE = "config.json"
NORMALISATION_FILE = "normalisation.json"
EPOCH_SUMS = "epoch_sums"
# Config keys that may differ between a run and its resumption: they change how a step is
# computed, not what the checkpoint holds.
_FREE_MODEL_KEYS = ("messages", "dtype")  # the parameters are float32 either way


def managers(workdir: Path) -> tuple[ocp.CheckpointManager, ocp.CheckpointManager]:
    """(latest, best) checkpoint managers of `workdir`, one checkpoint each."""
    return tuple(
        ocp.CheckpointManager(
            (workdir / "checkpoints" / name).absolute(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1,
                create=True,
                # The two managers save at once; in a multi-host run their barriers between
                # processes need distinct names.
                multiprocessing_options=ocp.options.MultiprocessingOptions(
                    barrier_sync_key_prefix=name
                ),
            ),
        )
        for name in ("latest", "best")
    )


def restore(manager: ocp.CheckpointManager, target, step: int | None = None):
    """The checkpoint at `step` (default: the newest) restored into `target`'s structure."""
    step = manager.latest_step() if step is None else step
    return manager.restore(step, args=ocp.args.StandardRestore(target))


def save(
    manager: ocp.CheckpointManager,
    number: int,
    state: train_state.TrainState,
    epoch_sums: Mapping[str, float] | None = None,
) -> None:
    """Save `state` as checkpoint `number` (`latest`: the train step; `best`: the epoch).

    A checkpoint inside an epoch carries the epoch's metric sums so far (`epoch_sums`, in the
    checkpoint's metadata, written with it), so a run resumed from it ends the epoch with the
    metrics an uninterrupted run logs.
    """
    metadata = None if epoch_sums is None else {EPOCH_SUMS: dict(epoch_sums)}
    manager.save(number, args=ocp.args.StandardSave(state), custom_metadata=metadata)


def saved_epoch_sums(manager: ocp.CheckpointManager) -> dict[str, float] | None:
    """The epoch sums stored with the newest checkpoint (None for one at an epoch's end)."""
    metadata = manager.metadata(manager.latest_step()).custom_metadata or {}
    return metadata.get(EPOCH_SUMS)


def check_compatible(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Refuse to resume from a checkpoint whose model or data cannot match this config."""
    path = workdir / CONFIG_FILE
    if not path.exists():
        return
    saved = json.loads(path.read_text())
    current = json.loads(config.to_json())
    # A key the saved run predates had its default then (e.g. model.baseline = 'none').
    defaults = json.loads(base_config(current["data"]["system"]).to_json())
    keys = [("model", k) for k in current["model"] if k not in _FREE_MODEL_KEYS]
    keys += [("data", "system"), ("data", "num_objects"), ("train", "mode")]
    # The MLP encoder's first layer is [timesteps * dims, hidden]: a resolved own-data count
    # that changed (a longer train.npz) would not restore.
    keys += [("train", "batch_size"), ("train", "timesteps")]
    for group, key in keys:
        new = current[group][key]
        old = saved.get(group, {}).get(key, defaults[group].get(key, new))
        if old != new:
            raise ValueError(
                f"workdir {workdir} holds a run with config.{group}.{key}={old!r}, not {new!r}; "
                f"use a new --workdir or the old setting"
            )


def write_run_files(
    workdir: Path, config: ml_collections.ConfigDict, normalisation: Normalisation
) -> None:
    """Store the run's config and normalisation beside its checkpoints."""
    atomic.write_text(workdir / CONFIG_FILE, config.to_json(indent=2))
    atomic.write_text(workdir / NORMALISATION_FILE, normalisation.to_json())


def load_config(workdir: str | os.PathLike) -> tuple[ml_collections.ConfigDict, Normalisation]:
    """The stored config and normalisation of the run in `workdir`."""
    config_path = Path(workdir) / CONFIG_FILE
    if not config_path.exists():
        raise FileNotFoundError(
            f"{config_path} not found: --workdir must be a directory written by train.py"
        )
    config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
    norm = Normalisation.from_json((Path(workdir) / NORMALISATION_FILE).read_text())
    return config, norm


def load_run(
    workdir: str | os.PathLike,
) -> tuple[ml_collections.ConfigDict, Normalisation, NRI, train_state.TrainState, int]:
    """(config, normalisation, model, state, epoch) of the best (else latest) checkpoint."""
    workdir = Path(workdir)
    config, norm = load_config(workdir)
    latest, best = managers(workdir)
    manager = best if best.latest_step() is not None else latest
    if manager.latest_step() is None:
        raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints: train first")
    physics = physics_from_config(config, norm) if config.model.decoder == "sim" else None
    model = make_model(config.model, physics)
    example = np.zeros((2, config.data.num_objects, config.train.timesteps, norm.dims), np.float32)
    state = restore(manager, train_state.abstract_state(model, config, example))
    return config, norm, model, state, int(state.epoch)  # completed epochs it holds


# The baselines with nothing to train: their runs hold no checkpoint (nri_jax/baselines.py).
PARAMETERLESS = ("static", "corr_path")


def restore_run(
    workdir: str | os.PathLike,
) -> tuple[ml_collections.ConfigDict, Normalisation, NRI | None, dict, int | None]:
    """(config, normalisation, model, variables, epoch) of any run in `workdir`: `load_run`'s
    best checkpoint, or for a baseline without parameters (model None) no checkpoint at all."""
    config, norm = load_config(workdir)
    if config.model.get("baseline", "none") in PARAMETERLESS:
        return config, norm, None, {}, None
    config, norm, model, state, epoch = load_run(workdir)
    return config, norm, model, {"params": state.params, "batch_stats": state.batch_stats}, epoch
