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


def _one_line(error: BaseException) -> str:
    """An exception's message on one line (ml_collections' messages are repr'd and multi-line)."""
    text = str(error)
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":  # a repr'd message
        text = text[1:-1].replace("\\n", "\n").replace("\\'", "'")
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing (`app.run(main, flags_parser=parse_flags)`) with one-line errors.

    Covers unknown flags and bad values, `--config.x.y=...` overrides that name no config key
    or do not parse, and a `--config` file that does not load (ml_collections defers that
    error to the config's first use, deep inside the job).
    """
    from absl import flags

    try:
        args = flags.FLAGS(argv)
    except flags.Error as e:
        sys.exit(f"error: {_one_line(e)} (--help lists the flags)")
    except (AttributeError, KeyError) as e:
        # Raised by ml_collections for a --config.* override naming no config key.
        sys.exit(f"error: --config override: no such config key {_one_line(e)}")
    except (TypeError, ValueError) as e:
        sys.exit(f"error: --config override: {_one_line(e)}")
    if "config" in flags.FLAGS and flags.FLAGS["config"].value is not None:
        try:
            hasattr(flags.FLAGS["config"].value, "lock")  # a failed load raises on any access
        except OSError as e:
            reason = str(e).strip().splitlines()[-1].strip()  # the cause is the last line
            sys.exit(f"error: --config={flags.FLAGS['config'].config_filename}: {reason}")
    return args
