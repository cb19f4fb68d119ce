"""Atomic file writes: a file that exists is complete (datasets, run metadata, eval.json).

Each write goes to a temporary file in the target's folder, is flushed to disk and renamed
over the target (`os.replace` is atomic on POSIX), so a killed process leaves the old file or
the new one, never a part of either. Checkpoints are orbax's, which does the same per step.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np


def write_with(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the permissions open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_with(path, lambda f: f.write(text.encode()))


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """`np.save` to `path` atomically (a plain array: loadable with allow_pickle=False)."""
    write_with(path, lambda f: np.save(f, array, allow_pickle=False))
