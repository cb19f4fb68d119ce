"""Interrupted runs resume to the uninterrupted run's result: SIGTERM (the batch system's
notice) mid-epoch, SIGKILL between two mid-epoch checkpoints, SIGINT at an epoch's end.

Each run is train.py in a subprocess on the tiny config, 16 steps per epoch, with a progress
line per step (train.log_every_steps = 1): the lines say where the run is, and a line is
printed only after its step has run (the progress line reads the step's metrics).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Seven train.py processes, each with its own JAX start-up and compilation (~80 s in all).
pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 16  # 32 training samples in batches of 2
METRICS = ("train_loss", "train_nll", "train_kl", "train_accuracy", "valid_nll", "valid_accuracy")


def _args(data_dir: Path, workdir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "--config=configs/test.py",
        f"--config.data.dir={data_dir}",
        f"--workdir={workdir}",
        "--config.train.batch_size=2",
        "--config.train.log_every_steps=1",
        *extra,
    ]


def _env() -> dict[str, str]:
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))


def _train(data_dir: Path, workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        _args(data_dir, workdir, *extra), cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    return proc


def _interrupt(data_dir: Path, workdir: Path, when: str, signum: int, *extra: str):
    """Start train.py, send `signum` once a stdout line starts with `when`; (code, stdout)."""
    proc = subprocess.Popen(
        _args(data_dir, workdir, *extra),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(when):
            proc.send_signal(signum)
            break
    lines += proc.stdout.read().splitlines()
    return proc.wait(timeout=120), lines


def _final(workdir: Path) -> dict:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2], "one line per epoch"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def data_dir(tiny_data):  # conftest's tiny springs dataset
    return tiny_data


@pytest.fixture(scope="module")
def straight(data_dir, tmp_path_factory):
    """The uninterrupted run's last metrics line."""
    workdir = tmp_path_factory.mktemp("straight")
    _train(data_dir, workdir)
    return _final(workdir)


def _same(resumed: dict, straight: dict) -> None:
    for key in METRICS:
        assert resumed[key] == pytest.approx(straight[key], rel=1e-6), key


def test_sigterm_mid_epoch_checkpoints_and_resumes(data_dir, straight, tmp_path):
    workdir = tmp_path / "run"
    code, lines = _interrupt(data_dir, workdir, "epoch 1/2 step 3/16", signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, lines
    (stopped,) = [line for line in lines if line.startswith("stopped by signal")]
    step = int(stopped.split("after train step ")[1].split()[0])
    assert 3 <= step < STEPS_PER_EPOCH, "stopped inside epoch 1, after the step it was in"
    assert "rerun the same command to resume" in stopped
    assert not [line for line in lines if line.startswith("epoch    1")], "epoch 1 not ended"
    resumed = _train(data_dir, workdir)
    assert f"resuming from {workdir} after epoch 0 and {step} steps" in resumed.stdout
    # The resumed part starts at the next step: no step is run twice or skipped.
    assert f"epoch 1/2 step {step + 1}/16 |" in resumed.stdout
    assert f"epoch 1/2 step {step}/16 |" not in resumed.stdout
    _same(_final(workdir), straight)


def test_sigkill_between_mid_epoch_checkpoints_resumes(data_dir, straight, tmp_path):
    workdir = tmp_path / "run"
    every = ["--config.train.checkpoint_every_steps=4"]
    # Step 25 is epoch 2's step 9. Its line comes after the save of step 24 began, and orbax
    # starts a save only once the one before it (step 20) is complete: the kill falls after
    # the checkpoint of step 20 and before or while that of step 24 is written.
    code, _ = _interrupt(data_dir, workdir, "epoch 2/2 step 9/16", signal.SIGKILL, *every)
    assert code == -signal.SIGKILL
    from nri_jax import checkpoints

    latest, _ = checkpoints.managers(workdir)
    step = latest.latest_step()
    assert step in (20, 24), step
    resumed = _train(data_dir, workdir, *every)
    within = step - STEPS_PER_EPOCH
    assert f"resuming from {workdir} after epoch 1 and {within} steps" in resumed.stdout
    _same(_final(workdir), straight)


def test_sigint_is_a_clean_stop_too(data_dir, straight, tmp_path):
    """Ctrl-C (or a notebook's interrupt): the same checkpoint and exit, status 130."""
    workdir = tmp_path / "run"
    code, lines = _interrupt(data_dir, workdir, "epoch 1/2 step 10/16", signal.SIGINT)
    assert code == 128 + signal.SIGINT, lines
    assert [line for line in lines if line.startswith("stopped by signal 2 after")], lines
    _train(data_dir, workdir)
    _same(_final(workdir), straight)
