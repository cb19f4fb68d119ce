"""Tests for the Kuramoto simulator (REFERENCE.md §1): physics, solver accuracy, gradients,
the successors' feature recipe and the split generator's layouts and determinism."""

import concurrent.futures
import math
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulators import kuramoto

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT = 0.01
SAMPLE_FREQ = 10
LENGTH, LENGTH_TEST = 500, 1000
NUM_SIMS = 48  # Small split shared by the generator tests (one compile per chunk size).


def _grid():
    return jnp.arange(LENGTH_TEST, dtype=jnp.float64) * DT


@jax.jit
def _simulate_grid(phi0, omega, coupling, rtol=kuramoto.RTOL, atol=kuramoto.ATOL):
    """One compile for every single-system solve on the test grid (tolerances are traced)."""
    return kuramoto.simulate(phi0, omega, coupling, _grid(), rtol=rtol, atol=atol, max_steps=20000)


def _features_numpy(phi, coupling, omega, sample_freq, dt, num_frames):
    """Plain numpy version of the successors' recipe, loop per oscillator."""
    phase_diff = np.diff(phi, axis=0)[::sample_freq] / dt
    sin_phi = np.sin(phi[:-1])[::sample_freq]
    phase = phi[:-1][::sample_freq].copy()

    def normalise(x):
        return (x - x.min()) * 2 / (x.max() - x.min()) - 1

    for i in range(phi.shape[1]):
        phase_diff[:, i] = normalise(phase_diff[:, i])
        phase[:, i] = normalise(phase[:, i])
    phase_diff[:, coupling.sum(axis=1) == 0] = 0
    omega_feat = np.tile((omega - 1) * 2 / 9 - 1, (phase.shape[0], 1))
    feat = np.stack([phase_diff, sin_phi, phase, omega_feat], axis=-1)
    return feat[:num_frames].transpose(1, 0, 2)


@pytest.fixture(scope="module")
def splits():
    """Small train and test splits for the same key, plus a second key and chunk size."""
    key = jax.random.key(42)
    common = dict(num_objects=5, length_test=LENGTH_TEST, sample_freq=SAMPLE_FREQ, dt=DT)
    run = lambda k, length, chunk: kuramoto.generate_split(
        k, NUM_SIMS, length=length, chunk_size=chunk, progress=False, **common
    )
    return {
        "test": run(key, LENGTH_TEST, NUM_SIMS),
        "train": run(key, LENGTH, NUM_SIMS),
        "test_chunked": run(key, LENGTH_TEST, 20),  # 3 chunks, the last one padded.
        "other_key": run(jax.random.key(43), LENGTH, NUM_SIMS),
    }


# Physics and solver.


def test_uncoupled_oscillators_advance_linearly(x64):
    phi0, omega, _ = kuramoto.sample_system(jax.random.key(0), 5)
    phi = _simulate_grid(phi0, omega, jnp.zeros((5, 5)))
    np.testing.assert_allclose(phi, phi0 + omega * _grid()[:, None], rtol=0, atol=1e-9)


def test_vector_field_matches_pairwise_sines(x64):
    phi, omega, _ = kuramoto.sample_system(jax.random.key(1), 7)
    coupling = jax.random.normal(jax.random.key(2), (7, 7))
    pairwise = omega + jnp.sum(coupling * jnp.sin(phi[None, :] - phi[:, None]), axis=1)
    np.testing.assert_allclose(
        kuramoto.vector_field(0.0, phi, (omega, coupling)), pairwise, atol=1e-12
    )


def test_dopri5_agrees_with_tight_solve(x64):
    for i in range(4):
        phi0, omega, coupling = kuramoto.sample_system(jax.random.key(100 + i), 5)
        phi = _simulate_grid(phi0, omega, coupling)
        exact = _simulate_grid(phi0, omega, coupling, 1e-10, 1e-10)
        assert np.abs(phi - exact).max() < 1e-3
        feat = [kuramoto.features(p, coupling, omega, SAMPLE_FREQ, DT, 99) for p in (phi, exact)]
        assert np.abs(feat[0] - feat[1]).max() < 2e-3


