"""Interaction-graph families: who interacts with whom in a simulated system.

The paper draws Erdos-Renyi graphs (each pair joined with probability 0.5, REFERENCE.md §1);
benchmarks since (StructInfer, REFERENCE.md §8) also use scale-free, small-world and
community graphs. Each family is a frozen dataclass of its parameters (hashable, so a compiled
generator is cached per setting) whose `sample(key, num_objects, directed)` returns an
adjacency matrix [N, N] of bools with a zero diagonal. Draws are pure JAX: jittable and
vmappable over keys (the generators vmap them over trajectories); N is static.

- `ErdosRenyi(edge_prob)`: G(N, p). Undirected: each unordered pair once (springs); directed:
  each ordered pair on its own (Kuramoto). Exactly the original generators' draws.
- `BarabasiAlbert(m)`: preferential attachment. Object m joins objects 0..m-1; then each object
  t = m+1, ..., N-1 joins m distinct earlier objects, drawn one after another with probability
  proportional to their degree (networkx's `barabasi_albert_graph`, up to node labels):
  m (N - m) edges. Undirected.
- `WattsStrogatz(k, beta)`: the ring lattice in which each object is joined to the k / 2
  nearest on either side (degree k), then each lattice edge (u, u + j), for j = 1..k/2 and
  u = 0..N-1 in that order, is rewired with probability beta to (u, w), w uniform among the
  objects not yet joined to u (networkx's `watts_strogatz_graph`): N k / 2 edges. Undirected.
- `StochasticBlock(blocks, p_in, p_out)`: object i is in block floor(i * blocks / N)
  (contiguous blocks whose sizes differ by at most 1); a pair is joined with probability p_in
  within a block and p_out between blocks. Directed like `ErdosRenyi`.

Node labels are those of the construction (BA: order of arrival; WS: position on the ring;
SBM: contiguous blocks); NRI's encoder and decoders treat objects alike, so this carries no
information to them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax import Array


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} must be a probability in [0, 1]")


def _symmetric(upper: Array) -> Array:
    """The undirected graph [N, N] whose pairs i < j are `upper`'s strict upper triangle."""
    upper = jnp.triu(upper, k=1)
    return upper | upper.T


def _off_diagonal(draw: Array) -> Array:
    return draw & ~jnp.eye(draw.shape[-1], dtype=bool)


@dataclasses.dataclass(frozen=True)
class ErdosRenyi:
    """G(N, p): every pair joined independently with probability `edge_prob` (the paper's, 0.5)."""

    edge_prob: float = 0.5
    name = "er"

    def __post_init__(self):
        _check_probability("edge_prob", self.edge_prob)

    def sample(self, key: Array, num_objects: int, directed: bool = False) -> Array:
        """Adjacency [N, N] bool, zero diagonal; symmetric unless `directed`."""
        draw = jax.random.bernoulli(key, self.edge_prob, (num_objects, num_objects))
        # One [N, N] draw, the upper triangle kept when undirected: the original's draw, so
        # the paper's datasets are unchanged.
        return _off_diagonal(draw) if directed else _symmetric(draw)


@dataclasses.dataclass(frozen=True)
class BarabasiAlbert:
    """Preferential attachment: each new object joins `m` earlier ones; m (N - m) edges."""

    m: int = 2
    name = "ba"

    def __post_init__(self):
        if self.m < 1:
            raise ValueError(f"m={self.m!r} must be at least 1")

    def sample(self, key: Array, num_objects: int, directed: bool = False) -> Array:
        """Adjacency [N, N] bool, symmetric (`directed` is ignored: the family is undirected)."""
        del directed
        n, m = num_objects, self.m
        if m >= n:
            raise ValueError(f"m={m} must be smaller than the {n} objects")
        index = jnp.arange(n)
        # Object m joins the m initial objects (networkx starts from this star too).
        star = (index < m) & (index[:, None] == m)
        adjacency = star | star.T

        def attach(t, carry):
            # The degrees are carried, not summed from the adjacency each step: O(N) a step,
            # O(N^2) in all (a sum over [N, N] per step made it O(N^3)).
            adjacency, degree = carry
            # Gumbel top-m of log(degree): m distinct objects, drawn one after another with
            # probability proportional to degree (networkx redraws duplicates, the same law).
            gumbel = jax.random.gumbel(jax.random.fold_in(key, t), (n,))
            scores = jnp.where(index < t, jnp.log(degree) + gumbel, -jnp.inf)
            _, targets = jax.lax.top_k(scores, m)
            row = jnp.zeros(n, bool).at[targets].set(True)
            degree = (degree + row).at[t].set(m)
            return adjacency.at[t].set(row).at[:, t].set(row), degree

        degree = jnp.sum(adjacency, axis=1).astype(jnp.result_type(float))
        return jax.lax.fori_loop(m + 1, n, attach, (adjacency, degree))[0]


