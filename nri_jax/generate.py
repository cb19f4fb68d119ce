"""Generate an NRI dataset with the simulators, in the original file format (REFERENCE.md §1).

    python -m nri_jax.generate --config configs/springs.py
    python -m nri_jax.generate --config configs/springs.py --config.data.num_objects=10
    python -m nri_jax.generate --config configs/charged.py --config.data.dir=/tmp/charged

Only `config.data` is read. Files go to `data.dir`, named and laid out as the original's
(`nri_jax.original_format`). The original saved loc/vel as float64; here they are float32
(the simulation's precision; half the disk), and the loaders accept both. Train and valid
have `length` steps, test `length_test`; a split with `num_{split} = 0` is not written.

Every file is written to a temporary name in `data.dir` and renamed into place, so a file that
exists is complete; `manifest_{system}{N}.json` (the data config and the file shapes) is
written last. An existing dataset that matches the config is reused; files that do not match
stop the run with an error (nothing is ever overwritten silently).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pathlib
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nri_jax import atomic
from nri_jax.config import (
    GRAPH_DEFAULTS,
    GRAPH_SYSTEMS,
    GRAPHS,
    SPRING_DEFAULTS,
    check_data_config,
    num_frames,
)
from nri_jax.original_format import PREFIXES, SPLITS, file_path, split_files, split_present

# Fields that, with system, dt and the draw settings (`_draw_settings`: graph family, springs'
# edge types), determine the data (`dir` is where it lives).
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


def validate_data_config(data_config: Any) -> None:
    """Check `config.data` before any work (`config.check_data_config`) and that `data.dir`
    can be written (it is created if needed); ValueError naming the field."""
    check_data_config(data_config)
    data_dir = pathlib.Path(data_config["dir"])
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
    return {
        split: split_files(data_config, split)
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
    for path, prefix in zip(paths, PREFIXES[data_config["system"]], strict=True):
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


def _draw_settings(data_config: Any) -> dict[str, Any]:
    """How the systems' interactions are drawn: the graph family with its parameters (springs
    and Kuramoto) and the edge types' spring constants and probabilities (springs)."""
    system = data_config["system"]
    settings: dict[str, Any] = {}
    if system in GRAPH_SYSTEMS:
        graph = str(data_config.get("graph", GRAPH_DEFAULTS["graph"]))
        settings["graph"] = graph
        for key in GRAPHS[graph]:
            kind = int if isinstance(GRAPH_DEFAULTS[key], int) else float
            settings[key] = kind(data_config.get(key, GRAPH_DEFAULTS[key]))
    if system == "springs":
        for key, default in SPRING_DEFAULTS.items():
            settings[key] = [float(v) for v in data_config.get(key, default)]
    return settings


def _settings(data_config: Any) -> dict[str, Any]:
    """The fields that determine the data, as plain JSON types (recorded in the manifest)."""
    settings = {field: int(data_config[field]) for field in _SETTINGS}
    settings |= {"system": str(data_config["system"]), "dt": float(data_config["dt"])}
    return settings | _draw_settings(data_config)


def _recorded(manifest_data: Mapping, key: str) -> Any:
    """A manifest's setting; one written before the key existed holds the paper's value."""
    if key in manifest_data:
        return manifest_data[key]
    if key in GRAPH_DEFAULTS:
        return GRAPH_DEFAULTS[key]
    if key in SPRING_DEFAULTS:
        return [float(v) for v in SPRING_DEFAULTS[key]]
    return None


def _simulator_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the system's `generate_split` for the draw settings."""
    from simulators import graphs

    options: dict[str, Any] = {}
    if "graph" in settings:
        name = settings["graph"]
        # Config keys are the family's parameters prefixed with its name (but edge_prob).
        params = {key.removeprefix(f"{name}_"): settings[key] for key in GRAPHS[name]}
        options["graph"] = graphs.make(name, **params)
    for key in SPRING_DEFAULTS:
        if key in settings:
            options[key] = tuple(settings[key])
    return options


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
    import jax  # After validation: bad input fails before any computation.

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
                f"{k}={_recorded(recorded, k)!r} (config: {v!r})"
                for k, v in settings.items()
                if _recorded(recorded, k) != v
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
            **_simulator_options(settings),
        )
        for prefix, array in arrays.items():
            atomic.save_npy(file_path(data_dir, prefix, split, system, n), array)
        print(f"{name} {split}: wrote {', '.join(sorted(arrays))} to {data_dir}")

    shapes = {
        p.name: list(np.load(p, mmap_mode="r").shape) for paths in files.values() for p in paths
    }
    text = json.dumps({"data": settings, "shapes": shapes}, indent=2) + "\n"
    atomic.write_text(manifest, text)
    return data_dir


def ensure_dataset(data_config: Mapping, splits: tuple[str, ...] = ("train", "valid")) -> None:
    """Generate the dataset `data_config` names unless all of `splits` are already there.

    Files that are present, e.g. written by the original NRI generator, are read as they are.
    """
    if all(split_present(data_config, split) for split in splits):
        return
    print(f"dataset not found in {data_config['dir']}: generating it first", flush=True)
    generate_dataset(data_config)


# ----------------------------------------------------------------------------------------------
# Command line.


def _main(argv: list[str], config: Any, chunk_size: int | None, progress: bool) -> None:
    from absl import app

    from simulators.devices import use_all_cpu_cores

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
