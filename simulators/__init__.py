"""Data-generating processes of NRI (REFERENCE.md §1), in JAX.

Each system module offers `simulate` (pure, jittable, vmappable, differentiable),
`sample_system` and `generate_split`; `simulators.generate` writes datasets in the original
file format (`python -m simulators.generate --config configs/springs.py`).
"""

from simulators import charged, kuramoto, particles, springs
from simulators.particles import (
    BOX_SIZE,
    ReflectingSemiImplicitEuler,
    kick_drift_reflect,
    pairwise_force,
    reflect,
)

__all__ = [
    "BOX_SIZE",
    "ReflectingSemiImplicitEuler",
    "charged",
    "kick_drift_reflect",
    "kuramoto",
    "pairwise_force",
    "particles",
    "reflect",
    "springs",
]
