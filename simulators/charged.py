"""Charged particles in a box: every pair interacts by Coulomb's law (NRI, REFERENCE.md §1).

F_i = C sum_{j != i} q_i q_j (x_i - x_j) / |x_i - x_j|^3, C = 1; charges +-1 with equal
probability, so like charges repel (edge +1) and unlike ones attract (edge -1). Integration,
walls, batching and dataset generation are shared with springs
(`simulators.particles.ParticleSystem`); this module holds only the Coulomb physics and the
original's draw of a system.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from simulators import particles

INTERACTION_STRENGTH = 1.0  # Coulomb constant C.
LOC_STD = 1.0  # Initial positions ~ Normal(0, LOC_STD^2).
DEFAULT_CHUNK_SIZE = particles.DEFAULT_CHUNK_SIZE


def radial(d2: Array, interaction_strength: float) -> Array:
    """Coulomb's law per unit charge product and displacement: C / r^3 (one rsqrt, no pow)."""
    inv_r = jax.lax.rsqrt(d2)
    return interaction_strength * inv_r * inv_r * inv_r


def sample_system(key: Array, num_objects: int) -> tuple[Array, Array, Array, Array]:
    """Draw one charged system as the original does.

    Returns:
      (loc0 [N, 2], vel0 [N, 2], weights [N, N], edges [N, N]): positions ~ Normal(0, 1) and
      velocities of norm 0.5, both reflected into the box; charges q in {-1, +1} with equal
      probability and weights = edges = q q^T (diagonal 1, ignored by the dynamics).
    """
    k_charges, k_state = jax.random.split(key)
    dtype = jnp.result_type(float)
    charges = jnp.where(jax.random.bernoulli(k_charges, 0.5, (num_objects,)), 1.0, -1.0)
    products = jnp.outer(charges, charges).astype(dtype)
    loc0, vel0 = particles.initial_state(k_state, num_objects, LOC_STD)
    return loc0, vel0, products, products


def energy(
    loc: ArrayLike,
    vel: ArrayLike,
    weights: ArrayLike,
    interaction_strength: float = INTERACTION_STRENGTH,
) -> Array:
    """Kinetic + Coulomb energy, sum |v|^2 / 2 + C sum_{i<j} q_i q_j / |x_i - x_j| (unit masses)."""
    loc, vel, weights = jnp.asarray(loc), jnp.asarray(vel), jnp.asarray(weights)
    n = loc.shape[-2]
    kinetic = 0.5 * jnp.sum(vel**2, axis=(-2, -1))
    d2 = jnp.sum((loc[..., :, None, :] - loc[..., None, :, :]) ** 2, axis=-1)
    off = ~np.eye(n, dtype=bool)
    inv_r = jnp.where(off, jax.lax.rsqrt(jnp.where(off, d2, 1.0)), 0.0)
    # Both (i, j) and (j, i) are in the sum.
    potential = 0.5 * interaction_strength * jnp.sum(weights * inv_r, axis=(-2, -1))
    return kinetic + potential


SYSTEM = particles.ParticleSystem(
    name="charged",
    radial=radial,
    interaction_strength=INTERACTION_STRENGTH,
    sample_system=sample_system,
    weights_doc="charge products q_i q_j",
    strength_doc="Coulomb constant C",
)
force = SYSTEM.force
simulate = SYSTEM.simulate
solve_with_diffrax = SYSTEM.solve_with_diffrax
generate_split = SYSTEM.generate_split
