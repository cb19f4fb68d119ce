"""Springs: particles in a box joined at random by ideal springs (NRI, REFERENCE.md §1).

F_i = -k sum_j a_ij (x_i - x_j), k = 0.1; each unordered pair is joined with probability 0.5.
Integration, walls, batching and dataset generation are shared with charged particles
(`simulators.particles.ParticleSystem`); this module holds only the springs' physics and the
draw of a system: the original's by default, or any graph family of `simulators.graphs` and
K > 2 edge types, each with its own spring constant.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from simulators import graphs, particles

INTERACTION_STRENGTH = 0.1  # Spring constant k.
# Spring constant of each edge type; type 0 is no spring. The paper's: one type of k = 0.1.
SPRING_CONSTANTS = (0.0, INTERACTION_STRENGTH)
LOC_STD = 0.5  # Initial positions ~ Normal(0, LOC_STD^2).
DEFAULT_CHUNK_SIZE = particles.DEFAULT_CHUNK_SIZE
PAPER_GRAPH = graphs.ErdosRenyi(0.5)


def radial(d2: Array, interaction_strength: float) -> float:
    """Hooke's law: the pull per unit displacement is -k at every distance (d2 unused)."""
    del d2
    return -interaction_strength


def check_edge_types(
    spring_constants: tuple[float, ...], type_probs: tuple[float, ...] = ()
) -> None:
    """ValueError unless spring_constants = (0, k_1, ..., k_{K-1}) with every k_i > 0, K >= 2,
    and type_probs is empty (uniform) or K - 1 probabilities summing to 1."""
    constants = tuple(spring_constants)
    if len(constants) < 2 or constants[0] != 0 or not all(c > 0 for c in constants[1:]):
        raise ValueError(
            f"spring_constants={constants!r} must be (0, k_1, ...): type 0 no spring, then at "
            f"least one positive spring constant"
        )
    probs = tuple(type_probs)
    if probs and (
        len(probs) != len(constants) - 1
        or any(p < 0 for p in probs)
        or abs(sum(probs) - 1.0) > 1e-6
    ):
        raise ValueError(
            f"type_probs={probs!r} must be {len(constants) - 1} probabilities (of the types "
            f"1..{len(constants) - 1}) summing to 1, or () for uniform"
        )


def sample_system(
    key: Array,
    num_objects: int,
    graph: graphs.Graph = PAPER_GRAPH,
    spring_constants: tuple[float, ...] = SPRING_CONSTANTS,
    type_probs: tuple[float, ...] = (),
) -> tuple[Array, Array, Array, Array]:
    """Draw one springs system; with the defaults exactly as the original does.

    The graph `graph.sample` (undirected) says which pairs are joined; with K =
    len(spring_constants) > 2, each joined pair then draws its edge type among 1..K-1,
    uniformly or with probabilities `type_probs` (K - 1 of them); type t pulls with spring
    constant spring_constants[t].

    Returns:
      (loc0 [N, 2], vel0 [N, 2], weights [N, N], edges [N, N]): positions ~ Normal(0, 0.5^2)
      and velocities of norm 0.5, both reflected into the box; `edges` (what the files store)
      the symmetric edge types in {0, ..., K-1} with zero diagonal (floats); `weights` =
      spring_constants[edges] / k (k = INTERACTION_STRENGTH, which `simulate` multiplies in),
      equal to `edges` for the paper's {0, 1} springs.
    """
    check_edge_types(spring_constants, type_probs)
    k_edges, k_state = jax.random.split(key)
    adjacency = graph.sample(k_edges, num_objects, directed=False)
    num_types = len(spring_constants)
    if num_types == 2:
        types = adjacency.astype(jnp.int32)
    else:
        # A key beside the original's two (split(key) is fold_in(key, 0) and fold_in(key, 1)
        # under jax's partitionable threefry), so graph and initial state are what they are
        # with two types.
        k_types = jax.random.fold_in(key, 2)
        probs = type_probs or (1.0,) * (num_types - 1)
        logits = jnp.log(jnp.asarray(probs, jnp.result_type(float)))
        draw = 1 + jax.random.categorical(k_types, logits, shape=(num_objects, num_objects))
        upper = jnp.triu(jnp.where(adjacency, draw, 0), k=1)
        types = upper + upper.T
    dtype = jnp.result_type(float)
    relative = np.asarray(spring_constants, np.float64) / INTERACTION_STRENGTH
    weights = jnp.asarray(relative, dtype)[types]
    loc0, vel0 = particles.initial_state(k_state, num_objects, LOC_STD)
    return loc0, vel0, weights, types.astype(dtype)


@dataclasses.dataclass(frozen=True)
class Draw:
    """`sample_system` with its settings bound, `(key, N) -> system`: hashable, so that
    `generate_split` compiles one sampler per setting."""

    graph: graphs.Graph = PAPER_GRAPH
    spring_constants: tuple[float, ...] = SPRING_CONSTANTS
    type_probs: tuple[float, ...] = ()

    def __call__(self, key: Array, num_objects: int) -> tuple[Array, Array, Array, Array]:
        return sample_system(key, num_objects, self.graph, self.spring_constants, self.type_probs)


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
    graph: graphs.Graph = PAPER_GRAPH,
    spring_constants: tuple[float, ...] = SPRING_CONSTANTS,
    type_probs: tuple[float, ...] = (),
    devices: list[jax.Device] | None = None,
) -> dict[str, np.ndarray]:
    """`particles.ParticleSystem.generate_split` for springs drawn by `sample_system` with
    these settings (the defaults: the paper's); `edges` [S, N, N] holds the edge types."""
    draw = Draw(graph, tuple(map(float, spring_constants)), tuple(map(float, type_probs)))
    check_edge_types(draw.spring_constants, draw.type_probs)
    return SYSTEM.generate_split(
        key,
        num_sims,
        num_objects,
        length,
        length_test,
        sample_freq,
        dt,
        chunk_size,
        progress,
        devices=devices,
        sample_system=draw,
    )
