"""Data-generating processes of NRI (REFERENCE.md §1), in JAX.

Each system module offers `simulate` (pure, jittable, vmappable, differentiable),
`sample_system` and `generate_split`; springs and charged are two `particles.ParticleSystem`s.
`simulators.graphs` holds the interaction-graph families that springs and Kuramoto can draw.
`simulators.devices` spreads generation over CPU cores. Writing datasets in the original file
format is `nri_jax.generate`'s (`python -m nri_jax.generate --config configs/springs.py`).
"""

from simulators import charged, devices, graphs, kuramoto, particles, springs
from simulators.particles import (
    BOX_SIZE,
    ParticleSystem,
    ReflectingSemiImplicitEuler,
    kick_drift_reflect,
    pairwise_force,
    reflect,
)

__all__ = [
    "BOX_SIZE",
    "ParticleSystem",
    "ReflectingSemiImplicitEuler",
    "charged",
    "devices",
    "graphs",
    "kick_drift_reflect",
    "kuramoto",
    "pairwise_force",
    "particles",
    "reflect",
    "springs",
]
