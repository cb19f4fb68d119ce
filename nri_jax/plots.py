"""PNG plots for eval.py --plots: trajectories (true vs predicted) and graphs (inferred vs true)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nri_jax.graph import edges_to_matrix


def write_plots(
    out_dir: Path,
    features: np.ndarray,
    predictions: np.ndarray,
    inferred_types: np.ndarray,
    labels: np.ndarray,
    timesteps: int,
    system: str,
    permutation: Sequence[int],
) -> list[Path]:
    """Write one trajectory figure and one graph figure per sample; returns the paths.

    features [samples, objects, time, dims]; predictions [samples, objects, horizon, dims]
    continuing from frame `timesteps`; inferred_types / labels [samples, edges].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    relabel = np.asarray(permutation)  # predicted type p -> the label it stands for
    written = []
    num_objects = features.shape[1]
    horizon = predictions.shape[2]
    for s in range(len(features)):
        fig, ax = plt.subplots(figsize=(5, 5))
        colors = plt.cm.tab10(np.arange(num_objects) % 10)
        for n in range(num_objects):
            seen = features[s, n, : timesteps + 1]
            truth = features[s, n, timesteps : timesteps + horizon + 1]
            pred = np.concatenate([features[s, n, timesteps : timesteps + 1], predictions[s, n]])
            if system == "kuramoto":  # sin(phi) against time
                t_seen = np.arange(timesteps + 1)
                t_future = np.arange(timesteps, timesteps + horizon + 1)
                ax.plot(t_seen, seen[:, 1], color=colors[n], alpha=0.3)
                ax.plot(t_future, truth[:, 1], color=colors[n], ls="--")
                ax.plot(t_future, pred[:, 1], color=colors[n])
            else:  # paths in the plane
                ax.plot(seen[:, 0], seen[:, 1], color=colors[n], alpha=0.3)
                ax.plot(truth[:, 0], truth[:, 1], color=colors[n], ls="--")
                ax.plot(pred[:, 0], pred[:, 1], color=colors[n])
        ax.set_title(f"sample {s}: seen (faint), true (dashed), predicted (solid)", fontsize=9)
        path = out_dir / f"trajectory_{s}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

        fig, axes = plt.subplots(1, 2, figsize=(8, 4))
        for ax, values, title in (
            (axes[0], relabel[inferred_types[s]], "inferred (best permutation)"),
            (axes[1], labels[s], "true"),
        ):
            matrix = edges_to_matrix(values.astype(np.float32), num_objects, np.nan)
            ax.imshow(np.asarray(matrix), vmin=0, cmap="viridis")
            ax.set_title(title)
            ax.set_xlabel("sender")
            ax.set_ylabel("receiver")
        path = out_dir / f"graph_{s}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
