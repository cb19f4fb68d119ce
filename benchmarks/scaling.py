"""Time and memory of a training sample against the number of objects N: is it O(N^2)?

    python benchmarks/scaling.py
    python benchmarks/scaling.py --objects 5,10,20,50,100,250 --hidden 64 --repeats 3

For each N, the compiled train step of springs with MLP encoder and MLP decoder (`--hidden`
units in both, the paper's 49 frames, M = 10, 2 edge types) on synthetic data of that shape
(`benchmarks/train_step.py`'s `TrainStep`). The batch shrinks as N grows so that a batch holds
about `--edges_per_batch` edges (a power of two, 1 to 128 samples); a timed run is at least 2
steps and about `--edges_per_run` edges, and the timed runs go round-robin over the N (all steps
compiled first), so that the machine's drifts hit every N alike. Reported per N: the batch, the
median seconds per training sample over `--repeats` runs (compile time apart), the compiled
step's memory per sample (XLA's memory analysis: temporaries, arguments and outputs, over the
batch) and the traced estimate train.py checks against free memory (`nri_jax.memory`). The last
line is one JSON object with all of it and the log-log slopes of time and memory per sample
against N from `--slope_from` objects on: 2 for O(N^2) work, 3 for the original's dense [E, N]
one-hot matmuls.
"""

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from train_step import TrainStep  # noqa: E402  (argparse here: train_step defines absl flags)

from nri_jax import host_memory, memory, training  # noqa: E402
from nri_jax.config import base_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", default="5,10,20,50,100,250", help="Object counts.")
    parser.add_argument("--hidden", type=int, default=64, help="Encoder and decoder units.")
    parser.add_argument("--timesteps", type=int, default=49, help="Frames per sample.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per N (median).")
    parser.add_argument("--edges_per_batch", type=int, default=2560, help="Edges a batch aims at.")
    parser.add_argument("--edges_per_run", type=int, default=20480, help="Edges a run aims at.")
    parser.add_argument("--slope_from", type=int, default=20, help="Fit slopes over N >= this.")
    parser.add_argument(
        "--nohuge_pages",
        dest="huge_pages",
        action="store_false",
        help="Do not restart with glibc's hugetlb tunable (train.py does).",
    )
    return parser.parse_args(argv)


def scaling_config(num_objects: int, hidden: int, timesteps: int, edges_per_batch: int):
    """The benchmark's config at N objects: MLP/MLP, `hidden` units, batch by edge budget."""
    config = base_config("springs")
    edges = num_objects * (num_objects - 1)
    batch = 2 ** max(0, int(math.floor(math.log2(max(1, edges_per_batch / edges)))))
    devices = jax.device_count()
    config.data.num_objects = num_objects
    config.model.hidden = config.model.decoder_hidden = hidden
    config.train.batch_size = max(devices, min(128, batch) // devices * devices)
    config.train.timesteps = timesteps
    config.train.prediction_steps = min(10, timesteps - 1)
    return config


def slope(objects: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(N)."""
    return float(np.polyfit(np.log(objects), np.log(values), 1)[0])


def prepare(config, edges_per_run: int) -> tuple[TrainStep, int]:
    """One N's compiled train step and its steps per timed run (about `edges_per_run` edges)."""
    n, batch = config.data.num_objects, config.train.batch_size
    steps = max(2, round(edges_per_run / (batch * n * (n - 1))))
    return TrainStep(config, steps), steps


def summarize(config, bench: TrainStep, steps: int, times: list[float]) -> dict:
    """One N's row: seconds and bytes per training sample."""
    n, batch = config.data.num_objects, config.train.batch_size
    stats = bench.compiled.memory_analysis()
    step_bytes = (
        stats.temp_size_in_bytes
        + stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        - stats.alias_size_in_bytes
    )
    # The dataset argument holds steps x batch samples: count one batch of it.
    step_bytes -= bench.features.nbytes + bench.labels.nbytes
    step_bytes += (bench.features.nbytes + bench.labels.nbytes) // steps
    model_loss = training.make_loss_fn(bench.model, config)
    estimate = memory.check_batch_fits(
        model_loss,
        bench.state,
        batch,
        bench.features.shape[1:],
        bench.labels.dtype,
        0,
        available=1 << 62,
    )
    per_sample_s = statistics.median(times) / (steps * batch)
    return {
        "objects": n,
        "edges": n * (n - 1),
        "batch_size": batch,
        "steps_per_run": steps,
        "compile_s": round(bench.compile_s, 1),
        "ms_per_sample": round(1e3 * per_sample_s, 4),
        "ms_per_sample_runs": [round(1e3 * t / (steps * batch), 4) for t in times],
        "compiled_mib_per_sample": round(step_bytes / batch / 2**20, 3),
        "estimated_mib_per_sample": round(estimate / batch / 2**20, 3),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.huge_pages:
        host_memory.restart_with_huge_pages()
    configs = [
        scaling_config(int(n), args.hidden, args.timesteps, args.edges_per_batch)
        for n in args.objects.split(",")
    ]
    prepared = [prepare(config, args.edges_per_run) for config in configs]
    # Round-robin over N: drifts of a shared machine's speed then hit every N alike, and the
    # slope compares like with like.
    times = [[] for _ in configs]
    for _ in range(args.repeats):
        for (bench, _), runs in zip(prepared, times, strict=True):
            runs.append(bench.run())
    rows = []
    for config, (bench, steps), runs in zip(configs, prepared, times, strict=True):
        row = summarize(config, bench, steps, runs)
        print(json.dumps(row), flush=True)
        rows.append(row)
    fit = [r for r in rows if r["objects"] >= args.slope_from]
    result = {
        "benchmark": "scaling",
        "config": f"springs MLP/MLP hidden {args.hidden}, {args.timesteps} frames, M=10",
        "devices": f"{jax.device_count()}x {jax.devices()[0].device_kind}",
        "dtype": "float32",
        "rows": rows,
        "slope_from_objects": args.slope_from,
    }
    if len(fit) >= 2:
        objects = [r["objects"] for r in fit]
        result["time_slope"] = round(slope(objects, [r["ms_per_sample"] for r in fit]), 3)
        result["memory_slope"] = round(
            slope(objects, [r["compiled_mib_per_sample"] for r in fit]), 3
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
