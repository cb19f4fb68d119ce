"""Springs: particles in a box joined at random by ideal springs (NRI, REFERENCE.md §1).

F_i = -k sum_j a_ij (x_i - x_j), k = 0.1; each unordered pair is joined with probability 0.5.
Integration, walls and batching live in `simulators.particles`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from simulators import particles

INTERACTION_STRENGTH = 0.1  # Spring constant k.
LOC_STD = 0.5  # Initial positions ~ Normal(0, LOC_STD^2).
# Trajectories per chunk in `generate_split`: 512 per core on 2 cores, where XLA:CPU is fastest
# (per-device batches of 256-512 stay in cache; docs/benchmarks.md).
DEFAULT_CHUNK_SIZE = 1024


def force(x: Array, weights: Array, interaction_strength: float = INTERACTION_STRENGTH) -> Array:
    """Unclipped spring force in the internal layout: x [2, N, *batch], weights [N, N, *batch]."""
    return particles.pairwise_force(x, weights, lambda d2: -interaction_strength)


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
    """Simulate springs for `num_frames * sample_freq` steps, returning every sample_freq-th state.

    Symplectic (semi-implicit) Euler with a fixed step: each step is v += dt clip(F(x)),
    x += dt v, then a reflection at the walls of [-box_size, box_size]^2. Frame k is the state
    after k * sample_freq steps (k = 1..num_frames); from the original's initial state this is
    exactly its recorded trajectory (steps 100, 200, ... for sample_freq 100). Pure, jittable,
    vmappable, and differentiable w.r.t. all array arguments. Batch dimensions may be leading
    dimensions of the inputs (the fast way, see `simulators.particles`) or added by `jax.vmap`
    (2-3x slower on CPU; equal up to rounding).

    Args:
      loc0: initial positions [*batch, N, 2].
      vel0: initial velocities [*batch, N, 2].
      weights: spring weights a_ij [*batch, N, N] (continuous values allowed; diagonal ignored;
        row i is the object the force acts on).
      num_frames: frames to return. One frame with the defaults is one NRI time step.
      sample_freq: integration steps per frame.
      dt: integration step.
      box_size: walls at +-box_size (use a huge value for no walls).
      max_force: clip of each force component; None means the original's 0.1 / dt.
      interaction_strength: spring constant k.
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
    """`num_sims` springs trajectories of `length` steps in the original's file format.

    Returns {'loc', 'vel': [S, T, 2, N] float32, 'edges': [S, N, N] float64 in {0, 1}},
    T = length // sample_freq - 1. `length_test` is unused (particles simulate each split at its
    own length); it is in the signature shared with `simulators.kuramoto.generate_split`.
    `devices` (default: all local devices) share each chunk, see `particles.generate_split`.
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
        desc=f"springs{num_objects}",
        devices=devices,
    )
