"""The simulation decoder of NRI (sim.) (paper §4): the system's own physics in place of the GNN.

The decoder maps each normalised frame [x, y, vx, vy] back to physical units, advances the
particles' equations of motion by one frame with the sampled edges as continuous interaction
weights, and scales the result back: the mean mu^{t+1} of eq. 12 is a simulator step, and the
encoder trains through it with `jax.grad` (gradients flow through `simulators.particles`).

Edge weights from z `[..., E, K]` (K = 2; type 1 is "interaction"):
- springs: w_ij = z_ij,1 (spring constant k w_ij; hard z gives the generator's graph);
- charged: w_ij = 2 z_ij,1 - 1, i.e. type 1 repels (q_i q_j = +1) and type 0 attracts (-1).

Integration: `steps` semi-implicit Euler steps of frame_dt / steps per frame, with the
generator's walls and force clip. steps = 100 is the generator's own step (dt = 0.001): with
the true graph the decoder reproduces the data up to float rounding. The original's decoder
took one coarse step of dt = 0.1 per frame (steps = 1). The force clip stays the generator's
physical one (0.1 / 0.001 = 100) whatever the step, so that coarser steps integrate the same
ODE rather than a differently clipped one.

Charged particles: `softening` > 0 replaces 1 / r^3 by 1 / (r^2 + eps^2)^(3/2) inside the
decoder only (the data are not softened), bounding the force and its gradient at close range.

Kuramoto is not covered: its features are min-max scaled per trajectory (REFERENCE.md §1), so
the physical phases cannot be recovered from the model inputs. The generator also writes the raw
phases and frequencies (`phase_{split}_kuramoto5.npy` [S, N, T], `omega_...` [S, N]); a
Kuramoto sim decoder would read those as its state (phase_{t+1} = Dopri5 step of
`simulators.kuramoto.vector_field` with coupling z_ij,1) and map its prediction to the features
with the same per-trajectory scaling. Not implemented yet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from nri_jax.graph import fully_connected
from simulators import charged, particles, springs

SYSTEMS = ("springs", "charged")


@dataclasses.dataclass(frozen=True)
class SimPhysics:
    """Static settings of the simulation decoder (hashable, so a Flax module field).

    loc_min/loc_max and vel_min/vel_max are the training split's normalisation scalars
    (`nri_jax.data.Normalisation`); frame_dt the physical time between frames
    (data.dt * data.sample_freq); steps the integration steps per frame.
    """

    system: str
    loc_min: float
    loc_max: float
    vel_min: float
    vel_max: float
    frame_dt: float = 0.1
    steps: int = 100
    box_size: float = particles.BOX_SIZE
    max_force: float = 100.0
    softening: float = 0.0

    def __post_init__(self):
        if self.system not in SYSTEMS:
            raise ValueError(
                f"config.model.decoder='sim' supports data.system in {SYSTEMS}, not "
                f"{self.system!r} (Kuramoto: see nri_jax/sim_decoder.py)"
            )
        if self.steps < 1:
            raise ValueError(f"config.model.sim_steps={self.steps} must be >= 1")

    @property
    def dt(self) -> float:
        return self.frame_dt / self.steps


def physics_from_config(config, normalisation) -> SimPhysics:
    """SimPhysics from the whole config (data and model groups) and the run's Normalisation."""
    data, model = config.data, config.model
    if data.system not in SYSTEMS:
        SimPhysics(data.system, 0.0, 1.0, 0.0, 1.0)  # raises the one-line error
    (loc_min, vel_min), (loc_max, vel_max) = normalisation.minimum, normalisation.maximum
    return SimPhysics(
        system=data.system,
        loc_min=float(loc_min),
        loc_max=float(loc_max),
        vel_min=float(vel_min),
        vel_max=float(vel_max),
        frame_dt=float(data.dt * data.sample_freq),
        steps=int(model.get("sim_steps", 100)),
        max_force=float(particles.default_max_force(data.dt)),
        softening=float(model.get("sim_softening", 0.0)),
    )


def identity_physics(system: str, **kwargs) -> SimPhysics:
    """Physics whose normalisation is the identity ((x + 1) (1 - (-1)) / 2 - 1 = x)."""
    return SimPhysics(system, -1.0, 1.0, -1.0, 1.0, **kwargs)


def interaction_weights(system: str, edges: jax.Array) -> jax.Array:
    """Continuous interaction weights `[..., E]` from edges z `[..., E, K]` (see module doc)."""
    z1 = edges[..., 1]
    return z1 if system == "springs" else 2.0 * z1 - 1.0


def edge_matrix(weights: jax.Array, num_objects: int) -> jax.Array:
    """Scatter edge weights `[..., E]` (row-major receiver, sender) into `[..., N, N]`."""
    receivers, senders = fully_connected(num_objects)
    matrix = jnp.zeros(weights.shape[:-1] + (num_objects, num_objects), weights.dtype)
    return matrix.at[..., receivers, senders].set(weights)


