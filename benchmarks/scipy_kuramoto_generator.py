"""An independent Kuramoto generator: scipy's Dopri5, one trajectory at a time, plain numpy.

It shares no code with `simulators/kuramoto.py` (diffrax). It follows REFERENCE.md §1 as the
NRI successors generate Kuramoto data: omega ~ U[1, 10), phi(0) ~ U[0, 2 pi), directed k_ij in
{0, 1} with p = 0.5 (row = receiver), d(phi_i)/dt = omega_i + sum_j k_ij sin(phi_j - phi_i),
integrated by `scipy.integrate.ode('dopri5')` and read out on t = 0, 0.01, ..., every 10th
point kept. It writes `feat_{split}_kuramoto{N}.npy` [S, N, T, 4] float32 (d(phi)/dt, sin phi,
scaled phi, scaled omega) and `edges_...` [S, N, N] int64, the files `eval.py --data_dir` reads,
and the raw `phase_...` [S, N, T], `dphase_...` [S, N, T] (unscaled d(phi)/dt) and `omega_...`
[S, N] float32 that `data.features=phase` (NRI (sim.)) reads:

    python benchmarks/scipy_kuramoto_generator.py --split test --num 1000 \
        --out data/scipy_kuramoto5
    python eval.py --workdir runs/kuramoto_cpu --data_dir data/scipy_kuramoto5 \
        --output runs/kuramoto_cpu/eval_scipy.json
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
from scipy.integrate import ode

OMEGA_MIN, OMEGA_MAX = 1.0, 10.0
DT, SAMPLE_FREQ = 0.01, 10


def _vector_field(t: float, phi: np.ndarray, omega: np.ndarray, k: np.ndarray) -> np.ndarray:
    # k[i, j] = 1: oscillator j drives oscillator i.
    return omega + (k * np.sin(phi[None, :] - phi[:, None])).sum(axis=1)


def _minmax(x: np.ndarray) -> np.ndarray:
    """Each column of x [T, N] scaled to [-1, 1]; a constant column becomes 0."""
    low, high = x.min(axis=0), x.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return np.where(high > low, (x - low) * 2.0 / span - 1.0, 0.0)


def sample_trajectory(n: int, steps: int, rng: np.random.Generator, rtol: float):
    """(feat [N, T, 4] float32, edges [N, N] int64, raw) with T = steps // SAMPLE_FREQ - 1 and
    raw = {'phase': [N, T], 'dphase': [N, T], 'omega': [N]} float32 (unscaled)."""
    k = (rng.random((n, n)) < 0.5).astype(np.float64)
    np.fill_diagonal(k, 0.0)
    omega = rng.uniform(OMEGA_MIN, OMEGA_MAX, size=n)
    phi0 = rng.uniform(0.0, 2.0 * np.pi, size=n)
    solver = ode(_vector_field).set_integrator("dopri5", rtol=rtol, atol=rtol, nsteps=100000)
    solver.set_initial_value(phi0, 0.0).set_f_params(omega, k)
    phi = np.empty((steps, n))
    phi[0] = phi0
    for i in range(1, steps):
        phi[i] = solver.integrate(i * DT)
        if not solver.successful():
            raise RuntimeError(f"dopri5 failed at t = {i * DT}")
    # Successors' features: forward differences on the fine grid, then every 10th point; the
    # scaling spans every kept point, the last frame is dropped (99 frames from 1000 points).
    raw_velocity = (np.diff(phi, axis=0) / DT)[::SAMPLE_FREQ]
    phase = phi[:-1][::SAMPLE_FREQ]
    has_input = k.any(axis=1)
    velocity = np.where(has_input, _minmax(raw_velocity), 0.0)
    omega_scaled = np.broadcast_to(
        (omega - OMEGA_MIN) * 2.0 / (OMEGA_MAX - OMEGA_MIN) - 1.0, phase.shape
    )
    feat = np.stack([velocity, np.sin(phase), _minmax(phase), omega_scaled], axis=-1)
    frames = steps // SAMPLE_FREQ - 1
    raw = {
        "phase": phase[:frames].T.astype(np.float32),
        "dphase": raw_velocity[:frames].T.astype(np.float32),
        "omega": omega.astype(np.float32),
    }
    return feat[:frames].transpose(1, 0, 2).astype(np.float32), k.astype(np.int64), raw


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("train", "valid", "test"), default="test")
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--num_objects", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="default 1000 test, else 500")
    parser.add_argument("--rtol", type=float, default=1e-8, help="also atol")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    steps = args.steps or (1000 if args.split == "test" else 500)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = [sample_trajectory(args.num_objects, steps, rng, args.rtol) for _ in range(args.num)]
    seconds = time.perf_counter() - start
    sfx = f"_kuramoto{args.num_objects}"
    for i, prefix in enumerate(("feat", "edges")):
        _save(args.out / f"{prefix}_{args.split}{sfx}.npy", np.stack([r[i] for r in results]))
    for prefix in ("phase", "dphase", "omega"):
        _save(
            args.out / f"{prefix}_{args.split}{sfx}.npy", np.stack([r[2][prefix] for r in results])
        )
    print(
        f"{args.num} trajectories of {steps} points in {seconds:.1f} s "
        f"({seconds / args.num:.3f} s each) -> {args.out}"
    )


if __name__ == "__main__":
    main()
