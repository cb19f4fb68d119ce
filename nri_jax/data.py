"""Dataset loading in the original NRI file format, with its normalisation (REFERENCE.md §1-2).

Particles (springs, charged): `loc_{split}{suffix}.npy` and `vel_...` [S, T, 2, N], `edges_...`
[S, N, N]. loc and vel are each min-max scaled to [-1, 1] with scalars taken over the training
split; model input is [x, y, vx, vy] laid out [S, N, T, 4].
Kuramoto: `feat_{split}{suffix}.npy` [S, N, T, D] scaled per feature to [-1, 1] over the
training split; `edges_...` [S, N, N]. With `features='phase'` the frames are instead
[cos phi, sin phi, omega] from the generator's raw `phase_...` [S, N, T] and `omega_...` [S, N]
files (the simulation decoder's state, `nri_jax/sim_decoder.py`), scaled the same way.
Edge labels: int((edges + 1) / 2) over the off-diagonal entries in row-major (receiver, sender)
order, so springs {0, 1} and Kuramoto {0, 1} keep their values and charged -1/+1 become 0/1.

Files are read with `allow_pickle=False`: a dataset is data, never code.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

SPLITS = ("train", "valid", "test")
KURAMOTO_FEATURES = ("successors", "phase")


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: `features` [samples, objects, time, dims] float32, `labels` [samples, edges]."""

    features: np.ndarray
    labels: np.ndarray

    @property
    def num_objects(self) -> int:
        return self.features.shape[1]


@dataclasses.dataclass(frozen=True)
class Normalisation:
    """Min/max of the training split, applied to every split (and to other datasets in eval)."""

    system: str
    minimum: list[float]
    maximum: list[float]

    @property
    def dims(self) -> int:
        """Features per object per frame."""
        return len(self.minimum) * (1 if self.system == "kuramoto" else 2)

    def apply(self, features: np.ndarray) -> np.ndarray:
        lo = np.asarray(self.minimum, np.float64)
        hi = np.asarray(self.maximum, np.float64)
        if self.system == "kuramoto":  # per feature
            scaled = (features - lo) * 2.0 / (hi - lo) - 1.0
        else:  # [x, y] share loc's scalars, [vx, vy] share vel's
            lo = np.repeat(lo, 2)
            hi = np.repeat(hi, 2)
            scaled = (features - lo) * 2.0 / (hi - lo) - 1.0
        return scaled.astype(np.float32)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Normalisation:
        return cls(**json.loads(text))


def suffix(system: str, num_objects: int) -> str:
    return f"_{system}{num_objects}"


def off_diagonal_labels(edges: np.ndarray) -> np.ndarray:
    """[S, N, N] edge matrices -> [S, N(N-1)] int32 labels, row-major (receiver, sender)."""
    n = edges.shape[-1]
    rows, cols = np.nonzero(~np.eye(n, dtype=bool))
    labels = np.floor((edges[:, rows, cols] + 1) / 2).astype(np.int64)
    return labels.astype(np.int32)