def _force_fn(physics: SimPhysics):
    if physics.system == "springs":
        return lambda x, w: springs.force(x, w)
    if physics.softening == 0.0:
        return lambda x, w: charged.force(x, w)
    eps2 = physics.softening**2

    def radial(d2):
        inv_r = jax.lax.rsqrt(d2 + eps2)
        return charged.INTERACTION_STRENGTH * inv_r * inv_r * inv_r

    return lambda x, w: particles.pairwise_force(x, w, radial)


def _unscale(x, lo, hi):
    return (x + 1.0) * ((hi - lo) / 2.0) + lo


def _scale(x, lo, hi):
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def simulate_frames(
    physics: SimPhysics, frames: jax.Array, weights: jax.Array, num_frames: int
) -> jax.Array:
    """Advance normalised frames `[*b, N, 4]` by `num_frames` frames with weights `[*b', N, N]`.

    `*b'` broadcasts against `*b`. Returns normalised states `[*b, num_frames, N, 4]`.
    """
    p = physics
    loc = _unscale(frames[..., :2], p.loc_min, p.loc_max)
    vel = _unscale(frames[..., 2:], p.vel_min, p.vel_max)
    locs, vels = particles.simulate_particles(
        _force_fn(p),
        loc,
        vel,
        weights,
        num_frames=num_frames,
        sample_freq=p.steps,
        dt=p.dt,
        box_size=p.box_size,
        max_force=p.max_force,
    )
    return jnp.concatenate(
        [_scale(locs, p.loc_min, p.loc_max), _scale(vels, p.vel_min, p.vel_max)], axis=-1
    )


class SimDecoder:
    """Simulation decoder with the MLP decoder's interface (eqs. 10-12 with physics inside).

    `__call__(inputs [B, N, T, 4], edges [B, E, K], prediction_steps, train)` -> preds
    `[B, N, T - 1, 4]`: from every M-th true frame (0, M, 2M, ...) M frames are simulated, so
    preds[:, :, t] predicts frame t + 1 (section 3.4). Feeding a prediction back is the same
    as simulating on (re-normalising and un-normalising is the identity), so each restart is
    one `num_frames = M` simulation. No parameters; a plain callable, not a Flax module.
    """

    def __init__(self, physics: SimPhysics | None):
        self.physics = physics

    def __call__(
        self, inputs: jax.Array, edges: jax.Array, prediction_steps: int, train: bool = False
    ) -> jax.Array:
        del train
        if self.physics is None:
            raise ValueError(
                "config.model.decoder='sim' needs the data's physics and normalisation: build "
                "the model with make_model(config.model, "
                "sim_decoder.physics_from_config(config, normalisation))"
            )
        batch, num_objects, time, dims = inputs.shape
        if dims != 4:
            raise ValueError(f"the sim decoder needs [x, y, vx, vy] frames, got {dims} dims")
        if prediction_steps < 1:
            raise ValueError(f"prediction_steps={prediction_steps} must be at least 1")
        steps = min(prediction_steps, time - 1)
        starts = jnp.swapaxes(inputs[:, :, : time - 1 : prediction_steps], 1, 2)  # [B,S,N,4]
        weights = interaction_weights(self.physics.system, edges).astype(inputs.dtype)
        matrix = edge_matrix(weights, num_objects)[:, None]  # [B, 1, N, N]
        preds = simulate_frames(self.physics, starts, matrix, steps)  # [B, S, M, N, 4]
        preds = jnp.transpose(preds, (0, 3, 1, 2, 4)).reshape(batch, num_objects, -1, dims)
        return preds[:, :, : time - 1]


def check_physics_config(config: Mapping) -> None:
    """ValueError for sim-decoder settings that cannot run (called by validation.check_config)."""
    model = config["model"]
    if model["decoder"] != "sim":
        return
    system = config["data"]["system"]
    if system not in SYSTEMS:
        raise ValueError(
            f"config.model.decoder='sim' supports data.system in {SYSTEMS}, not {system!r} "
            f"(Kuramoto's sim decoder is not implemented: see nri_jax/sim_decoder.py)"
        )
    if model["edge_types"] != 2:
        raise ValueError(
            f"config.model.decoder='sim' needs config.model.edge_types=2, not "
            f"{model['edge_types']} (type 1 is the interaction)"
        )
    if model.get("sim_steps", 100) < 1:
        raise ValueError(f"config.model.sim_steps={model['sim_steps']} must be >= 1")
    if model.get("sim_softening", 0.0) < 0:
        raise ValueError(f"config.model.sim_softening={model['sim_softening']} must be >= 0")
