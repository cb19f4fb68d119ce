"""Generate an NRI dataset in the original file format (REFERENCE.md §1).

    python -m simulators.generate --config configs/springs.py
    python -m simulators.generate --config configs/springs.py --config.data.num_objects=10
    python -m simulators.generate --config configs/charged.py --config.data.dir=/tmp/charged

Only `config.data` is read. Files go to `data.dir`, named as the original named them:
springs/charged `{loc,vel,edges}_{split}_{system}{N}.npy` (loc/vel [S, T, 2, N], edges
[S, N, N] float64), Kuramoto `{feat,edges,...}_{split}_kuramoto{N}.npy`. The original saved
loc/vel as float64; here they are float32 (the simulation's precision; half the disk), and the
loaders accept both. Train and valid have `length` steps, test `length_test`.

Every file is written to a temporary name in `data.dir` and renamed into place, so a file that
exists is complete; `manifest_{system}{N}.json` (the data config and the file shapes) is
written last. An existing dataset that matches the config is reused; files that do not match
stop the run with an error (nothing is ever overwritten silently).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import pathlib
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

SYSTEMS = ("springs", "charged", "kuramoto")
SPLITS = ("train", "valid", "test")  # Index = `fold_in` of the data key: fixed per split.
# Files that make up one split, by file-name prefix (Kuramoto may add more).
_PREFIXES = {
    "springs": ("loc", "vel", "edges"),
    "charged": ("loc", "vel", "edges"),
    "kuramoto": ("feat", "edges"),
}
# Integer config fields that, with system and dt, determine the data (`dir` is where it lives).
_SETTINGS = (
    "num_objects",
    "num_train",
    "num_valid",
    "num_test",
    "length",
    "length_test",
    "sample_freq",
    "seed",
)


def suffix(system: str, num_objects: int) -> str:
    """File-name suffix of the original: `_springs5`, `_charged10`, `_kuramoto5`."""
    return f"_{system}{num_objects}"


def num_frames(length: int, sample_freq: int) -> int:
    """Recorded frames of a `length`-step run: steps sample_freq, 2 sample_freq, ... < length."""
    return length // sample_freq - 1


# ----------------------------------------------------------------------------------------------
# Validation.


def _get(data_config: Any, field: str) -> Any:
    try:
        return data_config[field]
    except (KeyError, AttributeError, TypeError):
        raise ValueError(f"config.data.{field}: missing") from None


def _check_int(data_config: Any, field: str, minimum: int, what: str = "") -> int:
    value = _get(data_config, field)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(
            f"config.data.{field}: must be an integer >= {minimum}{what}, got {value!r}"
        )
    return int(value)


def validate_data_config(data_config: Any) -> None:
    """Check `config.data` before any work; raise ValueError naming the field and what is allowed.

    Creates `data.dir` if needed and checks that a file can be written there.
    """
    system = _get(data_config, "system")
    if system not in SYSTEMS:
        raise ValueError(f"config.data.system: unknown system {system!r}; use one of {SYSTEMS}")
    _check_int(data_config, "num_objects", 2)
    _check_int(data_config, "num_train", 1, " (the training split sets the normalisation)")
    _check_int(data_config, "num_valid", 0)
    _check_int(data_config, "num_test", 0)
    _check_int(data_config, "seed", 0)
    sample_freq = _check_int(data_config, "sample_freq", 1)
    for field in ("length", "length_test"):
        length = _check_int(data_config, field, 1)
        if length % sample_freq or num_frames(length, sample_freq) < 1:
            raise ValueError(
                f"config.data.{field}: must be a multiple of sample_freq={sample_freq} of at "
                f"least {2 * sample_freq} (frames are steps sample_freq, 2 sample_freq, ... "
                f"< length), got {length}"
            )
    dt = _get(data_config, "dt")
    if isinstance(dt, bool) or not isinstance(dt, int | float) or not (0 < dt < math.inf):
        raise ValueError(f"config.data.dt: must be a positive number, got {dt!r}")
    data_dir = pathlib.Path(_get(data_config, "dir"))
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as e:
        raise ValueError(
            f"config.data.dir: cannot write to {str(data_dir)!r} ({e.strerror or e}); "
            "choose a writable directory"
        ) from None


# ----------------------------------------------------------------------------------------------
# Files.


def _num_sims(data_config: Any, split: str) -> int:
    return int(data_config[f"num_{split}"])


def _split_length(data_config: Any, split: str) -> int:
    return int(data_config["length_test" if split == "test" else "length"])


def dataset_files(data_config: Any) -> dict[str, list[pathlib.Path]]:
    """The files of each non-empty split, e.g. {'train': [loc, vel, edges paths], ...}.

    Kuramoto may write extra arrays next to these; only the listed ones define a split.
    """
    system, n = data_config["system"], data_config["num_objects"]
    if system not in _PREFIXES:
        raise ValueError(f"config.data.system: unknown system {system!r}; use one of {SYSTEMS}")
    data_dir = pathlib.Path(data_config["dir"])
    return {
        split: [data_dir / f"{p}_{split}{suffix(system, n)}.npy" for p in _PREFIXES[system]]
        for split in SPLITS
        if _num_sims(data_config, split) > 0
    }


def manifest_path(data_config: Any) -> pathlib.Path:
    """`manifest_{system}{N}.json` in `data.dir`: the settings and shapes of a finished dataset."""
    name = f"{data_config['system']}{data_config['num_objects']}"
    return pathlib.Path(data_config["dir"]) / f"manifest_{name}.json"


def _expected_shape(data_config: Any, split: str, prefix: str) -> tuple[int | None, ...]:
    """The shape a file must have; None matches any size (Kuramoto's feature count)."""
    s, n = _num_sims(data_config, split), data_config["num_objects"]
    t = num_frames(_split_length(data_config, split), data_config["sample_freq"])
    shapes = {"loc": (s, t, 2, n), "vel": (s, t, 2, n), "feat": (s, n, t, None), "edges": (s, n, n)}
    return shapes[prefix]


def _shape_matches(shape: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(shape) == len(expected) and all(
        e is None or a == e for a, e in zip(shape, expected, strict=True)
    )


@dataclasses.dataclass
class _SplitStatus:
    present: bool  # Every file exists with the expected shape.
    missing: list[pathlib.Path]
    mismatched: list[str]  # "path: shape (expected ...)" descriptions.


def _split_status(data_config: Any, split: str, paths: list[pathlib.Path]) -> _SplitStatus:
    missing, mismatched = [], []
    for path, prefix in zip(paths, _PREFIXES[data_config["system"]], strict=True):
        if not path.exists():
            missing.append(path)
            continue
        expected = _expected_shape(data_config, split, prefix)
        try:
            shape = np.load(path, mmap_mode="r").shape  # Reads the header only.
        except (OSError, ValueError) as e:
            mismatched.append(f"{path}: unreadable ({e})")
            continue
        if not _shape_matches(shape, expected):
            want = tuple("*" if e is None else e for e in expected)
            mismatched.append(f"{path}: shape {shape}, expected {want}")
    return _SplitStatus(not missing and not mismatched, missing, mismatched)


def _save_atomic(path: pathlib.Path, write: Callable[[Any], None]) -> None:
    """Write via a temporary file in the same directory, then rename: never a partial `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        # mkstemp makes the file private (0600); give it the permissions open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _settings(data_config: Any) -> dict[str, Any]:
    """The fields that determine the data, as plain JSON types (recorded in the manifest)."""
    settings = {field: int(data_config[field]) for field in _SETTINGS}
    return settings | {"system": str(data_config["system"]), "dt": float(data_config["dt"])}


# ----------------------------------------------------------------------------------------------
# Generation.


def _generate_split_fn(system: str) -> Callable[..., dict[str, np.ndarray]]:
    """`generate_split` of the system's module, imported only when needed (lazy Kuramoto)."""
    return importlib.import_module(f"simulators.{system}").generate_split


def generate_dataset(
    data_config: Any, progress: bool = True, chunk_size: int | None = None
) -> pathlib.Path:
    """Write (or reuse) the dataset described by `data_config`; return its directory.

    Deterministic: trajectory i of split s comes from `fold_in(fold_in(key(seed), s), i)`, with
    s the split's index in `SPLITS`, so files depend on neither chunk size nor device count.

    Args:
      data_config: `config.data` (system, num_objects, num_train, num_valid, num_test, length,
        length_test, sample_freq, seed, dir, dt).
      progress: show a progress bar per split.
      chunk_size: trajectories per compiled chunk; None for the system's default.

    Raises:
      ValueError: invalid config, or files in `data.dir` that do not match it.
    """
    validate_data_config(data_config)
    import jax  # After validation: bad input fails fast, without starting JAX.

    settings = _settings(data_config)
    system, n = settings["system"], settings["num_objects"]
    name = f"{system}{n}"
    data_dir = pathlib.Path(data_config["dir"])
    files = dataset_files(data_config)
    manifest = manifest_path(data_config)

    if manifest.exists():
        try:
            recorded = json.loads(manifest.read_text())["data"]
            changed = [
                f"{k}={recorded.get(k)!r} (config: {v!r})"
                for k, v in settings.items()
                if recorded.get(k) != v
            ]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(
                f"config.data.dir: unreadable {manifest} ({e}); delete it to regenerate"
            ) from None
        if changed:
            raise ValueError(
                f"config.data.dir: {str(data_dir)!r} holds a {name} dataset generated with other "
                f"settings: {', '.join(changed)}; pick another data.dir or delete its {name} files"
            )

    status = {split: _split_status(data_config, split, paths) for split, paths in files.items()}
    mismatched = [m for s in status.values() for m in s.mismatched]
    if mismatched:
        raise ValueError(
            f"config.data.dir: existing files do not match the config ({'; '.join(mismatched)}); "
            f"pick another data.dir or delete the {name} files there"
        )
    todo = [split for split, s in status.items() if not s.present]
    for split, s in status.items():
        if s.present:
            how = "" if manifest.exists() else " (no manifest: matched by shape only)"
            print(f"{name} {split}: reusing the files in {data_dir}{how}")
        elif len(s.missing) < len(files[split]):
            missing = ", ".join(p.name for p in s.missing)
            print(f"{name} {split}: incomplete (missing {missing}); regenerating the split")
    if not todo:
        return data_dir

    generate_split = _generate_split_fn(system)
    chunking = {} if chunk_size is None else {"chunk_size": chunk_size}
    key = jax.random.key(settings["seed"])
    for split in todo:
        num_sims, length = _num_sims(settings, split), _split_length(settings, split)
        print(f"{name} {split}: simulating {num_sims} trajectories of {length} steps")
        arrays = generate_split(
            jax.random.fold_in(key, SPLITS.index(split)),
            num_sims,
            n,
            length,
            settings["length_test"],
            settings["sample_freq"],
            settings["dt"],
            progress=progress,
            **chunking,
        )
        for prefix, array in arrays.items():
            path = data_dir / f"{prefix}_{split}{suffix(system, n)}.npy"
            _save_atomic(path, lambda f, a=array: np.save(f, a))
        print(f"{name} {split}: wrote {', '.join(sorted(arrays))} to {data_dir}")

    shapes = {
        p.name: list(np.load(p, mmap_mode="r").shape) for paths in files.values() for p in paths
    }
    text = json.dumps({"data": settings, "shapes": shapes}, indent=2) + "\n"
    _save_atomic(manifest, lambda f: f.write(text.encode()))
    return data_dir


# ----------------------------------------------------------------------------------------------
# Command line.


def use_all_cpu_cores() -> None:
    """Expose one XLA host device per core, so chunks are split across cores.

    XLA:CPU runs an elementwise loop on one core; with one host device per core each chunk is
    split over the devices and all cores work (docs/benchmarks.md). Must run before JAX's first
    computation; a no-op if the user set the device count in XLA_FLAGS.
    """
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except RuntimeError:  # JAX already started: keep its devices.
        pass


def _main(argv: list[str], config: Any, chunk_size: int | None, progress: bool) -> None:
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    use_all_cpu_cores()
    try:
        generate_dataset(config.data, progress=progress, chunk_size=chunk_size)
    except (ValueError, OSError) as e:
        sys.exit(f"error: {e}")


def _cli() -> None:
    # Flags are defined here, not at import, so `train.py` can import this module next to its
    # own `--config` flag.
    from absl import app, flags
    from ml_collections import config_flags

    from nri_jax.cli import parse_flags

    config = config_flags.DEFINE_config_file("config", None, "Config file (only .data is read).")
    chunk_size = flags.DEFINE_integer("chunk_size", None, "Trajectories per compiled chunk.")
    progress = flags.DEFINE_bool("progress", True, "Show progress bars.")
    flags.mark_flags_as_required(["config"])
    app.run(
        lambda argv: _main(argv, config.value, chunk_size.value, progress.value),
        flags_parser=parse_flags,
    )


if __name__ == "__main__":
    _cli()
