"""The paper's published figures (Kipf et al. 2018, Tables 1 and 2), for comparison tables.

Table 1: edge accuracy in %, mean over 5 runs, keyed by (row, system, objects); None where the
paper has no figure. Table 2: MSE at 1 / 10 / 20 prediction steps, 5 objects.
"""

from __future__ import annotations

TABLE1_ROWS = ("corr_path", "corr_lstm", "sim", "learned", "supervised")
TABLE2_ROWS = ("static", "lstm_single", "lstm_joint", "full_graph", "learned", "true_graph")
MSE_STEPS = (1, 10, 20)

ROW_NAMES = {
    "corr_path": "Corr. (path)",
    "corr_lstm": "Corr. (LSTM)",
    "sim": "NRI (sim.)",
    "learned": "NRI (learned)",
    "supervised": "Supervised",
    "static": "Static",
    "lstm_single": "LSTM (single)",
    "lstm_joint": "LSTM (joint)",
    "full_graph": "NRI (full graph)",
    "true_graph": "NRI (true graph)",
}

_SYSTEMS = ("springs", "charged", "kuramoto")

# (springs, charged, kuramoto) for 5 objects, then for 10.
_TABLE1 = {
    "corr_path": ((52.4, 55.8, 62.8), (50.4, 51.4, 59.3)),
    "corr_lstm": ((52.7, 54.2, 54.4), (54.9, 52.7, 56.2)),
    "sim": ((99.8, 59.6, None), (98.2, 53.7, None)),
    "learned": ((99.9, 82.1, 96.0), (98.4, 70.8, 75.7)),
    "supervised": ((99.9, 95.0, 99.7), (98.8, 97.1, 94.6)),
}

_TABLE2 = {
    "static": (
        (7.93e-5, 7.59e-3, 2.82e-2),
        (5.09e-3, 2.26e-2, 5.42e-2),
        (5.75e-2, 3.79e-1, 3.39e-1),
    ),
    "lstm_single": (
        (2.27e-6, 4.69e-4, 4.90e-3),
        (2.71e-3, 7.05e-3, 1.65e-2),
        (7.81e-4, 3.80e-2, 8.08e-2),
    ),
    "lstm_joint": (
        (4.13e-8, 2.19e-5, 7.02e-4),
        (1.68e-3, 6.45e-3, 1.49e-2),
        (3.44e-4, 1.29e-2, 4.74e-2),
    ),
    "full_graph": (
        (1.66e-5, 1.64e-3, 6.31e-3),
        (1.09e-3, 3.78e-3, 9.24e-3),
        (2.15e-2, 5.19e-2, 8.96e-2),
    ),
    "learned": (
        (3.12e-8, 3.29e-6, 2.13e-5),
        (1.05e-3, 3.21e-3, 7.06e-3),
        (1.40e-2, 2.01e-2, 3.26e-2),
    ),
    "true_graph": (
        (1.69e-11, 1.32e-9, 7.06e-6),
        (1.04e-3, 3.03e-3, 5.71e-3),
        (1.35e-2, 1.54e-2, 2.19e-2),
    ),
}


def edge_accuracy(row: str, system: str, objects: int) -> float | None:
    """Table 1's figure in %, or None (no such row, system or object count in the paper)."""
    if row not in _TABLE1 or system not in _SYSTEMS or objects not in (5, 10):
        return None
    return _TABLE1[row][objects == 10][_SYSTEMS.index(system)]


def mse(row: str, system: str, objects: int) -> tuple[float, float, float] | None:
    """Table 2's MSE at 1 / 10 / 20 steps, or None (the paper reports 5 objects only)."""
    if row not in _TABLE2 or system not in _SYSTEMS or objects != 5:
        return None
    return _TABLE2[row][_SYSTEMS.index(system)]
