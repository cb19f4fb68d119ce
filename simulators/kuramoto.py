"""Kuramoto phase oscillators (REFERENCE.md §1), integrated with diffrax's Dopri5.

    d(phi_i)/dt = omega_i + sum_j k_ij sin(phi_j - phi_i)

Coupling strength 1 and no 1/N factor; `k_ij = 1` means oscillator j drives oscillator i
(row = receiver), as in the edge files. The original NRI release never shipped this generator;
this follows its successors' recipe (adaptive RK4(5) read out on a dt = 0.01 grid, every 10th
point kept, per-trajectory min-max scaled features).

Public pieces: `sample_system`, `vector_field`, `simulate` (pure, jit-able, vmappable,
differentiable), `features` (the successors' normalised features) and `generate_split` (a whole
split, chunked, deterministic per trajectory).

Precision. The features difference the unwrapped phase (~100 late in a trajectory) over one
grid step of 0.01, which float32 (~8e-6 resolution at 100) resolves poorly. Against a tight
float64 solve, over 1000 systems (`benchmarks/kuramoto_precision.py`, docs/benchmarks.md),
the scaled d(phi)/dt of the float64 generator errs by at most 1.5e-3 (99.9th percentile
2.8e-4), of a float32 solve (rtol = atol = 1e-7) by up to 0.35 (p99.9 5.2e-2).
`generate_split` therefore runs in float64 where every device has it (CPU, GPU) and otherwise
(TPU) in float32 in the frame rotating with each natural frequency, psi = phi - omega t, whose
increments it differences without phi's large offset: the scaled d(phi)/dt then errs by
1.3e-4 on average, 5.8e-3 at p99.9 (within the decoder's likelihood scale sqrt(5e-5) = 7e-3)
and up to 0.13 in the worst frame; sin(phi) and the scaled phase by at most 3.2e-4 and 2.3e-5.
"""

from __future__ import annotations

import functools
import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from simulators import graphs
from simulators.devices import default_devices, padded_chunk_size, split_over_devices, to_host

OMEGA_MIN, OMEGA_MAX = 1.0, 10.0  # Natural frequencies ~ U[1, 10).
EDGE_PROB = 0.5
PAPER_GRAPH = graphs.ErdosRenyi(EDGE_PROB)
NUM_FEATURES = 4  # [d(phi)/dt, sin(phi), phase, omega].

# Dopri5 tolerances. The error norm is relative to the *unwrapped* phase, which grows to ~100
# over the 10 time units, so rtol sets an absolute local error of ~1e-6 late in a trajectory.
# Against a rtol = atol = 1e-12 float64 solve, rtol = atol = 1e-8 keeps every normalised
# feature within 6e-4 (mean 2e-5, mostly from d(phi)/dt, whose finite difference over dt and
# per-oscillator min-max scaling amplify errors); the successors' nominal scipy setting
# rtol = 1e-6 drifts by up to 4e-2 here, and 1e-7 by 4e-3, comparable to the decoder's
# likelihood scale (sqrt(5e-5) = 7e-3). 1e-9 gains a factor of 6 for ~45% more steps.
RTOL = 1e-8
ATOL = 1e-8
MAX_STEPS = 4096  # ~130 steps on average at RTOL; a bound is needed for reverse-mode gradients.
# The float32 generator's tolerances: against 1e-6, ten times more accurate phases and a
# third less mean error in d(phi)/dt (docs/benchmarks.md).
FLOAT32_RTOL = 1e-7
FLOAT32_ATOL = 1e-7
# Platforms whose devices compute in float64 (TPUs do not).
FLOAT64_PLATFORMS = ("cpu", "gpu", "cuda", "rocm")

# Up to this many oscillators the coupling sums are unrolled into multiply-adds (see `_matvec`).
_UNROLL_MAX = 16


