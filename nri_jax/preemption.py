"""Stopping a run cleanly on SIGTERM or SIGINT, at a step every process agrees on.

SLURM, Kubernetes and preemptible GPU/TPU VMs send SIGTERM some seconds before they take the
machine; Ctrl-C (or Colab's stop button) sends SIGINT. The training loop asks
`StopSignal.reached(step)` after dispatching each step; once it answers True the loop writes
a checkpoint and raises `Preempted`, and rerunning the same command resumes from it.

One process: a Python signal handler records the signal. Several processes: they must stop
at the same step or the checkpoint's collective writes would wait forever, so the signal is
left to the preemption notifier that `jax.distributed` installs for SIGTERM, and
`multihost_utils.reached_preemption_sync_point` makes every process answer True at the same
step. SIGINT is turned into that SIGTERM. A second signal of either kind gets the default
behaviour (a forced stop; the last checkpoint is still whole, orbax writes atomically).
"""

from __future__ import annotations

import os
import signal
import threading

import jax

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """Training stopped on a signal after writing a checkpoint; the same command resumes."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class StopSignal:
    """A context manager that catches SIGTERM/SIGINT for its duration (main thread only).

    Outside the main thread (where Python cannot install handlers) it never fires.
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._multihost = jax.process_count() > 1

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is not threading.main_thread():
            return self
        # Several processes: SIGTERM stays with jax.distributed's notifier (a Python handler
        # would replace it); only SIGINT is caught here and passed on to it.
        for signum in (signal.SIGINT,) if self._multihost else SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        self.signum = signum
        self._restore()  # a second signal stops the run at once
        if self._multihost:
            os.kill(os.getpid(), signal.SIGTERM)

    def reached(self, step: int) -> bool:
        """Whether to stop after `step` (the same answer on every process)."""
        if self._multihost:
            from jax.experimental import multihost_utils

            if multihost_utils.reached_preemption_sync_point(step):
                self.signum = self.signum or signal.SIGTERM
                return True
            return False
        return self.signum is not None