def _load(path: Path) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(
            f"missing data file {path}; generate it with "
            f"`python -m simulators.generate --config <config>` or point data.dir at it"
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


def _kuramoto_phase_frames(data_dir: Path, split: str, sfx: str) -> tuple[np.ndarray, list]:
    """[cos phi, sin phi, omega] [S, N, T, 3] from the raw phase and omega files."""
    phase_path = data_dir / f"phase_{split}{sfx}.npy"
    omega_path = data_dir / f"omega_{split}{sfx}.npy"
    phase, omega = _load(phase_path), _load(omega_path)
    _check_rank(phase_path.name, phase, 3, "[samples, objects, time]")
    _check_rank(omega_path.name, omega, 2, "[samples, objects]")
    if omega.shape != phase.shape[:2]:
        raise ValueError(
            f"{omega_path.name} {omega.shape} does not match {phase_path.name} {phase.shape}; "
            f"regenerate the split"
        )
    return phase_frames(phase, omega), [phase_path.name, omega_path.name]


def phase_frames(phase: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """Kuramoto frames [cos phi, sin phi, omega] [S, N, T, 3] (float64) from raw phases
    [S, N, T] and natural frequencies [S, N]: the 'phase' features and the sim decoder's state."""
    phase = np.asarray(phase, np.float64)
    omega = np.broadcast_to(np.asarray(omega, np.float64)[:, :, None], phase.shape)
    return np.stack([np.cos(phase), np.sin(phase), omega], axis=-1)


def read_raw(
    data_dir: str | os.PathLike,
    system: str,
    num_objects: int,
    split: str,
    features: str = "successors",
) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised features [S, N, T, D] (float64) and edges [S, N, N] of one split.

    `features` picks Kuramoto's frames: the successors' 4 features or 'phase' (module doc).
    """
    data_dir = Path(data_dir)
    sfx = suffix(system, num_objects)
    edges_path = data_dir / f"edges_{split}{sfx}.npy"
    if features not in KURAMOTO_FEATURES:
        raise ValueError(
            f"config.data.features={features!r} is not one of {', '.join(KURAMOTO_FEATURES)}"
        )
    if system == "kuramoto" and features == "phase":
        features, names = _kuramoto_phase_frames(data_dir, split, sfx)
    elif system == "kuramoto":
        feat_path = data_dir / f"feat_{split}{sfx}.npy"
        feat = _load(feat_path)
        _check_rank(feat_path.name, feat, 4, "[samples, objects, time, dims]")
        features = feat.astype(np.float64)
        names = [feat_path.name]
    else:
        loc_path = data_dir / f"loc_{split}{sfx}.npy"
        vel_path = data_dir / f"vel_{split}{sfx}.npy"
        loc, vel = _load(loc_path), _load(vel_path)
        for path, arr in ((loc_path, loc), (vel_path, vel)):
            _check_rank(path.name, arr, 4, "[samples, time, 2, objects]")
        if loc.shape != vel.shape:
            raise ValueError(f"{loc_path.name} {loc.shape} and {vel_path.name} {vel.shape} differ")
        # [S, T, 2, N] -> [S, N, T, 2], then [x, y, vx, vy].
        features = np.concatenate(
            [np.transpose(loc, (0, 3, 1, 2)), np.transpose(vel, (0, 3, 1, 2))], axis=-1
        ).astype(np.float64)
        names = [loc_path.name, vel_path.name]
    edges = _load(edges_path)
    _check_rank(edges_path.name, edges, 3, "[samples, objects, objects]")
    if features.shape[1] != num_objects or edges.shape[1:] != (num_objects, num_objects):
        raise ValueError(
            f"{data_dir}: files hold {features.shape[1]} objects (edges {edges.shape[1:]}) but "
            f"config.data.num_objects={num_objects}; set it to match the files"
        )
    if edges.shape[0] != features.shape[0]:
        raise ValueError(
            f"{edges_path.name} has {edges.shape[0]} samples but {names[0]} has "
            f"{features.shape[0]}; the split is incomplete, regenerate it"
        )
    for name in names:
        _check_finite(name, features)
    _check_finite(edges_path.name, edges)
    return features, edges


def fit_normalisation(system: str, train_features: np.ndarray) -> Normalisation:
    """Min/max over the training split: scalars for loc and vel, per feature for Kuramoto."""
    if system == "kuramoto":
        lo = train_features.min(axis=(0, 1, 2))
        hi = train_features.max(axis=(0, 1, 2))
    else:
        lo = np.array([train_features[..., :2].min(), train_features[..., 2:].min()])
        hi = np.array([train_features[..., :2].max(), train_features[..., 2:].max()])
    if np.any(hi <= lo):
        raise ValueError("training features are constant along a dimension; cannot normalise")
    return Normalisation(system, [float(v) for v in lo], [float(v) for v in hi])


def make_split(
    features: np.ndarray, edges: np.ndarray, norm: Normalisation, edge_types: int, name: str
) -> Split:
    labels = off_diagonal_labels(edges)
    if labels.size and (labels.min() < 0 or labels.max() >= max(edge_types, 2)):
        raise ValueError(
            f"{name}: edge labels span [{labels.min()}, {labels.max()}] but must lie in "
            f"[0, {max(edge_types, 2) - 1}]; check the edges file or config.model.edge_types"
        )
    return Split(norm.apply(features), labels)


def load_dataset(
    data_config: Mapping,
    edge_types: int = 2,
    splits: tuple[str, ...] = SPLITS,
    normalisation: Normalisation | None = None,
) -> tuple[dict[str, Split], Normalisation]:
    """Read and normalise `splits` from `data_config.dir`.

    The normalisation is fitted on the training split unless one is given (evaluation of a
    trained model on another dataset keeps the training run's).
    """
    system, n = data_config["system"], int(data_config["num_objects"])
    kind = data_config.get("features", "successors")
    raw = {s: read_raw(data_config["dir"], system, n, s, kind) for s in splits}
    if normalisation is None:
        train_features = raw["train"][0] if "train" in raw else None
        if train_features is None:
            train_features, _ = read_raw(data_config["dir"], system, n, "train", kind)
        normalisation = fit_normalisation(system, train_features)
    out = {
        s: make_split(f, e, normalisation, edge_types, f"edges_{s}{suffix(system, n)}.npy")
        for s, (f, e) in raw.items()
    }
    dims = {s.features.shape[-1] for s in out.values()}
    if len(dims) > 1:
        raise ValueError(f"splits have different feature dims {sorted(dims)}; regenerate them")
    return out, normalisation
