"""Test-split evaluation of a trained run, by the paper's protocol (REFERENCE.md §3).

- Edge accuracy: the encoder sees the first `timesteps` (49) frames; argmax of the logits against
  the labels over all off-diagonal pairs, raw and under the best permutation of edge-type labels
  (unsupervised types have no fixed identity), the permutation chosen over the whole split.
- NLL / KL: hard Gumbel samples, one-step teacher-forced decoding of the last `timesteps` frames.
- Table 2 MSE: the decoder starts from true frame `timesteps` (index 49) and predicts
  `eval.prediction_steps` (20) frames the encoder never saw; MSE per prediction step, averaged
  over samples, objects and dims. The RNN decoder is burnt in on the true frames up to 49 first
  and, with `dynamic_graph`, re-runs the encoder on a sliding window of the last 49 frames at
  every step (paper §5.2).
- Fixed graphs (config.model.graph 'true' / 'full'): the decoder is given the true graph or the
  full one instead of the sampled edges. eval.json has the same keys; edge accuracy, KL and the
  permutation still come from the encoder's logits, which that training ignores, so they mean
  nothing there (about chance).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nri_jax import data as data_lib
from nri_jax import metrics, training
from nri_jax.model import fixed_edges, make_model
from nri_jax.sim_decoder import physics_from_config
from nri_jax.validation import padded_batches, per_sample_metrics


def load_run(workdir: Path):
    """Config, normalisation and the best (else latest) checkpoint's state of a training run."""
    config_path = workdir / training.CONFIG_FILE
    if not config_path.exists():
        raise FileNotFoundError(
            f"{config_path} not found: --workdir must be a directory written by train.py"
        )
    config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
    norm = data_lib.Normalisation.from_json((workdir / training.NORMALISATION_FILE).read_text())
    latest, best = training.checkpoint_managers(workdir)
    manager = best if best.latest_step() is not None else latest
    if manager.latest_step() is None:
        raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints: train first")
    physics = physics_from_config(config, norm) if config.model.decoder == "sim" else None
    model = make_model(config.model, physics)
    example = np.zeros((2, config.data.num_objects, config.train.timesteps, norm.dims), np.float32)
    state = training.restore(manager, training.abstract_state(model, config, example))
    return config, norm, model, state, manager.latest_step()


