"""The training job: data, the compiled train step, validation, checkpoints and metrics.

`train_and_evaluate(config, workdir)` is what `train.py` calls; a Colab user calls the same.
One jitted function does the whole step (encoder, Gumbel sampling, multi-step decoding, loss,
Adam update) with the state buffers donated; the batch is gathered from the device-resident
training set and sharded over all local devices. Rerunning the same command resumes from the
latest checkpoint in `workdir`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import struct
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nri_jax import data as data_lib
from nri_jax import losses, sim_decoder, validation
from nri_jax.model import NRI, make_model

CONFIG_FILE = "config.json"
NORMALISATION_FILE = "normalisation.json"
METRICS_FILE = "metrics.jsonl"


class TrainState(struct.PyTreeNode):
    """Everything a resumed run needs; `epoch` counts completed epochs."""

    step: jax.Array
    epoch: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    best_valid_nll: jax.Array  # the best `selection_score` so far (the NLL unless supervised)


# ----------------------------------------------------------------------------------------------
# Set-up.


def make_optimizer(train_config: Mapping, steps_per_epoch: int) -> optax.GradientTransformation:
    """Adam with the learning rate halved every `lr_decay_epochs` epochs (REFERENCE.md §3).

    With `lr_schedule='cosine'`, cosine decay from `lr` to 0 over `epochs` epochs instead.
    """
    if train_config.get("lr_schedule", "step") == "cosine":
        total = max(1, train_config["epochs"] * steps_per_epoch)
        return optax.adam(optax.cosine_decay_schedule(train_config["lr"], total))
    schedule = optax.exponential_decay(
        init_value=train_config["lr"],
        transition_steps=max(1, train_config["lr_decay_epochs"] * steps_per_epoch),
        decay_rate=train_config["lr_decay"],
        staircase=True,
    )
    return optax.adam(schedule)


def log_prior(model_config: Mapping) -> jax.Array | None:
    """None for the uniform prior, else the sparsity prior's log-probabilities."""
    if model_config["prior"] == "uniform":
        return None
    return losses.sparse_log_prior(model_config["edge_types"])


def make_mesh() -> jax.sharding.Mesh:
    # Auto axes: XLA partitions the step from the batch sharding (plain data parallelism).
    return jax.make_mesh(
        (jax.device_count(),), ("batch",), axis_types=(jax.sharding.AxisType.Auto,)
    )


def _initial_state(
    model: NRI, config: ml_collections.ConfigDict, tx: optax.GradientTransformation, example
) -> TrainState:
    key = jax.random.key(config.seed)
    rngs = dict(zip(("params", "gumbel", "dropout"), jax.random.split(key, 3), strict=True))
    variables = model.init(
        rngs,
        example,
        train=False,
        temperature=config.train.temperature,
        hard=True,
        prediction_steps=1,
    )
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        epoch=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        best_valid_nll=jnp.asarray(jnp.inf, jnp.float32),
    )


def init_state(
    model: NRI, config: ml_collections.ConfigDict, example: np.ndarray, steps_per_epoch: int
) -> tuple[TrainState, optax.GradientTransformation]:
    """The initial state (parameters from `config.seed`) and the optimiser.

    `example` `[samples, objects, time, dims]` sets the shapes. Initialised as one compiled
    program: op by op, the forward pass that `init` runs compiled ~150 small programs, which
    took 6-7 s before the first step.
    """
    tx = make_optimizer(config.train, steps_per_epoch)
    state = jax.jit(lambda x: _initial_state(model, config, tx, x))(jnp.asarray(example))
    return state, tx


def abstract_state(
    model: NRI, config: ml_collections.ConfigDict, example: np.ndarray
) -> TrainState:
    """Shapes, dtypes and placement of `init_state`'s state, computing nothing: a restore target."""
    tx = make_optimizer(config.train, steps_per_epoch=1)
    shapes = jax.eval_shape(lambda x: _initial_state(model, config, tx, x), example)
    replicated = NamedSharding(make_mesh(), P())
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), shapes
    )


# ----------------------------------------------------------------------------------------------
# The compiled steps.


