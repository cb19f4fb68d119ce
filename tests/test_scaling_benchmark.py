"""benchmarks/scaling.py: its slope fit, its batch rule, and a tiny run's JSON line."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import scaling  # noqa: E402


def test_slope_recovers_a_power_law():
    objects = [20, 50, 100, 250]
    assert abs(scaling.slope(objects, [3e-4 * n**2 for n in objects]) - 2.0) < 1e-9
    assert abs(scaling.slope(objects, [n**3 + 0.0 for n in objects]) - 3.0) < 1e-9


def test_batches_shrink_with_the_edges():
    batches = [scaling.scaling_config(n, 8, 6, 2560).train.batch_size for n in (5, 10, 20, 50)]
    # 2560 edges a batch, rounded down to a power of two (20 -> 128, 90 -> 16, 380 -> 4, 2450 -> 1).
    assert batches == [128, 16, 4, 1]


def test_a_tiny_run_prints_rows_and_slopes(capsys):
    scaling.main(
        ["--objects", "6,12", "--hidden", "8", "--timesteps", "6", "--repeats", "1"]
        + ["--slope_from", "6", "--edges_per_run", "200", "--nohuge_pages"]
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["objects"] for row in result["rows"]] == [6, 12]
    assert all(row["ms_per_sample"] > 0 for row in result["rows"])
    # Memory per sample grows with the edges (30 -> 132), not with N^3.
    assert 1.0 < result["memory_slope"] < 2.3
    assert np.isfinite(result["time_slope"])
