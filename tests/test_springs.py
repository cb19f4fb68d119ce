"""Springs simulator: the original NRI scheme, energy, gradients, diffrax, batching; the draw
(the paper's unchanged, graph families, K edge types)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import BOX, numpy_trajectory

from simulators import graphs, particles, springs

K = 0.1
PAPER = graphs.ErdosRenyi(0.5)


@jax.jit
def sample_batch(keys):
    """`springs.sample_system` for each key, 5 objects (jitted: eager vmap compiles op by op)."""
    return jax.vmap(lambda k: springs.sample_system(k, 5))(keys)


def sample(seed, batch):
    return sample_batch(jax.random.split(jax.random.key(seed), batch))


# ----------------------------------------------------------------------------------------------
# The original generator, in plain numpy (REFERENCE.md §1). States are [N, 2].


def numpy_springs_force(x, edges):
    strength = -K * edges
    np.fill_diagonal(strength, 0.0)
    diff = x[:, None, :] - x[None, :, :]  # x_i - x_j
    return (strength[:, :, None] * diff).sum(axis=1)


def walls_case():
    """Five particles, two heading into walls, all pairs but one joined."""
    loc0 = np.array([[4.98, 0.0], [0.0, -4.98], [1.0, 1.0], [-1.0, 0.5], [0.3, -0.2]])
    vel0 = np.array([[0.5, 0.0], [0.0, -0.5], [0.3, 0.4], [-0.4, 0.3], [0.0, 0.5]])
    edges = np.ones((5, 5)) - np.eye(5)
    edges[0, 1] = edges[1, 0] = 0.0
    return loc0, vel0, edges


# ----------------------------------------------------------------------------------------------


def test_matches_numpy_original_over_49_frames(x64):
    loc0, vel0, edges, _ = (np.array(a) for a in sample(0, 4))
    loc0[0], vel0[0], edges[0] = walls_case()
    loc, vel = springs.simulate(loc0, vel0, edges, num_frames=49)
    assert loc.dtype == jnp.float64 and loc.shape == (4, 49, 5, 2)
    for b in range(4):
        ref_loc, ref_vel, reflections = numpy_trajectory(
            lambda x, e=edges[b]: numpy_springs_force(x, e), loc0[b], vel0[b], 5000
        )
        if b == 0:
            assert reflections >= 2  # The walls case does hit the walls.
        np.testing.assert_allclose(loc[b], ref_loc, rtol=0, atol=1e-9)
        np.testing.assert_allclose(vel[b], ref_vel, rtol=0, atol=1e-9)


def test_reflect_mirrors_and_points_inward():
    x = jnp.array([5.5, -5.25, 1.0, 5.0])
    v = jnp.array([1.0, -2.0, -3.0, 4.0])
    x, v = particles.reflect(x, v, 5.0)
    np.testing.assert_allclose(x, [4.5, -4.75, 1.0, 5.0])
    np.testing.assert_allclose(v, [-1.0, 2.0, -3.0, 4.0])


def test_energy_is_conserved_without_walls(x64):
    loc0, vel0, edges, _ = (a[0] for a in sample(3, 4))
    loc, vel = springs.simulate(loc0, vel0, edges, num_frames=50, box_size=1e6)
    e0 = springs.energy(loc0, vel0, edges)
    energies = springs.energy(loc, vel, edges)
    assert jnp.max(jnp.abs(energies - e0)) < 0.01 * e0


def test_gradients_match_finite_differences(x64):
    loc0, vel0 = (a[0, :4] for a in sample(4, 4)[:2])
    # Continuous, asymmetric weights, as the NRI (sim.) decoder would pass.
    weights = jax.random.uniform(jax.random.key(5), (4, 4))
    proj = jax.random.normal(jax.random.key(6), (2, 4, 2))

    def loss(w, x0, v0):
        loc, vel = springs.simulate(x0, v0, w, num_frames=2, sample_freq=50)
        return jnp.sum(loc[-1] * proj[0]) + jnp.sum(vel[-1] * proj[1])

    args = (weights, loc0, vel0)
    grads = jax.grad(loss, argnums=(0, 1, 2))(*args)
    eps = 1e-6
    for i, g in enumerate(grads):
        direction = jax.random.normal(jax.random.key(10 + i), g.shape)
        plus = list(args)
        minus = list(args)
        plus[i] = args[i] + eps * direction
        minus[i] = args[i] - eps * direction
        fd = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(jnp.sum(g * direction), fd, rtol=1e-6)


def test_diffrax_solver_matches_fast_path(x64):
    loc0, vel0, edges = walls_case()
    fast = springs.simulate(loc0, vel0, edges, num_frames=3)
    solved = springs.solve_with_diffrax(loc0, vel0, edges, num_frames=3)
    for a, b in zip(fast, solved, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    # Gradients through diffeqsolve (RecursiveCheckpointAdjoint) equal those of the fast path.
    grads = [
        jax.grad(lambda w, f=f: f(loc0, vel0, w, num_frames=2, sample_freq=50)[0].sum())(edges)
        for f in (springs.simulate, springs.solve_with_diffrax)
    ]
    np.testing.assert_allclose(grads[0], grads[1], rtol=0, atol=1e-10)


def test_batched_vmapped_and_single_calls_agree():
    loc0, vel0, edges, _ = sample(7, 4)
    batched = springs.simulate(loc0, vel0, edges, num_frames=49)
    vmapped = jax.vmap(lambda x, v, w: springs.simulate(x, v, w, num_frames=49))(loc0, vel0, edges)
    single = springs.simulate(loc0[1], vel0[1], edges[1], num_frames=49)
    # XLA may fuse multiply-adds differently for different layouts: equal up to rounding.
    for a, b in zip(batched, vmapped, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    for a, b in zip(batched, single, strict=True):
        np.testing.assert_allclose(a[1], b, rtol=0, atol=1e-5)


def test_dense_force_matches_pair_loop(x64):
    x = jax.random.normal(jax.random.key(8), (2, 6, 3))
    w = jax.random.uniform(jax.random.key(9), (6, 6, 3))
    for radial in (lambda d2: -K, lambda d2: d2**-1.5):
        np.testing.assert_allclose(
            jax.jit(particles._dense_pairwise_force, static_argnums=2)(x, w, radial),
            jax.jit(particles.pairwise_force, static_argnums=2)(x, w, radial),
            rtol=1e-12,
        )


def test_sample_system_matches_the_original_distribution():
    loc0, vel0, weights, edges = sample(11, 400)
    np.testing.assert_allclose(jnp.linalg.norm(vel0, axis=-1), 0.5, rtol=1e-5)
    assert jnp.all(jnp.abs(loc0) <= BOX)
    assert 0.4 < float(jnp.std(loc0)) < 0.6
    assert jnp.array_equal(weights, edges)
    assert jnp.array_equal(edges, jnp.swapaxes(edges, 1, 2))
    assert jnp.all(jnp.diagonal(edges, axis1=1, axis2=2) == 0)
    off = edges[:, ~np.eye(5, dtype=bool)]
    assert set(np.unique(off).tolist()) == {0.0, 1.0}
    assert 0.45 < float(off.mean()) < 0.55


# ----------------------------------------------------------------------------------------------
# The draw: the paper's unchanged; graph families and K edge types.


def original_sample_system(key, num_objects):
    """The draw as the original (and this project before graph families) makes it."""
    k_edges, k_state = jax.random.split(key)
    upper = jnp.triu(jax.random.bernoulli(k_edges, 0.5, (num_objects, num_objects)), k=1)
    adjacency = (upper | upper.T).astype(jnp.result_type(float))
    loc0, vel0 = particles.initial_state(k_state, num_objects, springs.LOC_STD)
    return loc0, vel0, adjacency, adjacency


def test_default_draw_is_the_papers_bit_for_bit():
    keys = jax.random.split(jax.random.key(3), 64)
    old = jax.jit(jax.vmap(lambda k: original_sample_system(k, 5)))(keys)
    for draw in (
        lambda k: springs.sample_system(k, 5),
        lambda k: springs.Draw()(k, 5),
        lambda k: springs.sample_system(k, 5, graphs.ErdosRenyi(0.5), (0.0, 0.1), ()),
    ):
        new = jax.jit(jax.vmap(draw))(keys)
        for a, b in zip(new, old, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


CONSTANTS = (0.0, 0.1, 1.0)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def sample_types(keys, graph, constants, type_probs):
    return jax.vmap(lambda k: springs.sample_system(k, 5, graph, constants, type_probs))(keys)


@pytest.mark.parametrize("type_probs", [(), (0.8, 0.2)])
def test_edge_types_frequencies_and_weights(type_probs):
    keys = jax.random.split(jax.random.key(4), 2000)
    loc0, vel0, weights, edges = sample_types(keys, graphs.ErdosRenyi(0.5), CONSTANTS, type_probs)
    assert jnp.array_equal(edges, jnp.swapaxes(edges, 1, 2))
    assert jnp.all(jnp.diagonal(edges, axis1=1, axis2=2) == 0)
    np.testing.assert_allclose(weights, np.asarray(CONSTANTS)[np.asarray(edges, int)] / K)
    # Each of the 10 pairs of 2000 systems: no spring with probability 1 - 0.5, else type t
    # with probability 0.5 * type_probs[t - 1]. Chi-square with 2 degrees of freedom; 13.8 is
    # its 0.999 quantile.
    upper = np.asarray(edges)[:, *np.triu_indices(5, 1)].astype(int).ravel()
    probs = type_probs or (0.5, 0.5)
    expected = upper.size * np.array([0.5, 0.5 * probs[0], 0.5 * probs[1]])
    chi2 = np.sum((np.bincount(upper, minlength=3) - expected) ** 2 / expected)
    assert chi2 < 13.8, (np.bincount(upper), expected)
    # The graph and the initial state are those of the paper's two types for the same key.
    paper = sample_types(keys, graphs.ErdosRenyi(0.5), springs.SPRING_CONSTANTS, ())
    np.testing.assert_array_equal(loc0, paper[0])
    np.testing.assert_array_equal(vel0, paper[1])
    np.testing.assert_array_equal(edges > 0, paper[3] > 0)


def test_edge_types_pull_with_their_spring_constants(x64):
    _, _, weights, edges = springs.sample_system(jax.random.key(5), 5, spring_constants=CONSTANTS)
    x = jax.random.normal(jax.random.key(6), (2, 5))
    force = springs.force(x, weights)
    constants = np.asarray(CONSTANTS)[np.asarray(edges, int)]
    expected = -(constants[None] * (x[:, :, None] - x[:, None, :])).sum(-1)
    np.testing.assert_allclose(force, expected, rtol=1e-12, atol=1e-15)


def test_graph_families_reach_the_springs():
    keys = jax.random.split(jax.random.key(7), 8)
    _, _, weights, edges = sample_types(keys, graphs.BarabasiAlbert(2), CONSTANTS, ())
    np.testing.assert_array_equal((np.asarray(edges) > 0).sum(axis=(1, 2)) // 2, 2 * 3)


@pytest.mark.parametrize(
    "constants, type_probs, match",
    [
        ((0.1, 0.1), (), "spring_constants"),
        ((0.0,), (), "spring_constants"),
        ((0.0, -0.1), (), "spring_constants"),
        ((0.0, 0.1, 1.0), (1.0,), "type_probs"),
        ((0.0, 0.1, 1.0), (0.5, 0.6), "type_probs"),
    ],
)
def test_bad_edge_types_raise(constants, type_probs, match):
    with pytest.raises(ValueError, match=match):
        springs.sample_system(jax.random.key(0), 5, PAPER, constants, type_probs)
