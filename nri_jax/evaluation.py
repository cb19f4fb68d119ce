"""Evaluation by the paper's protocol (REFERENCE.md §3): the per-epoch validation pass and the
test protocol, both one batched loop over a device-resident split.

Per batch (`_batch_fn`):
- Edge accuracy: the encoder sees the first `timesteps` (49) frames; argmax of the logits
  against the labels over all off-diagonal pairs, raw and under the best permutation of
  edge-type labels (unsupervised types have no fixed identity), the permutation chosen over
  the whole split from the summed confusion matrix.
- Edge AUROC (test only; StructInfer's metric, REFERENCE.md §8): the score of an edge is
  1 - q(type read as label 0 | x), the probability of any interaction, against label != 0
  (label 0 = no interaction, as in the data; charged: label 1 = repel is the positive class);
  the type read as label 0 is the one the accuracy's best permutation maps there.
- NLL / KL (eqs. 18-19, `nri_jax.losses`, per sample): hard (straight-through) Gumbel samples,
  one-step teacher-forced decoding of the last `timesteps` frames. In validation the split is
  cut to `timesteps` frames, so encoder and decoder see the same ones, as the original.
- Table 2 MSE (test only): the decoder starts from true frame `timesteps` (index 49) and
  predicts `eval.prediction_steps` (20) frames the encoder never saw; MSE per prediction step,
  averaged over samples, objects and dims. The RNN decoder is burnt in on the true frames
  0..49 first (the original's `step <= burn_in_steps`) and, with `dynamic_graph`, re-runs the
  encoder on a sliding window of the last 49 frames at every step (paper §5.2).
Fixed graphs (config.model.graph 'true' / 'full'): the decoder is given the true graph or the
full one instead of the sampled edges; edge accuracy, KL and the permutation still come from
the encoder's logits, which that training ignores, so they mean nothing there (about chance).

Baselines (`nri_jax.baselines`): the predictors (Static, the LSTMs) get the same NLL, one-step
MSE and Table 2 protocol (`_predictor_batch_fn`: the LSTMs burn in on the true frames 0..49);
the correlation baselines' edge accuracy is taken with the cut chosen on the validation split
(`_correlation_result`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nri_jax import atomic, baselines, checkpoints, losses, metrics
from nri_jax.data import Normalisation, Split, eval_horizon, load_dataset
from nri_jax.model import NRI, fixed_edges
from nri_jax.train_state import make_mesh

# Activation elements ([samples x edges, hidden] and the like) an evaluation batch may put in
# one tensor: 128 MiB of float32. Paper-size batches of a few objects stay far below it; at
# 250 objects (62250 edges) and 256 units a batch of 256 samples would need 16 GB a tensor.
EVAL_ELEMENTS = 1 << 25


def eval_batch_size(config: ml_collections.ConfigDict) -> int:
    """Samples an evaluation batch holds: `config.eval.batch_size`, or fewer for many objects.

    The CNN encoder keeps a time axis per edge, so its frames count too. A multiple of the
    device count (each device takes its share).
    """
    n = config.data.num_objects
    per_sample = n * (n - 1) * max(config.model.hidden, config.model.decoder_hidden)
    if config.model.encoder == "cnn":
        per_sample *= config.train.timesteps
    size = min(config.eval.batch_size, max(1, EVAL_ELEMENTS // per_sample))
    devices = jax.device_count()
    return max(devices, size // devices * devices)


def padded_batches(num: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Index [batches, batch] covering 0..num-1 (last batch padded) and its 0/1 mask."""
    batches = -(-num // batch_size)
    index = np.arange(batches * batch_size)
    mask = (index < num).astype(np.float32)
    return np.minimum(index, num - 1).reshape(batches, batch_size), mask.reshape(batches, -1)


def per_sample_metrics(logits, probs, preds, target, labels, var, log_prior=None) -> dict:
    """Per-sample NLL (eq. 18 / N), KL (eq. 19 / N), MSE and edge accuracy, each `[batch]`.

    Their means over samples are the original's batch-averaged figures.
    """
    num_objects = target.shape[1]
    return {
        "nll": losses.nll_gaussian(preds, target, var, per_sample=True),
        "kl": losses.kl_categorical(probs, num_objects, log_prior, per_sample=True),
        "mse": jnp.mean((preds - target) ** 2, axis=(1, 2, 3)),
        "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels, axis=-1),
    }


def _batch_fn(
    model: NRI,
    config: ml_collections.ConfigDict,
    features: jax.Array,
    labels: jax.Array,
    horizon: int = 0,
    dynamic_graph: bool = False,
    keep_probs: bool = False,
) -> Callable:
    """Jitted `(variables, index, mask, key) -> (sums, (future, edges) or None)` for a split.

    `features` `[S, N, T, D]`, `labels` `[S, E]` stay on the device; sums are masked sums
    over the batch of `per_sample_metrics`, the confusion matrix and the sample count, and
    with `horizon` > 0 the per-step MSE of the Table 2 rollout; with `keep_probs`,
    `edge_probs`, the batch's q(z|x) `[batch, E, K]`, which `_run` concatenates instead of
    summing (for the AUROC).
    """
    timesteps = config.train.timesteps
    temperature, var = config.train.temperature, config.train.var
    prior = losses.log_prior(config.model.prior, config.model.edge_types)
    graph = config.model.get("graph", "learned")
    edge_types = config.model.edge_types

    def batch(variables, index, mask, key):
        x, y = features[index], labels[index]
        # Validation samples z with the batch's key itself; the test protocol splits it, one
        # half for the dynamic graph's rollout (the draws of earlier versions, so that a run
        # repeated after an upgrade picks the same best checkpoint).
        sample_key, rollout_key = jax.random.split(key) if horizon else (key, None)
        logits = model.apply(variables, x[:, :, :timesteps], method="encode")
        probs = jax.nn.softmax(logits, -1)
        if graph == "learned":
            edges = model.apply(
                variables, logits, temperature, True, method="sample", rngs={"gumbel": sample_key}
            )
        else:
            edges = fixed_edges(graph, y.shape, edge_types, y)
        x_dec = x[:, :, -timesteps:]  # one-step NLL on the last `timesteps` frames
        before = x[:, :, -timesteps - 1] if x.shape[2] > timesteps else None
        preds = model.apply(variables, x_dec, edges, 1, method="decode", previous=before)
        per = per_sample_metrics(logits, probs, preds, x_dec[:, :, 1:], y, var, prior)
        sums = {name: jnp.sum(v * mask) for name, v in per.items()}
        sums["confusion"] = metrics.confusion_matrix(logits, y, edge_types, mask)
        sums["count"] = jnp.sum(mask)
        if keep_probs:
            sums["edge_probs"] = probs
        if not horizon:
            return sums, None
        # Table 2: predict frames timesteps + 1 .. timesteps + horizon from true frame timesteps.
        if config.model.decoder == "rnn":
            roll = model.apply(
                variables,
                x[:, :, : timesteps + horizon + 1],
                edges,
                timesteps,
                method="rollout",
                dynamic_graph=dynamic_graph,
                encoder_window=timesteps,
                temperature=temperature,
                rngs={"gumbel": rollout_key},
            )
            future = roll[:, :, timesteps:]
        else:
            window = x[:, :, timesteps : timesteps + horizon + 1]
            before = x[:, :, timesteps - 1]  # the two-frame MLP decoder's last change
            future = model.apply(
                variables, window, edges, horizon, method="decode", previous=before
            )
        target = x[:, :, timesteps + 1 : timesteps + horizon + 1]
        mse_steps = jnp.mean((future - target) ** 2, axis=(1, 3))  # [batch, horizon]
        sums["mse_per_step"] = jnp.sum(mse_steps * mask[:, None], axis=0)
        return sums, (future, edges)

    return jax.jit(batch)


def _predictor_batch_fn(
    model, config: ml_collections.ConfigDict, features: jax.Array, horizon: int = 0
) -> Callable:
    """`_batch_fn` for a baseline predictor: a `RecurrentBaseline`, or None for Static."""
    timesteps, var = config.train.timesteps, config.train.var

    def batch(variables, index, mask, key):
        del key
        x = features[index]
        x_dec = x[:, :, -timesteps:]
        if model is None:  # Static: x_{t+1} = x_t
            preds = x_dec[:, :, :-1]
        else:
            preds = model.apply(variables, x_dec, train=False, prediction_steps=1)["preds"]
        target = x_dec[:, :, 1:]
        sums = {
            "nll": jnp.sum(losses.nll_gaussian(preds, target, var, per_sample=True) * mask),
            "mse": jnp.sum(jnp.mean((preds - target) ** 2, axis=(1, 2, 3)) * mask),
            "count": jnp.sum(mask),
        }
        if not horizon:
            return sums, None
        if model is None:
            future = jnp.repeat(x[:, :, timesteps : timesteps + 1], horizon, axis=2)
        else:
            window = x[:, :, : timesteps + horizon + 1]
            future = model.apply(variables, window, timesteps, method="rollout")[:, :, timesteps:]
        target = x[:, :, timesteps + 1 : timesteps + horizon + 1]
        mse_steps = jnp.mean((future - target) ** 2, axis=(1, 3))  # [batch, horizon]
        sums["mse_per_step"] = jnp.sum(mse_steps * mask[:, None], axis=0)
        return sums, (future, None)

    return jax.jit(batch)


def _run(batch, variables, num: int, batch_size: int, key: jax.Array):
    """The one loop: sum `batch` over the split's padded batches; (totals, first extras).

    No host sync inside the loop: the sums stay on the device until the caller reads them.
    A batch's `edge_probs` are kept, not summed: the means hold them for the whole split.
    """
    index, mask = padded_batches(num, batch_size)
    total, first, probs = None, None, []
    for i in range(len(index)):
        sums, extras = batch(variables, index[i], mask[i], jax.random.fold_in(key, i))
        if "edge_probs" in sums:
            probs.append(sums.pop("edge_probs"))
        total = sums if total is None else jax.tree.map(jnp.add, total, sums)
        if first is None:
            first = (index[i], extras)
    confusion = total.pop("confusion", None)
    host = jax.device_get(total)
    count = float(host.pop("count"))
    means = {name: np.asarray(value, np.float64) / count for name, value in host.items()}
    if confusion is not None:
        accuracy_perm, perm = metrics.best_permutation(confusion)
        means["accuracy_perm"] = float(accuracy_perm)
        means["permutation"] = [int(p) for p in jax.device_get(perm)]
    if probs:  # The padding repeats the last sample at the end only.
        means["edge_probs"] = np.concatenate(jax.device_get(probs))[:num]
    means["count"] = int(count)
    return means, first


def make_validation(
    model: NRI | baselines.RecurrentBaseline, config: ml_collections.ConfigDict, split: Split
) -> Callable[..., dict[str, float]]:
    """The validation pass: `(params, batch_stats) -> {nll, kl, mse, accuracy, accuracy_perm}`
    ({nll, mse} for a baseline predictor).

    One compiled batch function; the split's first `timesteps` frames stay on the devices,
    placed like the parameters (replicated over every process's devices in a multi-host run).
    """
    replicated = NamedSharding(make_mesh(), P())
    features = jax.device_put(split.features[:, :, : config.train.timesteps], replicated)
    if isinstance(model, NRI):
        batch = _batch_fn(model, config, features, jax.device_put(split.labels, replicated))
    else:
        batch = _predictor_batch_fn(model, config, features)
    key = jax.random.key(config.seed + 1)

    def validate(params, batch_stats) -> dict[str, float]:
        variables = {"params": params, "batch_stats": batch_stats}
        means, _ = _run(batch, variables, len(split.labels), eval_batch_size(config), key)
        names = ("nll", "kl", "mse", "accuracy", "accuracy_perm")
        if not split.labelled:  # measured against placeholder labels
            names = names[:3]
        return {name: float(means[name]) for name in names if name in means}

    return validate


def evaluate(
    workdir: str | os.PathLike,
    data_dir: str | None = None,
    output: str | None = None,
    plots: bool = False,
    dynamic_graph: bool = False,
    prediction_steps: int | None = None,
) -> dict:
    """Evaluate the run in `workdir` on a test split; writes and returns the eval.json dict.

    The best-validation checkpoint (`checkpoints/best`) is used, the latest if none.
    `data_dir` evaluates another dataset's test split with the run's normalisation, written to
    `output` or else `workdir/eval_<data_dir's folder name>.json` (the run's own eval.json is
    kept); `prediction_steps` overrides config.eval.prediction_steps (the Table 2 horizon).
    """
    workdir = Path(workdir)
    config, _ = checkpoints.load_config(workdir)
    baseline = config.model.get("baseline", "none")
    if baseline != "none" and (plots or dynamic_graph):
        flag = "--plots" if plots else "--dynamic_graph"
        raise ValueError(
            f"{flag} needs NRI's inferred graphs; config.model.baseline={baseline!r} has none"
        )
    config, norm, model, variables, epoch = checkpoints.restore_run(workdir)
    data_config = ml_collections.ConfigDict(config.data.to_dict())
    if data_dir is not None:
        data_config.dir = data_dir
    splits, _ = load_dataset(
        data_config, config.model.edge_types, splits=("test",), normalisation=norm
    )
    test = splits["test"]
    if plots and eval_horizon(config, test, prediction_steps) == 0:
        raise ValueError(
            f"--plots draws predicted frames, but {test.name} has none after the encoder's "
            f"{config.train.timesteps}"
        )
    result, shown = _protocol(
        config, norm, model, variables, epoch, test, None, dynamic_graph, prediction_steps
    )
    result["data_dir"] = str(data_config.dir)
    if output is None and data_dir is not None:
        output = str(workdir / f"eval_{Path(data_dir).resolve().name}.json")
    _write(result, workdir, output)
    if plots:
        from nri_jax import plots as plots_lib

        first_index, future, edges = shown
        permutation = result.get("edge_type_permutation", range(config.model.edge_types))
        plots_lib.write_plots(
            workdir / "plots",
            test.features[first_index[:4]],
            np.asarray(future[:4]),
            np.asarray(jnp.argmax(edges[:4], -1)),
            test.labels[first_index[:4]] if test.labelled else None,
            config.train.timesteps,
            config.data.system,
            list(permutation),
        )
    return result


def evaluate_model(
    config: ml_collections.ConfigDict,
    normalisation: Normalisation,
    model: NRI | baselines.RecurrentBaseline | None,
    variables: dict,
    epoch: int | None,
    test: Split,
    valid: Split | None = None,
    dynamic_graph: bool = False,
    prediction_steps: int | None = None,
) -> dict:
    """The test protocol on a restored run (`checkpoints.restore_run`) and a normalised `test`
    split: `evaluate`'s dict without `data_dir`, nothing written.

    `valid` is the split a correlation baseline's cut is fitted on (default: the run's own).
    """
    result, _ = _protocol(
        config,
        normalisation,
        model,
        variables,
        epoch,
        test,
        valid,
        dynamic_graph,
        prediction_steps,
    )
    return result


def _protocol(config, norm, model, variables, epoch, test, valid, dynamic_graph, steps):
    """(eval.json's dict without data_dir, (first batch's index, future, edges) or None)."""
    baseline = config.model.get("baseline", "none")
    if baseline in baselines.CORRELATION:
        if not test.labelled:
            raise ValueError(f"{test.name}: no edges, but {baseline} reports edge accuracy only")
        result = _correlation_result(config, norm, model, variables, test, valid)
        result.update(checkpoint_epoch=epoch, baseline=baseline)
        return result, None
    horizon = eval_horizon(config, test, steps)
    if dynamic_graph and config.model.decoder != "rnn":
        raise ValueError("--dynamic_graph needs a run with config.model.decoder='rnn'")
    if dynamic_graph and config.model.get("graph", "learned") != "learned":
        raise ValueError(
            "--dynamic_graph re-runs the encoder: it needs config.model.graph='learned'"
        )
    if config.model.get("graph", "learned") == "true" and not test.labelled:
        raise ValueError(f"{test.name}: no edges, but config.model.graph='true' decodes them")
    key = jax.random.key(config.seed + 2)
    if baseline != "none":
        batch = _predictor_batch_fn(model, config, jnp.asarray(test.features), horizon)
        means, _ = _run(batch, variables, len(test.labels), eval_batch_size(config), key)
        result = {
            "nll": float(means["nll"]),
            "mse_one_step": float(means["mse"]),
            "mse_per_step": [float(v) for v in means.get("mse_per_step", [])],
            "num_test": means["count"],
            "checkpoint_epoch": epoch,
            "baseline": baseline,
        }
        return result, None
    batch = _batch_fn(
        model,
        config,
        jnp.asarray(test.features),
        jnp.asarray(test.labels),
        horizon=horizon,
        dynamic_graph=dynamic_graph,
        keep_probs=test.labelled,
    )
    means, (first_index, extras) = _run(
        batch, variables, len(test.labels), eval_batch_size(config), key
    )
    result = {}
    if test.labelled:
        scores = metrics.interaction_scores(means["edge_probs"], means["permutation"])
        result = {
            "edge_accuracy": means["accuracy_perm"],
            "edge_accuracy_raw": float(means["accuracy"]),
            # permutation[p]: the label that predicted edge type p stands for.
            "edge_type_permutation": means["permutation"],
            "edge_auroc": _json_number(metrics.auroc(scores, test.labels != 0)),
        }
    result.update(
        {
            "nll": float(means["nll"]),
            "kl": float(means["kl"]),
            "mse_one_step": float(means["mse"]),
            "mse_per_step": [float(v) for v in means.get("mse_per_step", [])],
            "num_test": means["count"],
            "checkpoint_epoch": int(epoch),
            "dynamic_graph": dynamic_graph,
        }
    )
    return result, None if extras is None else (first_index, *extras)


def _json_number(value: float) -> float | None:
    """NaN (an AUROC of a split with one class only) as JSON's null."""
    return None if np.isnan(value) else float(value)


def _write(result: dict, workdir: Path, output: str | None) -> dict:
    out_path = Path(output) if output else workdir / "eval.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out_path, json.dumps(result, indent=2) + "\n")
    return result


def _correlation_vectors(config, model, variables, features: np.ndarray) -> np.ndarray:
    """Per object, what Corr. (path) / (LSTM) correlates: `[S, N, F]`."""
    frames = features[:, :, : config.train.timesteps]
    if model is None:  # Corr. (path): the trajectory itself, flattened over time and dims
        return frames.reshape(frames.shape[0], frames.shape[1], -1)
    final = jax.jit(lambda v, x: model.apply(v, x, method="final_hidden"))
    index, _ = padded_batches(len(frames), eval_batch_size(config))
    hidden = [np.asarray(final(variables, jnp.asarray(frames[i]))) for i in index]
    return np.concatenate(hidden)[: len(frames)]


def _correlation_result(config, norm, model, variables, test: Split, valid=None) -> dict:
    """Edge accuracy of a correlation baseline on `test`, its cut fitted on `valid`, by default
    the validation split of the run's own dataset (with the run's normalisation)."""
    if valid is None:
        splits, _ = load_dataset(config.data, config.model.edge_types, ("valid",), norm)
        valid = splits["valid"]
    if not valid.labelled:
        raise ValueError(f"{valid.name}: no edges, but the correlation cut is fitted on them")
    valid_scores = baselines.correlation_scores(
        _correlation_vectors(config, model, variables, valid.features)
    )
    fit = baselines.fit_threshold(valid_scores, valid.labels)
    scores = baselines.correlation_scores(
        _correlation_vectors(config, model, variables, test.features)
    )
    accuracy = float(np.mean(baselines.predict_edges(scores, fit) == test.labels))
    # The cut fixes which side is type 1, so no relabelling is left to choose.
    auroc = metrics.auroc(baselines.edge_scores(scores, fit), test.labels != 0)
    return {
        "edge_accuracy": accuracy,
        "edge_accuracy_raw": accuracy,
        "edge_auroc": _json_number(auroc),
        "threshold": fit,
        "num_test": len(test.labels),
    }


def format_table(result: dict) -> str:
    """eval.json as the few lines eval.py prints."""
    lines = []
    if "edge_accuracy" in result:
        line = f"edge accuracy      {100 * result['edge_accuracy']:.2f}%"
        if "edge_type_permutation" in result:
            line += (
                f" (best permutation {result['edge_type_permutation']}), "
                f"raw {100 * result['edge_accuracy_raw']:.2f}%"
            )
        lines.append(line)
    if "edge_auroc" in result:
        auroc = result["edge_auroc"]
        shown = "n/a (one class only)" if auroc is None else f"{100 * auroc:.2f}%"
        lines.append(f"edge AUROC         {shown} (interaction vs none)")
    if "nll" in result:
        lines.append(f"NLL                {result['nll']:.6g}")
    if "kl" in result:
        lines.append(f"KL                 {result['kl']:.6g}")
    if result.get("mse_per_step"):
        steps = result["mse_per_step"]
        lines.append(
            "MSE at step        "
            + "  ".join(f"{i}: {steps[i - 1]:.3e}" for i in (1, 10, 20) if i <= len(steps))
        )
    epoch = result.get("checkpoint_epoch")
    checkpoint = "no parameters" if epoch is None else f"checkpoint of epoch {epoch}"
    lines.append(f"test samples       {result['num_test']} ({checkpoint})")
    return "\n".join(lines)
