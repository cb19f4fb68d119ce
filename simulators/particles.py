"""Shared machinery of the two particle systems (springs, charged): integrator, walls, batching.

A system is a `ParticleSystem` (its pair force law, default strength and `sample_system`);
`simulators.springs` and `simulators.charged` each define one and export its `simulate`,
`solve_with_diffrax` and `generate_split`, so both run the very same code.

The original NRI generator (REFERENCE.md §1) kicks once, `v += dt F(x0)`, then repeats
`x += dt v; reflect; record every sample_freq-th step; v += dt F(x)`. Moving the kick to the
front of each step gives the same trajectory with a step that needs no special first case
("pre-kick" form): a recorded state (x, v) is advanced by repeating

    v <- v + dt clip(F(x));   x <- x + dt v;   reflect (x, v) at the walls of [-box, box]^2,

and the frames are the states after sample_freq, 2 sample_freq, ... steps. This is symplectic
(semi-implicit) Euler for y = (v, x) -- diffrax's `SemiImplicitEuler` ordering -- followed by a
wall reflection, which diffrax cannot express (an `Event` only terminates a solve). Hence:

- `ReflectingSemiImplicitEuler`, a diffrax solver (`AbstractSolver`) doing that step, usable in
  `diffrax.diffeqsolve` with `ConstantStepSize` and `SaveAt` (see `solve_with_diffrax`);
- `integrate`, the fast path used by `simulate` and by dataset generation: the same step
  (`kick_drift_reflect`) in a nested `lax.scan`, outer over recorded frames, inner over the
  sample_freq steps between them. It records exactly every sample_freq-th state with no time
  variable at all: diffeqsolve would carry a floating-point time, interpolate at `SaveAt.ts`
  and do per-step save bookkeeping, all of which costs time and can only add rounding. Both
  agree to rounding (tests/test_springs.py).

Layout. Inside the integrator states are [2, N, *batch]: coordinate, object, then any batch
dimensions *last*. XLA:CPU vectorises the innermost dimension, so a batch-minor layout turns
every per-pair operation into a long contiguous vector loop; with the batch leading (what
`jax.vmap` produces) the innermost dimension is 2 or N and runs ~4x slower (measured, see
docs/benchmarks.md). The public `simulate` functions take the natural [*batch, N, 2] layout,
accept leading batch dimensions and transpose at the boundary, so both `simulate` on batched
inputs (fast; what dataset generation calls) and `jax.vmap(simulate)` work.

Rounding. Batched, vmapped and single-system calls compute the same operations in the same
order, but XLA:CPU contracts a * b + c into fused multiply-adds depending on how it fuses and
vectorises each program, so they agree to float rounding, not bit for bit (in chaotic charged
dynamics the difference grows over hundreds of steps). Compiled without FMA
(XLA_FLAGS=--xla_cpu_max_isa=AVX) they are bit-identical (tests/test_charged.py). Datasets are
bit-reproducible: they are produced by the same compiled `simulate` for every chunk.

Forces are written as an explicit loop over unordered pairs (i < j), unrolled at trace time:
each pair's distance is computed once and used for both objects, and every operation is an
elementwise op on [*batch] vectors that XLA fuses into one loop per step. Above
`PAIR_LOOP_MAX_OBJECTS` objects a dense [2, N, N, *batch] broadcast is used instead to keep
the traced program small.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from jax import Array
from jax.typing import ArrayLike

from simulators.devices import default_devices, padded_chunk_size, split_over_devices, to_host

BOX_SIZE = 5.0  # Walls at +-BOX_SIZE in both coordinates.
VEL_NORM = 0.5  # Initial speed of every particle.
PAIR_LOOP_MAX_OBJECTS = 16  # Above this, `pairwise_force` uses the dense formulation.
# On a CPU the dense formulation's [2, N, N, batch] temporaries must stay in cache: per device
# at most this many bytes of them, so generation chunks shrink as N^2 above the pair loop's
# range. Per trajectory and step (one core): 20 objects 1.8 us at 16-64 trajectories a device
# (205 KB) against 6.4 us at 256; 50 objects 15 us at 16 (320 KB), 42-46 us at 32-128.
DENSE_FORCE_CACHE_BYTES = 320 * 1024

# (x [2, N, *batch], weights [N, N, *batch]) -> force [2, N, *batch], before clipping.
ForceFn = Callable[[Array, Array], Array]
# Squared distance [*batch] -> force per unit weight and unit displacement (scalar or [*batch]).
RadialFn = Callable[[Array], Array | float]


def default_max_force(dt: float) -> float:
    """The original clips each force component to 0.1 / dt (100 for dt = 1e-3)."""
    return 0.1 / dt


# ----------------------------------------------------------------------------------------------
# Forces, walls and the step.


def pairwise_force(x: Array, weights: Array, radial: RadialFn) -> Array:
    """Pair force F_i = sum_{j != i} w_ij radial(|x_i - x_j|^2) (x_i - x_j).

    The diagonal of `weights` is ignored. `weights` need not be symmetric (row i = receiver).

    Args:
      x: positions [2, N, *batch].
      weights: interaction weights [N, N, *batch]; w_ij scales the force of j on i.
      radial: maps squared distances [*batch] (or [N, N, *batch]) to a scale.

    Returns:
      forces [2, N, *batch].
    """
    n = x.shape[1]
    if n > PAIR_LOOP_MAX_OBJECTS:
        return _dense_pairwise_force(x, weights, radial)
    forces = [jnp.zeros_like(x[:, 0])] * n
    for i in range(n):
        for j in range(i + 1, n):
            d = x[:, i] - x[:, j]  # [2, *batch]
            s = radial(d[0] * d[0] + d[1] * d[1])
            forces[i] = forces[i] + (weights[i, j] * s) * d
            forces[j] = forces[j] - (weights[j, i] * s) * d
    return jnp.stack(forces, axis=1)


def _dense_pairwise_force(x: Array, weights: Array, radial: RadialFn) -> Array:
    """`pairwise_force` as one [2, N, N, *batch] broadcast (for many objects)."""
    n = x.shape[1]
    d = x[:, :, None] - x[:, None, :]  # [2, N, N, *batch], d_ij = x_i - x_j
    off = ~np.eye(n, dtype=bool).reshape((n, n) + (1,) * (x.ndim - 2))
    # The self-pair has d = 0; give it a dummy distance so radial() and its gradient stay finite.
    d2 = jnp.where(off, d[0] * d[0] + d[1] * d[1], 1.0)
    s = jnp.where(off, weights * radial(d2), 0.0)
    return jnp.sum(s * d, axis=2)


def reflect(x: Array, v: Array, box_size: float) -> tuple[Array, Array]:
    """Mirror positions back into [-box_size, box_size] and point those velocities inward.

    Exactly the original's `_clamp`: first the upper wall, then the lower one; a single
    reflection, valid while a step moves a particle less than 2 box sizes past a wall.
    """
    over = x > box_size
    x = jnp.where(over, 2 * box_size - x, x)
    v = jnp.where(over, -jnp.abs(v), v)
    under = x < -box_size
    x = jnp.where(under, -2 * box_size - x, x)
    v = jnp.where(under, jnp.abs(v), v)
    return x, v


def kick_drift_reflect(
    x: Array,
    v: Array,
    weights: Array,
    force: ForceFn,
    dt: float,
    box_size: float,
    max_force: float,
) -> tuple[Array, Array]:
    """One step: v += dt clip(F(x)); x += dt v; reflect. Any layout `force` accepts."""
    v = v + dt * jnp.clip(force(x, weights), -max_force, max_force)
    x = x + dt * v
    return reflect(x, v, box_size)


def integrate(
    force: ForceFn,
    x0: Array,
    v0: Array,
    weights: Array,
    *,
    num_frames: int,
    sample_freq: int,
    dt: float,
    box_size: float,
    max_force: float,
    unroll: int = 1,
) -> tuple[Array, Array]:
    """Run `num_frames * sample_freq` steps of `kick_drift_reflect`, keeping every frame.

    Args:
      force: the unclipped force, in the internal layout.
      x0, v0: positions and velocities [2, N, *batch] at frame 0 (not returned).
      weights: interaction weights [N, N, *batch].
      num_frames, sample_freq: frames to return, steps between frames.
      unroll: `lax.scan` unroll of the inner loop. 1 is fastest on XLA:CPU (measured): larger
        values let XLA fuse consecutive steps into one kernel that recomputes shared values.

    Returns:
      (x, v), each [num_frames, 2, N, *batch]: the states after sample_freq, 2 sample_freq,
      ... steps.
    """

    def step(state, _):
        x, v = state
        return kick_drift_reflect(x, v, weights, force, dt, box_size, max_force), None

    def frame(state, _):
        state, _ = jax.lax.scan(step, state, length=sample_freq, unroll=unroll)
        return state, state

    _, (xs, vs) = jax.lax.scan(frame, (x0, v0), length=num_frames)
    return xs, vs


def simulate_particles(
    force: ForceFn,
    loc0: ArrayLike,
    vel0: ArrayLike,
    weights: ArrayLike,
    *,
    num_frames: int,
    sample_freq: int,
    dt: float,
    box_size: float,
    max_force: float | None,
    unroll: int = 1,
) -> tuple[Array, Array]:
    """`integrate` in the public layout: objects before coordinates, batch dimensions first."""
    dtype = jnp.result_type(loc0, vel0, weights, float)
    loc0, vel0, weights = (jnp.asarray(a, dtype) for a in (loc0, vel0, weights))
    if loc0.shape[-1] != 2 or loc0.shape != vel0.shape:
        raise ValueError(f"loc0 {loc0.shape} and vel0 {vel0.shape} must both be [..., N, 2]")
    n = loc0.shape[-2]
    if weights.shape[-2:] != (n, n):
        raise ValueError(f"weights {weights.shape} must be [..., {n}, {n}]")
    batch = jnp.broadcast_shapes(loc0.shape[:-2], vel0.shape[:-2], weights.shape[:-2])
    loc0, vel0 = (jnp.broadcast_to(a, (*batch, n, 2)) for a in (loc0, vel0))
    weights = jnp.broadcast_to(weights, (*batch, n, n))
    to_minor = lambda a: jnp.moveaxis(a, (-2, -1), (0, 1))  # [*b, A, B] -> [A, B, *b]
    x0, v0 = (jnp.moveaxis(a, (-1, -2), (0, 1)) for a in (loc0, vel0))  # [2, N, *b]
    xs, vs = integrate(
        force,
        x0,
        v0,
        to_minor(weights),
        num_frames=num_frames,
        sample_freq=sample_freq,
        dt=dt,
        box_size=box_size,
        max_force=default_max_force(dt) if max_force is None else max_force,
        unroll=unroll,
    )
    # [frames, 2, N, *b] -> [*b, frames, N, 2]
    return tuple(jnp.moveaxis(a, (0, 1, 2), (-3, -1, -2)) for a in (xs, vs))


# ----------------------------------------------------------------------------------------------
# Initial conditions.


def initial_state(
    key: Array, num_objects: int, loc_std: float, box_size: float = BOX_SIZE
) -> tuple[Array, Array]:
    """Positions ~ Normal(0, loc_std^2), velocities of random direction and norm `VEL_NORM`.

    Reflected at the walls like every later state (the original clamps its initial state too).
    Returns (loc [N, 2], vel [N, 2]).
    """
    # One draw for both: every random call is a threefry kernel that XLA:CPU takes ~0.5 s to
    # compile.
    loc, vel = jax.random.normal(key, (2, num_objects, 2))
    vel = VEL_NORM * vel / jnp.linalg.norm(vel, axis=-1, keepdims=True)
    return reflect(loc_std * loc, vel, box_size)


# ----------------------------------------------------------------------------------------------
# The diffrax solver.


class ReflectingSemiImplicitEuler(diffrax.AbstractSolver):
    """Semi-implicit Euler for y = (v, x) followed by a reflection at the walls of a box.

    `diffrax.SemiImplicitEuler` plus walls: symplectic away from the walls, first order, fixed
    step only (use `ConstantStepSize`; there is no error estimate). Takes terms (force, velocity),
    e.g. (ODETerm(lambda t, x, args: F(x)), ODETerm(lambda t, v, args: v)), and y = (v, x); one
    step is v1 = v0 + dt F(x0); x1 = x0 + dt v1; then (x1, v1) are reflected into
    [-box_size, box_size]. Dense output interpolates linearly within a step, which is wrong
    inside a step that reflects: save at step boundaries.

    Args:
      box_size: half-width of the box (walls at +-box_size).
    """

    box_size: float = BOX_SIZE

    term_structure = (diffrax.AbstractTerm, diffrax.AbstractTerm)
    interpolation_cls = diffrax.LocalLinearInterpolation

    def order(self, terms):
        return 1

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        force_term, velocity_term = terms
        v0, x0 = y0
        v1 = v0 + force_term.vf_prod(t0, x0, args, force_term.contr(t0, t1))
        x1 = x0 + velocity_term.vf_prod(t0, v1, args, velocity_term.contr(t0, t1))
        x1, v1 = reflect(x1, v1, self.box_size)
        y1 = (v1, x1)
        return y1, None, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        force_term, velocity_term = terms
        v0, x0 = y0
        return force_term.vf(t0, x0, args), velocity_term.vf(t0, v0, args)


def solve_with_diffrax(
    force: ForceFn,
    loc0: ArrayLike,
    vel0: ArrayLike,
    weights: ArrayLike,
    *,
    num_frames: int,
    sample_freq: int,
    dt: float,
    box_size: float,
    max_force: float | None,
) -> tuple[Array, Array]:
    """The same trajectory as `simulate_particles`, via `diffrax.diffeqsolve` (one system).

    Slower than the fast path (time bookkeeping, interpolation at `SaveAt.ts`) and equal to it
    up to rounding; it exists to show the integrator is an ordinary diffrax solver, usable with
    diffrax's adjoints and tooling. Differentiable with the default RecursiveCheckpointAdjoint.
    """
    max_force = default_max_force(dt) if max_force is None else max_force

    def clipped_force(t, x, weights):
        return jnp.clip(force(x, weights), -max_force, max_force)

    terms = (diffrax.ODETerm(clipped_force), diffrax.ODETerm(lambda t, v, args: v))
    t1 = num_frames * sample_freq * dt
    # Frame times; the last one rounded down to t1 so diffrax accepts it.
    ts = jnp.minimum(dt * sample_freq * jnp.arange(1, num_frames + 1), t1)
    y0 = (jnp.asarray(vel0).T, jnp.asarray(loc0).T)  # [2, N]
    solution = diffrax.diffeqsolve(
        terms,
        ReflectingSemiImplicitEuler(box_size),
        t0=0.0,
        t1=t1,
        dt0=dt,
        y0=y0,
        args=jnp.asarray(weights),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.ConstantStepSize(),
        max_steps=num_frames * sample_freq,
    )
    vs, xs = solution.ys  # [frames, 2, N]
    return jnp.swapaxes(xs, -1, -2), jnp.swapaxes(vs, -1, -2)


# ----------------------------------------------------------------------------------------------
# Dataset generation.

# (key, num_objects) -> (loc0 [N, 2], vel0 [N, 2], weights [N, N], edges [N, N]).
SampleFn = Callable[[Array, int], tuple[Array, Array, Array, Array]]
# Trajectories per chunk in `generate_split`: 512 per core on 2 cores, where XLA:CPU is fastest
# (per-device batches of 256-512 stay in cache; docs/benchmarks.md).
DEFAULT_CHUNK_SIZE = 1024


@functools.lru_cache(maxsize=32)
def _sampler(sample_system: SampleFn, num_objects: int) -> Callable:
    """Jitted (split_key, indices [B]) -> (loc0, vel0, weights, edges), each with a leading B.

    Cached so that the compiled program is shared by all splits and calls.
    """

    @jax.jit
    def sample(split_key, indices):
        # Trajectory i depends on (split_key, i) only, not on the chunking.
        keys = jax.vmap(jax.random.fold_in, (None, 0))(split_key, indices)
        return jax.vmap(lambda k: sample_system(k, num_objects))(keys)

    return sample


# ----------------------------------------------------------------------------------------------
# The systems.

# (squared distance [*batch], interaction strength) -> `pairwise_force`'s radial scale.
RadialLaw = Callable[[Array, Array | float], Array | float]

_SIMULATE_DOC = """\
Simulate the {name} system for `num_frames * sample_freq` steps, every sample_freq-th kept.