@dataclasses.dataclass(frozen=True)
class WattsStrogatz:
    """Small world: a ring lattice of degree `k`, each edge rewired with probability `beta`."""

    k: int = 2
    beta: float = 0.2
    name = "ws"

    def __post_init__(self):
        if self.k < 2 or self.k % 2:
            raise ValueError(f"k={self.k!r} must be an even number >= 2")
        _check_probability("beta", self.beta)

    def sample(self, key: Array, num_objects: int, directed: bool = False) -> Array:
        """Adjacency [N, N] bool, symmetric (`directed` is ignored: the family is undirected)."""
        del directed
        n, half = num_objects, self.k // 2
        if self.k >= n:
            raise ValueError(f"k={self.k} must be smaller than the {n} objects")
        index = jnp.arange(n)
        offset = (index[None, :] - index[:, None]) % n
        lattice = (offset >= 1) & ((offset <= half) | (offset >= n - half))

        def rewire(step, adjacency):
            # networkx's order: all edges (u, u + 1), then all (u, u + 2), ...
            j, u = step // n + 1, step % n
            v = (u + j) % n
            key_coin, key_target = jax.random.split(jax.random.fold_in(key, step))
            free = ~adjacency[u] & (index != u)
            # An object joined to all others keeps its edge (networkx gives up there too).
            flip = jax.random.bernoulli(key_coin, self.beta) & jnp.any(free)
            w = jax.random.categorical(key_target, jnp.where(free, 0.0, -jnp.inf))
            # Four element updates, each a no-op unless `flip`: O(N) a step (a select between
            # two [N, N] matrices made the k N / 2 steps O(k N^3)).
            adjacency = adjacency.at[u, v].set(adjacency[u, v] & ~flip)
            adjacency = adjacency.at[v, u].set(adjacency[v, u] & ~flip)
            adjacency = adjacency.at[u, w].set(adjacency[u, w] | flip)
            return adjacency.at[w, u].set(adjacency[w, u] | flip)

        return jax.lax.fori_loop(0, half * n, rewire, lattice)


@dataclasses.dataclass(frozen=True)
class StochasticBlock:
    """Communities: `blocks` contiguous blocks, pairs joined with p_in within, p_out between."""

    blocks: int = 2
    p_in: float = 0.8
    p_out: float = 0.1
    name = "sbm"

    def __post_init__(self):
        if self.blocks < 1:
            raise ValueError(f"blocks={self.blocks!r} must be at least 1")
        _check_probability("p_in", self.p_in)
        _check_probability("p_out", self.p_out)

    def block_of(self, num_objects: int) -> Array:
        """Block index of each object [N]: floor(i * blocks / N)."""
        return jnp.arange(num_objects) * self.blocks // num_objects

    def sample(self, key: Array, num_objects: int, directed: bool = False) -> Array:
        """Adjacency [N, N] bool, zero diagonal; symmetric unless `directed`."""
        if self.blocks > num_objects:
            raise ValueError(f"blocks={self.blocks} must not exceed the {num_objects} objects")
        block = self.block_of(num_objects)
        prob = jnp.where(block[:, None] == block[None, :], self.p_in, self.p_out)
        draw = jax.random.uniform(key, (num_objects, num_objects)) < prob
        return _off_diagonal(draw) if directed else _symmetric(draw)


Graph = ErdosRenyi | BarabasiAlbert | WattsStrogatz | StochasticBlock
FAMILIES: dict[str, type] = {
    family.name: family for family in (ErdosRenyi, BarabasiAlbert, WattsStrogatz, StochasticBlock)
}


def make(name: str, **params: float) -> Graph:
    """The family `name` ('er', 'ba', 'ws', 'sbm') with `params` (its dataclass fields)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown graph family {name!r}; use one of {', '.join(FAMILIES)}")
    return FAMILIES[name](**params)