def sample_system(
    key: jax.Array, num_objects: int, graph: graphs.Graph = PAPER_GRAPH
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Draws one random Kuramoto system.

    phi0 ~ U[0, 2 pi), omega ~ U[1, 10), k_ij ~ Bernoulli(0.5) independently for each ordered pair
    (directed graph), zero diagonal. Floats use JAX's default float dtype (float64 under
    `jax.enable_x64`). Another `graph` family is drawn directed where it has a directed form
    (Erdos-Renyi, stochastic block: each ordered pair on its own); Barabasi-Albert and
    Watts-Strogatz graphs are undirected, so their oscillators are coupled both ways.

    Args:
      key: PRNG key.
      num_objects: N, the number of oscillators.
      graph: the family of the coupling graph (`simulators.graphs`); default the paper's.

    Returns:
      phi0 [N] initial phases, omega [N] natural frequencies, coupling [N, N] in {0, 1} (float,
      row = receiver, column = sender).
    """
    if num_objects < 1:
        raise ValueError(f"num_objects must be positive, got {num_objects}")
    key_phase, key_freq, key_edges = jax.random.split(key, 3)
    phi0 = jax.random.uniform(key_phase, (num_objects,), minval=0.0, maxval=2.0 * math.pi)
    omega = jax.random.uniform(key_freq, (num_objects,), minval=OMEGA_MIN, maxval=OMEGA_MAX)
    edges = graph.sample(key_edges, num_objects, directed=True)
    return phi0, omega, edges.astype(phi0.dtype)


def _matvec(matrix: jax.Array, vector: jax.Array) -> jax.Array:
    """matrix @ vector for [N, N] x [N]; unrolled for small static N."""
    n = vector.shape[-1]
    if n > _UNROLL_MAX:
        return matrix @ vector
    # Under vmap a 5 x 5 matvec lowers on CPU to a batched dot (or an unfused reduction) that
    # costs about as much as the whole Dopri5 step around it; N^2 explicit multiply-adds fuse
    # with the sines into one loop (measured 25 vs 40-55 ns per oscillator evaluation).
    return sum(matrix[:, j] * vector[j] for j in range(n))


def vector_field(t: jax.Array, phi: jax.Array, args: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Kuramoto right-hand side, in diffrax's `(t, y, args)` convention.

    Uses sum_j k_ij sin(phi_j - phi_i) = cos(phi_i) (K sin phi)_i - sin(phi_i) (K cos phi)_i:
    2N trig calls and 2N^2 multiply-adds instead of N^2 sines. Autonomous (`t` unused).

    Args:
      t: time (unused).
      phi: [N] phases.
      args: (omega [N], coupling [N, N]); coupling may hold any real weights.

    Returns:
      d(phi)/dt [N].
    """
    del t
    omega, coupling = args
    sin, cos = jnp.sin(phi), jnp.cos(phi)
    return omega + cos * _matvec(coupling, sin) - sin * _matvec(coupling, cos)


def _rotating_field(t: jax.Array, psi: jax.Array, args: tuple[jax.Array, jax.Array]) -> jax.Array:
    """`vector_field` in the frame psi = phi - omega t: d(psi)/dt is the coupling term alone."""
    omega, coupling = args
    phi = psi + omega * t
    sin, cos = jnp.sin(phi), jnp.cos(phi)
    return cos * _matvec(coupling, sin) - sin * _matvec(coupling, cos)


def simulate(
    phi0: jax.Array,
    omega: jax.Array,
    coupling: jax.Array,
    ts: jax.Array,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    max_steps: int = MAX_STEPS,
    adjoint: diffrax.AbstractAdjoint | None = None,
) -> jax.Array:
    """Integrates one Kuramoto system with adaptive Dopri5 and reads it out at `ts`.

    Pure; jit-able; vmappable over systems (each keeps its own adaptive steps); differentiable
    w.r.t. phi0, omega and real-valued coupling weights through diffrax's default
    `RecursiveCheckpointAdjoint`. Runs in the dtype of its inputs (use float64 for accuracy: the
    unwrapped phase reaches ~100, where float32 resolves only ~1e-5). Output times between
    steps come from Dopri5's dense interpolant, so the grid does not constrain the step size.
    The initial step is chosen automatically. Raises at run time if `max_steps` is exceeded.

    Args:
      phi0: [N] initial phases.
      omega: [N] natural frequencies.
      coupling: [N, N] weights k_ij (row = receiver i, column = sender j).
      ts: [T] increasing output times; the solve runs from ts[0] to ts[-1].
      rtol, atol: PID step-size controller tolerances (see `RTOL` for the choice).
      max_steps: bound on the number of steps.
      adjoint: diffrax adjoint; default `RecursiveCheckpointAdjoint()`. `ForwardMode()` gives a
        plain while loop (forward-mode autodiff only).

    Returns:
      phi [T, N], unwrapped phases at `ts`.
    """
    n = phi0.shape[-1]
    if phi0.shape != (n,) or omega.shape != (n,) or coupling.shape != (n, n):
        raise ValueError(
            f"shapes must be phi0 [N], omega [N], coupling [N, N]; got {phi0.shape}, "
            f"{omega.shape}, {coupling.shape}"
        )
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"ts must be 1-D with at least 2 times, got shape {ts.shape}")
    adjoint = diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
    return _dopri5(vector_field, phi0, omega, coupling, ts, rtol, atol, max_steps, adjoint)