Symplectic (semi-implicit) Euler with a fixed step: each step is v += dt clip(F(x)),
x += dt v, then a reflection at the walls of [-box_size, box_size]^2. Frame k is the state
after k * sample_freq steps (k = 1..num_frames); from the original's initial state this is
exactly its recorded trajectory (steps 100, 200, ... for sample_freq 100). The clip
(0.1 / dt by default) bounds the kick of close encounters. Pure, jittable, vmappable, and
differentiable w.r.t. all array arguments (for charged particles, finite as long as no two
coincide). Batch dimensions may be leading dimensions of the inputs (the fast way: the
integrator keeps them minor, see `simulators.particles`) or added by `jax.vmap` (2-3x slower
on CPU; equal up to rounding, which chaotic charged encounters amplify over long horizons).

Args:
  loc0: initial positions [*batch, N, 2].
  vel0: initial velocities [*batch, N, 2].
  weights: {weights} [*batch, N, N]: w_ij scales the force of j on i (row i is the object
    the force acts on); continuous values allowed; diagonal ignored.
  num_frames: frames to return. One frame with the defaults is one NRI time step.
  sample_freq: integration steps per frame.
  dt: integration step.
  box_size: walls at +-box_size (use a huge value for no walls).
  max_force: clip of each force component; None means the original's 0.1 / dt.
  interaction_strength: {strength}; None means {default}.
  unroll: inner `lax.scan` unroll (1 is fastest on CPU).

