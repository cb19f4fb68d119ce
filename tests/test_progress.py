"""Progress lines for batch jobs: when they are printed and what they say (a fake clock)."""

import jax.numpy as jnp

from nri_jax.progress import Progress


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sums(steps: int, batch: int = 4) -> dict:
    """Sums after `steps` steps whose batch NLL is 2.0 and accuracy 0.5."""
    n = steps * batch
    return {"nll": jnp.float32(2.0 * n), "accuracy": jnp.float32(0.5 * n), "count": n}


def _run(progress: Progress, clock: FakeClock, epochs: int, steps: int, seconds_per_step: float):
    for epoch in range(epochs):
        progress.start_epoch(epoch, 0)
        for done in range(1, steps + 1):
            clock.now += seconds_per_step
            progress.step(done, _sums(done))
        progress.end_epoch()


def test_without_a_terminal_a_line_at_least_every_interval():
    clock, lines = FakeClock(), []
    progress = Progress(
        2, 100, 4, enabled=True, terminal=False, write=lines.append, clock=clock, interval_s=60
    )
    _run(progress, clock, epochs=2, steps=100, seconds_per_step=2.0)  # 200 s per epoch
    # The clock restarts after each epoch's first step; then a line every 60 s = 30 steps.
    assert [line.split(" |")[0] for line in lines] == [
        f"epoch {e}/2 step {s}/100" for e in (1, 2) for s in (31, 61, 91)
    ]
    first = lines[0]
    assert "train nll 2 acc 0.5000" in first
    assert "| 2 samples/s |" in first  # 4 samples every 2 s
    # 69 steps of this epoch and 100 of the next left, at 0.5 steps/s.
    assert "epoch 0:02:18 left, run 0:05:38" in first


def test_every_steps_and_terminal_rules():
    clock, lines = FakeClock(), []
    progress = Progress(1, 10, 4, every_steps=5, terminal=True, write=lines.append, clock=clock)
    _run(progress, clock, epochs=1, steps=10, seconds_per_step=100.0)
    # On a terminal only the step count prints lines (time does not).
    assert [line.split(" |")[0] for line in lines] == [
        "epoch 1/1 step 5/10",
        "epoch 1/1 step 10/10",
    ]

    lines.clear()
    quiet = Progress(1, 10, 4, terminal=True, write=lines.append, clock=clock)
    _run(quiet, clock, epochs=1, steps=10, seconds_per_step=100.0)
    assert lines == []

    off = Progress(1, 10, 4, every_steps=1, enabled=False, terminal=False, write=lines.append)
    _run(off, clock, epochs=1, steps=10, seconds_per_step=100.0)
    assert lines == [], "only the lead process of a multi-host run reports"


def test_unlabelled_data_prints_no_accuracy():
    clock, lines = FakeClock(), []
    progress = Progress(
        1, 4, 4, every_steps=2, labelled=False, terminal=False, write=lines.append, clock=clock
    )
    _run(progress, clock, epochs=1, steps=4, seconds_per_step=1.0)
    assert lines and all("acc" not in line for line in lines)
