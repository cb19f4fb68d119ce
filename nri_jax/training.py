"""The training job: the compiled train step and the loop over epochs.

`train_and_evaluate(config, workdir)` is what `train.py` calls; a Colab user calls the same.
One jitted function does the whole step (encoder, Gumbel sampling, multi-step decoding, loss,
Adam update) with the state buffers donated; the batch is gathered from the device-resident
training set and sharded over all devices. After each epoch the validation pass runs
(`nri_jax.evaluation`), the epoch's metrics are logged (`nri_jax.metrics_log`) and the state
is checkpointed (`nri_jax.checkpoints`); rerunning the same command resumes from the latest
checkpoint in `workdir`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nri_jax import (
    checkpoints,
    distributed,
    evaluation,
    losses,
    memory,
    preemption,
    sim_decoder,
)
from nri_jax.config import OWN, check_config
from nri_jax.data import (
    SPLITS,
    Normalisation,
    Split,
    check_splits,
    load_dataset,
    refuse_arrays,
    resolve_own_config,
)
from nri_jax.generate import ensure_dataset
from nri_jax.metrics_log import MetricsWriter
from nri_jax.model import NRI, make_model
from nri_jax.progress import Progress
from nri_jax.train_state import TrainState, abstract_state, init_state, make_mesh

TRAINING_SPLITS = ("train", "valid")


def make_loss_fn(model: NRI, config: ml_collections.ConfigDict) -> Callable:
    """`(params, state, inputs, labels, key) -> (loss, aux)`: the training objective.

    The negative ELBO (eqs. 18-19), or the edge cross-entropy in supervised mode, or the NLL
    alone for decoder-only runs and baselines; `inputs` [batch, objects, time, dims], `labels`
    [batch, edges]. `aux` = (batch_stats updates, logits, preds, target, nll, kl).
    """
    prior = losses.log_prior(config.model.prior, config.model.edge_types)
    train_cfg = config.train
    supervised = train_cfg.mode == "supervised"

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
        preds, target = out["preds"], inputs[:, :, 1:, :]
        nll = losses.nll_gaussian(preds, target, train_cfg.var)  # eq. 18
        if "logits" not in out:  # a baseline predictor (nri_jax/baselines.py): the NLL alone
            return nll, (updates, None, preds, target, nll, None)
        logits, probs = out["logits"], out["probs"]
        kl = losses.kl_categorical(probs, inputs.shape[1], prior)  # eq. 19
        if supervised:
            loss = losses.edge_cross_entropy(logits, labels)
        elif config.model.graph != "learned":  # decoder only: the encoder must not train (KL)
            loss = nll
        else:
            loss = nll + kl
        return loss, (updates, logits, preds, target, nll, kl)

    return loss_fn


def make_train_step(
    model: NRI, tx: optax.GradientTransformation, config: ml_collections.ConfigDict
) -> Callable:
    """Build `(state, features, labels, batch_index, key) -> (state, metrics)`, jitted.

    `features` [samples, objects, time, dims] and `labels` [samples, edges] stay on the device
    for the whole run; `batch_index` [batch] picks this step's samples. Metrics are summed over
    the batch so an epoch's sums divide by its sample count, with no host sync per step.
    """
    batch_sharding = NamedSharding(make_mesh(), P("batch"))
    loss_fn = make_loss_fn(model, config)
    timesteps = config.train.timesteps

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
            "mse": jnp.mean((preds - target) ** 2) * batch,
            "count": jnp.asarray(batch, jnp.float32),
        }
        if logits is not None:
            metrics["kl"] = kl * batch
            metrics["accuracy"] = jnp.mean(jnp.argmax(logits, -1) == batch_labels) * batch
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            batch_stats=updates.get("batch_stats", state.batch_stats),
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


def _epoch_line(epoch: int, metrics: Mapping[str, float], improved: bool) -> str:
    """The line printed after each epoch (edge figures only for models with an encoder, and
    accuracies only for splits with labels)."""
    train = f"train nll {metrics['train_nll']:.4g}"
    valid = f"valid nll {metrics['valid_nll']:.4g}"
    if "train_kl" in metrics:
        train += f" kl {metrics['train_kl']:.4g}"
    if "train_accuracy" in metrics:
        train += f" acc {metrics['train_accuracy']:.4f}"
    if "valid_accuracy" in metrics:
        valid += (
            f" acc {metrics['valid_accuracy']:.4f} "
            f"(best perm. {metrics['valid_accuracy_perm']:.4f})"
        )
    else:
        valid += f" mse {metrics['valid_mse']:.4g}"
    mark = " *" if improved else ""
    return f"epoch {epoch:4d} | {train} | {valid}{mark} | {metrics['time']:.1f}s"


def _average(sums: Mapping[str, jax.Array]) -> dict[str, float]:
    host = _host_sums(sums)
    count = host.pop("count")
    return {k: v / count for k, v in host.items()}


def _host_sums(sums: Mapping[str, jax.Array]) -> dict[str, float]:
    """An epoch's metric sums on the host (exact: float32 values as Python floats)."""
    return {k: float(v) for k, v in jax.device_get(sums).items()}


