"""The decoders' edge-type messages with a hand-written VJP: a CPU fast path.

This module computes exactly the function that `nri_jax.decoders.EdgeTypeMessages` defines
plainly (aggregate=True): for each object i the sum over its incoming edges (i, j) of
sum_k z_ij,k f_k([x_j, x_i]), where f_k is edge type k's two-layer message MLP (eqs. 10-11,
13-14). It is an implementation choice of that function, as `jax.nn.dot_product_attention`
has several: `EdgeTypeMessages(implementation=...)` picks it, by default only where it was
measured faster (XLA:CPU; docs/benchmarks.md, `benchmarks/messages.py`). Tests hold it equal
to the plain path in values and gradients (tests/test_fused_messages.py). It supports reverse
mode only (a `jax.custom_vjp`): `jax.jvp` needs the plain path.

Why it is faster on a CPU. Per decoder step and edge type the message activations are
[graphs * E, H] float32 (13 MB for the MLP decoder at batch 128), so with plain autodiff every
elementwise pass (bias, activation, z-weighting, backward masks) and every stacked residual
streams them through memory, and the weight-gradient matmuls of the per-edge first layer
([rows, 2F]^T x [rows, H]) run far below the machine's matmul rate. Here instead:
- the first layer runs per node ([x_s, x_r] W = x_s W_s + x_r W_r) and is recomputed in the
  backward pass (elementwise), so only the second layer's outputs are saved per edge;
- the work runs over chunks of graphs whose activations stay in the L2 cache, so the
  elementwise passes between the matmuls do not touch main memory;
- messages are summed over incoming edges inside the step; the backward pass sums the
  first-layer cotangents per sender and per receiver node (a reshape and a static gather).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nri_jax import precision
from nri_jax.graph import outgoing_edges, receiver_rows, sender_rows

ACTIVATIONS = ("relu", "tanh")

# Activation elements (rows = graphs x edges, times hidden units) per chunk: 1600 rows of 256
# units, so a chunk's intermediates stay near the 1 MiB L2 of the machine measured. Per-chunk
# overhead (a loop iteration of ~20 small ops) rules narrow layers: at 64 units 6400 rows ran
# 68 ms against 98 ms for 640, at 256 units 640 and 1600 rows alike.
CHUNK_ELEMENTS = 1600 * 256

# Unroll the decoder's M-step loop when a step's messages run in at least this many chunks.
# Then each step's saved messages stay separate arrays; in a loop, the backward pass's
# stacked copy of them is zero-filled and written again, a single-threaded pass over ~130 MB
# per edge type at batch 128 and 256 units (decoder forward + backward ~1050 -> ~990 ms). At
# 64 units and batch 64 (1 chunk) unrolling was slower (77 -> 85 ms unrolled by 2).
UNROLL_MIN_CHUNKS = 4
MAX_UNROLL = 10  # bounds the program size (and compile time) for long rollouts


@jax.custom_vjp
def relu(x: jax.Array) -> jax.Array:
    """ReLU whose gradient is computed from its output, so autodiff keeps only the output.

    The output is kept anyway as the next matmul's input; jax.nn.relu would also keep a mask.
    Same values and gradients as jax.nn.relu (reverse mode only).
    """
    return jnp.maximum(x, 0)


def _relu_fwd(x):
    y = jnp.maximum(x, 0)
    return y, y


def _relu_bwd(y, g):
    return (jnp.where(y > 0, g, 0),)


relu.defvjp(_relu_fwd, _relu_bwd)


def step_unroll(length: int, graphs: int, num_objects: int, hidden: int) -> int:
    """Unroll factor of the MLP decoder's M-step scan: `graphs` decoded at once, `hidden` units."""
    chunks = graphs // graphs_per_chunk(graphs, num_objects * (num_objects - 1), hidden)
    return min(length, MAX_UNROLL) if chunks >= UNROLL_MIN_CHUNKS else 1


def _act_and_grad(name: str) -> tuple[Callable, Callable]:
    """(activation, its derivative written in terms of the activation's output)."""
    if name == "relu":
        return (lambda v: jnp.maximum(v, 0)), (lambda y: (y > 0).astype(y.dtype))
    return jnp.tanh, (lambda y: 1 - y * y)


def _packed_kernel1(kernel1: jax.Array, used: tuple[int, ...]) -> jax.Array:
    """First-layer kernels of the used types as one [F, K' * 2 * H] matrix (sender, receiver)."""
    size = kernel1.shape[-1]
    halves = kernel1[used[0] : used[-1] + 1].reshape(len(used), 2, -1, size)
    return jnp.transpose(halves, (2, 0, 1, 3)).reshape(halves.shape[2], -1)


def _first_layer(x, packed, bias1, used, dtype):
    """Pre-activations of the used types' first layers, `[..., E, H]` each, from `[..., N, F]`."""
    size = bias1.shape[-1]
    projected = precision.dot(x.reshape(-1, x.shape[-1]), packed, dtype)
    projected = projected.reshape(x.shape[:-1] + (len(used), 2, size))
    senders, receivers = projected[..., 0, :], projected[..., 1, :]  # [..., N, K', H]
    return [
        sender_rows(senders[..., slot, :]) + receiver_rows(receivers[..., slot, :]) + bias1[k]
        for slot, k in enumerate(used)
    ]


