"""benchmarks/device.sh at CI size: every stdout line is one measure's JSON with its keys.

The figures at this size mean nothing; what is checked is that every measure runs on this
backend, reports every field, and measures positive rates (docs/benchmarks.md has the command
at full size).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMON = {"measure", "backend", "device_kind", "devices", "jax", "matmul_precision", "tiny"}
KEYS = {
    "matmul": {"dtype", "relative_error_512", "decoder_tflops", "square_tflops"},
    "train_step": {
        "config",
        "dtype",
        "compile_s",
        "step_ms",
        "samples_per_s",
        "matmul_tflops",
        "device_matmul_tflops",
        "matmul_fraction",
    },
    "generate": {"system", "chunk", "compile_s", "trajectories_per_s", "float_dtype"},
    "epoch": {
        "dtype",
        "generate_s",
        "first_epoch_s",
        "epoch_s",
        "samples_per_s",
        "protocol_epochs",
        "projected_s",
    },
}
RATES = {
    "matmul": ("decoder_tflops", "square_tflops"),
    "train_step": ("samples_per_s", "matmul_tflops", "device_matmul_tflops"),
    "generate": ("trajectories_per_s",),
    "epoch": ("epoch_s", "samples_per_s", "projected_s"),
}
# Lines per measure: two dtypes; two model pairs; three systems at one chunk size.
COUNTS = {"matmul": 2, "train_step": 4, "generate": 3, "epoch": 2}


@pytest.mark.benchmark
def test_device_benchmark_at_ci_size():
    env = dict(os.environ, PYTHON=sys.executable)
    out = subprocess.run(
        ["bash", "benchmarks/device.sh", "--tiny"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    records = [json.loads(line) for line in out.stdout.splitlines()]  # every line is JSON
    assert {m: sum(r["measure"] == m for r in records) for m in KEYS} == COUNTS
    for record in records:
        measure = record["measure"]
        assert COMMON | KEYS[measure] <= set(record), (measure, set(record))
        assert record["tiny"] is True and record["backend"] == "cpu"
        for key in RATES[measure]:
            assert record[key] > 0, (measure, key, record[key])
    assert {r["dtype"] for r in records if "dtype" in r} == {"float32", "bfloat16"}