def _device_sums(sums: Mapping[str, float], sharding: NamedSharding) -> dict[str, jax.Array]:
    """`_host_sums`' inverse, placed like the train step's metrics."""
    return {k: jax.device_put(np.float32(v), sharding) for k, v in sums.items()}


def lead_print(line: str) -> None:
    """Print on the lead process only (one copy of each line in a multi-host job's log)."""
    if distributed.is_lead():
        print(line, flush=True)


def _own_data(
    config: ml_collections.ConfigDict, data: Mapping | None
) -> tuple[ml_collections.ConfigDict, dict[str, Split], Normalisation]:
    """Own data (config.data.system = 'own'): the splits, read and checked before training
    (test.npz too, if there, so that a test split eval cannot use fails now), and the config
    with objects and frames read from them; data.dir is emptied for in-memory arrays."""
    splits, norm = load_dataset(
        config.data, config.model.edge_types, SPLITS, arrays=data, optional=("test",)
    )
    config = resolve_own_config(config, splits)
    if data is not None:
        config.data.dir = ""
    return config, splits, norm


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str | os.PathLike, data: Mapping | None = None
) -> dict:
    """Train NRI as configured, checkpointing into `workdir`; returns the last epoch's metrics.

    If the dataset `config.data` names is missing it is generated first (`nri_jax.generate`).
    Own data (configs/own_data.py) is read from config.data.dir or given as `data`,
    `{"train": (trajectories, edges or None), "valid": ..., "test": ... (optional)}`
    (`nri_jax.own_data`); the stored config records the frames and objects read.
    """
    workdir = Path(workdir)
    own = config.data.system == OWN
    if own:  # the frames and objects come from the files, so they are read first
        config, splits, norm = _own_data(config, data)
    elif data is not None:
        refuse_arrays(config.data.system)
    check_config(config)
    make_model(config.model)  # unknown names fail here, before any data work
    if own:
        check_splits(config, splits)  # bad input leaves no workdir behind
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoints.check_compatible(workdir, config)

    if not own:
        if distributed.is_lead():  # one process generates a missing dataset, the rest wait
            ensure_dataset(config.data, TRAINING_SPLITS)
        distributed.barrier("dataset")
        splits, norm = load_dataset(config.data, config.model.edge_types, TRAINING_SPLITS)
        check_splits(config, splits)
    train_split, valid_split = splits["train"], splits["valid"]
    del splits  # a test split was only checked
    if distributed.is_lead():
        checkpoints.write_run_files(workdir, config, norm)

    batch_size = config.train.batch_size
    steps_per_epoch = len(train_split.features) // batch_size
    physics = None
    if config.model.decoder == "sim":
        physics = sim_decoder.physics_from_config(config, norm)
    model = make_model(config.model, physics)
    if model is None:
        lead_print(
            f"config.model.baseline={config.model.baseline!r} has no parameters: nothing to "
            f"train; eval.py --workdir {workdir} evaluates it"
        )
        return {}
    example = train_split.features[:2, :, : config.train.timesteps]
    if config.train.get("check_memory", True):  # before anything compiles
        memory.check_batch_fits(
            make_loss_fn(model, config),
            abstract_state(model, config, example),
            batch_size,
            example.shape[1:],
            train_split.labels.dtype,
            train_split.features.nbytes + train_split.labels.nbytes,
        )
    state, tx = init_state(model, config, example, steps_per_epoch)

    latest, best = checkpoints.managers(workdir)
    epoch_sums = None
    if latest.latest_step() is not None:
        state = checkpoints.restore(latest, state)
        epoch_sums = checkpoints.saved_epoch_sums(latest)
        within = int(state.step) - int(state.epoch) * steps_per_epoch
        if not 0 <= within < steps_per_epoch or (within > 0) != (epoch_sums is not None):
            raise ValueError(
                f"workdir {workdir}: its checkpoint at train step {int(state.step)} does not "
                f"fit {steps_per_epoch} steps per epoch (were config.data.num_train or "
                f"config.train.batch_size changed?); use a new --workdir"
            )
        where = f" and {within} steps" if within else ""
        lead_print(f"resuming from {workdir} after epoch {int(state.epoch)}{where}")

    replicated = NamedSharding(make_mesh(), P())
    state = jax.device_put(state, replicated)
    features = jax.device_put(train_split.features, replicated)
    labels = jax.device_put(train_split.labels, replicated)
    train_step = make_train_step(model, tx, config)
    validate = evaluation.make_validation(model, config, valid_split)
    # The epoch's sample order: one program, its result placed like the data on every process.
    epoch_order = jax.jit(
        lambda key: jax.random.permutation(key, len(train_split.labels)),
        out_shardings=replicated,
    )

    base_key = jax.random.key(config.seed)
    shuffle_key, step_key = jax.random.split(jax.random.fold_in(base_key, 1))
    train_cfg = config.train
    every = train_cfg.get("checkpoint_every_steps", 0)
    lead = distributed.is_lead()
    writer = MetricsWriter(workdir, completed_epochs=int(state.epoch)) if lead else None
    progress = Progress(
        train_cfg.epochs,
        steps_per_epoch,
        batch_size,
        every_steps=train_cfg.get("log_every_steps", 0),
        enabled=lead,
        labelled=train_split.labelled,
    )
    metrics: dict[str, float] = {}
    try:
        with preemption.StopSignal() as stop:
            for epoch in range(int(state.epoch), train_cfg.epochs):
                start = time.perf_counter()
                first = int(state.step) - epoch * steps_per_epoch  # > 0 when resumed inside
                order = epoch_order(jax.random.fold_in(shuffle_key, epoch))
                batches = order[: steps_per_epoch * batch_size].reshape(steps_per_epoch, -1)
                sums = None if epoch_sums is None else _device_sums(epoch_sums, replicated)
                epoch_sums = None
                progress.start_epoch(epoch, first)
                for i in range(first, steps_per_epoch):
                    state, step_metrics = train_step(state, features, labels, batches[i], step_key)
                    sums = (
                        step_metrics if sums is None else jax.tree.map(jnp.add, sums, step_metrics)
                    )
                    done, step = i + 1, epoch * steps_per_epoch + i + 1
                    progress.step(done, sums)
                    if done == steps_per_epoch:
                        break  # the epoch's end saves and stops below
                    if stop.reached(step):
                        checkpoints.save(latest, step, state, _host_sums(sums))
                        latest.wait_until_finished()
                        message = (
                            f"stopped by signal {stop.signum} after train step {step} "
                            f"(epoch {epoch + 1}, step {done}/{steps_per_epoch}); checkpoint "
                            f"written to {workdir}: rerun the same command to resume"
                        )
                        lead_print(message)
                        raise preemption.Preempted(stop.signum, message)
                    if every and step % every == 0:
                        checkpoints.save(latest, step, state, _host_sums(sums))
                progress.end_epoch()
                train_metrics = _average(sums)
                if not train_split.labelled:  # measured against placeholder labels
                    train_metrics.pop("accuracy", None)
                valid_metrics = validate(state.params, state.batch_stats)
                score = selection_score(config, valid_metrics)
                improved = score < float(state.best_valid_nll)
                best_score = min(score, float(state.best_valid_nll))
                # Placed like the rest of the state, so the next step does not recompile (from
                # numpy: a process-local jax array cannot be put on a multi-host mesh).
                state = jax.device_put(
                    state.replace(
                        epoch=np.asarray(epoch + 1, np.int32),
                        best_valid_nll=np.asarray(best_score, np.float32),
                    ),
                    replicated,
                )
                metrics = {f"train_{k}": v for k, v in train_metrics.items()}
                metrics.update({f"valid_{k}": v for k, v in valid_metrics.items()})
                metrics["time"] = time.perf_counter() - start
                if writer is not None:
                    writer.write(epoch + 1, metrics)
                checkpoints.save(latest, int(state.step), state)
                if improved:
                    checkpoints.save(best, epoch + 1, state)
                lead_print(_epoch_line(epoch + 1, metrics, improved))
                if stop.reached(int(state.step)) and epoch + 1 < train_cfg.epochs:
                    latest.wait_until_finished()
                    message = (
                        f"stopped by signal {stop.signum} after epoch {epoch + 1}; checkpoint "
                        f"written to {workdir}: rerun the same command to resume"
                    )
                    lead_print(message)
                    raise preemption.Preempted(stop.signum, message)
    finally:
        progress.end_epoch()
        latest.wait_until_finished()
        best.wait_until_finished()
        if writer is not None:
            writer.close()
    return metrics
