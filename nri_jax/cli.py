"""Shared behaviour of the command-line entry points."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

# Errors raised by our own code (bad config, bad or missing files) are the user's to fix and
# get one line; an error raised deep inside a library is a bug and keeps its traceback.
_OWN_CODE = tuple(str(Path(__file__).resolve().parents[1] / d) for d in ("nri_jax", "simulators"))


def quiet_logs() -> None:
    """Keep orbax's and absl's INFO chatter out of the terminal."""
    from absl import logging

    logging.set_verbosity(logging.WARNING)


def _raised_by_us(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and str(Path(frames[-1].filename).resolve()).startswith(_OWN_CODE)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Print `error: ...` and exit 1 for errors our code raises about the user's input.

    Set NRI_JAX_DEBUG=1 to see the full traceback instead.
    """
    quiet_logs()
    try:
        yield
    except (ValueError, OSError) as e:
        if os.environ.get("NRI_JAX_DEBUG") or not _raised_by_us(e):
            raise
        sys.exit(f"error: {e}")
