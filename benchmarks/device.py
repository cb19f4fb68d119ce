"""The device benchmark: one JSON line per measure, on whatever backend JAX finds.

    bash benchmarks/device.sh           # paper settings (a few minutes on a GPU)
    bash benchmarks/device.sh --tiny    # CI sizes (tests/test_device_benchmark.py)

`benchmarks/device.sh` runs this script once per measure, each in a fresh process (generation
wants one host device per CPU core, training one device), with the same arguments:

- `--measure matmul`: the device's matmul rate per `model.dtype`, as the model runs its
  matmuls (float32, or bfloat16 operands with a float32 result), on the paper's decoder shape
  [12800, 256] x [256, 256] and on a square [4096, 4096] x [4096, 4096]; and each dtype's
  relative error on a [512, 512] x [512, 512] product against float64, which says what the
  float32 matmuls computed in (~1e-7: float32; ~1e-3: TF32 or one bfloat16 pass).
- `--measure train_step`: the compiled train step at the paper's settings (configs/springs.py:
  batch 128, 256 units, M = 10) for MLP/MLP and CNN/RNN, each `--dtypes` value timed
  alternately in one process; compile time apart; the matmul rate of the decoder's shape in
  the same dtype measured right after, and the step's hand-counted matmul work against it.
- `--measure generate`: dataset generation (`generate_split`, train length) for springs5,
  charged5 and kuramoto5, trajectories per second at two chunk sizes, compile time apart.
- `--measure epoch`: the springs5 paper protocol (configs/springs.py, 50k training
  trajectories) through `training.train_and_evaluate` for `--epochs` epochs per dtype: the
  dataset's generation time, the first epoch (compilation included), the steady epoch (the
  interval between consecutive epoch lines: steps, validation, metrics and checkpoints), and
  the projected 500-epoch total, first + 499 steady (the test evaluation not included).

Matmuls in float32 use `jax_default_matmul_precision` as it is set, which is what train.py
runs with: JAX's default (`default` in the JSON) leans toward speed, TF32 on recent NVIDIA
GPUs and bfloat16 passes on TPUs per JAX's docs; `--matmul_precision highest` asks for full
float32. Every line carries the backend, the device kind and the precision setting. Rates are
medians of `--repeats` timed runs; matmul rates come from one compiled loop of matmuls long
enough (>= 0.2 s) for the device's own rate, not the launch latency, to dominate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

MEASURES = ("matmul", "train_step", "generate", "epoch")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", choices=MEASURES, required=True)
    parser.add_argument("--tiny", action="store_true", help="CI sizes: seconds, not minutes")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="model.dtype values")
    parser.add_argument(
        "--matmul_precision",
        default=None,
        help="jax_default_matmul_precision to set (default: as JAX has it)",
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the epoch measure")
    parser.add_argument("--data_dir", default=None, help="springs5 dataset folder to (re)use")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    return parser.parse_args(argv)


ARGS = parse_args()

from nri_jax import host_memory  # noqa: E402

if ARGS.measure != "generate":
    host_memory.restart_with_huge_pages()  # as train.py does (CPU only)
if ARGS.measure == "generate":
    import simulate  # noqa: E402, F401  (one host device per core, as the generate CLI)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

if ARGS.matmul_precision is not None:
    jax.config.update("jax_default_matmul_precision", ARGS.matmul_precision)


def common() -> dict:
    """What every line says about where and how it ran."""
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "devices": len(devices),
        "jax": jax.__version__,
        "matmul_precision": jax.config.jax_default_matmul_precision or "default",
        "tiny": ARGS.tiny,
    }


def emit(measure: str, fields: dict) -> None:
    print(json.dumps({"measure": measure, **fields, **common()}), flush=True)


def repeats(default: int) -> int:
    return ARGS.repeats or (2 if ARGS.tiny else default)


def dtypes() -> list[str]:
    return ARGS.dtypes.split(",")


# Matmuls.


def matmul_tflops(rows: int, inner: int, cols: int, dtype: str, timed: int) -> float:
    """TFLOP/s of [rows, inner] x [inner, cols] in the model's form for `dtype`.

    One compiled loop of k matmuls, each result fed back through an orthogonal [inner, cols]
    factor (cols == inner) so values stay bounded; k grows until a call takes >= 0.2 s.
    """
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.random.normal(key_a, (rows, inner), jnp.float32).astype(dtype)
    b = jnp.linalg.qr(jax.random.normal(key_b, (inner, cols), jnp.float32))[0].astype(dtype)

    @jax.jit
    def loop(a, b, k):
        def body(_, x):
            return lax.dot(x, b, preferred_element_type=jnp.float32).astype(dtype)

        return lax.fori_loop(0, k, body, a)

    k = 1
    while True:
        start = time.perf_counter()
        jax.block_until_ready(loop(a, b, k))
        seconds = time.perf_counter() - start
        if seconds >= 0.2 or k >= 1 << 16 or ARGS.tiny:
            break
        k *= 4 if seconds < 0.05 else 2
    times = []
    for _ in range(timed):
        start = time.perf_counter()
        jax.block_until_ready(loop(a, b, k))
        times.append(time.perf_counter() - start)
    return 2 * rows * inner * cols * k / statistics.median(times) / 1e12


def matmul_error(dtype: str, size: int = 512) -> float:
    """max |A B - (A B)_float64| / max |(A B)_float64| for normal A, B in the model's form."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, size, size)).astype(np.float32)
    out = jax.jit(
        lambda a, b: lax.dot(a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)
    )(a, b)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    return float(np.abs(np.asarray(out, np.float64) - exact).max() / np.abs(exact).max())