def test_strong_all_to_all_coupling_synchronises(x64):
    key_phase, key_freq = jax.random.split(jax.random.key(4))
    phi0 = jax.random.uniform(key_phase, (5,), maxval=2 * math.pi)
    omega = jax.random.uniform(key_freq, (5,), minval=4.5, maxval=5.5)
    phi = _simulate_grid(phi0, omega, 10.0 * (1 - jnp.eye(5)))
    order = np.abs(np.exp(1j * np.asarray(phi)).mean(axis=1))
    assert order[0] < 0.9
    assert order[-100:].min() > 0.99


def test_gradients_match_finite_differences(x64):
    n = 4
    phi0, omega, _ = kuramoto.sample_system(jax.random.key(5), n)
    coupling = jax.random.uniform(jax.random.key(6), (n, n)) * (1 - jnp.eye(n))
    ts = jnp.linspace(0.0, 2.0, 21)

    def loss(phi0, omega, coupling):
        phi = kuramoto.simulate(phi0, omega, coupling, ts, rtol=1e-11, atol=1e-11, max_steps=1024)
        return jnp.sum(jnp.sin(phi)) + jnp.mean(phi)

    # One compile serves the gradient and the finite-difference evaluations.
    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    params = [np.array(p) for p in (phi0, omega, coupling)]
    _, grads = value_and_grad(*params)
    eps = 1e-5
    for param, grad in zip(params, grads, strict=True):
        numeric = np.zeros(param.shape)
        for index in np.ndindex(param.shape):
            values = []
            for sign in (1, -1):
                original = param[index]
                param[index] = original + sign * eps
                values.append(float(value_and_grad(*params)[0]))
                param[index] = original
            numeric[index] = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
    assert np.abs(grads[2]).max() > 0.1  # The coupling gradient is not trivially zero.


# Features.


def test_features_match_numpy_recipe(x64):
    rng = np.random.default_rng(0)
    n = 5
    t = np.arange(LENGTH_TEST) * DT
    omega = rng.uniform(1, 10, n)
    phi = rng.uniform(0, 2 * np.pi, n) + omega * t[:, None]
    phi += rng.uniform(0.1, 1, n) * np.sin(rng.uniform(1, 5, n) * t[:, None] + rng.uniform(0, 6, n))
    coupling = (rng.uniform(size=(n, n)) < 0.5) * (1 - np.eye(n))
    coupling[2] = 0  # Oscillator 2 has no incoming edge.
    for num_frames in (49, 99):
        feat = kuramoto.features(jnp.asarray(phi), coupling, omega, SAMPLE_FREQ, DT, num_frames)
        expected = _features_numpy(phi, coupling, omega, SAMPLE_FREQ, DT, num_frames)
        assert feat.shape == (n, num_frames, 4)
        np.testing.assert_allclose(feat, expected, rtol=0, atol=1e-10)
    assert np.all(feat[2, :, 0] == 0)


def test_features_constant_input_is_zero_not_nan():
    phi = jnp.zeros((LENGTH_TEST, 3))
    feat = kuramoto.features(phi, jnp.ones((3, 3)), jnp.ones(3), SAMPLE_FREQ, DT, 99)
    assert np.all(np.isfinite(feat)) and np.all(feat[..., 0] == 0)


def test_features_rejects_too_many_frames():
    with pytest.raises(ValueError, match="num_frames"):
        kuramoto.features(jnp.zeros((100, 3)), jnp.ones((3, 3)), jnp.ones(3), 10, DT, 11)


# Split generator.


def test_layouts_and_dtypes(splits):
    for name, frames in (("train", 49), ("test", 99)):
        out = splits[name]
        assert set(out) == {"feat", "edges", "phase", "dphase", "omega"}
        assert out["feat"].shape == (NUM_SIMS, 5, frames, 4) and out["feat"].dtype == np.float32
        assert out["edges"].shape == (NUM_SIMS, 5, 5) and out["edges"].dtype == np.int64
        for raw in ("phase", "dphase"):
            assert out[raw].shape == (NUM_SIMS, 5, frames) and out[raw].dtype == np.float32
        assert out["omega"].shape == (NUM_SIMS, 5) and out["omega"].dtype == np.float32
    assert jnp.zeros(1).dtype == jnp.float32  # generate_split's float64 did not leak.


