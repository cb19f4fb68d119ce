"""The ELBO's terms (eqs. 18-19), the priors and the supervised cross-entropy.

NLL and KL are each defined once, with two reductions: over the batch, the original's sum
divided by batch * N (the training loss, computed in the original's order), and per sample,
each sample's sum divided by N, whose mean is the batch figure: validation and evaluation sum
the per-sample values over a whole split, so a last, partial batch weighs what it holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from nri_jax.config import PRIORS

_EPS = 1e-16


def nll_gaussian(
    preds: jax.Array, target: jax.Array, variance: float, per_sample: bool = False
) -> jax.Array:
    """-log p(x|z) up to a constant (eq. 18): sum (pred - target)^2 / (2 var) / (B N).

    preds, target: `[batch, objects, time, dims]`; a fixed variance sigma^2. per_sample=True
    returns `[batch]`, each sample's sum / N (their mean is the batch figure).
    """
    batch, num_objects = target.shape[:2]
    terms = (preds - target) ** 2 / (2 * variance)
    if per_sample:
        return jnp.sum(terms, axis=(1, 2, 3)) / num_objects
    return jnp.sum(terms) / (batch * num_objects)


def kl_categorical(
    probs: jax.Array,
    num_objects: int,
    log_prior: jax.Array | None = None,
    per_sample: bool = False,
) -> jax.Array:
    """KL[q || p] (eq. 19): sum p (log p - log prior) / (B N).

    probs: q(z|x) `[batch, edges, K]`. With `log_prior` None (the uniform prior) the constant
    log K is left out, as the original does: sum p log p / (B N). per_sample=True returns
    `[batch]`, each sample's sum / N.
    """
    log_q = jnp.log(probs + _EPS)
    if log_prior is not None:
        log_q = log_q - log_prior
    terms = probs * log_q
    if per_sample:
        return jnp.sum(terms, axis=(1, 2)) / num_objects
    return jnp.sum(terms) / (num_objects * probs.shape[0])


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
