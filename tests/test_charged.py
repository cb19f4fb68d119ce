"""Charged-particles simulator: the original NRI scheme, energy, gradients, diffrax."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from numpy_reference import BOX, numpy_trajectory

from simulators import charged

C = 1.0


@jax.jit
def sample_batch(keys):
    """`charged.sample_system` for each key, 5 objects (jitted: eager vmap compiles op by op)."""
    return jax.vmap(lambda k: charged.sample_system(k, 5))(keys)


def sample(seed, batch):
    return sample_batch(jax.random.split(jax.random.key(seed), batch))


# ----------------------------------------------------------------------------------------------
# The original generator, in plain numpy (REFERENCE.md §1). States are [N, 2].


def numpy_coulomb_force(x, edges):
    diff = x[:, None, :] - x[None, :, :]  # x_i - x_j
    d2 = (diff**2).sum(-1)
    np.fill_diagonal(d2, 1.0)
    strength = C * edges / d2**1.5
    np.fill_diagonal(strength, 0.0)
    return (strength[:, :, None] * diff).sum(axis=1)


# ----------------------------------------------------------------------------------------------


def test_matches_numpy_original_over_a_short_horizon(x64):
    # Close encounters make the dynamics chaotic: compare 10 frames (1000 steps) tightly.
    loc0, vel0, edges, _ = (np.asarray(a) for a in sample(0, 4))
    loc, vel = charged.simulate(loc0, vel0, edges, num_frames=10)
    assert loc.dtype == jnp.float64 and loc.shape == (4, 10, 5, 2)
    for b in range(4):
        ref_loc, ref_vel, _ = numpy_trajectory(
            lambda x, e=edges[b]: numpy_coulomb_force(x, e),
            loc0[b],
            vel0[b],
            1100,
        )
        np.testing.assert_allclose(loc[b], ref_loc, rtol=0, atol=1e-8)
        np.testing.assert_allclose(vel[b], ref_vel, rtol=0, atol=1e-8)


def apart_case():
    """Five like charges on a circle of radius 2, moving at speed 0.5: they never meet."""
    angles = 2 * np.pi * np.arange(5) / 5
    loc0 = 2.0 * np.stack([np.cos(angles), np.sin(angles)], -1)
    vel0 = 0.5 * np.stack([np.cos(3 * angles + 1), np.sin(3 * angles + 1)], -1)
    return loc0, vel0, np.ones((5, 5))


def test_energy_is_conserved_when_particles_stay_apart(x64):
    loc0, vel0, edges = apart_case()
    loc, vel = charged.simulate(loc0, vel0, edges, num_frames=50, box_size=1e6)
    e0 = charged.energy(loc0, vel0, edges)
    energies = charged.energy(loc, vel, edges)
    assert jnp.max(jnp.abs(energies - e0)) < 0.01 * e0


def test_gradients_match_finite_differences(x64):
    loc0, vel0, _ = apart_case()
    loc0 = 0.5 * loc0  # Closer, so that the forces matter, but far below the clip.
    weights = jax.random.uniform(jax.random.key(1), (5, 5), minval=-1.0, maxval=1.0)
    proj = jax.random.normal(jax.random.key(2), (2, 5, 2))

    def loss(w, x0, v0):
        loc, vel = charged.simulate(x0, v0, w, num_frames=2, sample_freq=50)
        return jnp.sum(loc[-1] * proj[0]) + jnp.sum(vel[-1] * proj[1])

    args = (weights, jnp.asarray(loc0), jnp.asarray(vel0))
    grads = jax.grad(loss, argnums=(0, 1, 2))(*args)
    assert all(jnp.all(jnp.isfinite(g)) for g in grads)
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
    loc0, vel0, edges, _ = (a[0] for a in sample(3, 4))
    fast = charged.simulate(loc0, vel0, edges, num_frames=3)
    solved = charged.solve_with_diffrax(loc0, vel0, edges, num_frames=3)
    for a, b in zip(fast, solved, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_batched_and_vmapped_calls_agree_over_a_short_horizon():
    loc0, vel0, edges, _ = sample(4, 4)
    batched = charged.simulate(loc0, vel0, edges, num_frames=3)
    vmapped = jax.vmap(lambda x, v, w: charged.simulate(x, v, w, num_frames=3))(loc0, vel0, edges)
    # Equal up to rounding (XLA fuses multiply-adds differently per layout).
    for a, b in zip(batched, vmapped, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_sample_system_matches_the_original_distribution():
    loc0, vel0, weights, edges = sample(5, 400)
    np.testing.assert_allclose(jnp.linalg.norm(vel0, axis=-1), 0.5, rtol=1e-5)
    assert jnp.all(jnp.abs(loc0) <= BOX)
    assert 0.9 < float(jnp.std(loc0)) < 1.1
    assert jnp.array_equal(weights, edges)
    assert jnp.array_equal(edges, jnp.swapaxes(edges, 1, 2))
    assert jnp.all(jnp.diagonal(edges, axis1=1, axis2=2) == 1)
    off = edges[:, ~np.eye(5, dtype=bool)]
    assert set(np.unique(off).tolist()) == {-1.0, 1.0}
    labels = (off + 1) / 2  # REFERENCE.md §1: +1 (repel) -> 1, -1 (attract) -> 0.
    assert 0.45 < float(labels.mean()) < 0.55


NO_FMA_SCRIPT = """
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
from simulators import charged

keys = jax.random.split(jax.random.key(0), 4)
loc0, vel0, w, _ = jax.jit(jax.vmap(lambda k: charged.sample_system(k, 5)))(keys)
sim = lambda *args: charged.simulate(*args, num_frames=49)
batched = sim(loc0, vel0, w)
vmapped = jax.vmap(sim)(loc0, vel0, w)
single = [sim(loc0[i], vel0[i], w[i]) for i in range(4)]
for k in range(2):
    assert np.array_equal(batched[k], vmapped[k])
    assert np.array_equal(batched[k], np.stack([s[k] for s in single]))
print("bit-identical")
"""


def test_layouts_are_bit_identical_without_fma_contraction():
    """Batched, vmapped and single calls differ only by XLA's multiply-add contraction.

    Without FMA instructions (AVX, not AVX2) nothing is contracted and the three agree bit for
    bit over 49 frames of chaotic charged dynamics.
    """
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(
        os.environ,
        PYTHONPATH=str(root),
        XLA_FLAGS=f"{os.environ['XLA_FLAGS']} --xla_cpu_max_isa=AVX",
        JAX_ENABLE_COMPILATION_CACHE="false",
    )
    result = subprocess.run(
        [sys.executable, "-c", NO_FMA_SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bit-identical" in result.stdout
