"""A run's metric log: one JSON line per epoch in `metrics.jsonl`, and TensorBoard events."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from nri_jax import atomic

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
    """Appends an epoch's metrics to `workdir/metrics.jsonl` and to event files in `tb/`.

    On a resumed run, lines of epochs that the restored checkpoint does not hold (a run killed
    after logging, before its checkpoint was written) are dropped first, so the log has one
    line per completed epoch.
    """

    def __init__(self, workdir: Path, completed_epochs: int = 0):
        from tensorboardX import SummaryWriter

        self.path = workdir / METRICS_FILE
        _truncate(self.path, completed_epochs)
        self.tb = SummaryWriter(str(workdir / "tb"))

    def write(self, epoch: int, metrics: Mapping[str, float]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch, **metrics}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        for name, value in metrics.items():
            self.tb.add_scalar(name.replace("_", "/", 1), value, epoch)
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()


def read(workdir: str | os.PathLike) -> list[dict]:
    """The logged epochs of a run, in order."""
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate(path: Path, completed_epochs: int) -> None:
    if not path.exists():
        return
    kept = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in kept if json.loads(ln)["epoch"] <= completed_epochs]
    atomic.write_text(path, "".join(ln + "\n" for ln in kept))
