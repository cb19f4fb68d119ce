"""One training run whatever the process count: 2 processes on localhost (one CPU device
each, Gloo collectives between them) against 1 process with 2 devices and 1 with 1.

Batches of the whole training split (32 samples), so each epoch is one step and the metric
log's per-epoch train losses are the per-step losses, in full precision.
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4
pytestmark = pytest.mark.multihost


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _command(data_dir: Path, workdir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "--config=configs/test.py",
        f"--config.data.dir={data_dir}",
        f"--workdir={workdir}",
        "--config.train.batch_size=32",
        f"--config.train.epochs={EPOCHS}",
        *extra,
    ]


def _env(devices: int) -> dict[str, str]:
    flags = os.environ.get("XLA_FLAGS", "")
    flags += f" --xla_force_host_platform_device_count={devices}"
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), XLA_FLAGS=flags.strip())


def _train(data_dir: Path, workdir: Path, devices: int) -> None:
    proc = subprocess.run(
        _command(data_dir, workdir), cwd=ROOT, env=_env(devices), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def _log(workdir: Path) -> list[dict]:
    return [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data_dir(tiny_data):  # conftest's tiny springs dataset
    return tiny_data


def _launch(
    data_dir: Path, workdir: Path, port: int, *extra: str, stderr=subprocess.DEVNULL
) -> list[subprocess.Popen]:
    """Start the 2 processes of one run (one CPU device each) on localhost:`port`."""
    return [
        subprocess.Popen(
            _command(
                data_dir,
                workdir,
                f"--coordinator_address=localhost:{port}",
                "--num_processes=2",
                f"--process_id={i}",
                *extra,
            ),
            cwd=ROOT,
            env=_env(1),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        for i in range(2)
    ]


def test_two_processes_train_as_one(data_dir, tmp_path):
    from nri_jax.evaluation import evaluate

    two = tmp_path / "two_processes"
    procs = _launch(data_dir, two, _free_port(), stderr=subprocess.PIPE)
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    # Process 0 alone prints the epoch lines.
    lead, other = (out for out, _ in outputs)
    assert lead.count("epoch    ") == EPOCHS and "epoch    " not in other

    one_two, one_one = tmp_path / "one_process_two_devices", tmp_path / "one_process"
    _train(data_dir, one_two, devices=2)
    _train(data_dir, one_one, devices=1)
    reference = _log(one_one)
    for run in (two, one_two):
        for got, want in zip(_log(run), reference, strict=True):
            for key in ("train_loss", "train_nll", "train_kl", "valid_nll", "valid_accuracy"):
                assert got[key] == pytest.approx(want[key], rel=1e-5), (run.name, key)
    results = [evaluate(run) for run in (two, one_two, one_one)]
    for result in results[:2]:
        for key in ("edge_accuracy", "nll", "kl"):
            assert result[key] == pytest.approx(results[2][key], rel=1e-5), key
        assert result["mse_per_step"] == pytest.approx(results[2]["mse_per_step"], rel=1e-4)


def test_sigterm_to_one_process_stops_both_at_one_step(data_dir, tmp_path):
    """The notice reaches one process; both stop after the same step, checkpoint once, and
    the rerun ends as a run that was never stopped (1 process, 1 device)."""
    small = ["--config.train.batch_size=2", "--config.train.epochs=2"]
    small += ["--config.train.log_every_steps=1"]
    workdir = tmp_path / "stopped"
    lead, other = _launch(data_dir, workdir, _free_port(), *small)
    lines = []
    for line in lead.stdout:
        lines.append(line)
        if line.startswith("epoch 1/2 step 3/16"):
            other.send_signal(signal.SIGTERM)
            break
    lines += lead.stdout.read().splitlines()
    other.stdout.read()
    assert lead.wait(timeout=120) == other.wait(timeout=120) == 128 + signal.SIGTERM
    # Where they stop depends on how fast the notice travels (within the epoch or at its end);
    # had they disagreed, the checkpoint's collective writes would never have completed.
    (stopped,) = [line for line in lines if line.startswith("stopped by signal 15 after")]
    assert "epoch    2" not in "".join(lines), "stopped before the run's end"

    for proc in _launch(data_dir, workdir, _free_port(), *small):
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
    straight = tmp_path / "straight"
    proc = subprocess.run(
        _command(data_dir, straight, *small), cwd=ROOT, env=_env(1), capture_output=True
    )
    assert proc.returncode == 0
    for got, want in zip(_log(workdir), _log(straight), strict=True):
        for key in ("train_loss", "train_nll", "valid_nll", "valid_accuracy"):
            assert got[key] == pytest.approx(want[key], rel=1e-5), key