def test_feature_ranges_and_consistency(splits):
    out = splits["test"]
    feat, edges = out["feat"], out["edges"]
    assert np.abs(feat).max() <= 1 + 1e-6
    no_input = edges.sum(axis=2) == 0
    assert no_input.any()  # P = 1/16 per oscillator; 240 oscillators make this near certain.
    assert np.all(feat[..., 0][no_input] == 0)
    np.testing.assert_allclose(feat[..., 1], np.sin(out["phase"]), atol=1e-4)
    omega_feat = (out["omega"] - 1) * 2 / 9 - 1
    omega_feat = np.broadcast_to(omega_feat[..., None], feat.shape[:3])
    np.testing.assert_allclose(feat[..., 3], omega_feat, atol=1e-6)  # Scaled in float64.
    assert 1 <= out["omega"].min() and out["omega"].max() < 10
    assert np.all(out["phase"][:, :, 0] >= 0) and np.all(out["phase"][:, :, 0] < 2 * np.pi)


def test_edges_directed_zero_diagonal_balanced(splits):
    edges = splits["test"]["edges"]
    assert set(np.unique(edges)) <= {0, 1}
    assert np.all(np.diagonal(edges, axis1=1, axis2=2) == 0)
    off_diagonal = edges[:, ~np.eye(5, dtype=bool)]
    assert abs(off_diagonal.mean() - 0.5) < 0.05  # 960 entries: 3 standard deviations.
    assert np.any(edges != edges.transpose(0, 2, 1))  # Directed.


def test_phase_matches_single_trajectory_simulation(splits, x64):
    i = 7
    key = jax.random.fold_in(jax.random.key(42), i)
    phi0, omega, coupling = kuramoto.sample_system(key, 5)
    phi = _simulate_grid(phi0, omega, coupling)
    np.testing.assert_allclose(splits["test"]["phase"][i], phi[:-1:SAMPLE_FREQ][:99].T, rtol=1e-6)
    # dphase: the successors' d(phi)/dt before scaling, a forward difference over one grid step.
    velocity = (np.diff(np.asarray(phi), axis=0) / DT)[::SAMPLE_FREQ][:99].T
    np.testing.assert_allclose(splits["test"]["dphase"][i], velocity, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(splits["test"]["edges"][i], coupling)


def test_train_is_prefix_of_test(splits):
    for name in ("feat", "phase", "dphase"):
        np.testing.assert_array_equal(splits["train"][name], splits["test"][name][:, :, :49])
    np.testing.assert_array_equal(splits["train"]["edges"], splits["test"]["edges"])


def test_deterministic_per_key_and_chunk_independent(splits):
    again = kuramoto.generate_split(
        jax.random.key(42), NUM_SIMS, 5, LENGTH, LENGTH_TEST, SAMPLE_FREQ, DT, progress=False
    )
    for name in again:
        np.testing.assert_array_equal(again[name], splits["train"][name])
        np.testing.assert_array_equal(splits["test_chunked"][name], splits["test"][name])
    assert not np.array_equal(splits["other_key"]["edges"], splits["train"]["edges"])
    assert not np.array_equal(splits["other_key"]["feat"], splits["train"]["feat"])


def test_chunks_run_in_float64_from_any_thread(splits):
    """`generate_split` dispatches from worker threads, where the caller's x64 does not reach."""
    run = kuramoto._chunk_fn(
        5, LENGTH_TEST, SAMPLE_FREQ, DT, kuramoto.RTOL, kuramoto.ATOL, kuramoto.PAPER_GRAPH
    )
    indices = np.arange(20, dtype=np.uint32)  # A chunk size the fixture compiled.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        feat, coupling, phase, dphase, omega = thread.submit(
            run, jax.random.key(42), indices
        ).result()
    assert {a.dtype for a in (feat, coupling, phase, dphase, omega)} == {np.dtype(np.float64)}
    np.testing.assert_array_equal(np.float32(phase[:, :, :99]), splits["test"]["phase"][:20])


