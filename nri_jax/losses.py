"""The ELBO's terms (eqs. 18-19), the priors and the supervised cross-entropy.

NLL and KL are defined once, per sample: each is a sum over the sample divided by its number
of objects N. Their means over a batch are the original's figures (a sum divided by
batch * N), which the training loss uses; validation and evaluation sum the per-sample values
over a whole split, so a last, partial batch weighs what it holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from nri_jax.config import PRIORS

_EPS = 1e-16


def nll_gaussian_per_sample(preds: jax.Array, target: jax.Array, variance: float) -> jax.Array:
    """-log p(x|z) up to a constant (eq. 18), per sample: sum (pred - target)^2 / (2 var) / N.

    preds, target: `[batch, objects, time, dims]`; a fixed variance sigma^2. Returns `[batch]`.
    """
    num_objects = target.shape[1]
    return jnp.sum((preds - target) ** 2, axis=(1, 2, 3)) / (2 * variance) / num_objects


def kl_categorical_per_sample(
    probs: jax.Array, num_objects: int, log_prior: jax.Array | None = None
) -> jax.Array:
    """KL[q || p] per sample (eq. 19): sum p (log p - log prior) / N, `[batch]`.

    probs: q(z|x) `[batch, edges, K]`. With `log_prior` None (the uniform prior) the constant
    log K is left out, as the original does: sum p log p / N.
    """
    log_q = jnp.log(probs + _EPS)
    if log_prior is not None:
        log_q = log_q - log_prior
    return jnp.sum(probs * log_q, axis=(1, 2)) / num_objects


def nll_gaussian(preds: jax.Array, target: jax.Array, variance: float) -> jax.Array:
    """The batch mean of `nll_gaussian_per_sample`: sum (pred - target)^2 / (2 var) / (B N)."""
    return jnp.mean(nll_gaussian_per_sample(preds, target, variance))


def kl_categorical(
    probs: jax.Array, num_objects: int, log_prior: jax.Array | None = None
) -> jax.Array:
    """The batch mean of `kl_categorical_per_sample`: sum p (log p - log prior) / (B N)."""
    return jnp.mean(kl_categorical_per_sample(probs, num_objects, log_prior))


def sparse_log_prior(edge_types: int, p_non_edge: float = 0.91) -> jax.Array:
    """log [p_non_edge, (1 - p_non_edge) / (K - 1), ...]: type 0 as the favoured non-edge, `[K]`."""
    rest = (1.0 - p_non_edge) / (edge_types - 1)
    return jnp.log(jnp.asarray([p_non_edge] + [rest] * (edge_types - 1), jnp.float32))


def log_prior(prior: str, edge_types: int) -> jax.Array | None:
    """The prior's log-probabilities `[K]` for `config.model.prior`; None for 'uniform'."""
    if prior == "uniform":
        return None
    if prior == "sparse":
        return sparse_log_prior(edge_types)
    raise ValueError(f"config.model.prior={prior!r} is not one of {', '.join(map(repr, PRIORS))}")


def edge_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy of logits `[batch, edges, K]` against integer labels `[batch, edges]`."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
