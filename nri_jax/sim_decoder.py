"""The simulation decoder of NRI (sim.) (paper §4): the system's own physics in place of the GNN.

The decoder maps each normalised frame ([x, y, vx, vy] for particles) back to physical
units, advances the system's equations of motion by one frame with the sampled edges as
continuous interaction weights, and scales the result back: the mean mu^{t+1} of eq. 12 is a
simulator step, and the encoder trains through it with `jax.grad` (gradients flow through
`simulators.particles`, or through diffrax for Kuramoto).

Edge weights from z `[..., E, K]` (K = 2; type 1 is "interaction"):
- springs: w_ij = z_ij,1 (spring constant k w_ij; hard z gives the generator's graph);
- charged: w_ij = 2 z_ij,1 - 1, i.e. type 1 repels (q_i q_j = +1) and type 0 attracts (-1);
- kuramoto: k_ij = z_ij,1 (coupling of receiver i to sender j).

Particle integration: `steps` semi-implicit Euler steps of frame_dt / steps per frame, with the
generator's walls and force clip. steps = 100 (the default) is the generator's own step
(dt = 0.001): with the true graph the decoder reproduces the data up to float rounding. The
original's decoder did this for charged (100 steps of 0.001, force clip 0.1 / dt), but for
springs took one coarse step of dt = 0.1 per frame without a clip (steps = 1 here); it always
predicted one frame from each true frame, whatever the prediction steps. Here the force clip
stays the generator's physical one (0.1 / 0.001 = 100) whatever the step, so that coarser
steps integrate the same ODE rather than a differently clipped one.

Charged particles: `softening` > 0 replaces 1 / r^3 by 1 / (r^2 + eps^2)^(3/2) inside the
decoder only (the data are not softened), bounding the force and its gradient at close range.
Measured on charged5 (docs/results.md): unsoftened, the encoder stays at chance; softening 0.1
with one-frame rollouts (train.prediction_steps=1) reached 57.9%, about the paper's 59.6%.

Kuramoto: the successors' features are min-max scaled per trajectory (REFERENCE.md §1), so
the physical phases cannot be recovered from them. The generator therefore also writes the raw
phases, their unscaled d(phi)/dt (the successors' forward difference over one grid step dt,
before scaling) and the frequencies (`phase_{split}_kuramoto5.npy` [S, N, T], `dphase_...`,
`omega_...` [S, N]), and `data.features = 'phase'` makes them the model's frames:
[cos phi, sin phi, omega, d(phi)/dt], scaled per feature over the training split like any
Kuramoto features. Encoder and decoder both see these frames. The decoder recovers
phi = atan2(sin, cos) and omega, advances phi by one frame with `simulators.kuramoto.vector_field`
(coupling k_ij = z_ij,1, type 1 = "j drives i") in `steps` fixed Dopri5 steps through
`diffrax.diffeqsolve`, and predicts [cos, sin, omega, d(phi)/dt] of the new frame (omega is
constant; d(phi)/dt is the forward difference over `velocity_dt` = data.dt, read off Dopri5's
dense output, as the data define it). The NLL and MSE are then over these frames, not over the
successors' features: edge accuracy compares across the two, likelihoods do not.

Why d(phi)/dt is in the frames: without it ([cos, sin, omega]) the encoder reached 73% on
kuramoto5 although the likelihood identifies every edge (docs/results.md, NRI (sim.)): d(phi)/dt
- omega_i = sum_j k_ij sin(phi_j - phi_i) exposes the couplings frame by frame, where phases
alone hide them in second differences.
"""

from __future__ import annotations

import dataclasses
import math

import diffrax
import jax
import jax.numpy as jnp

from nri_jax.config import SYSTEMS
from nri_jax.graph import edges_to_matrix
from simulators import charged, kuramoto, particles, springs

DIMS = {"springs": 4, "charged": 4, "kuramoto": 4}  # model-input dims per object per frame


