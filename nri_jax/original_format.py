"""The original NRI release's dataset files: names, layouts, labels (REFERENCE.md §1-2).

One folder holds all splits of a system, as the original's `generate_dataset.py` writes them:
- springs / charged: `loc_{split}_{system}{N}.npy` and `vel_...` [S, T, 2, N], `edges_...`
  [S, N, N] (springs {0, 1}, or the edge types 0..K-1 of `data.spring_constants`; charged
  q_i q_j in {-1, +1}, diagonal 1);
- Kuramoto (the successors' files): `feat_{split}_kuramoto{N}.npy` [S, N, T, 4] and `edges_...`
  [S, N, N] (k_ij in {0, 1}). This project's generator also writes the raw phases
  `phase_...` [S, N, T], their unscaled d(phi)/dt `dphase_...` [S, N, T] and the natural
  frequencies `omega_...` [S, N], which the 'phase' frames (NRI (sim.)'s) are made from.
Edge labels are the off-diagonal entries in `nri_jax.graph` order, with charged's -1
(attract) read as 0: on the original's values ({0, 1}, {-1, +1}) this is its
int((edges + 1) / 2), and springs' types 0..K-1 keep their values.

Reading returns frames in the model's layout [S, N, T, D] (float64, unnormalised): particles
[x, y, vx, vy]. Files are read with `allow_pickle=False`: a dataset is data, never code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nri_jax.config import KURAMOTO_FEATURES
from nri_jax.graph import matrix_to_edges

SPLITS = ("train", "valid", "test")
# The files that make up one split, by name prefix (Kuramoto's phase/omega are extras).
PREFIXES = {
    "springs": ("loc", "vel", "edges"),
    "charged": ("loc", "vel", "edges"),
    "kuramoto": ("feat", "edges"),
}


def suffix(system: str, num_objects: int) -> str:
    """File-name suffix of the original: `_springs5`, `_charged10`, `_kuramoto5`."""
    return f"_{system}{num_objects}"


def file_path(data_dir: str | os.PathLike, prefix: str, split: str, system: str, n: int) -> Path:
    """`data_dir/{prefix}_{split}_{system}{n}.npy`."""
    return Path(data_dir) / f"{prefix}_{split}{suffix(system, n)}.npy"


def split_files(data_config: Mapping, split: str) -> list[Path]:
    """The files that define `split` of the dataset `data_config` names (dir, system, N)."""
    system, n = data_config["system"], int(data_config["num_objects"])
    return [file_path(data_config["dir"], p, split, system, n) for p in PREFIXES[system]]


def split_present(data_config: Mapping, split: str) -> bool:
    """Whether all of `split`'s files exist (they are written atomically, so then complete)."""
    return all(path.exists() for path in split_files(data_config, split))


def edge_labels(edges: np.ndarray) -> np.ndarray:
    """[S, N, N] edge matrices -> [S, E] int32 labels max(edges, 0), off-diagonal (charged's
    -1 / +1 become 0 / 1, the original's int((edges + 1) / 2); types 0..K-1 stay)."""
    return np.floor(np.maximum(matrix_to_edges(np.asarray(edges)), 0)).astype(np.int32)


def phase_frames(phase: np.ndarray, omega: np.ndarray, dphase: np.ndarray) -> np.ndarray:
    """Kuramoto frames [cos phi, sin phi, omega, d(phi)/dt] [S, N, T, 4] (float64) from raw
    phases [S, N, T], natural frequencies [S, N] and unscaled d(phi)/dt [S, N, T] (the forward
    difference over one grid step): the 'phase' features and the sim decoder's state."""
    phase = np.asarray(phase, np.float64)
    omega = np.broadcast_to(np.asarray(omega, np.float64)[:, :, None], phase.shape)
    dphase = np.asarray(dphase, np.float64)
    return np.stack([np.cos(phase), np.sin(phase), omega, dphase], axis=-1)


def load_array(path: Path) -> np.ndarray:
    """A numeric array from an .npy file; one-line errors for a missing, pickled or odd file."""
    if not path.exists():
        raise FileNotFoundError(
            f"missing data file {path}; generate it with "
            f"`python -m nri_jax.generate --config <config>` or point data.dir at it"
        )
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays need pickle: refuse
        raise ValueError(f"{path}: cannot be read without pickle ({e}); save plain arrays") from e
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path}: dtype {array.dtype} is not numeric")
    return array


