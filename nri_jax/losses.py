"""The ELBO's terms (eqs. 18-19) and the supervised cross-entropy, normalised as the original.

Every term is a sum divided by (batch * objects), so the NLL and KL stay on the same per-object
scale as in the original's logs and results.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

_EPS = 1e-16


def nll_gaussian(preds: jax.Array, target: jax.Array, variance: float) -> jax.Array:
    """-log p(x|z) up to a constant (eq. 18): sum (pred - target)^2 / (2 var) / (B * N).

    preds, target: `[batch, objects, time, dims]`; a fixed variance sigma^2.
    """
    batch, num_objects = target.shape[:2]
    return jnp.sum((preds - target) ** 2 / (2 * variance)) / (batch * num_objects)


def kl_categorical_uniform(probs: jax.Array, num_objects: int) -> jax.Array:
    """KL[q || uniform] up to the constant sum log K (eq. 19): sum p log p / (B * N).

    probs: q(z|x) `[batch, edges, K]`.
    """
    return jnp.sum(probs * jnp.log(probs + _EPS)) / (num_objects * probs.shape[0])


def kl_categorical(probs: jax.Array, log_prior: jax.Array, num_objects: int) -> jax.Array:
    """KL[q || p] = sum p (log p - log prior) / (B * N); probs `[batch, edges, K]`, prior `[K]`."""
    kl = probs * (jnp.log(probs + _EPS) - log_prior)
    return jnp.sum(kl) / (num_objects * probs.shape[0])


def sparse_log_prior(edge_types: int, p_non_edge: float = 0.91) -> jax.Array:
    """log [p_non_edge, (1 - p_non_edge) / (K - 1), ...]: type 0 as the favoured non-edge, `[K]`."""
    rest = (1.0 - p_non_edge) / (edge_types - 1)
    return jnp.log(jnp.asarray([p_non_edge] + [rest] * (edge_types - 1), jnp.float32))


def edge_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy of logits `[batch, edges, K]` against integer labels `[batch, edges]`."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