@dataclasses.dataclass(frozen=True)
class SimPhysics:
    """Static settings of the simulation decoder (hashable, so a Flax module field).

    minimum/maximum are the training split's normalisation per model-input dim (from
    `nri_jax.data.Normalisation`: [x, y, vx, vy] for particles, [cos phi, sin phi, omega,
    d(phi)/dt] for Kuramoto); frame_dt the physical time between frames (data.dt *
    data.sample_freq); steps the integration steps per frame; velocity_dt the step of
    Kuramoto's forward-difference d(phi)/dt (data.dt).
    """

    system: str
    minimum: tuple[float, ...]
    maximum: tuple[float, ...]
    frame_dt: float = 0.1
    steps: int = 100
    box_size: float = particles.BOX_SIZE
    max_force: float = 100.0
    softening: float = 0.0
    velocity_dt: float = 0.01

    def __post_init__(self):
        if self.system not in SYSTEMS:
            raise ValueError(
                f"config.model.decoder='sim' supports data.system in {SYSTEMS}, not {self.system!r}"
            )
        if self.steps < 1:
            raise ValueError(f"config.model.sim_steps={self.steps} must be >= 1")
        if len(self.minimum) != DIMS[self.system] or len(self.maximum) != DIMS[self.system]:
            raise ValueError(
                f"the {self.system} sim decoder needs {DIMS[self.system]} input dims, got "
                f"a normalisation of {len(self.minimum)}"
            )

    @property
    def dt(self) -> float:
        return self.frame_dt / self.steps


def physics_from_config(config, normalisation) -> SimPhysics:
    """SimPhysics from the whole config (data and model groups) and the run's Normalisation."""
    data, model = config.data, config.model
    lo, hi = list(normalisation.minimum), list(normalisation.maximum)
    if data.system != "kuramoto":  # [loc, vel] scalars -> per dim [x, y, vx, vy]
        lo, hi = [lo[0], lo[0], lo[1], lo[1]], [hi[0], hi[0], hi[1], hi[1]]
    return SimPhysics(
        system=data.system,
        minimum=tuple(float(v) for v in lo),
        maximum=tuple(float(v) for v in hi),
        frame_dt=float(data.dt * data.sample_freq),
        steps=int(model.get("sim_steps", 100)),
        max_force=float(particles.default_max_force(data.dt)),
        softening=float(model.get("sim_softening", 0.0)),
        velocity_dt=float(data.dt),
    )


def identity_physics(system: str, **kwargs) -> SimPhysics:
    """Physics whose normalisation is the identity ((x + 1) (1 - (-1)) / 2 - 1 = x)."""
    dims = DIMS[system]
    return SimPhysics(system, (-1.0,) * dims, (1.0,) * dims, **kwargs)


def interaction_weights(system: str, edges: jax.Array) -> jax.Array:
    """Continuous interaction weights `[..., E]` from edges z `[..., E, K]` (see module doc)."""
    z1 = edges[..., 1]
    return 2.0 * z1 - 1.0 if system == "charged" else z1


def _force_fn(physics: SimPhysics):
    if physics.system == "springs":
        return lambda x, w: springs.force(x, w)
    if physics.softening == 0.0:
        return lambda x, w: charged.force(x, w)
    # Softened Coulomb: the generator's law at the squared distance r^2 + eps^2.
    eps2 = physics.softening**2

    def radial(d2):
        return charged.radial(d2 + eps2, charged.INTERACTION_STRENGTH)

    return lambda x, w: particles.pairwise_force(x, w, radial)


def _unscale(x, physics: SimPhysics):
    lo, hi = jnp.asarray(physics.minimum, x.dtype), jnp.asarray(physics.maximum, x.dtype)
    return (x + 1.0) * ((hi - lo) / 2.0) + lo


