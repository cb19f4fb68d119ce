"""A user's own trajectories: the format, read, checked and written (docs/usage.md).

A folder holds `train.npz`, `valid.npz` and optionally `test.npz`, each an npz archive of
- `trajectories` `[samples, objects, time, dims]`, real numbers (objects >= 2, dims >= 1,
  time >= 2);
- optionally `edges` `[samples, objects, objects]`, integer edge types with row = receiver and
  column = sender, the diagonal ignored (the layout of the original's `edges_*.npy`, REFERENCE.md
  §2; the values are the labels themselves, with no (x + 1) / 2 mapping).
Every split has the same objects and dims; frame counts may differ (a longer test split leaves
frames to predict). The same arrays can be given in memory, `{"train": (trajectories, edges or
None), ...}`. This module knows nothing of the model or the config: `nri_jax.data` normalises
what it returns and maps frames to the config.

Everything is checked on reading, and a problem raises a one-line ValueError (FileNotFoundError
for a missing file) naming the file, or `data['train']`, and the fix. Archives are opened with
`allow_pickle=False`: a dataset is data, never code.
"""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nri_jax import atomic

SPLITS = ("train", "valid", "test")
TRAJECTORIES, EDGES = "trajectories", "edges"
LAYOUT = "[samples, objects, time, dims]"


def file_name(split: str) -> str:
    """`train.npz`, `valid.npz`, `test.npz`."""
    return f"{split}.npz"


@dataclasses.dataclass(frozen=True)
class RawSplit:
    """One split as read and checked: `trajectories` `[samples, objects, time, dims]` (float64,
    unnormalised), `edges` `[samples, objects, objects]` (int64) or None; `source` names it in
    messages (a file path, or `data['train']` for arrays in memory)."""

    source: str
    trajectories: np.ndarray
    edges: np.ndarray | None

    @property
    def num_objects(self) -> int:
        return self.trajectories.shape[1]

    @property
    def dims(self) -> int:
        return self.trajectories.shape[3]


def check_split(source: str, trajectories: Any, edges: Any = None) -> RawSplit:
    """Check one split's arrays against the format; a RawSplit, or a one-line ValueError."""
    x = _real_array(source, TRAJECTORIES, trajectories)
    if x.ndim != 4:
        hint = "; one feature per object: add a trailing axis, x[..., None]" if x.ndim == 3 else ""
        raise ValueError(
            f"{source}: '{TRAJECTORIES}' must be {LAYOUT} (rank 4), not shape {x.shape}{hint}"
        )
    samples, objects, frames, dims = x.shape
    if samples < 1:
        raise ValueError(f"{source}: '{TRAJECTORIES}' holds no samples (shape {x.shape})")
    if objects < 2:
        raise ValueError(
            f"{source}: '{TRAJECTORIES}' holds {objects} object(s) (shape {x.shape}); NRI "
            f"infers interactions between >= 2: objects are axis 1 of {LAYOUT}"
        )
    if frames < 2:
        raise ValueError(
            f"{source}: '{TRAJECTORIES}' holds {frames} frame(s) (shape {x.shape}); the model "
            f"predicts frame t + 1 from frame t: time is axis 2 of {LAYOUT}"
        )
    if dims < 1:
        raise ValueError(f"{source}: '{TRAJECTORIES}' has no feature dims (shape {x.shape})")
    _check_finite(source, TRAJECTORIES, x)
    if edges is None:
        return RawSplit(source, x.astype(np.float64), None)
    return RawSplit(source, x.astype(np.float64), check_edges(source, edges, samples, objects))


def check_edges(source: str, edges: Any, samples: int, objects: int) -> np.ndarray:
    """Edge types `[samples, objects, objects]` as int64, or a one-line ValueError."""
    e = _real_array(source, EDGES, edges)
    if e.shape != (samples, objects, objects):
        raise ValueError(
            f"{source}: '{EDGES}' must be [samples, objects, objects] = "
            f"{(samples, objects, objects)} to match '{TRAJECTORIES}', not {e.shape}"
        )
    _check_finite(source, EDGES, e)
    if not np.array_equal(e, np.round(e)):
        raise ValueError(
            f"{source}: '{EDGES}' must hold integer edge types (0, 1, ...), found e.g. "
            f"{e[e != np.round(e)].flat[0]!r}"
        )
    return e.astype(np.int64)