def _dopri5(field, y0, omega, coupling, ts, rtol, atol, max_steps, adjoint) -> jax.Array:
    """`field`'s solution [T, N] at `ts` by adaptive Dopri5 (dense output between steps)."""
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Dopri5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        args=(omega, coupling),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        adjoint=adjoint,
    )
    return solution.ys


def _minmax(x: jax.Array) -> jax.Array:
    """Scales each column of x [T, N] to [-1, 1]; constant columns become 0 (not NaN)."""
    low, high = x.min(axis=0), x.max(axis=0)
    span = high - low
    safe = jnp.where(span > 0, span, 1.0)
    return jnp.where(span > 0, (x - low) * 2.0 / safe - 1.0, 0.0)


def features(
    phi: jax.Array,
    coupling: jax.Array,
    omega: jax.Array,
    sample_freq: int,
    dt: float,
    num_frames: int,
    increments: jax.Array | None = None,
) -> jax.Array:
    """The successors' normalised Kuramoto features, [d(phi)/dt, sin(phi), phase, omega].

    On the subsampled frames t = 0, sample_freq*dt, ...: d(phi)/dt is the forward difference
    (phi[t+dt] - phi[t]) / dt, min-max scaled to [-1, 1] per oscillator and set to 0 for
    oscillators with no incoming edge (their velocity is the constant omega); sin(phi) is
    unscaled; phase is phi min-max scaled per oscillator; omega is mapped from [1, 10] to
    [-1, 1]. Scaling uses all (T_grid - 1) // sample_freq subsampled frames, even those past
    `num_frames`, so a shorter split is a prefix of the test-length features. Pure jnp.

    Args:
      phi: [T_grid, N] unwrapped phases on the grid 0, dt, 2 dt, ...
      coupling: [N, N] (row = receiver); only its nonzero pattern is used.
      omega: [N] natural frequencies.
      sample_freq: keep every sample_freq-th grid point.
      dt: grid spacing.
      num_frames: frames kept, at most ceil((T_grid - 1) / sample_freq).
      increments: [T_grid - 1, N] phi[t + dt] - phi[t], where known more accurately than by
        differencing phi (the float32 generator's); default jnp.diff(phi, axis=0).

    Returns:
      feat [N, num_frames, 4].
    """
    available = -(-(phi.shape[0] - 1) // sample_freq)
    if not 1 <= num_frames <= available:
        raise ValueError(
            f"num_frames must be in [1, {available}] for {phi.shape[0]} grid points and "
            f"sample_freq {sample_freq}, got {num_frames}"
        )
    if increments is None:
        increments = jnp.diff(phi, axis=0)
    phase_velocity = (increments / dt)[::sample_freq]
    phase = phi[:-1][::sample_freq]
    has_input = jnp.any(coupling != 0, axis=1)
    phase_velocity = jnp.where(has_input, _minmax(phase_velocity), 0.0)
    omega_scaled = (omega - OMEGA_MIN) * 2.0 / (OMEGA_MAX - OMEGA_MIN) - 1.0
    feat = jnp.stack(
        [
            phase_velocity,
            jnp.sin(phase),
            _minmax(phase),
            jnp.broadcast_to(omega_scaled, phase.shape),
        ],
        axis=-1,
    )
    return feat[:num_frames].transpose(1, 0, 2)


def float64_supported(devices: list[jax.Device]) -> bool:
    """Whether every device in `devices` computes in float64 (CPU and GPU do, TPU does not)."""
    return all(device.platform in FLOAT64_PLATFORMS for device in devices)


def _solve_rotating(phi0, omega, coupling, ts, dt, rtol, atol):
    """(phi [T, N], grid increments phi[t + dt] - phi[t] [T - 1, N]) from a rotating-frame solve.

    Dopri5 on psi = phi - omega t (diffrax's `ForwardMode`: a plain loop, no gradients) at the
    grid `ts` = 0, dt, 2 dt, ...; the increments are those of psi plus omega dt, so they never
    difference phi's large values (what float32 needs). omega dt rather than omega times the
    differenced grid, whose float32 rounding (~1e-6 at t ~ 10) times omega would cost 1e-3 in
    d(phi)/dt; psi moves at most by its in-degree times that.
    """
    args = (omega, coupling, ts, rtol, atol, MAX_STEPS, diffrax.ForwardMode())
    psi = _dopri5(_rotating_field, phi0, *args)
    increments = jnp.diff(psi, axis=0) + omega * dt
    return psi + omega * ts[:, None], increments


@functools.cache
def _chunk_fn(num_objects, length_test, sample_freq, dt, rtol, atol, graph, dtype="float64"):
    """(key, indices [B]) -> (feat, coupling, phase, dphase, omega) for `indices`, jitted.

    Built once per configuration; train, valid and test share it (all simulate at test length
    and are cut afterwards), so it compiles once per dataset and device. It runs in `dtype`
    ('float64' or 'float32', see the module docstring) whatever the caller's `jax.enable_x64`,
    from any thread.
    """
    num_frames = (length_test - 1 + sample_freq - 1) // sample_freq
    x64 = dtype == "float64"
    with jax.enable_x64(x64):
        ts = jnp.arange(length_test, dtype=dtype) * dt

    def one(key):
        phi0, omega, coupling = sample_system(key, num_objects, graph)
        if x64:
            # ForwardMode: a plain while loop; no gradients are needed here.
            phi = simulate(
                phi0, omega, coupling, ts, rtol=rtol, atol=atol, adjoint=diffrax.ForwardMode()
            )
            increments = jnp.diff(phi, axis=0)
        else:
            phi, increments = _solve_rotating(phi0, omega, coupling, ts, dt, rtol, atol)
        feat = features(phi, coupling, omega, sample_freq, dt, num_frames, increments)
        phase = phi[:-1][::sample_freq].T
        # The successors' d(phi)/dt before its per-trajectory scaling: the forward difference
        # over one grid step dt at each frame.
        dphase = (increments / dt)[::sample_freq].T
        return feat, coupling, phase, dphase, omega

    @jax.jit
    def run(key, indices):
        # Trajectory i depends on (key, i) only, not on the chunking.
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, indices)
        # vmap over systems runs each system's own adaptive loop, masked once it is done, so a
        # trajectory's steps do not depend on which others share its batch; the loop runs
        # until the batch's slowest system is done.
        return jax.vmap(one)(keys)

    def run_in_dtype(key, indices):
        with jax.enable_x64(x64):  # In the calling thread (config contexts are per thread).
            return run(key, indices)

    return run_in_dtype


