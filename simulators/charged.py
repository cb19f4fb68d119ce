"""Charged particles in a box: every pair interacts by Coulomb's law (NRI, REFERENCE.md §1).

F_i = C sum_{j != i} q_i q_j (x_i - x_j) / |x_i - x_j|^3, C = 1; charges +-1 with equal
probability, so like charges repel (edge +1) and unlike ones attract (edge -1). Integration,
walls and batching live in `simulators.particles`.
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
# Trajectories per chunk in `generate_split`: 512 per core on 2 cores, where XLA:CPU is fastest
# (per-device batches of 256-512 stay in cache; docs/benchmarks.md).
DEFAULT_CHUNK_SIZE = 1024


def force(x: Array, weights: Array, interaction_strength: float = INTERACTION_STRENGTH) -> Array:
    """Unclipped Coulomb force in the internal layout: x [2, N, *batch], weights [N, N, *batch]."""

    def radial(d2):
        inv_r = jax.lax.rsqrt(d2)
        return interaction_strength * inv_r * inv_r * inv_r

    return particles.pairwise_force(x, weights, radial)


@jax.jit(static_argnames=("num_frames", "sample_freq", "unroll"))
def simulate(
    loc0: ArrayLike,
    vel0: ArrayLike,
    weights: ArrayLike,
    *,
    num_frames: int,
    sample_freq: int = 100,
    dt: float = 1e-3,
    box_size: float = particles.BOX_SIZE,
    max_force: float | None = None,
    interaction_strength: float = INTERACTION_STRENGTH,
    unroll: int = 1,
) -> tuple[Array, Array]:
    """Simulate charged particles for `num_frames * sample_freq` steps, every sample_freq-th kept.

    Symplectic (semi-implicit) Euler with a fixed step: each step is v += dt clip(F(x)),
    x += dt v, then a reflection at the walls of [-box_size, box_size]^2. Frame k is the state
    after k * sample_freq steps (k = 1..num_frames); from the original's initial state this is
    exactly its recorded trajectory. The clip (0.1 / dt by default) bounds the kick of close
    encounters. Pure, jittable, vmappable, and differentiable w.r.t. all array arguments
    (finite as long as no two particles coincide). Batch dimensions may be leading dimensions
    of the inputs (the fast way, see `simulators.particles`) or added by `jax.vmap` (2-3x
    slower on CPU; equal up to rounding, which chaotic encounters amplify over long horizons).

    Args:
      loc0: initial positions [*batch, N, 2].
      vel0: initial velocities [*batch, N, 2].
      weights: charge products q_i q_j [*batch, N, N] (continuous values allowed; diagonal
        ignored; row i is the object the force acts on).
      num_frames: frames to return. One frame with the defaults is one NRI time step.
      sample_freq: integration steps per frame.
      dt: integration step.
      box_size: walls at +-box_size (use a huge value for no walls).
      max_force: clip of each force component; None means the original's 0.1 / dt.
      interaction_strength: Coulomb constant C.
      unroll: inner `lax.scan` unroll (1 is fastest on CPU).

    Returns:
      (loc, vel), each [*batch, num_frames, N, 2].
    """
    return particles.simulate_particles(
        lambda x, w: force(x, w, interaction_strength),
        loc0,
        vel0,
        weights,
        num_frames=num_frames,
        sample_freq=sample_freq,
        dt=dt,
        box_size=box_size,
        max_force=max_force,
        unroll=unroll,
    )


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


def solve_with_diffrax(
    loc0: ArrayLike,
    vel0: ArrayLike,
    weights: ArrayLike,
    *,
    num_frames: int,
    sample_freq: int = 100,
    dt: float = 1e-3,
    box_size: float = particles.BOX_SIZE,
    max_force: float | None = None,
    interaction_strength: float = INTERACTION_STRENGTH,
) -> tuple[Array, Array]:
    """`simulate` for one system through `diffrax.diffeqsolve` and `ReflectingSemiImplicitEuler`."""
    return particles.solve_with_diffrax(
        lambda x, w: force(x, w, interaction_strength),
        loc0,
        vel0,
        weights,
        num_frames=num_frames,
        sample_freq=sample_freq,
        dt=dt,
        box_size=box_size,
        max_force=max_force,
    )


def generate_split(
    key: Array,
    num_sims: int,
    num_objects: int,
    length: int,
    length_test: int,
    sample_freq: int,
    dt: float,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = True,
    *,
    devices: list[jax.Device] | None = None,
) -> dict[str, np.ndarray]:
    """`num_sims` charged trajectories of `length` steps in the original's file format.

    Returns {'loc', 'vel': [S, T, 2, N] float32, 'edges': [S, N, N] float64 in {-1, +1} with
    diagonal 1}, T = length // sample_freq - 1. `length_test` and `devices` as in
    `simulators.springs.generate_split`.
    """
    del length_test
    return particles.generate_split(
        sample_system,
        simulate,
        key,
        num_sims,
        num_objects,
        length,
        sample_freq,
        dt,
        chunk_size,
        progress,
        desc=f"charged{num_objects}",
        devices=devices,
    )