def make_train_step(
    model: NRI, tx: optax.GradientTransformation, config: ml_collections.ConfigDict
) -> Callable:
    """Build `(state, features, labels, batch_index, key) -> (state, metrics)`, jitted.

    `features` [samples, objects, time, dims] and `labels` [samples, edges] stay on the device
    for the whole run; `batch_index` [batch] picks this step's samples. Metrics are summed over
    the batch so an epoch's sums divide by its sample count, with no host sync per step.
    """
    mesh = make_mesh()
    batch_sharding = NamedSharding(mesh, P("batch"))
    prior = log_prior(config.model)
    train_cfg = config.train
    supervised = train_cfg.mode == "supervised"
    timesteps = train_cfg.timesteps

    def loss_fn(params, state: TrainState, inputs, labels, key):
        gumbel_key, dropout_key = jax.random.split(key)
        out, updates = model.apply(
            {"params": params, "batch_stats": state.batch_stats},
            inputs,
            train=True,
            temperature=train_cfg.temperature,
            hard=train_cfg.hard,
            prediction_steps=train_cfg.prediction_steps,
            labels=labels,
            rngs={"gumbel": gumbel_key, "dropout": dropout_key},
            mutable=["batch_stats"],
        )
        num_objects = inputs.shape[1]
        logits, probs, preds = out["logits"], out["probs"], out["preds"]
        target = inputs[:, :, 1:, :]
        nll = losses.nll_gaussian(preds, target, train_cfg.var)
        if prior is None:
            kl = losses.kl_categorical_uniform(probs, num_objects)
        else:
            kl = losses.kl_categorical(probs, prior, num_objects)
        if supervised:
            loss = losses.edge_cross_entropy(logits, labels)
        elif config.model.graph != "learned":  # decoder only: the encoder must not train (KL)
            loss = nll
        else:
            loss = nll + kl
        return loss, (updates, logits, preds, target, nll, kl)

    def step(state: TrainState, features, labels, batch_index, key):
        inputs = jax.lax.with_sharding_constraint(features[batch_index], batch_sharding)
        inputs = inputs[:, :, :timesteps]
        batch_labels = labels[batch_index]
        key = jax.random.fold_in(key, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, aux), grads = grad_fn(state.params, state, inputs, batch_labels, key)
        updates, logits, preds, target, nll, kl = aux
        param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, param_updates)
        batch = inputs.shape[0]
        metrics = {
            "loss": loss * batch,
            "nll": nll * batch,
            "kl": kl * batch,
            "mse": jnp.mean((preds - target) ** 2) * batch,
            "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch_labels) * batch,
            "count": jnp.asarray(batch, jnp.float32),
        }
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            batch_stats=updates["batch_stats"],
            opt_state=opt_state,
        )
        return new_state, metrics

    return jax.jit(step, donate_argnums=(0,))


def selection_score(config: ml_collections.ConfigDict, valid_metrics: Mapping[str, float]) -> float:
    """What picks the best checkpoint (lower is better): the validation NLL, as the original;
    in supervised mode the edge error rate (the decoder is not trained, its NLL means nothing)."""
    if config.train.mode == "supervised":
        return 1.0 - valid_metrics["accuracy"]
    return valid_metrics["nll"]


def _sum_metrics(total: dict | None, new: dict) -> dict:
    return new if total is None else jax.tree.map(jnp.add, total, new)


def _average(sums: Mapping[str, jax.Array]) -> dict[str, float]:
    host = jax.device_get(sums)
    count = float(host.pop("count"))
    return {k: float(v) / count for k, v in host.items()}


# ----------------------------------------------------------------------------------------------
# Checkpoints, config and logs.


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def checkpoint_managers(workdir: Path) -> tuple[ocp.CheckpointManager, ocp.CheckpointManager]:
    """(latest, best): orbax writes each step to a temporary folder and renames it when done."""
    latest = ocp.CheckpointManager(
        (workdir / "checkpoints" / "latest").absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True),
    )
    best = ocp.CheckpointManager(
        (workdir / "checkpoints" / "best").absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True),
    )
    return latest, best


def restore(manager: ocp.CheckpointManager, abstract: TrainState, step: int | None = None):
    step = manager.latest_step() if step is None else step
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))