def _scale(x, physics: SimPhysics):
    lo, hi = jnp.asarray(physics.minimum, x.dtype), jnp.asarray(physics.maximum, x.dtype)
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def _particle_frames(physics: SimPhysics, state, weights, num_frames):
    """Physical [*b, N, 4] -> [*b, num_frames, N, 4] with the generator's integrator."""
    locs, vels = particles.simulate_particles(
        _force_fn(physics),
        state[..., :2],
        state[..., 2:],
        weights,
        num_frames=num_frames,
        sample_freq=physics.steps,
        dt=physics.dt,
        box_size=physics.box_size,
        max_force=physics.max_force,
    )
    return jnp.concatenate([locs, vels], axis=-1)


def _kuramoto_frames(physics: SimPhysics, state, weights, num_frames):
    """Physical [cos, sin, omega, dphi/dt] [*b, N, 4] -> [*b, num_frames, N, 4] (fixed-step
    Dopri5; d(phi)/dt of each frame is the forward difference over velocity_dt)."""
    batch_shape, num_objects = state.shape[:-2], state.shape[-2]
    weights = jnp.broadcast_to(weights, batch_shape + (num_objects, num_objects))
    phi0 = jnp.arctan2(state[..., 1], state[..., 0]).reshape(-1, num_objects)
    omega = state[..., 2].reshape(-1, num_objects)
    ts = physics.frame_dt * jnp.arange(1, num_frames + 1, dtype=state.dtype)
    # Each frame's time and one grid step later (Dopri5's dense output between steps).
    ts = jnp.stack([ts, ts + physics.velocity_dt], axis=-1).reshape(-1)

    def one(phi0, omega, coupling):
        # Fixed steps: the cost and the gradient's tape are known in advance, and every
        # trajectory of a batch takes the same steps (no masked adaptive loop under vmap).
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(kuramoto.vector_field),
            diffrax.Dopri5(),
            t0=0.0,
            t1=ts[-1],
            dt0=physics.dt,
            y0=phi0,
            args=(omega, coupling),
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.ConstantStepSize(),
            # The frames' steps, and those to one grid step past the last frame.
            max_steps=physics.steps * num_frames + math.ceil(physics.velocity_dt / physics.dt) + 1,
        )
        return solution.ys.reshape(num_frames, 2, num_objects)  # [num_frames, 2, N]

    phis = jax.vmap(one)(phi0, omega, weights.reshape(-1, num_objects, num_objects))
    phis = phis.reshape(batch_shape + (num_frames, 2, num_objects))
    phi, ahead = phis[..., 0, :], phis[..., 1, :]
    omega = jnp.broadcast_to(state[..., None, :, 2], phi.shape)
    velocity = (ahead - phi) / physics.velocity_dt
    return jnp.stack([jnp.cos(phi), jnp.sin(phi), omega, velocity], axis=-1)


def simulate_frames(
    physics: SimPhysics, frames: jax.Array, weights: jax.Array, num_frames: int
) -> jax.Array:
    """Advance normalised frames `[*b, N, D]` by `num_frames` frames with weights `[*b', N, N]`.

    `*b'` broadcasts against `*b`. Returns normalised states `[*b, num_frames, N, D]`.
    """
    state = _unscale(frames, physics)
    advance = _kuramoto_frames if physics.system == "kuramoto" else _particle_frames
    return _scale(advance(physics, state, weights, num_frames), physics)


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
        if dims != DIMS[self.physics.system]:
            raise ValueError(
                f"the {self.physics.system} sim decoder needs {DIMS[self.physics.system]} dims "
                f"per frame, got {dims}"
            )
        if prediction_steps < 1:
            raise ValueError(f"prediction_steps={prediction_steps} must be at least 1")
        steps = min(prediction_steps, time - 1)
        starts = jnp.swapaxes(inputs[:, :, : time - 1 : prediction_steps], 1, 2)  # [B,S,N,4]
        weights = interaction_weights(self.physics.system, edges).astype(inputs.dtype)
        matrix = edges_to_matrix(weights, num_objects)[:, None]  # [B, 1, N, N]
        preds = simulate_frames(self.physics, starts, matrix, steps)  # [B, S, M, N, 4]
        preds = jnp.transpose(preds, (0, 3, 1, 2, 4)).reshape(batch, num_objects, -1, dims)
        return preds[:, :, : time - 1]