def measure_matmul() -> None:
    shapes = {"decoder": (512, 256, 256), "square": (256, 256, 256)}
    if not ARGS.tiny:
        shapes = {"decoder": (12800, 256, 256), "square": (4096, 4096, 4096)}
    for dtype in dtypes():
        fields = {"dtype": dtype, "relative_error_512": float(f"{matmul_error(dtype):.3g}")}
        for name, shape in shapes.items():
            fields[f"{name}_shape"] = list(shape)
            tflops = matmul_tflops(*shape, dtype, repeats(5))
            fields[f"{name}_tflops"] = _sig(tflops)
        emit("matmul", fields)


# Train step.


def paper_config(encoder: str, decoder: str):
    from configs import springs, test

    config = (test if ARGS.tiny else springs).get_config()
    config.model.encoder, config.model.decoder = encoder, decoder
    if ARGS.tiny and encoder == "cnn":  # it needs 14 frames; configs/test.py has 9
        config.train.timesteps = 16
    return config


def measure_train_step() -> None:
    import train_step

    steps = 2 if ARGS.tiny else 10
    for encoder, decoder in (("mlp", "mlp"), ("cnn", "rnn")):
        benches = []
        for dtype in dtypes():
            config = paper_config(encoder, decoder)
            config.model.dtype = dtype
            benches.append(train_step.TrainStep(config, steps))
        times = [[] for _ in benches]
        for _ in range(repeats(3)):  # alternately, so that drifts hit every dtype alike
            for i, bench in enumerate(benches):
                times[i].append(bench.run())
        for bench, runs in zip(benches, times, strict=True):
            config = bench.config
            batch = config.train.batch_size
            n = config.data.num_objects
            starts = -(-(config.train.timesteps - 1) // config.train.prediction_steps)
            rows = config.train.batch_size * starts * n * (n - 1)
            hidden = config.model.decoder_hidden
            device_tflops = matmul_tflops(rows, hidden, hidden, config.model.dtype, repeats(5))
            step_s = statistics.median(runs) / steps
            achieved = bench.flops / step_s / 1e12
            emit(
                "train_step",
                {
                    "config": f"springs{n} {encoder}/{decoder}",
                    "dtype": config.model.dtype,
                    "batch_size": batch,
                    "hidden": config.model.hidden,
                    "decoder_hidden": hidden,
                    "compile_s": round(bench.compile_s, 2),
                    "step_ms": round(1e3 * step_s, 3),
                    "step_ms_runs": [round(1e3 * t / steps, 3) for t in runs],
                    "samples_per_s": round(batch / step_s, 1),
                    "matmul_gflop_per_sample": round(
                        bench.flops / config.train.batch_size / 1e9, 4
                    ),
                    "matmul_tflops": _sig(achieved),
                    "device_matmul_tflops": _sig(device_tflops),
                    "matmul_fraction": round(achieved / device_tflops, 3),
                },
            )


# Generation.


def measure_generate() -> None:
    from simulators import kuramoto

    chunks = {"particles": (1024, 8192), "kuramoto": (1000, 8000)}
    if ARGS.tiny:
        chunks = {"particles": (32,), "kuramoto": (32,)}
    float_dtype = "float64" if kuramoto.float64_supported(jax.local_devices()) else "float32"
    for name in ("springs5", "charged5", "kuramoto5"):
        group = "kuramoto" if name.startswith("kuramoto") else "particles"
        for chunk in chunks[group]:
            row = simulate.throughput(name, chunk, repeats(3), None)
            fields = {
                "system": name,
                "chunk": chunk,
                "host_devices": row["devices"],
                "compile_s": row["compile_s"],
                "steady_s": row["steady_s"],
                "trajectories_per_s": row["traj_per_s"],
            }
            if group == "kuramoto":
                fields["float_dtype"] = float_dtype
            else:
                fields["float_dtype"] = "float32"
            emit("generate", fields)


# The springs5 paper protocol's epoch.


def _sig(x: float) -> float:
    """4 significant digits: tiny CI-size rates must not round to 0."""
    return float(f"{x:.4g}")


class EpochClock:
    """A stdout stand-in that forwards to stderr and notes when each epoch line is printed."""

    def __init__(self):
        self.times: list[float] = []
        self._partial = ""

    def write(self, text: str) -> int:
        sys.stderr.write(text)
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        # Epoch-end lines ("epoch    3 | ..."), not progress lines ("epoch 3/500 step ...").
        self.times += [time.perf_counter() for line in lines if re.match(r"epoch +\d+ \|", line)]
        return len(text)

    def isatty(self) -> bool:
        return True  # no progress lines: only the epoch-end lines are timed

    def flush(self) -> None:
        sys.stderr.flush()


def measure_epoch() -> None:
    from nri_jax import generate, training

    with tempfile.TemporaryDirectory(prefix="nri_device_") as tmp:
        for dtype in dtypes():
            config = paper_config("mlp", "mlp")
            protocol_epochs = config.train.epochs
            config.train.epochs = ARGS.epochs
            config.model.dtype = dtype
            config.data.dir = ARGS.data_dir or os.path.join(tmp, "data")
            start = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):
                generate.ensure_dataset(config.data, training.TRAINING_SPLITS)
            generate_s = time.perf_counter() - start
            clock = EpochClock()
            start = time.perf_counter()
            with contextlib.redirect_stdout(clock):
                training.train_and_evaluate(config, os.path.join(tmp, f"run_{dtype}"))
            total_s = time.perf_counter() - start
            first_s = clock.times[0] - start
            intervals = list(np.diff(clock.times))
            epoch_s = statistics.median(intervals) if intervals else first_s
            emit(
                "epoch",
                {
                    "config": f"springs{config.data.num_objects} mlp/mlp",
                    "dtype": dtype,
                    "num_train": config.data.num_train,
                    "batch_size": config.train.batch_size,
                    "epochs_run": ARGS.epochs,
                    "generate_s": round(generate_s, 2),
                    "first_epoch_s": round(first_s, 2),
                    "epoch_s": round(epoch_s, 3),
                    "epoch_s_runs": [round(float(t), 3) for t in intervals],
                    "samples_per_s": round(config.data.num_train / epoch_s, 1),
                    "run_s": round(total_s, 2),
                    "protocol_epochs": protocol_epochs,
                    "projected_s": round(first_s + (protocol_epochs - 1) * epoch_s, 1),
                },
            )


def main() -> None:
    {
        "matmul": measure_matmul,
        "train_step": measure_train_step,
        "generate": measure_generate,
        "epoch": measure_epoch,
    }[ARGS.measure]()


if __name__ == "__main__":
    main()