def _check_finite(name: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name}: {bad} NaN/Inf values; clean or regenerate the data")


def _check_rank(name: str, array: np.ndarray, rank: int, layout: str) -> None:
    if array.ndim != rank:
        raise ValueError(f"{name}: expected rank {rank} {layout}, got shape {array.shape}")


def _read_phase_frames(data_dir: Path, split: str, system: str, n: int):
    paths = {p: file_path(data_dir, p, split, system, n) for p in ("phase", "dphase", "omega")}
    if not paths["dphase"].exists() and paths["phase"].exists():
        raise FileNotFoundError(
            f"missing {paths['dphase']} (d(phi)/dt, written by nri_jax.generate since the "
            f"'phase' features include it); regenerate the split with `python -m "
            f"nri_jax.generate --config <config> --config.data.dir={data_dir}` into a new folder"
        )
    phase, dphase, omega = (load_array(paths[p]) for p in ("phase", "dphase", "omega"))
    for name, array, rank, layout in (
        ("phase", phase, 3, "[samples, objects, time]"),
        ("dphase", dphase, 3, "[samples, objects, time]"),
        ("omega", omega, 2, "[samples, objects]"),
    ):
        _check_rank(paths[name].name, array, rank, layout)
    if omega.shape != phase.shape[:2] or dphase.shape != phase.shape:
        raise ValueError(
            f"{paths['omega'].name} {omega.shape}, {paths['dphase'].name} {dphase.shape} and "
            f"{paths['phase'].name} {phase.shape} do not match; regenerate the split"
        )
    return phase_frames(phase, omega, dphase), [paths[p].name for p in ("phase", "dphase", "omega")]


def read_split(
    data_dir: str | os.PathLike,
    system: str,
    num_objects: int,
    split: str,
    features: str = "successors",
) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised frames [S, N, T, D] (float64) and edges [S, N, N] of one split.

    `features` picks Kuramoto's frames: the successors' 4 features or 'phase'
    ([cos phi, sin phi, omega, d(phi)/dt] from the raw phase, omega and dphase files).
    """
    data_dir = Path(data_dir)
    edges_path = file_path(data_dir, "edges", split, system, num_objects)
    if features not in KURAMOTO_FEATURES:
        raise ValueError(
            f"config.data.features={features!r} is not one of {', '.join(KURAMOTO_FEATURES)}"
        )
    if system == "kuramoto" and features == "phase":
        frames, names = _read_phase_frames(data_dir, split, system, num_objects)
    elif system == "kuramoto":
        feat_path = file_path(data_dir, "feat", split, system, num_objects)
        feat = load_array(feat_path)
        _check_rank(feat_path.name, feat, 4, "[samples, objects, time, dims]")
        frames, names = feat.astype(np.float64), [feat_path.name]
    else:
        loc_path = file_path(data_dir, "loc", split, system, num_objects)
        vel_path = file_path(data_dir, "vel", split, system, num_objects)
        loc, vel = load_array(loc_path), load_array(vel_path)
        for path, arr in ((loc_path, loc), (vel_path, vel)):
            _check_rank(path.name, arr, 4, "[samples, time, 2, objects]")
        if loc.shape != vel.shape:
            raise ValueError(f"{loc_path.name} {loc.shape} and {vel_path.name} {vel.shape} differ")
        # [S, T, 2, N] -> [S, N, T, 2], then [x, y, vx, vy].
        frames = np.concatenate(
            [np.transpose(loc, (0, 3, 1, 2)), np.transpose(vel, (0, 3, 1, 2))], axis=-1
        ).astype(np.float64)
        names = [loc_path.name, vel_path.name]
    edges = load_array(edges_path)
    _check_rank(edges_path.name, edges, 3, "[samples, objects, objects]")
    if frames.shape[1] != num_objects or edges.shape[1:] != (num_objects, num_objects):
        raise ValueError(
            f"{data_dir}: files hold {frames.shape[1]} objects (edges {edges.shape[1:]}) but "
            f"config.data.num_objects={num_objects}; set it to match the files"
        )
    if edges.shape[0] != frames.shape[0]:
        raise ValueError(
            f"{edges_path.name} has {edges.shape[0]} samples but {names[0]} has "
            f"{frames.shape[0]}; the split is incomplete, regenerate it"
        )
    for name in names:
        _check_finite(name, frames)
    _check_finite(edges_path.name, edges)
    return frames, edges
