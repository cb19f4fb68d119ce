"""A plain-numpy generator in the style of the original NRI code, one trajectory at a time.

It follows REFERENCE.md §1 step for step (numpy RNG, float64, per-trajectory Python loop over
5000/10000 steps) and writes the original's files (`loc_{split}_springs5.npy` [S, T, 2, N],
`vel_...`, `edges_...` [S, N, N], float64). Two uses:

- a baseline for `benchmarks/simulate.py` (the original takes ~0.13 s per springs trajectory);
- an independent test split to check that a model trained on our data works on data written
  the original way (`eval.py --data_dir`), see docs/results.md.

    python benchmarks/original_numpy_generator.py --system springs --split test --num 1000 \
        --out data/original_springs5
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

BOX, DT, SAMPLE_FREQ = 5.0, 0.001, 100
MAX_F = 0.1 / DT


def _reflect(loc: np.ndarray, vel: np.ndarray) -> None:
    """In place: mirror positions back into the box, velocities pointing inward."""
    over = loc > BOX
    loc[over] = 2 * BOX - loc[over]
    vel[over] = -np.abs(vel[over])
    under = loc < -BOX
    loc[under] = -2 * BOX - loc[under]
    vel[under] = np.abs(vel[under])


def _force(system: str, loc: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """[2, N] forces, each component clipped to [-MAX_F, MAX_F]."""
    diff = loc[:, :, None] - loc[:, None, :]  # [2, N, N]: x_i - x_j
    if system == "springs":
        size = -0.1 * edges
    else:
        dist3 = np.sum(diff**2, axis=0) ** 1.5
        np.fill_diagonal(dist3, 1.0)
        size = edges / dist3
    size = size.copy()
    np.fill_diagonal(size, 0.0)
    return np.clip((size[None] * diff).sum(-1), -MAX_F, MAX_F)


def sample_trajectory(system: str, n: int, steps: int, rng: np.random.Generator):
    if system == "springs":
        edges = rng.choice([0.0, 1.0], size=(n, n))
        edges = np.tril(edges) + np.tril(edges, -1).T
        np.fill_diagonal(edges, 0.0)
        loc_std = 0.5
    else:
        charges = rng.choice([-1.0, 1.0], size=(n, 1))
        edges = charges @ charges.T
        loc_std = 1.0
    loc = rng.normal(size=(2, n)) * loc_std
    vel = rng.normal(size=(2, n))
    vel = vel * 0.5 / np.sqrt((vel**2).sum(0))
    _reflect(loc, vel)
    frames = steps // SAMPLE_FREQ - 1
    locs, vels = np.zeros((frames, 2, n)), np.zeros((frames, 2, n))
    vel += DT * _force(system, loc, edges)
    counter = 0
    for i in range(1, steps):
        loc += DT * vel
        _reflect(loc, vel)
        if i % SAMPLE_FREQ == 0:
            locs[counter], vels[counter] = loc, vel
            counter += 1
        vel += DT * _force(system, loc, edges)
    return locs, vels, edges


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=("springs", "charged"), default="springs")
    parser.add_argument("--split", choices=("train", "valid", "test"), default="test")
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--num_objects", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="default 10000 test, else 5000")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    steps = args.steps or (10000 if args.split == "test" else 5000)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = [
        sample_trajectory(args.system, args.num_objects, steps, rng) for _ in range(args.num)
    ]
    seconds = time.perf_counter() - start
    sfx = f"_{args.system}{args.num_objects}"
    for i, prefix in enumerate(("loc", "vel", "edges")):
        _save(args.out / f"{prefix}_{args.split}{sfx}.npy", np.stack([r[i] for r in results]))
    print(
        f"{args.num} trajectories of {steps} steps in {seconds:.1f} s "
        f"({seconds / args.num:.3f} s each) -> {args.out}"
    )


if __name__ == "__main__":
    main()