def evaluate(
    workdir: str | os.PathLike,
    data_dir: str | None = None,
    output: str | None = None,
    plots: bool = False,
    dynamic_graph: bool = False,
) -> dict:
    """Evaluate the run in `workdir` on a test split; writes and returns the eval.json dict."""
    workdir = Path(workdir)
    config, norm, model, state, step = load_run(workdir)
    data_config = ml_collections.ConfigDict(config.data.to_dict())
    if data_dir is not None:
        data_config.dir = data_dir
    splits, _ = data_lib.load_dataset(
        data_config, config.model.edge_types, splits=("test",), normalisation=norm
    )
    test = splits["test"]
    timesteps = config.train.timesteps
    horizon = config.eval.prediction_steps
    frames = test.features.shape[2]
    if frames < timesteps + horizon + 1:
        raise ValueError(
            f"test split has {frames} frames; the protocol needs timesteps + prediction_steps + 1"
            f" = {timesteps + horizon + 1}"
        )
    if dynamic_graph and config.model.decoder != "rnn":
        raise ValueError("--dynamic_graph needs a run with config.model.decoder='rnn'")
    if dynamic_graph and config.model.get("graph", "learned") != "learned":
        raise ValueError(
            "--dynamic_graph re-runs the encoder: it needs config.model.graph='learned'"
        )
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    prior = training.log_prior(config.model)
    k = max(config.model.edge_types, 2)
    features = jnp.asarray(test.features)
    labels = jnp.asarray(test.labels)
    temperature, var = config.train.temperature, config.train.var
    rnn = config.model.decoder == "rnn"
    graph = config.model.get("graph", "learned")

    def batch_metrics(index, mask, key):
        x = features[index]
        y = labels[index]
        k1, k2 = jax.random.split(key)
        logits = model.apply(variables, x[:, :, :timesteps], train=False, method="encode")
        probs = jax.nn.softmax(logits, -1)
        if graph == "learned":
            edges = model.apply(
                variables, logits, temperature, True, method="sample", rngs={"gumbel": k1}
            )
        else:
            edges = fixed_edges(graph, y.shape, config.model.edge_types, y)
        # One-step NLL on the last `timesteps` frames (the original's test loss).
        x_dec = x[:, :, -timesteps:]
        preds = model.apply(variables, x_dec, edges, 1, method="decode")
        per = per_sample_metrics(logits, probs, preds, x_dec[:, :, 1:], y, var, prior)
        # Table 2: predict frames timesteps+1 .. timesteps+horizon from true frame `timesteps`.
        if rnn:  # burn in on the true frames 0..timesteps, then run free
            roll = model.apply(
                variables,
                x[:, :, : timesteps + horizon + 1],
                edges,
                timesteps + 1,
                method="rollout",
                dynamic_graph=dynamic_graph,
                encoder_window=timesteps,
                temperature=temperature,
                rngs={"gumbel": k2},
            )
            future = roll[:, :, timesteps:]
        else:
            window = x[:, :, timesteps : timesteps + horizon + 1]
            future = model.apply(variables, window, edges, horizon, method="decode")
        target = x[:, :, timesteps + 1 : timesteps + horizon + 1]
        mse_steps = jnp.mean((future - target) ** 2, axis=(1, 3))  # [batch, horizon]
        sums = {name: jnp.sum(v * mask) for name, v in per.items()}
        sums["mse_per_step"] = jnp.sum(mse_steps * mask[:, None], axis=0)
        sums["confusion"] = metrics.confusion_matrix(logits, y, k, mask)
        sums["count"] = jnp.sum(mask)
        return sums, (future, edges)

    batch_fn = jax.jit(batch_metrics)
    index, mask = padded_batches(len(test.labels), config.eval.batch_size)
    key = jax.random.key(config.seed + 2)
    total = None
    first_batch = None
    for i in range(len(index)):
        sums, extra = batch_fn(index[i], mask[i], jax.random.fold_in(key, i))
        total = sums if total is None else jax.tree.map(jnp.add, total, sums)
        if first_batch is None:
            first_batch = (index[i], extra)
    best_acc, perm = jax.device_get(metrics.best_permutation(total.pop("confusion")))
    host = jax.device_get(total)
    count = float(host["count"])
    result = {
        "edge_accuracy": float(best_acc),
        "edge_accuracy_raw": float(host["accuracy"] / count),
        # perm[p]: the label that predicted edge type p stands for.
        "edge_type_permutation": [int(p) for p in perm],
        "nll": float(host["nll"] / count),
        "kl": float(host["kl"] / count),
        "mse_one_step": float(host["mse"] / count),
        "mse_per_step": [float(v / count) for v in host["mse_per_step"]],
        "num_test": int(count),
        "checkpoint_epoch": int(step),
        "data_dir": str(data_config.dir),
        "dynamic_graph": dynamic_graph,
    }
    out_path = Path(output) if output else workdir / "eval.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    training._atomic_write_text(out_path, json.dumps(result, indent=2) + "\n")
    if plots:
        from nri_jax import plots as plots_lib

        idx, (future, edges) = first_batch
        plots_lib.write_plots(
            workdir / "plots",
            test.features[idx[:4]],
            np.asarray(future[:4]),
            np.asarray(jnp.argmax(edges[:4], -1)),
            test.labels[idx[:4]],
            timesteps,
            config.data.system,
            perm,
        )
    return result


def format_table(result: dict) -> str:
    steps = result["mse_per_step"]
    lines = [
        f"edge accuracy      {100 * result['edge_accuracy']:.2f}% (best permutation "
        f"{result['edge_type_permutation']}), raw {100 * result['edge_accuracy_raw']:.2f}%",
        f"NLL                {result['nll']:.6g}",
        f"KL                 {result['kl']:.6g}",
        "MSE at step        "
        + "  ".join(f"{i}: {steps[i - 1]:.3e}" for i in (1, 10, 20) if i <= len(steps)),
        f"test samples       {result['num_test']} "
        f"(checkpoint of epoch {result['checkpoint_epoch']})",
    ]
    return "\n".join(lines)
