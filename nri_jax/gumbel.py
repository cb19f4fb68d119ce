"""Sampling z from the concrete (Gumbel-softmax) relaxation of q(z|x) (section 3.2, eq. 9)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

_EPS = 1e-10


def sample_gumbel(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Gumbel(0, 1) noise as the original draws it: -log(eps - log(U + eps)), eps = 1e-10."""
    uniform = jax.random.uniform(key, shape, dtype)
    return -jnp.log(_EPS - jnp.log(uniform + _EPS))


def gumbel_softmax(
    key: jax.Array, logits: jax.Array, tau: float = 1.0, hard: bool = False
) -> jax.Array:
    """z = softmax((logits + g) / tau) over the last axis (eq. 9): `[..., K]` -> `[..., K]`.

    hard=True gives the straight-through estimator: the value is exactly the one-hot of the
    argmax, the gradient is that of the soft sample.
    """
    soft = jax.nn.softmax((logits + sample_gumbel(key, logits.shape, logits.dtype)) / tau, axis=-1)
    if not hard:
        return soft
    one_hot = jax.nn.one_hot(jnp.argmax(soft, axis=-1), logits.shape[-1], dtype=soft.dtype)
    # one_hot + (soft - soft) rather than the original's (one_hot - soft) + soft: the added term
    # is exactly 0 in value, so the sample is exactly one-hot, with the soft sample's gradient.
    return one_hot + (soft - jax.lax.stop_gradient(soft))