def check_compatible(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Refuse to resume from a checkpoint whose model or data cannot match this config."""
    path = workdir / CONFIG_FILE
    if not path.exists():
        return
    saved = json.loads(path.read_text())
    current = json.loads(config.to_json())
    keys = [("model", k) for k in current["model"]]
    keys += [("data", "system"), ("data", "num_objects"), ("train", "mode")]
    keys += [("train", "batch_size")]
    for group, key in keys:
        # A key the saved run predates had its default, which the current value may equal.
        new = current[group][key]
        old = saved.get(group, {}).get(key, new)
        if old != new:
            raise ValueError(
                f"workdir {workdir} holds a run with config.{group}.{key}={old!r}, not {new!r}; "
                f"use a new --workdir or the old setting"
            )


def _truncate_metrics_log(path: Path, completed_epochs: int) -> None:
    """Drop log lines of epochs the checkpoint does not hold (a run killed after logging)."""
    if not path.exists():
        return
    kept = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in kept if json.loads(ln)["epoch"] <= completed_epochs]
    _atomic_write_text(path, "".join(ln + "\n" for ln in kept))


class MetricsWriter:
    """One JSON line per epoch in `metrics.jsonl`, and TensorBoard event files in `tb/`."""

    def __init__(self, workdir: Path):
        from tensorboardX import SummaryWriter

        self.path = workdir / METRICS_FILE
        self.tb = SummaryWriter(str(workdir / "tb"))

    def write(self, epoch: int, metrics: Mapping[str, float]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch, **metrics}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        for name, value in metrics.items():
            self.tb.add_scalar(name.replace("_", "/", 1), value, epoch)
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()


# ----------------------------------------------------------------------------------------------
# The job.


TRAINING_SPLITS = ("train", "valid")


def load_data(config: ml_collections.ConfigDict, generate: bool = True):
    """Load the training and validation splits named by `config.data`, normalised.

    If their files are missing they are generated first (all splits, with the simulators);
    files that are present, e.g. written by the original NRI generator, are read as they are.
    """
    if generate and not _dataset_present(config.data):
        from simulators.generate import generate_dataset

        print(f"dataset not found in {config.data.dir}: generating it first", flush=True)
        generate_dataset(config.data)
    return data_lib.load_dataset(
        config.data, edge_types=config.model.edge_types, splits=TRAINING_SPLITS
    )


def _dataset_present(data_config: Mapping) -> bool:
    sfx = data_lib.suffix(data_config["system"], data_config["num_objects"])
    first = "feat" if data_config["system"] == "kuramoto" else "loc"
    return all(
        (Path(data_config["dir"]) / f"{prefix}_{split}{sfx}.npy").exists()
        for split in TRAINING_SPLITS
        for prefix in (first, "edges")
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict:
    """Train NRI as configured, checkpointing into `workdir`; returns the last epoch's metrics."""
    from tqdm.auto import tqdm

    workdir = Path(workdir)
    validation.check_config(config)
    make_model(config.model)  # unknown names fail here, before any data work
    workdir.mkdir(parents=True, exist_ok=True)
    check_compatible(workdir, config)

    splits, norm = load_data(config)
    train_split, valid_split = splits["train"], splits["valid"]
    validation.check_data(config, splits)
    _atomic_write_text(workdir / CONFIG_FILE, config.to_json(indent=2))
    _atomic_write_text(workdir / NORMALISATION_FILE, norm.to_json())

    batch_size = config.train.batch_size
    steps_per_epoch = len(train_split.features) // batch_size
    physics = None
    if config.model.decoder == "sim":
        physics = sim_decoder.physics_from_config(config, norm)
    model = make_model(config.model, physics)
    example = train_split.features[:2, :, : config.train.timesteps]
    state, tx = init_state(model, config, example, steps_per_epoch)

    latest, best = checkpoint_managers(workdir)
    if latest.latest_step() is not None:
        state = restore(latest, state)
        print(f"resuming from {workdir} after epoch {int(state.epoch)}")
    _truncate_metrics_log(workdir / METRICS_FILE, int(state.epoch))

    mesh = make_mesh()
    replicated = NamedSharding(mesh, P())
    state = jax.device_put(state, replicated)
    features = jax.device_put(jnp.asarray(train_split.features), replicated)
    labels = jax.device_put(jnp.asarray(train_split.labels), replicated)
    train_step = make_train_step(model, tx, config)
    evaluator = validation.Evaluator(model, config, valid_split)

    base_key = jax.random.key(config.seed)
    shuffle_key, step_key = jax.random.split(jax.random.fold_in(base_key, 1))
    writer = MetricsWriter(workdir)
    metrics: dict[str, float] = {}
    try:
        for epoch in range(int(state.epoch), config.train.epochs):
            start = time.perf_counter()
            order = jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), len(labels))
            batches = order[: steps_per_epoch * batch_size].reshape(steps_per_epoch, batch_size)
            sums = None
            for i in tqdm(
                range(steps_per_epoch),
                desc=f"epoch {epoch + 1}/{config.train.epochs}",
                leave=False,
                disable=None,
            ):
                state, step_metrics = train_step(state, features, labels, batches[i], step_key)
                sums = _sum_metrics(sums, step_metrics)
            train_metrics = _average(sums)
            valid_metrics = evaluator(state.params, state.batch_stats)
            score = selection_score(config, valid_metrics)
            improved = score < float(state.best_valid_nll)
            best_nll = min(score, float(state.best_valid_nll))
            # Placed like the rest of the state, so the next step does not recompile.
            state = jax.device_put(
                state.replace(
                    epoch=jnp.asarray(epoch + 1, jnp.int32),
                    best_valid_nll=jnp.asarray(best_nll, jnp.float32),
                ),
                replicated,
            )
            metrics = {f"train_{k}": v for k, v in train_metrics.items()}
            metrics.update({f"valid_{k}": v for k, v in valid_metrics.items()})
            metrics["time"] = time.perf_counter() - start
            writer.write(epoch + 1, metrics)
            latest.save(epoch + 1, args=ocp.args.StandardSave(state))
            if improved:
                best.save(epoch + 1, args=ocp.args.StandardSave(state))
            print(
                f"epoch {epoch + 1:4d} | train nll {metrics['train_nll']:.4g} "
                f"kl {metrics['train_kl']:.4g} acc {metrics['train_accuracy']:.4f} | "
                f"valid nll {metrics['valid_nll']:.4g} acc {metrics['valid_accuracy']:.4f} "
                f"(best perm. {metrics['valid_accuracy_perm']:.4f})"
                f"{' *' if improved else ''} | {metrics['time']:.1f}s",
                flush=True,
            )
    finally:
        latest.wait_until_finished()
        best.wait_until_finished()
        writer.close()
    return metrics
