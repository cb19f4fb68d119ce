"""Graph families (simulators/graphs.py): each draw's structure and, over many draws, the
edge frequencies their definitions give."""

import functools

import jax
import numpy as np
import pytest

from nri_jax import config as config_lib
from simulators import graphs

DRAWS = 4000


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _draw(graph, num_objects, num_draws, directed):
    keys = jax.random.split(jax.random.key(0), num_draws)
    return jax.vmap(lambda k: graph.sample(k, num_objects, directed))(keys)


def draw(graph, num_objects, num_draws=DRAWS, directed=False):
    """`num_draws` adjacency matrices [draws, N, N] (numpy bool)."""
    return np.asarray(_draw(graph, num_objects, num_draws, directed))


def assert_simple(adjacency, symmetric=True):
    assert adjacency.dtype == bool
    assert not np.any(np.diagonal(adjacency, axis1=-2, axis2=-1))
    if symmetric:
        np.testing.assert_array_equal(adjacency, np.swapaxes(adjacency, -1, -2))


def assert_frequency(successes, trials, p, sigmas=4.0):
    """A binomial count within `sigmas` standard deviations of trials * p."""
    sd = np.sqrt(trials * p * (1 - p))
    assert abs(successes - trials * p) <= sigmas * sd + 1e-9, (successes, trials * p, sd)


def test_families_match_the_config_names():
    assert tuple(graphs.FAMILIES) == tuple(config_lib.GRAPHS)
    for name, keys in config_lib.GRAPHS.items():
        params = {key.removeprefix(f"{name}_"): config_lib.GRAPH_DEFAULTS[key] for key in keys}
        assert graphs.make(name, **params).name == name


