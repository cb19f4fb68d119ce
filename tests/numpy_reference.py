"""The original NRI particle generator's integration loop in plain numpy (REFERENCE.md §1).

Shared by the springs and charged tests as the reference the JAX simulators must match.
States are [N, 2]; float64.
"""

import numpy as np

DT, BOX, MAX_F = 1e-3, 5.0, 100.0


def numpy_clamp(x, v):
    over = x > BOX
    x[over] = 2 * BOX - x[over]
    v[over] = -np.abs(v[over])
    under = x < -BOX
    x[under] = -2 * BOX - x[under]
    v[under] = np.abs(v[under])
    return x, v, int(over.sum() + under.sum())


def numpy_trajectory(force, loc0, vel0, length, sample_freq=100):
    """Initial kick, then x += dt v; clamp; record every sample_freq-th step; kick."""
    x, v = np.array(loc0, np.float64), np.array(vel0, np.float64)
    x, v, _ = numpy_clamp(x, v)
    v += DT * np.clip(force(x), -MAX_F, MAX_F)
    locs, vels, reflections = [], [], 0
    for i in range(1, length):
        x += DT * v
        x, v, hits = numpy_clamp(x, v)
        reflections += hits
        if i % sample_freq == 0:
            locs.append(x.copy())
            vels.append(v.copy())
        v += DT * np.clip(force(x), -MAX_F, MAX_F)
    return np.stack(locs), np.stack(vels), reflections