def _messages_fwd_chunk(activation, used, dtype, x, z, packed, bias1, kernel2, bias2):
    """One chunk: x `[..., N, F]`, z `[..., E, K]` -> (aggregated `[..., N, H]`, outputs per type).

    The leading axes are the chunk's graphs, or none for a chunk of one graph (`_one_graph`).
    """
    act, _ = _act_and_grad(activation)
    num_objects = x.shape[-2]
    pre = _first_layer(x, packed, bias1, used, dtype)
    outs, total = [], None
    for slot, k in enumerate(used):
        hidden = act(pre[slot])
        rows = hidden.reshape(-1, hidden.shape[-1])
        out = act(precision.dot(rows, kernel2[k], dtype).reshape(hidden.shape) + bias2[k])
        outs.append(out)
        weighted = out * z[..., k : k + 1]
        total = weighted if total is None else total + weighted
    size = total.shape[-1]
    aggregated = total.reshape(x.shape[:-2] + (num_objects, num_objects - 1, size)).sum(axis=-2)
    return aggregated, tuple(outs)


def _messages_bwd_chunk(activation, used, dtype, x, z, packed, bias1, kernel2, outs, g):
    """One chunk's cotangents: (dx, dz, dpacked, dbias1 [K', H], dkernel2 [K', H, H], dbias2)."""
    act, act_grad = _act_and_grad(activation)
    *lead, num_objects, _ = x.shape
    size = g.shape[-1]
    by_receiver = (*lead, num_objects, num_objects - 1, size)
    # Each edge's message cotangent is its receiver's cotangent.
    g_edges = jnp.broadcast_to(g[..., None, :], by_receiver)
    g_edges = g_edges.reshape(outs[0].shape)
    pre = _first_layer(x, packed, bias1, used, dtype)
    dz, dbias1, dkernel2, dbias2, d_projected = [], [], [], [], []
    for slot, k in enumerate(used):
        out = outs[slot]
        dz.append(jnp.sum(g_edges * out, axis=-1))
        g_out = (g_edges * z[..., k : k + 1] * act_grad(out)).reshape(-1, size)
        hidden = act(pre[slot]).reshape(-1, size)
        dkernel2.append(precision.dot_t(hidden, g_out, dtype))
        dbias2.append(g_out.sum(axis=0))
        g_pre = precision.dot(g_out, kernel2[k].T, dtype) * act_grad(hidden)
        dbias1.append(g_pre.sum(axis=0))
        g_pre = g_pre.reshape(by_receiver)
        incoming = g_pre.sum(axis=-2)
        edges = g_pre.reshape(*lead, -1, size)
        outgoing = jnp.take(edges, outgoing_edges(num_objects), axis=-2)
        d_projected += [outgoing.sum(axis=-2), incoming]  # as packed: [sender, receiver]
    d_projected = jnp.stack(d_projected, axis=-2).reshape(-1, len(d_projected) * size)
    dx = precision.dot(d_projected, packed.T, dtype).reshape(x.shape)
    dpacked = precision.dot_t(x, d_projected, dtype)
    dz = jnp.stack(dz, axis=-1)  # [..., E, K']
    return dx, dz, dpacked, jnp.stack(dbias1), jnp.stack(dkernel2), jnp.stack(dbias2)


def _one_graph(x_chunk: jax.Array) -> bool:
    """Whether a chunk `[g, N, F]` is one graph, which then runs without its unit graph axis.

    XLA:CPU splits a large fusion over threads along its outer dimensions; with a unit graph
    axis outermost, a one-graph chunk (a graph larger than CHUNK_ELEMENTS: 100 objects at 64
    units, 5 chunks of 1 graph) ran on one of two cores: 1.0 against 0.94 microseconds per
    edge-graph on one core, while chunks of 5 graphs went from 0.80 to 0.56 with the second
    (docs/benchmarks.md, "Many objects").
    """
    return x_chunk.shape[0] == 1


def graphs_per_chunk(graphs: int, edges: int, hidden: int) -> int:
    """The divisor of `graphs` nearest (by ratio) to CHUNK_ELEMENTS / (edges x hidden) graphs.

    Nearest, not the largest below: the decoder's M-step rollouts start from 5 frames, and
    with "largest below" a sample of 40-50 objects (2.6-4.1 graphs' worth of a chunk) ran as
    5 one-graph chunks whose per-chunk overhead cost 1.3-2x a sample's step time
    (docs/benchmarks.md, "Many objects").
    """
    target = CHUNK_ELEMENTS / (hidden * edges)
    divisors = [d for d in range(1, graphs + 1) if graphs % d == 0]
    return min(divisors, key=lambda d: (abs(np.log(d / target)), -d))


