"""Simulation throughput and full-dataset generation time.

    PYTHONPATH=. python benchmarks/simulate.py            # everything (several minutes)
    PYTHONPATH=. python benchmarks/simulate.py --skip_full --systems springs5,charged5

Sections:
  1. throughput: `generate_split` of train-length trajectories (springs/charged: 5000 steps,
     Kuramoto: as its generator does) at several chunk sizes, on all host devices and (particles)
     on one; compile time (first call after `jax.clear_caches()`, minus one steady chunk) apart
     from the steady state (median of --repeats runs of two chunks each).
  2. layouts (particles): ns per system-step of `simulate` with the batch minor (its own
     layout), with `jax.vmap` (batch leading), and with inner-scan unroll 2 and 5.
  3. full: wall time of `generate_dataset` for each paper-size dataset (50k/10k/10k) into a
     temporary directory, end to end from cleared caches (compilation and file writes
     included; not JAX's start-up).

Prints a table per section and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import jax

# One host device per core, as the CLI does; before JAX starts.
jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)

from nri_jax import generate  # noqa: E402
from nri_jax.config import base_config  # noqa: E402
from simulators import charged, springs  # noqa: E402

PARTICLES = {"springs": springs, "charged": charged}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def parse_system(name: str) -> tuple[str, int]:
    system = name.rstrip("0123456789")
    return system, int(name[len(system) :])


def split_fn(system: str):
    """`generate_split` of the system, or None if its module is missing (Kuramoto)."""
    if system in PARTICLES:
        return PARTICLES[system].generate_split
    try:
        from simulators import kuramoto
    except ImportError:
        return None
    return kuramoto.generate_split


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------------------


def throughput(name: str, chunk: int, repeats: int, devices) -> dict:
    system, n = parse_system(name)
    fn = split_fn(system)
    data = base_config(system).data
    args = (n, data.length, data.length_test, data.sample_freq, data.dt)
    kwargs = {} if devices is None else {"devices": devices}

    def run(num_sims, seed):
        fn(jax.random.key(seed), num_sims, *args, chunk, False, **kwargs)

    jax.clear_caches()  # So that compile_s is the whole cost of this configuration.
    first = timed(lambda: run(chunk, 0))  # Compiles (sampling and simulation) and runs a chunk.
    steady = [timed(lambda s=s: run(2 * chunk, s + 1)) for s in range(repeats)]
    per_chunk = statistics.median(steady) / 2
    return dict(
        system=name,
        chunk=chunk,
        devices=len(jax.local_devices()) if devices is None else len(devices),
        compile_s=round(max(first - per_chunk, 0.0), 2),
        steady_s=[round(t, 3) for t in steady],
        traj_per_s=round(chunk / per_chunk),
    )


def layouts(name: str, batch: int, repeats: int) -> list[dict]:
    system, n = parse_system(name)
    module = PARTICLES[system]
    keys = jax.random.split(jax.random.key(0), batch)
    loc0, vel0, weights, _ = jax.jit(jax.vmap(lambda k: module.sample_system(k, n)))(keys)
    frames = 10
    steps = batch * frames * 100
    variants = {
        "batch minor (simulate)": lambda: module.simulate(loc0, vel0, weights, num_frames=frames),
        "batch leading (vmap)": lambda: jax.vmap(
            lambda x, v, w: module.simulate(x, v, w, num_frames=frames)
        )(loc0, vel0, weights),
        "batch minor, unroll=2": lambda: module.simulate(
            loc0, vel0, weights, num_frames=frames, unroll=2
        ),
        "batch minor, unroll=5": lambda: module.simulate(
            loc0, vel0, weights, num_frames=frames, unroll=5
        ),
    }
    rows = []
    for variant, fn in variants.items():
        first = timed(lambda f=fn: jax.block_until_ready(f()))
        steady = statistics.median(
            timed(lambda f=fn: jax.block_until_ready(f())) for _ in range(repeats)
        )
        rows.append(
            dict(
                system=name,
                variant=variant,
                batch=batch,
                compile_s=round(max(first - steady, 0.0), 2),
                ns_per_system_step=round(steady / steps * 1e9, 2),
            )
        )
    return rows


def full_dataset(name: str, tmp_dir: str | None) -> dict | None:
    system, n = parse_system(name)
    if split_fn(system) is None:
        return None
    data = base_config(system).data
    data.num_objects = n
    jax.clear_caches()  # Cold start: compilation is part of the cost.
    with tempfile.TemporaryDirectory(dir=tmp_dir) as directory:
        data.dir = directory
        seconds = timed(lambda: generate.generate_dataset(data, progress=False))
        size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    return dict(
        system=name,
        trajectories=[data.num_train, data.num_valid, data.num_test],
        seconds=round(seconds, 1),
        megabytes=round(size / 2**20),
    )


# ----------------------------------------------------------------------------------------------


def table(rows: list[dict], columns: list[str]) -> str:
    cells = [[str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="springs5,charged5,springs10,kuramoto5")
    parser.add_argument("--chunks", default="1024,4096,8192", help="particle chunk sizes")
    parser.add_argument("--kuramoto_chunks", default="500,1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip_layouts", action="store_true")
    parser.add_argument("--skip_full", action="store_true", help="skip the paper-size datasets")
    parser.add_argument("--tmp_dir", default=None, help="where the full datasets are written")
    args = parser.parse_args()
    systems = args.systems.split(",")
    all_devices = jax.local_devices()

    machine = dict(
        cpu=cpu_model(),
        cores=os.cpu_count(),
        devices=len(all_devices),
        jax=jax.__version__,
        load_average=os.getloadavg(),
        command=" ".join(["python"] + sys.argv),
    )
    print(json.dumps(machine))
    results: dict = dict(machine=machine, throughput=[], layouts=[], full=[], skipped=[])

    for name in systems:
        system, _ = parse_system(name)
        if split_fn(system) is None:
            results["skipped"].append(f"{name}: simulators/{system}.py not found")
            continue
        chunk_sizes = args.kuramoto_chunks if system == "kuramoto" else args.chunks
        # Particles also on one device: what the second host device buys.
        device_sets = [None]
        if system in PARTICLES and len(all_devices) > 1:
            device_sets.append(all_devices[:1])
        for chunk in map(int, chunk_sizes.split(",")):
            for devices in device_sets:
                row = throughput(name, chunk, args.repeats, devices)
                results["throughput"].append(row)
                print(row, flush=True)
    print("\nThroughput (train-length trajectories)")
    columns = ["system", "chunk", "devices", "compile_s", "traj_per_s", "steady_s"]
    print(table(results["throughput"], columns))

    if not args.skip_layouts:
        for name in systems:
            if parse_system(name)[0] in PARTICLES:
                results["layouts"] += layouts(name, 4096, args.repeats)
        print("\nLayouts (one device, batch 4096, 1000 steps)")
        print(table(results["layouts"], ["system", "variant", "compile_s", "ns_per_system_step"]))

    if not args.skip_full:
        for name in systems:
            row = full_dataset(name, args.tmp_dir)
            if row is None:
                continue
            results["full"].append(row)
            print(row, flush=True)
        print("\nFull paper-size datasets (generate_dataset, end to end)")
        print(table(results["full"], ["system", "trajectories", "seconds", "megabytes"]))

    for note in results["skipped"]:
        print(f"skipped: {note}")
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
