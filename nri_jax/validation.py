"""Input checks that fail before any work, and the compiled validation pass.

Validation follows the original (REFERENCE.md §3): hard (straight-through) Gumbel samples,
one-step teacher-forced decoding, NLL / KL / MSE and edge accuracy. With a fixed graph
(config.model.graph 'true' or 'full') the decoder gets that graph; KL and edge accuracy are still
those of the (untrained, ignored) encoder's logits and mean nothing there.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nri_jax import data as data_lib
from nri_jax import metrics
from nri_jax.model import NRI
from nri_jax.sim_decoder import check_physics_config

ENCODERS = ("mlp", "cnn")
DECODERS = ("mlp", "rnn", "sim")
PRIORS = ("uniform", "sparse")
MODES = ("unsupervised", "supervised")
LR_SCHEDULES = ("step", "cosine")
GRAPHS = ("learned", "true", "full")


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"config.{name}={value!r} is not one of {', '.join(map(repr, allowed))}")


def _at_least(name: str, value, minimum) -> None:
    if value < minimum:
        raise ValueError(f"config.{name}={value!r} must be >= {minimum}")


def check_config(config: ml_collections.ConfigDict) -> None:
    """One-line ValueError naming the field for any setting the job cannot run with."""
    model, train = config.model, config.train
    _choice("data.system", config.data.system, ("springs", "charged", "kuramoto"))
    _choice("data.features", config.data.get("features", "successors"), data_lib.KURAMOTO_FEATURES)
    _choice("model.encoder", model.encoder, ENCODERS)
    _choice("model.decoder", model.decoder, DECODERS)
    _choice("model.prior", model.prior, PRIORS)
    _choice("model.graph", model.graph, GRAPHS)
    _choice("train.mode", train.mode, MODES)
    _choice("train.lr_schedule", train.get("lr_schedule", "step"), LR_SCHEDULES)
    _at_least("data.num_objects", config.data.num_objects, 2)
    _at_least("model.edge_types", model.edge_types, 2)
    _at_least("model.hidden", model.hidden, 1)
    _at_least("model.decoder_hidden", model.decoder_hidden, 1)
    _at_least("train.epochs", train.epochs, 0)
    _at_least("train.batch_size", train.batch_size, 1)
    _at_least("train.prediction_steps", train.prediction_steps, 1)
    _at_least("train.timesteps", train.timesteps, 2)
    _at_least("train.temperature", train.temperature, 1e-6)
    _at_least("train.var", train.var, 1e-12)
    if not 0.0 <= model.dropout < 1.0:
        raise ValueError(f"config.model.dropout={model.dropout!r} must lie in [0, 1)")
    if train.prediction_steps >= train.timesteps:
        raise ValueError(
            f"config.train.prediction_steps={train.prediction_steps} must be smaller than "
            f"config.train.timesteps={train.timesteps}"
        )
    check_physics_config(config)
    if train.batch_size % jax.device_count():
        raise ValueError(
            f"config.train.batch_size={train.batch_size} must be a multiple of the "
            f"{jax.device_count()} local devices it is sharded over"
        )


def check_data(config: ml_collections.ConfigDict, splits: Mapping[str, data_lib.Split]) -> None:
    """The loaded splits fit the config: sizes, objects and frames."""
    train = splits["train"]
    if config.train.batch_size > len(train.features):
        raise ValueError(
            f"config.train.batch_size={config.train.batch_size} is larger than the training "
            f"split ({len(train.features)} samples); lower it or generate more data"
        )
    for name, split in splits.items():
        if split.features.shape[2] < config.train.timesteps:
            raise ValueError(
                f"{name} split has {split.features.shape[2]} frames but config.train.timesteps="
                f"{config.train.timesteps}; lower it or regenerate longer sequences"
            )
        if len(split.features) == 0:
            raise ValueError(f"{name} split is empty; set config.data.num_{name} > 0")


def padded_batches(num: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Index [batches, batch] covering 0..num-1 (last batch padded) and its 0/1 mask."""
    batches = -(-num // batch_size)
    index = np.arange(batches * batch_size)
    mask = (index < num).astype(np.float32)
    return np.minimum(index, num - 1).reshape(batches, batch_size), mask.reshape(batches, -1)


def per_sample_metrics(logits, probs, preds, target, labels, var, log_prior=None) -> dict:
    """Per-sample NLL (eq. 18 / objects), KL (eq. 19 / objects), MSE and edge accuracy.

    Their means over samples equal the original's batch-averaged figures.
    """
    num_objects = target.shape[1]
    nll = jnp.sum((preds - target) ** 2, axis=(1, 2, 3)) / (2 * var) / num_objects
    log_q = jnp.log(probs + 1e-16)
    if log_prior is not None:
        log_q = log_q - log_prior
    kl = jnp.sum(probs * log_q, axis=(1, 2)) / num_objects
    mse = jnp.mean((preds - target) ** 2, axis=(1, 2, 3))
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels, axis=-1)
    return {"nll": nll, "kl": kl, "mse": mse, "accuracy": accuracy}


class Evaluator:
    """Validation pass over a device-resident split; one compiled function per batch shape."""

    def __init__(self, model: NRI, config: ml_collections.ConfigDict, split: data_lib.Split):
        from nri_jax.training import log_prior

        self.features = jnp.asarray(split.features[:, :, : config.train.timesteps])
        self.labels = jnp.asarray(split.labels)
        self.index, self.mask = padded_batches(len(split.labels), config.eval.batch_size)
        self.key = jax.random.key(config.seed + 1)
        prior = log_prior(config.model)
        temperature, var = config.train.temperature, config.train.var
        edge_types = max(config.model.edge_types, 2)

        def batch_sums(params, batch_stats, index, mask, key):
            inputs = self.features[index]
            out = model.apply(
                {"params": params, "batch_stats": batch_stats},
                inputs,
                train=False,
                temperature=temperature,
                hard=True,
                prediction_steps=1,
                labels=self.labels[index],  # decoded with graph='true'; ignored otherwise
                rngs={"gumbel": key},
            )
            per = per_sample_metrics(
                out["logits"],
                out["probs"],
                out["preds"],
                inputs[:, :, 1:],
                self.labels[index],
                var,
                prior,
            )
            sums = {k: jnp.sum(v * mask) for k, v in per.items()}
            sums["count"] = jnp.sum(mask)
            sums["confusion"] = metrics.confusion_matrix(
                out["logits"], self.labels[index], edge_types, mask
            )
            return sums

        self._batch_sums = jax.jit(batch_sums)

    def __call__(self, params, batch_stats) -> dict[str, float]:
        total = None
        for i in range(len(self.index)):
            sums = self._batch_sums(
                params, batch_stats, self.index[i], self.mask[i], jax.random.fold_in(self.key, i)
            )
            total = sums if total is None else jax.tree.map(jnp.add, total, sums)
        # Unsupervised edge types have no fixed identity: also score the best relabelling.
        accuracy_perm, _ = metrics.best_permutation(total.pop("confusion"))
        host = jax.device_get(total)
        count = float(host.pop("count"))
        result = {k: float(v) / count for k, v in host.items()}
        result["accuracy_perm"] = float(accuracy_perm)
        return result