def chunking(x, z, hidden):
    """(x `[chunks, g, N, F]`, z `[chunks, g, E, K]`, leading shape): ~CHUNK_ELEMENTS each.

    The graphs per chunk divide the number of graphs (`graphs_per_chunk`).
    """
    lead = x.shape[:-2]
    graphs = int(np.prod(lead))
    edges = z.shape[-2]
    per_chunk = graphs_per_chunk(graphs, edges, hidden)
    x = x.reshape((graphs // per_chunk, per_chunk) + x.shape[-2:])
    z = jnp.broadcast_to(z, lead + z.shape[-2:]).reshape(
        (graphs // per_chunk, per_chunk, edges, -1)
    )
    return x, z, lead


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def aggregated_messages(
    activation: str,
    used: tuple[int, ...],
    dtype: str,
    x: jax.Array,
    z: jax.Array,
    kernel1: jax.Array,
    bias1: jax.Array,
    kernel2: jax.Array,
    bias2: jax.Array,
) -> jax.Array:
    """sum over incoming edges of sum_k z_k f_k([x_s, x_r]): `[..., N, F]` -> `[..., N, H]`.

    `activation` is 'relu' or 'tanh'; z `[..., E, K]` broadcasts against x's leading axes;
    `used` lists the edge types that run (all, or all but type 0 with skip_first); `dtype`
    ('float32' or 'bfloat16') is the matmul operand dtype (`nri_jax.precision`): results,
    elementwise work and gradients are float32. kernel1
    `[K, 2F, H]`, bias1 `[K, H]`, kernel2 `[K, H, H]`, bias2 `[K, H]`: the parameters of
    `EdgeTypeMessages`.
    """
    return _aggregated_fwd(activation, used, dtype, x, z, kernel1, bias1, kernel2, bias2)[0]


def _aggregated_fwd(activation, used, dtype, x, z, kernel1, bias1, kernel2, bias2):
    xs, zs, lead = chunking(x, z, bias1.shape[-1])
    params = (_packed_kernel1(kernel1, used), bias1, kernel2, bias2)

    def chunk(_, inputs):
        x_c, z_c = inputs
        one = _one_graph(x_c)
        args = (x_c[0], z_c[0]) if one else (x_c, z_c)
        aggregated, outs = _messages_fwd_chunk(activation, used, dtype, *args, *params)
        if one:
            aggregated, outs = aggregated[None], tuple(out[None] for out in outs)
        return None, (aggregated, outs)

    _, (aggregated, outs) = jax.lax.scan(chunk, None, (xs, zs))
    aggregated = aggregated.reshape(lead + aggregated.shape[-2:])
    return aggregated, (x, z, kernel1, bias1, kernel2, outs)


def _aggregated_bwd(activation, used, dtype, residuals, g):
    x, z, kernel1, bias1, kernel2, outs = residuals
    xs, zs, lead = chunking(x, z, bias1.shape[-1])
    gs = g.reshape(xs.shape[:2] + g.shape[-2:])
    packed = _packed_kernel1(kernel1, used)

    def chunk(sums, inputs):
        x_c, z_c, outs_c, g_c = inputs
        one = _one_graph(x_c)
        if one:
            x_c, z_c, outs_c, g_c = jax.tree.map(lambda a: a[0], (x_c, z_c, outs_c, g_c))
        dx, dz, *grads = _messages_bwd_chunk(
            activation, used, dtype, x_c, z_c, packed, bias1, kernel2, outs_c, g_c
        )
        if one:
            dx, dz = dx[None], dz[None]
        return jax.tree.map(jnp.add, sums, tuple(grads)), (dx, dz)

    size = bias1.shape[-1]
    zeros = (
        jnp.zeros_like(packed),
        jnp.zeros((len(used), size), bias1.dtype),
        jnp.zeros((len(used), size, size), kernel2.dtype),
        jnp.zeros((len(used), size), bias1.dtype),
    )
    (dpacked, dbias1_used, dkernel2_used, dbias2_used), (dx, dz_used) = jax.lax.scan(
        chunk, zeros, (xs, zs, outs, gs)
    )
    features = x.shape[-1]
    used_slice = slice(used[0], used[-1] + 1)
    dhalves = jnp.transpose(dpacked.reshape(features, len(used), 2, size), (1, 2, 0, 3))
    dkernel1 = (
        jnp.zeros_like(kernel1).at[used_slice].set(dhalves.reshape(len(used), 2 * features, size))
    )
    dbias1 = jnp.zeros_like(bias1).at[used_slice].set(dbias1_used)
    dkernel2 = jnp.zeros_like(kernel2).at[used_slice].set(dkernel2_used)
    dbias2 = jnp.zeros_like(bias1).at[used_slice].set(dbias2_used)
    dz = jnp.zeros(zs.shape, z.dtype).at[..., used_slice].set(dz_used)
    dz = dz.reshape(lead + z.shape[-2:])
    # z was broadcast against x's leading axes: sum its cotangent back over them.
    axes = tuple(i for i, (a, b) in enumerate(zip(dz.shape, z.shape, strict=True)) if a != b)
    dz = dz.sum(axis=axes, keepdims=True)
    return dx.reshape(x.shape), dz, dkernel1, dbias1, dkernel2, dbias2


aggregated_messages.defvjp(_aggregated_fwd, _aggregated_bwd)
