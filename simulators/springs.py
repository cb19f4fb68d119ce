"""Springs: particles in a box joined at random by ideal springs (NRI, REFERENCE.md §1).

F_i = -k sum_j a_ij (x_i - x_j), k = 0.1; each unordered pair is joined with probability 0.5.
Integration, walls, batching and dataset generation are shared with charged particles
(`simulators.particles.ParticleSystem`); this module holds only the springs' physics and the
original's draw of a system.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from simulators import particles

INTERACTION_STRENGTH = 0.1  # Spring constant k.
LOC_STD = 0.5  # Initial positions ~ Normal(0, LOC_STD^2).
DEFAULT_CHUNK_SIZE = particles.DEFAULT_CHUNK_SIZE


def radial(d2: Array, interaction_strength: float) -> float:
    """Hooke's law: the pull per unit displacement is -k at every distance (d2 unused)."""
    del d2
    return -interaction_strength


def sample_system(key: Array, num_objects: int) -> tuple[Array, Array, Array, Array]:
    """Draw one springs system as the original does.

    Returns:
      (loc0 [N, 2], vel0 [N, 2], weights [N, N], edges [N, N]): positions ~ Normal(0, 0.5^2)
      and velocities of norm 0.5, both reflected into the box; a symmetric {0, 1} adjacency
      with zero diagonal, each unordered pair joined with probability 0.5. `edges` (what the
      files store) equals `weights`.
    """
    k_edges, k_state = jax.random.split(key)
    upper = jnp.triu(jax.random.bernoulli(k_edges, 0.5, (num_objects, num_objects)), k=1)
    adjacency = (upper | upper.T).astype(jnp.result_type(float))
    loc0, vel0 = particles.initial_state(k_state, num_objects, LOC_STD)
    return loc0, vel0, adjacency, adjacency


def energy(
    loc: ArrayLike,
    vel: ArrayLike,
    weights: ArrayLike,
    interaction_strength: float = INTERACTION_STRENGTH,
) -> Array:
    """Kinetic + spring energy, sum |v|^2 / 2 + k/2 sum_{i<j} a_ij |x_i - x_j|^2 (unit masses)."""
    loc, vel, weights = jnp.asarray(loc), jnp.asarray(vel), jnp.asarray(weights)
    kinetic = 0.5 * jnp.sum(vel**2, axis=(-2, -1))
    d2 = jnp.sum((loc[..., :, None, :] - loc[..., None, :, :]) ** 2, axis=-1)
    # Both (i, j) and (j, i) are in the sum, hence k/4 for k/2 per pair.
    potential = 0.25 * interaction_strength * jnp.sum(weights * d2, axis=(-2, -1))
    return kinetic + potential


SYSTEM = particles.ParticleSystem(
    name="springs",
    radial=radial,
    interaction_strength=INTERACTION_STRENGTH,
    sample_system=sample_system,
    weights_doc="spring weights a_ij",
    strength_doc="spring constant k",
)
force = SYSTEM.force
simulate = SYSTEM.simulate
solve_with_diffrax = SYSTEM.solve_with_diffrax
generate_split = SYSTEM.generate_split