@pytest.mark.parametrize("directed", [False, True])
def test_erdos_renyi_density(directed):
    adjacency = draw(graphs.ErdosRenyi(0.3), 6, directed=directed)
    assert_simple(adjacency, symmetric=not directed)
    pairs = 6 * 5 if directed else 15
    assert_frequency(adjacency.sum() // (1 if directed else 2), DRAWS * pairs, 0.3)
    if directed:  # Each ordered pair on its own: (i, j) and (j, i) agree only by chance.
        upper = np.triu_indices(6, 1)
        both = adjacency[:, upper[0], upper[1]] & adjacency[:, upper[1], upper[0]]
        assert_frequency(both.sum(), DRAWS * 15, 0.09)


@pytest.mark.parametrize("n, m", [(5, 1), (5, 2), (8, 3)])
def test_barabasi_albert_edge_count_and_attachment(n, m):
    adjacency = draw(graphs.BarabasiAlbert(m), n, num_draws=500)
    assert_simple(adjacency)
    # The star of object m, then m edges per later object: m (N - m) edges in every draw.
    np.testing.assert_array_equal(adjacency.sum(axis=(1, 2)) // 2, m * (n - m))
    earlier = np.tril(np.ones((n, n), bool), k=-1)
    np.testing.assert_array_equal((adjacency & earlier).sum(-1)[:, m:], m)
    assert not np.any(adjacency[:, :m, :m])  # The m initial objects are joined only later.
    assert np.all(adjacency.sum(-1)[:, m:] >= m)


def test_barabasi_albert_attaches_in_proportion_to_degree():
    # m = 2: object 2 joins 0 and 1 (degrees 1, 1, 2); object 3 picks two of them one after
    # the other with probability proportional to degree, so it joins object 2 with probability
    # 2/4 + 2 * (1/4) * (2/3) = 5/6, and object 0 with 1/4 + (1/4) (1/3) + (1/2) (1/2) = 7/12.
    adjacency = draw(graphs.BarabasiAlbert(2), 4)
    assert_frequency(adjacency[:, 3, 2].sum(), DRAWS, 5 / 6)
    assert_frequency(adjacency[:, 3, 0].sum(), DRAWS, 7 / 12)


def ring_lattice(n, k):
    offset = (np.arange(n)[None, :] - np.arange(n)[:, None]) % n
    return (offset >= 1) & ((offset <= k // 2) | (offset >= n - k // 2))


@pytest.mark.parametrize("n, k", [(5, 2), (5, 4), (8, 4)])
def test_watts_strogatz_without_rewiring_is_the_ring_lattice(n, k):
    adjacency = draw(graphs.WattsStrogatz(k, 0.0), n, num_draws=8)
    np.testing.assert_array_equal(adjacency, np.broadcast_to(ring_lattice(n, k), adjacency.shape))
    np.testing.assert_array_equal(adjacency.sum(-1), k)


def numpy_watts_strogatz(rng, n, k, beta):
    """networkx's `watts_strogatz_graph`, written out: the reference of the definition."""
    adjacency = ring_lattice(n, k)
    for j in range(1, k // 2 + 1):
        for u in range(n):
            if rng.random() < beta:
                free = np.flatnonzero(~adjacency[u] & (np.arange(n) != u))
                if len(free):
                    v, w = (u + j) % n, rng.choice(free)
                    adjacency[u, v] = adjacency[v, u] = False
                    adjacency[u, w] = adjacency[w, u] = True
    return adjacency


@pytest.mark.parametrize("beta", [0.2, 1.0])
def test_watts_strogatz_rewiring_keeps_the_edge_count(beta):
    n, k = 10, 4
    adjacency = draw(graphs.WattsStrogatz(k, beta), n)
    assert_simple(adjacency)
    np.testing.assert_array_equal(adjacency.sum(axis=(1, 2)) // 2, n * k // 2)
    # The lattice edges left and the degrees' spread, against the definition run in numpy:
    # means over 4000 draws each, within 5 standard errors of their difference.
    rng = np.random.default_rng(0)
    reference = np.stack([numpy_watts_strogatz(rng, n, k, beta) for _ in range(DRAWS)])
    for statistic in (
        lambda a: (a & ring_lattice(n, k)).sum(axis=(1, 2)) / (n * k),
        lambda a: a.sum(-1).var(axis=-1),
    ):
        ours, theirs = statistic(adjacency), statistic(reference)
        error = np.sqrt((ours.var() + theirs.var()) / DRAWS)
        assert abs(ours.mean() - theirs.mean()) < 5 * error


@pytest.mark.parametrize("directed", [False, True])
def test_stochastic_block_densities(directed):
    n, graph = 7, graphs.StochasticBlock(3, 0.7, 0.15)
    block = np.asarray(graph.block_of(n))
    np.testing.assert_array_equal(block, [0, 0, 0, 1, 1, 2, 2])
    adjacency = draw(graph, n, directed=directed)
    assert_simple(adjacency, symmetric=not directed)
    pairs = ~np.eye(n, dtype=bool) if directed else np.triu(np.ones((n, n), bool), k=1)
    same = block[:, None] == block[None, :]
    for mask, p in ((pairs & same, 0.7), (pairs & ~same, 0.15)):
        assert_frequency(adjacency[:, mask].sum(), DRAWS * mask.sum(), p)


@pytest.mark.parametrize(
    "graph, n, match",
    [
        (graphs.BarabasiAlbert(5), 5, "m=5 must be smaller"),
        (graphs.WattsStrogatz(6), 5, "k=6 must be smaller"),
        (graphs.StochasticBlock(6), 5, "blocks=6"),
    ],
)
def test_parameters_that_do_not_fit_the_objects_raise(graph, n, match):
    with pytest.raises(ValueError, match=match):
        graph.sample(jax.random.key(0), n)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="edge_prob"):
        graphs.ErdosRenyi(1.5)
    with pytest.raises(ValueError, match="k=3"):
        graphs.WattsStrogatz(3)
    with pytest.raises(ValueError, match="unknown graph family 'tree'"):
        graphs.make("tree")
