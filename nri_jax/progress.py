"""Progress inside an epoch: a tqdm bar on a terminal, plain lines in a batch job's log.

tqdm switches its bar off when stderr is not a terminal, which left a batch job's log empty
for a whole epoch (20 minutes for Kuramoto's paper protocol on 2 CPU cores). So when stdout is
not a terminal, `Progress` prints a line at least every `interval_s` seconds, and every
`every_steps` steps when that is set (on a terminal too, above the bar):

    epoch 38/46 step 148/156 | train nll 59.92 acc 0.7895 | 154 samples/s |
        epoch 0:00:03 left, run 0:08:40

(one line in the log). The running figures are the epoch's means so far; reading them is the
only host sync in the epoch, made only when a line is due.
"""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable, Mapping

import jax


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=max(0, round(seconds))))


class Progress:
    """Reports the steps of one run; `step(...)` after each dispatched train step."""

    def __init__(
        self,
        epochs: int,
        steps_per_epoch: int,
        batch_size: int,
        every_steps: int = 0,
        interval_s: float = 60.0,
        enabled: bool = True,
        labelled: bool = True,
        terminal: bool | None = None,
        write: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.epochs, self.steps_per_epoch, self.batch_size = epochs, steps_per_epoch, batch_size
        self.every_steps, self.interval_s = every_steps, interval_s
        self.enabled = enabled
        self.labelled = labelled  # without labels the accuracy is against placeholders
        if terminal is None:  # a stand-in for stdout (contextlib.redirect_stdout) may lack isatty
            terminal = getattr(sys.stdout, "isatty", lambda: False)()
        self.terminal = terminal
        self._write = write or (lambda line: print(line, flush=True))
        self._clock = clock
        self._bar = None
        self._last_time = clock()
        self._last_done = 0  # steps of the run done at the last line
        self._epoch = 0
        self._first = 0

    def start_epoch(self, epoch: int, first_step: int) -> None:
        """Epoch `epoch` (0-based) begins at its step `first_step` (> 0 when resumed)."""
        self._epoch = epoch
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.steps_per_epoch,
                initial=first_step,
                desc=f"epoch {epoch + 1}/{self.epochs}",
                leave=False,
                disable=None,  # off without a terminal on stderr
            )
        self._first = first_step
        self._last_time = self._clock()
        self._last_done = epoch * self.steps_per_epoch + first_step

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def step(self, done: int, sums: Mapping[str, jax.Array] | None) -> None:
        """Step `done` (1-based, of this epoch) was dispatched; `sums` are the epoch's sums."""
        if self._bar is not None:
            self._bar.update(1)
        if not self.enabled or (self.terminal and not self.every_steps):
            return
        if done == self._first + 1:
            # The rates start after the epoch's first step: the first compiles the step.
            jax.block_until_ready(sums)
            self._last_time = self._clock()
            self._last_done = self._epoch * self.steps_per_epoch + done
            if not self.every_steps or done % self.every_steps:
                return
        now = self._clock()
        by_steps = self.every_steps > 0 and done % self.every_steps == 0
        by_time = not self.terminal and now - self._last_time >= self.interval_s
        if by_steps or by_time:
            self._line(done, sums)

    def _line(self, done: int, sums: Mapping[str, jax.Array]) -> None:
        host = jax.device_get(sums)  # waits for the dispatched steps: the rate below is real
        now = self._clock()
        run_done = self._epoch * self.steps_per_epoch + done
        # Steps/s since the last line (or the epoch's first step); None on the first step.
        steps = run_done - self._last_done
        rate = steps / max(now - self._last_time, 1e-9) if steps else None
        self._last_time, self._last_done = now, run_done
        count = float(host["count"])
        figures = f"train nll {float(host['nll']) / count:.4g}"
        if "accuracy" in host and self.labelled:
            figures += f" acc {float(host['accuracy']) / count:.4f}"
        run_left = self.epochs * self.steps_per_epoch - run_done
        line = (
            f"epoch {self._epoch + 1}/{self.epochs} step {done}/{self.steps_per_epoch} | {figures}"
        )
        if rate:
            line += (
                f" | {rate * self.batch_size:.0f} samples/s | "
                f"epoch {_clock((self.steps_per_epoch - done) / rate)} left, "
                f"run {_clock(run_left / rate)}"
            )
        if self._bar is not None and not self._bar.disable:
            self._bar.write(line)  # above the bar
        else:
            self._write(line)