def read_file(path: str | os.PathLike) -> RawSplit:
    """One split from an npz archive `path` (see the module docstring), checked."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable .npz archive ({_reason(e)}); {_SAVE}") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: holds one unnamed array, not an .npz archive; {_SAVE}")
    with archive:
        keys = set(archive.files)
        unknown = sorted(keys - {TRAJECTORIES, EDGES})
        if unknown:
            raise ValueError(
                f"{path}: unknown array(s) {', '.join(map(repr, unknown))}; the format holds "
                f"'{TRAJECTORIES}' and optionally '{EDGES}'"
            )
        if TRAJECTORIES not in keys:
            raise ValueError(f"{path}: no '{TRAJECTORIES}' array; {_SAVE}")
        arrays = {key: _load_member(path, archive, key) for key in sorted(keys)}
    return check_split(str(path), arrays[TRAJECTORIES], arrays.get(EDGES))


def from_arrays(source: str, value: Any) -> RawSplit:
    """One split given in memory: a tuple `(trajectories, edges or None)`, or `trajectories`
    alone (any array-like: a list is an array, never a pair)."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(
                f"{source}: expected (trajectories, edges or None), got a sequence of {len(value)}"
            )
        return check_split(source, value[0], value[1])
    return check_split(source, value)


def read_splits(
    source: str | os.PathLike | Mapping[str, Any],
    splits: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> dict[str, RawSplit]:
    """`splits` from a folder or an in-memory mapping, those in `optional` skipped if absent.

    All splits read must agree on objects and dims (they are one model's inputs).
    """
    out: dict[str, RawSplit] = {}
    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(SPLITS))
        if unknown:
            raise ValueError(
                f"data: unknown split(s) {', '.join(map(repr, unknown))}; use "
                f"{', '.join(map(repr, SPLITS))}"
            )
        for split in splits:
            if split in source:
                out[split] = from_arrays(f"data[{split!r}]", source[split])
            elif split not in optional:
                raise ValueError(f"data: no {split!r} split; give (trajectories, edges or None)")
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} is not a folder; own data is a folder of train.npz, valid.npz and "
                f"optionally test.npz (docs/usage.md)"
            )
        for split in splits:
            path = folder / file_name(split)
            if path.exists():
                out[split] = read_file(path)
            elif split not in optional:
                raise FileNotFoundError(
                    f"{path} not found; own data is a folder of train.npz, valid.npz and "
                    f"optionally test.npz (docs/usage.md)"
                )
    _check_agree(list(out.values()))
    return out


def write_split(
    path: str | os.PathLike, trajectories: np.ndarray, edges: np.ndarray | None = None
) -> None:
    """Write one split in the format, atomically (checked first, so it reads back)."""
    raw = check_split(str(path), trajectories, edges)
    arrays = {TRAJECTORIES: np.asarray(trajectories)}
    if raw.edges is not None:
        arrays[EDGES] = np.asarray(edges)

    def write(f) -> None:
        # np.savez to a buffer first: it would name a path argument's archive itself.
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        f.write(buffer.getvalue())

    atomic.write_with(path, write)


def write_dataset(folder: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Write `{"train": (trajectories, edges or None), ...}` as a folder of .npz files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    splits = read_splits(data, tuple(s for s in SPLITS if s in data), optional=SPLITS)
    for split, raw in splits.items():
        write_split(folder / file_name(split), raw.trajectories, raw.edges)
    return folder


_SAVE = f"save with np.savez(path, {TRAJECTORIES}=x, {EDGES}=e) or nri_jax.own_data.write_split"


def _reason(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _load_member(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as e:  # an object array: it would need pickle, which is never allowed
        raise ValueError(
            f"{path}: '{key}' is an object array, which loading would unpickle (refused); "
            f"save a numeric array, e.g. np.asarray(x, dtype=np.float32)"
        ) from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: '{key}' cannot be read ({_reason(e)}); write it again") from e


def _real_array(source: str, key: str, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray) and value.dtype == object:
        raise ValueError(f"{source}: '{key}' is an object array; give a numeric array")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:  # ragged nested lists
        raise ValueError(f"{source}: '{key}' is not a rectangular array ({_reason(e)})") from e
    if array.dtype == bool:
        array = array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{source}: '{key}' has dtype {array.dtype}; give real numbers")
    return array


def _check_finite(source: str, key: str, array: np.ndarray) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{source}: '{key}' holds {int(finite.size - finite.sum())} NaN/Inf values (first "
            f"at index {first}); remove or fill those samples"
        )


def _check_agree(splits: list[RawSplit]) -> None:
    if not splits:
        return
    first = splits[0]
    for split in splits[1:]:
        for what, mine, theirs in (
            ("objects", split.num_objects, first.num_objects),
            ("feature dims", split.dims, first.dims),
        ):
            if mine != theirs:
                raise ValueError(
                    f"{split.source}: {mine} {what} but {first.source} has {theirs}; every "
                    f"split needs the same objects and dims (axes 1 and 3 of {LAYOUT})"
                )
