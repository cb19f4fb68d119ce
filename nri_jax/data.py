"""Datasets as the model sees them: splits of normalised frames and edge labels.

Reading the files is `nri_jax.original_format`'s; this module normalises as the original
does (REFERENCE.md §2): particles' loc and vel each min-max scaled to [-1, 1] with scalars
taken over the training split; Kuramoto per feature over the training split. Valid and test
(and other datasets evaluated by a trained run) reuse the training split's normalisation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import ml_collections
import numpy as np

from nri_jax.original_format import SPLITS, edge_labels, read_split, suffix


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
        if self.system != "kuramoto":  # [x, y] share loc's scalars, [vx, vy] share vel's
            lo, hi = np.repeat(lo, 2), np.repeat(hi, 2)
        return ((features - lo) * 2.0 / (hi - lo) - 1.0).astype(np.float32)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Normalisation:
        return cls(**json.loads(text))


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
    labels = edge_labels(edges)
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
    raw = {s: read_split(data_config["dir"], system, n, s, kind) for s in splits}
    if normalisation is None:
        train_features = raw["train"][0] if "train" in raw else None
        if train_features is None:
            train_features, _ = read_split(data_config["dir"], system, n, "train", kind)
        normalisation = fit_normalisation(system, train_features)
    out = {
        s: make_split(f, e, normalisation, edge_types, f"edges_{s}{suffix(system, n)}.npy")
        for s, (f, e) in raw.items()
    }
    dims = {s.features.shape[-1] for s in out.values()}
    if len(dims) > 1:
        raise ValueError(f"splits have different feature dims {sorted(dims)}; regenerate them")
    return out, normalisation


def check_splits(config: ml_collections.ConfigDict, splits: Mapping[str, Split]) -> None:
    """The loaded training splits fit the config: sizes and frames; one-line ValueError."""
    train = splits["train"]
    if config.train.batch_size > len(train.features):
        raise ValueError(
            f"config.train.batch_size={config.train.batch_size} is larger than the training "
            f"split ({len(train.features)} samples); lower it or generate more data"
        )
    for name, split in splits.items():
        if len(split.features) == 0:
            raise ValueError(f"{name} split is empty; set config.data.num_{name} > 0")
        if split.features.shape[2] < config.train.timesteps:
            raise ValueError(
                f"{name} split has {split.features.shape[2]} frames but config.train.timesteps="
                f"{config.train.timesteps}; lower it or regenerate longer sequences"
            )