Returns:
  (loc, vel), each [*batch, num_frames, N, 2].
"""


@dataclasses.dataclass(frozen=True)
class ParticleSystem:
    """A particle system of NRI: all that springs and charged particles differ in.

    Integration, walls, the diffrax solver and dataset generation are shared; a system is its
    pair force law, its default strength and how the original draws one system. Its module
    (`simulators.springs`, `simulators.charged`) defines one, `SYSTEM`, and exports `force`,
    `simulate`, `solve_with_diffrax` and `generate_split` from it.

    Attributes:
      name: 'springs' or 'charged' (docstrings, progress bars).
      radial: (d2, strength) -> s(d2) with F_i = sum_j w_ij s(|x_i - x_j|^2) (x_i - x_j).
      interaction_strength: the default strength (spring constant k, Coulomb constant C).
      sample_system: (key, N) -> (loc0 [N, 2], vel0 [N, 2], weights [N, N], edges [N, N]).
      weights_doc, strength_doc: what the weights and the strength are, for the docstring.
    """

    name: str
    radial: RadialLaw
    interaction_strength: float
    sample_system: SampleFn
    weights_doc: str
    strength_doc: str

    def force(self, x: Array, weights: Array, interaction_strength: float | None = None) -> Array:
        """Unclipped force in the internal layout: x [2, N, *batch], weights [N, N, *batch].

        `interaction_strength` None means the system's own.
        """
        if interaction_strength is None:
            interaction_strength = self.interaction_strength
        return pairwise_force(x, weights, lambda d2: self.radial(d2, interaction_strength))

    @functools.cached_property
    def simulate(self) -> Callable[..., tuple[Array, Array]]:
        """The system's public `simulate`: one jitted function (one compilation cache) each."""

        def simulate(
            loc0: ArrayLike,
            vel0: ArrayLike,
            weights: ArrayLike,
            *,
            num_frames: int,
            sample_freq: int = 100,
            dt: float = 1e-3,
            box_size: float = BOX_SIZE,
            max_force: float | None = None,
            interaction_strength: float | None = None,
            unroll: int = 1,
        ) -> tuple[Array, Array]:
            return simulate_particles(
                functools.partial(self.force, interaction_strength=interaction_strength),
                loc0,
                vel0,
                weights,
                num_frames=num_frames,
                sample_freq=sample_freq,
                dt=dt,
                box_size=box_size,
                max_force=max_force,
                unroll=unroll,
            )

        simulate.__doc__ = _SIMULATE_DOC.format(
            name=self.name,
            weights=self.weights_doc,
            strength=self.strength_doc,
            default=f"{self.interaction_strength} (INTERACTION_STRENGTH)",
        )
        simulate.__module__ = f"simulators.{self.name}"
        simulate.__qualname__ = "simulate"
        return jax.jit(simulate, static_argnames=("num_frames", "sample_freq", "unroll"))

    def solve_with_diffrax(
        self,
        loc0: ArrayLike,
        vel0: ArrayLike,
        weights: ArrayLike,
        *,
        num_frames: int,
        sample_freq: int = 100,
        dt: float = 1e-3,
        box_size: float = BOX_SIZE,
        max_force: float | None = None,
        interaction_strength: float | None = None,
    ) -> tuple[Array, Array]:
        """`simulate` for one system ([N, 2] inputs) through `diffrax.diffeqsolve`.

        The module-level `solve_with_diffrax` with this system's force; `interaction_strength`
        None means the system's own.
        """
        return solve_with_diffrax(
            functools.partial(self.force, interaction_strength=interaction_strength),
            loc0,
            vel0,
            weights,
            num_frames=num_frames,
            sample_freq=sample_freq,
            dt=dt,
            box_size=box_size,
            max_force=max_force,
        )

    def generate_split(
        self,
        key: Array,
        num_sims: int,
        num_objects: int,
        length: int,
        length_test: int,
        sample_freq: int,
        dt: float,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: bool = True,
        *,
        devices: list[jax.Device] | None = None,
        sample_system: SampleFn | None = None,
    ) -> dict[str, np.ndarray]:
        """`num_sims` trajectories of `length` steps in chunks, in the original's file format.

        Each chunk is sampled on the first device, then `simulators.devices` splits it evenly
        over `devices` (default: `simulators.devices.default_devices()`: every host device on
        CPU, the first device on an accelerator) and hands each part to the public, jitted
        `simulate` -- the very program a user gets from `simulate(loc0, vel0, weights,
        num_frames=T)` with that batch -- on its own device. One host device per core
        (`simulators.devices.use_all_cpu_cores`) nearly doubles the throughput on 2 cores.
        `length_test` is unused (particles simulate each split at its own length); it is in the
        signature shared with `simulators.kuramoto.generate_split`. `sample_system` replaces
        the system's own draw (hashable, e.g. `simulators.springs.Draw`: the compiled sampler
        is cached by it).

        Returns:
          {'loc': [S, T, 2, N] float32, 'vel': [S, T, 2, N] float32, 'edges': [S, N, N]
          float64, `sample_system`'s edges}, T = length // sample_freq - 1. Trajectory i uses
          `fold_in(key, i)`: the values do not depend on `chunk_size` or on the number of
          devices (bit for bit as long as the batch per device stays large; tiny batches may
          round differently, see `simulators.particles`).
        """
        del length_test
        num_frames = length // sample_freq - 1
        devices = list(default_devices() if devices is None else devices)
        # Per trajectory: its frames (positions and velocities) and, above
        # PAIR_LOOP_MAX_OBJECTS, the dense force's [2, N, N] temporaries (a few of them).
        item_bytes = 2 * num_frames * num_objects * 2 * 4 + 6 * num_objects**2 * 4
        if num_objects > PAIR_LOOP_MAX_OBJECTS and devices[0].platform == "cpu":
            per_device = max(1, DENSE_FORCE_CACHE_BYTES // (2 * num_objects**2 * 4))
            chunk_size = min(chunk_size, per_device * len(devices))
        chunk = padded_chunk_size(chunk_size, num_sims, len(devices), item_bytes)
        sampler = _sampler(sample_system or self.sample_system, num_objects)
        simulate = functools.partial(
            self.simulate, num_frames=num_frames, sample_freq=sample_freq, dt=dt
        )

        def dispatch(indices):
            # Sampling is cheap: one program (one compilation) on the first device for the chunk.
            loc0, vel0, weights, edges = sampler(*jax.device_put((key, indices), devices[0]))
            return split_over_devices(simulate, (loc0, vel0, weights), devices), edges

        out = dict(
            loc=np.empty((num_sims, num_frames, 2, num_objects), np.float32),
            vel=np.empty((num_sims, num_frames, 2, num_objects), np.float32),
            edges=np.empty((num_sims, num_objects, num_objects), np.float64),
        )

        def collect(start, result):
            parts, edges = result
            stop = min(start + chunk, num_sims)
            for name, host in zip(("loc", "vel"), to_host(parts, stop - start), strict=True):
                # The original's file layout is [S, T, 2, N]; simulate returns [S, T, N, 2].
                out[name][start:stop] = np.swapaxes(host, -1, -2)
            out["edges"][start:stop] = np.asarray(edges)[: stop - start]
            bar.update(stop - start)

        desc = f"{self.name}{num_objects}"
        with tqdm.tqdm(total=num_sims, unit="traj", desc=desc, disable=not progress) as bar:
            pending = None
            for start in range(0, num_sims, chunk):
                result = dispatch(np.arange(start, start + chunk, dtype=np.uint32))  # Async,
                if pending is not None:
                    collect(*pending)  # so copying out the previous chunk overlaps with it.
                pending = (start, result)
            if pending is not None:
                collect(*pending)
        return out
