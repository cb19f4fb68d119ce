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
    labels: np.ndarray | None,
    timesteps: int,
    system: str,
    permutation: Sequence[int],
) -> list[Path]:
    """Write one trajectory figure and one graph figure per sample; returns the paths.

    features [samples, objects, time, dims]; predictions [samples, objects, horizon, dims]
    continuing from frame `timesteps`; inferred_types / labels [samples, edges] (labels None:
    own data without edges, the inferred graph alone). Kuramoto and one-dim own data are drawn
    against time (sin phi, the dim), the rest as paths in the plane of the first two dims.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    relabel = np.asarray(permutation)  # predicted type p -> the label it stands for
    written = []
    num_objects = features.shape[1]
    horizon = predictions.shape[2]
    against_time = system == "kuramoto" or features.shape[-1] < 2
    channel = 1 if system == "kuramoto" else 0
    for s in range(len(features)):
        fig, ax = plt.subplots(figsize=(5, 5))
        colors = plt.cm.tab10(np.arange(num_objects) % 10)
        for n in range(num_objects):
            seen = features[s, n, : timesteps + 1]
            truth = features[s, n, timesteps : timesteps + horizon + 1]
            pred = np.concatenate([features[s, n, timesteps : timesteps + 1], predictions[s, n]])
            if against_time:
                t_seen = np.arange(timesteps + 1)
                t_future = np.arange(timesteps, timesteps + horizon + 1)
                ax.plot(t_seen, seen[:, channel], color=colors[n], alpha=0.3)
                ax.plot(t_future, truth[:, channel], color=colors[n], ls="--")
                ax.plot(t_future, pred[:, channel], color=colors[n])
            else:  # paths in the plane
                ax.plot(seen[:, 0], seen[:, 1], color=colors[n], alpha=0.3)
                ax.plot(truth[:, 0], truth[:, 1], color=colors[n], ls="--")
                ax.plot(pred[:, 0], pred[:, 1], color=colors[n])
        ax.set_title(f"sample {s}: seen (faint), true (dashed), predicted (solid)", fontsize=9)
        path = out_dir / f"trajectory_{s}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

        if labels is None:  # nothing to permute towards
            panels = [(inferred_types[s], "inferred")]
        else:
            panels = [(relabel[inferred_types[s]], "inferred (best permutation)")]
            panels.append((labels[s], "true"))
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
        for ax, (values, title) in zip(axes[0], panels, strict=True):
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