def test_float32_rotating_frame_stays_close_to_a_tight_float64_solve():
    """What backends without float64 generate (docs/benchmarks.md for 1000 systems)."""
    num_frames = (LENGTH_TEST - 1 + SAMPLE_FREQ - 1) // SAMPLE_FREQ
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(3), 8)
        systems = [kuramoto.sample_system(k, 5) for k in keys]
        reference = [
            kuramoto.features(
                _simulate_grid(*system, rtol=1e-12, atol=1e-12),
                system[2],
                system[1],
                10,
                DT,
                num_frames,
            )
            for system in systems
        ]
    ts = jnp.arange(LENGTH_TEST, dtype=jnp.float32) * DT
    solve = jax.jit(
        lambda p, w, c: kuramoto._solve_rotating(
            p, w, c, ts, DT, kuramoto.FLOAT32_RTOL, kuramoto.FLOAT32_ATOL
        )
    )
    errors = []
    for system, ref in zip(systems, reference, strict=True):
        phi0, omega, coupling = (np.float32(a) for a in system)
        phi, increments = solve(phi0, omega, coupling)
        assert phi.dtype == increments.dtype == jnp.float32
        feat = kuramoto.features(phi, coupling, omega, SAMPLE_FREQ, DT, num_frames, increments)
        errors.append(np.abs(np.asarray(feat, np.float64) - np.asarray(ref)))
    errors = np.stack(errors).reshape(-1, 4)
    assert errors[:, 1:].max() < 2e-3  # sin(phi), scaled phase, omega
    assert errors[:, 0].mean() < 1e-3  # scaled d(phi)/dt: a few frames err more


def test_float32_split_where_float64_is_missing():
    assert kuramoto.float64_supported(jax.local_devices())
    tpu = type("Device", (), {"platform": "tpu"})()
    assert not kuramoto.float64_supported([tpu])
    common = dict(num_objects=5, length_test=LENGTH_TEST, sample_freq=SAMPLE_FREQ, dt=DT)
    run = lambda **kw: kuramoto.generate_split(  # noqa: E731
        jax.random.key(42), 8, length=LENGTH, progress=False, dtype="float32", **common, **kw
    )
    out = run()
    assert out["feat"].shape == (8, 5, 49, 4) and out["feat"].dtype == np.float32
    assert np.abs(out["feat"]).max() <= 1 + 1e-6
    np.testing.assert_allclose(out["feat"][..., 1], np.sin(out["phase"]), atol=1e-4)
    for name, value in run(chunk_size=4).items():  # deterministic, chunk-independent
        np.testing.assert_array_equal(value, out[name])
    with pytest.raises(ValueError, match="dtype"):
        kuramoto.generate_split(
            jax.random.key(0), 4, length=LENGTH, progress=False, dtype="float16", **common
        )


@pytest.mark.slow  # A subprocess with its own JAX start-up and compile (~6-10 s).
def test_two_cpu_devices_give_identical_split(splits, tmp_path):
    script = (
        "import sys, jax, numpy as np\n"
        "jax.config.update('jax_num_cpu_devices', 2)\n"
        "from simulators import kuramoto\n"
        "assert len(jax.local_devices()) == 2\n"
        f"out = kuramoto.generate_split(jax.random.key(42), {NUM_SIMS}, 5, {LENGTH_TEST}, "
        f"{LENGTH_TEST}, {SAMPLE_FREQ}, {DT}, chunk_size=20, progress=False)\n"
        "np.savez(sys.argv[1], **out)\n"
    )
    path = tmp_path / "two_devices.npz"
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, env=env, cwd=ROOT)
    with np.load(path) as two_devices:
        for name, value in splits["test"].items():
            np.testing.assert_array_equal(two_devices[name], value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_sims=0), "num_sims"),
        (dict(num_objects=1), "num_objects"),
        (dict(length=1200), "length"),
        (dict(length=10), "length"),
        (dict(sample_freq=0), "sample_freq"),
        (dict(chunk_size=0), "chunk_size"),
    ],
)
def test_generate_split_validates_arguments(kwargs, match):
    args = dict(
        num_sims=4,
        num_objects=5,
        length=LENGTH,
        length_test=LENGTH_TEST,
        sample_freq=SAMPLE_FREQ,
        dt=DT,
        progress=False,
    )
    with pytest.raises(ValueError, match=match):
        kuramoto.generate_split(jax.random.key(0), **{**args, **kwargs})


