"""Kuramoto trajectories in float32 and float64 against a tight float64 solve.

    PYTHONPATH=. python benchmarks/kuramoto_precision.py --systems 1000

Draws `--systems` random 5-oscillator systems (float64, `kuramoto.sample_system`) and
integrates each over the generator's test-length grid (1000 points of dt = 0.01, every 10th
kept) with the reference, Dopri5 at rtol = atol = 1e-12 in float64, and with each variant:
the float64 generator (rtol = atol = 1e-8), float32 in the fixed frame (`simulate`) and
float32 in the rotating frame (what `generate_split` runs where float64 is missing), the
float32 variants on the same systems rounded to float32. Prints one JSON line per variant:
the largest and the mean absolute difference over every saved frame of each normalised
feature ([d(phi)/dt, sin(phi), phase, omega], the successors' scaling; also the 99.9th
percentile) and of the raw phase and d(phi)/dt (the 'phase' features' inputs), and the
variant's wall time.
"""

from __future__ import annotations

import argparse
import json
import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from simulators import kuramoto

NUM_OBJECTS, SAMPLE_FREQ, DT, LENGTH_TEST = 5, 10, 0.01, 1000
FEATURES = ("dphase_scaled", "sin_phase", "phase_scaled", "omega_scaled")


def trajectories(dtype, rtol: float, rotating: bool):
    """Jitted (phi0, omega, coupling) [S, ...] -> (features, raw phase, raw d(phi)/dt)."""
    num_frames = (LENGTH_TEST - 1 + SAMPLE_FREQ - 1) // SAMPLE_FREQ
    ts = jnp.arange(LENGTH_TEST, dtype=dtype) * DT

    def one(phi0, omega, coupling):
        phi0, omega, coupling = (a.astype(dtype) for a in (phi0, omega, coupling))
        if rotating:
            phi, increments = kuramoto._solve_rotating(phi0, omega, coupling, ts, DT, rtol, rtol)
        else:
            phi = kuramoto.simulate(
                phi0,
                omega,
                coupling,
                ts,
                rtol=rtol,
                atol=rtol,
                max_steps=100_000,
                adjoint=diffrax.ForwardMode(),
            )
            increments = jnp.diff(phi, axis=0)
        feat = kuramoto.features(phi, coupling, omega, SAMPLE_FREQ, DT, num_frames, increments)
        phase = phi[:-1][::SAMPLE_FREQ].T
        dphase = (increments / DT)[::SAMPLE_FREQ].T
        return tuple(a.astype(jnp.float64) for a in (feat, phase, dphase))

    return jax.jit(jax.vmap(one))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(
        jax.random.key(args.seed), jnp.arange(args.systems)
    )
    systems = jax.jit(jax.vmap(lambda k: kuramoto.sample_system(k, NUM_OBJECTS)))(keys)
    reference = jax.block_until_ready(trajectories(jnp.float64, 1e-12, False)(*systems))
    variants = [
        ("float64", kuramoto.RTOL, False),
        ("float32", 1e-6, False),
        ("float32", 1e-7, False),
        ("float32", 1e-6, True),
        ("float32", kuramoto.FLOAT32_RTOL, True),
    ]
    for dtype, rtol, rotating in variants:
        run = trajectories(jnp.dtype(dtype), rtol, rotating)
        jax.block_until_ready(run(*systems))  # compiles
        start = time.perf_counter()
        feat, phase, dphase = jax.block_until_ready(run(*systems))
        seconds = time.perf_counter() - start
        diff = np.abs(np.asarray(feat) - np.asarray(reference[0])).reshape(-1, len(FEATURES))
        result = {
            "dtype": dtype,
            "frame": "rotating" if rotating else "fixed",
            "rtol_atol": rtol,
            "systems": args.systems,
            "seconds": round(seconds, 2),
        }
        for i, name in enumerate(FEATURES):
            result[f"{name}_max"] = float(f"{diff[:, i].max():.3g}")
            result[f"{name}_p99.9"] = float(f"{np.quantile(diff[:, i], 0.999):.3g}")
            result[f"{name}_mean"] = float(f"{diff[:, i].mean():.3g}")
        for name, value, ref in (("phase", phase, reference[1]), ("dphase", dphase, reference[2])):
            result[f"raw_{name}_max"] = float(f"{np.abs(np.asarray(value - ref)).max():.3g}")
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