def generate_split(
    key: jax.Array,
    num_sims: int,
    num_objects: int,
    length: int,
    length_test: int,
    sample_freq: int,
    dt: float,
    chunk_size: int = 1000,
    progress: bool = True,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    devices: list[jax.Device] | None = None,
    graph: graphs.Graph = PAPER_GRAPH,
    dtype: str | None = None,
) -> dict[str, np.ndarray]:
    """Simulates one split of the Kuramoto dataset in the file layouts of REFERENCE.md §1.

    Every trajectory is integrated in float64 (in float32 on devices without float64, see the
    module docstring) over `length_test` grid points (t = 0 .. (length_test - 1) dt) and
    normalised over that whole sequence; the split keeps the first
    `length // sample_freq - 1` frames (49 for train/valid, 99 for test). Trajectory i uses
    `jax.random.fold_in(key, i)`, so results do not depend on `chunk_size` (nor on the number of
    devices). Each chunk is split evenly over `devices` by `simulators.devices`, which runs one
    independent batch per device: with a single CPU device XLA runs these small ops mostly on
    one core (2 devices on 2 cores: 3700-4000 trajectories/s against 1400-1600 on one), so on
    CPU call `simulators.devices.use_all_cpu_cores()` before JAX first runs.
    Compiles once per configuration and device (about 3-5 s each).

    Args:
      key: PRNG key for the split.
      num_sims: S, number of trajectories.
      num_objects: N, oscillators per system.
      length: grid points that set this split's frame count.
      length_test: grid points simulated (and the test split's length).
      sample_freq: keep every sample_freq-th grid point.
      dt: grid spacing.
      chunk_size: trajectories per compiled call, at most; fewer where they would take more than
        `simulators.devices.CHUNK_BYTES` (memory ~ chunk_size * length_test * N * 16 B).
      progress: show a tqdm bar over chunks.
      rtol, atol: Dopri5 tolerances; default `RTOL`, `ATOL` in float64, `FLOAT32_RTOL`,
        `FLOAT32_ATOL` in float32.
      devices: where the chunks run (default: `simulators.devices.default_devices()`, every
        host device on CPU, the first device on an accelerator).
      dtype: 'float64', 'float32', or None (default) for float64 where every device has it
        (`float64_supported`). The float32 path draws its systems in float32, so a key gives
        other systems than in float64.
      graph: the family of the coupling graphs (`sample_system`); default the paper's.

    Returns:
      'feat' [S, N, T, 4] float32, 'edges' [S, N, N] int64 in {0, 1} (row = receiver),
      'phase' [S, N, T] float32 raw unwrapped phi at the frames, 'dphase' [S, N, T] float32
      the unscaled d(phi)/dt (forward difference over one grid step dt), 'omega' [S, N] float32.
    """
    if num_sims < 1:
        raise ValueError(f"num_sims must be positive, got {num_sims}")
    if num_objects < 2:
        raise ValueError(f"num_objects must be at least 2, got {num_objects}")
    if sample_freq < 1 or dt <= 0:
        raise ValueError(f"sample_freq and dt must be positive, got {sample_freq} and {dt}")
    if not 2 * sample_freq <= length <= length_test:
        raise ValueError(
            f"need 2 * sample_freq <= length <= length_test, got {length} and {length_test}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    num_frames = length // sample_freq - 1
    devices = list(default_devices() if devices is None else devices)
    if dtype is None:
        dtype = "float64" if float64_supported(devices) else "float32"
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64', 'float32' or None, got {dtype!r}")
    if rtol is None:
        rtol = RTOL if dtype == "float64" else FLOAT32_RTOL
    if atol is None:
        atol = ATOL if dtype == "float64" else FLOAT32_ATOL
    # Per trajectory the solve keeps the phases and their increments at every grid point.
    item_bytes = 2 * length_test * num_objects * np.dtype(dtype).itemsize
    chunk_size = padded_chunk_size(chunk_size, num_sims, len(devices), item_bytes)

    out = {
        "feat": np.empty((num_sims, num_objects, num_frames, NUM_FEATURES), np.float32),
        "edges": np.empty((num_sims, num_objects, num_objects), np.int64),
        "phase": np.empty((num_sims, num_objects, num_frames), np.float32),
        "dphase": np.empty((num_sims, num_objects, num_frames), np.float32),
        "omega": np.empty((num_sims, num_objects), np.float32),
    }

    def collect(start, parts):
        stop = min(start + chunk_size, num_sims)
        feat, coupling, phase, dphase, omega = to_host(parts, stop - start)
        out["feat"][start:stop] = feat[:, :, :num_frames]
        out["edges"][start:stop] = coupling
        out["phase"][start:stop] = phase[:, :, :num_frames]
        out["dphase"][start:stop] = dphase[:, :, :num_frames]
        out["omega"][start:stop] = omega

    run = _chunk_fn(num_objects, length_test, sample_freq, float(dt), rtol, atol, graph, dtype)
    pending = None
    starts = range(0, num_sims, chunk_size)
    for start in tqdm(starts, desc="kuramoto", unit="chunk", disable=not progress):
        indices = np.arange(start, start + chunk_size, dtype=np.uint32)
        parts = split_over_devices(run, (indices,), devices, shared=(key,))  # Asynchronous,
        if pending is not None:
            collect(*pending)  # so copying out the previous chunk overlaps with it.
        pending = (start, parts)
    if pending is not None:
        collect(*pending)
    return out