def test_independent_scipy_generator_writes_the_same_features(x64):
    """benchmarks/scipy_kuramoto_generator.py (scipy's dopri5, numpy features) against the
    diffrax simulator and `features`, from the same draw of omega, phi(0) and k."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import scipy_kuramoto_generator as scipy_gen

    for seed in range(2):
        rng = np.random.default_rng(seed)
        feat, edges, raw = scipy_gen.sample_trajectory(5, LENGTH_TEST, rng, 1e-8)
        # The same draws, in the generator's order.
        rng = np.random.default_rng(seed)
        coupling = (rng.random((5, 5)) < 0.5).astype(np.float64)
        np.fill_diagonal(coupling, 0.0)
        omega, phi0 = rng.uniform(1, 10, 5), rng.uniform(0, 2 * np.pi, 5)
        np.testing.assert_array_equal(edges, coupling)
        phi = _simulate_grid(jnp.asarray(phi0), jnp.asarray(omega), jnp.asarray(coupling))
        ours = kuramoto.features(
            phi, jnp.asarray(coupling), jnp.asarray(omega), SAMPLE_FREQ, DT, 99
        )
        assert feat.shape == (5, 99, 4) and feat.dtype == np.float32
        # Two solvers at rtol = atol = 1e-8; scaled d(phi)/dt amplifies their difference most.
        np.testing.assert_allclose(feat, ours, rtol=0, atol=1e-3)
        # The raw frames of data.features=phase: phases and unscaled d(phi)/dt.
        np.testing.assert_allclose(raw["phase"], phi[:-1:SAMPLE_FREQ][:99].T, rtol=1e-6)
        velocity = (np.diff(np.asarray(phi), axis=0) / DT)[::SAMPLE_FREQ][:99].T
        np.testing.assert_allclose(raw["dphase"], velocity, rtol=0, atol=1e-3)
        np.testing.assert_allclose(raw["omega"], omega, rtol=1e-6)


# The draw: the paper's unchanged; graph families.


def original_sample_system(key, num_objects):
    """The draw as the successors (and this project before graph families) make it."""
    key_phase, key_freq, key_edges = jax.random.split(key, 3)
    phi0 = jax.random.uniform(key_phase, (num_objects,), minval=0.0, maxval=2.0 * math.pi)
    omega = jax.random.uniform(key_freq, (num_objects,), minval=1.0, maxval=10.0)
    edges = jax.random.bernoulli(key_edges, 0.5, (num_objects, num_objects))
    edges = edges & ~jnp.eye(num_objects, dtype=bool)
    return phi0, omega, edges.astype(phi0.dtype)


def test_default_draw_is_the_successors_bit_for_bit():
    keys = jax.random.split(jax.random.key(3), 64)
    old = jax.jit(jax.vmap(lambda k: original_sample_system(k, 5)))(keys)
    new = jax.jit(jax.vmap(lambda k: kuramoto.sample_system(k, 5)))(keys)
    for a, b in zip(new, old, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_graph_families_keep_the_coupling_convention():
    """Families with a directed form stay directed (row = receiver); BA and WS couple both ways."""
    from simulators import graphs

    keys = jax.random.split(jax.random.key(8), 200)
    draw = jax.jit(
        jax.vmap(lambda k, g: kuramoto.sample_system(k, 6, g)[2], in_axes=(0, None)),
        static_argnums=1,
    )
    sbm = np.asarray(draw(keys, graphs.StochasticBlock(2, 0.9, 0.1)))
    assert np.any(sbm != np.swapaxes(sbm, 1, 2))
    assert 0.85 < sbm[:, 0, 1:3].mean() < 0.95 and sbm[:, 0, 3:].mean() < 0.15
    for graph in (graphs.BarabasiAlbert(2), graphs.WattsStrogatz(2, 0.5)):
        coupling = np.asarray(draw(keys, graph))
        np.testing.assert_array_equal(coupling, np.swapaxes(coupling, 1, 2))
        edges = 2 * (6 - 2) if graph.name == "ba" else 6  # m (N - m); N k / 2
        np.testing.assert_array_equal(coupling.sum(axis=(1, 2)), 2 * edges)


def test_generate_split_draws_the_given_graph():
    from simulators import graphs

    graph = graphs.BarabasiAlbert(1)
    out = kuramoto.generate_split(
        jax.random.key(0), 4, 5, 200, 200, SAMPLE_FREQ, DT, progress=False, graph=graph
    )
    np.testing.assert_array_equal(out["edges"].sum(axis=(1, 2)), 2 * 4)
    np.testing.assert_array_equal(out["edges"], np.swapaxes(out["edges"], 1, 2))
