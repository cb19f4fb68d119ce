"""Decoders p(x|z) (sections 3.3-3.5): GNNs with one message MLP per edge type.

Both map inputs `[batch, objects, time, dims]` and edges z `[batch, edges, K]` to predictions
`[batch, objects, time - 1, dims]`, where preds[:, :, t] is the mean mu^{t+1} for frame t + 1.
Their layers use PyTorch's default nn.Linear initialisation, as the original's decoders do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nri_jax.graph import (
    edge_to_node,
    fully_connected,
    node_to_edge,
    receiver_rows,
    sender_rows,
)
from nri_jax.modules import torch_bias_init, torch_dense, torch_kernel_init


@jax.custom_vjp
def _relu(x: jax.Array) -> jax.Array:
    """ReLU whose gradient is computed from its output, so autodiff keeps only the output.

    The output is kept anyway as the next matmul's input; jax.nn.relu would also keep a mask.
    """
    return jnp.maximum(x, 0)


def _relu_fwd(x):
    y = jnp.maximum(x, 0)
    return y, y


def _relu_bwd(y, g):
    return (jnp.where(y > 0, g, 0),)


_relu.defvjp(_relu_fwd, _relu_bwd)


# ----------------------------------------------------------------------------------------------
# Fused edge-type messages with a hand-written VJP: the decoders' hot loop.
#
# Per decoder step and edge type the message activations are [graphs * E, H] float32 (13 MB
# for the MLP decoder at batch 128), so with plain autodiff every elementwise pass (bias,
# activation, z-weighting, backward masks) and every stacked residual streams them through
# memory, and the weight-gradient matmuls of the per-edge first layer ([rows, 2F]^T x
# [rows, H]) run far below the machine's matmul rate. Here instead:
# - the first layer runs per node ([x_s, x_r] W = x_s W_s + x_r W_r) and is recomputed in the
#   backward pass (elementwise), so only the second layer's outputs are saved per edge;
# - the work runs over chunks of graphs whose activations stay in the L2 cache, so the
#   elementwise passes between the matmuls do not touch main memory;
# - messages are summed over incoming edges inside the step; the backward pass sums the
#   first-layer cotangents per sender and per receiver node (a reshape and a static gather).

# Activation elements (rows = graphs x edges, times hidden units) per chunk: 1600 rows of 256
# units, so a chunk's intermediates stay near the 1 MiB L2 of the machine measured. Per-chunk
# overhead (a loop iteration of ~20 small ops) rules narrow layers: at 64 units 6400 rows ran
# 68 ms against 98 ms for 640 (docs/benchmarks.md), at 256 units 640 and 1600 rows alike.
_CHUNK_ELEMENTS = 1600 * 256


def _outgoing_edges(num_objects: int) -> np.ndarray:
    """[N, N - 1] indices of each object's outgoing edges in `fully_connected` order."""
    _, senders = fully_connected(num_objects)
    return np.stack([np.flatnonzero(senders == j) for j in range(num_objects)])


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


def _first_layer(x, packed, bias1, used):
    """Pre-activations of the used types' first layers, `[g, E, H]` each, from `x` `[g, N, F]`."""
    size = bias1.shape[-1]
    projected = (x.reshape(-1, x.shape[-1]) @ packed).reshape(x.shape[:-1] + (len(used), 2, size))
    return [
        sender_rows(projected[:, :, slot, 0]) + receiver_rows(projected[:, :, slot, 1]) + bias1[k]
        for slot, k in enumerate(used)
    ]


def _messages_fwd_chunk(activation, used, x, z, packed, bias1, kernel2, bias2):
    """One chunk: x `[g, N, F]`, z `[g, E, K]` -> (aggregated `[g, N, H]`, outputs per type)."""
    act, _ = _act_and_grad(activation)
    num_objects = x.shape[1]
    pre = _first_layer(x, packed, bias1, used)
    outs, total = [], None
    for slot, k in enumerate(used):
        hidden = act(pre[slot])
        rows = hidden.reshape(-1, hidden.shape[-1])
        out = act((rows @ kernel2[k]).reshape(hidden.shape) + bias2[k])
        outs.append(out)
        weighted = out * z[..., k : k + 1]
        total = weighted if total is None else total + weighted
    size = total.shape[-1]
    aggregated = total.reshape(-1, num_objects, num_objects - 1, size).sum(axis=2)
    return aggregated, tuple(outs)


def _messages_bwd_chunk(activation, used, x, z, packed, bias1, kernel2, outs, g):
    """One chunk's cotangents: (dx, dz, dpacked, dbias1 [K', H], dkernel2 [K', H, H], dbias2)."""
    act, act_grad = _act_and_grad(activation)
    graphs, num_objects = x.shape[:2]
    size = g.shape[-1]
    # Each edge's message cotangent is its receiver's cotangent.
    g_edges = jnp.broadcast_to(g[:, :, None], (graphs, num_objects, num_objects - 1, size))
    g_edges = g_edges.reshape(outs[0].shape)
    pre = _first_layer(x, packed, bias1, used)
    dz, dbias1, dkernel2, dbias2, d_projected = [], [], [], [], []
    for slot, k in enumerate(used):
        out = outs[slot]
        dz.append(jnp.sum(g_edges * out, axis=-1))
        g_out = (g_edges * z[..., k : k + 1] * act_grad(out)).reshape(-1, size)
        hidden = act(pre[slot]).reshape(-1, size)
        dkernel2.append(hidden.T @ g_out)
        dbias2.append(g_out.sum(axis=0))
        g_pre = (g_out @ kernel2[k].T) * act_grad(hidden)
        dbias1.append(g_pre.sum(axis=0))
        g_pre = g_pre.reshape(graphs, -1, num_objects - 1, size)
        incoming = g_pre.sum(axis=2)
        outgoing = jnp.take(g_pre.reshape(graphs, -1, size), _outgoing_edges(num_objects), axis=1)
        d_projected += [outgoing.sum(axis=2), incoming]  # as packed: [sender, receiver]
    d_projected = jnp.stack(d_projected, axis=2).reshape(graphs * num_objects, -1)
    dx = (d_projected @ packed.T).reshape(x.shape)
    dpacked = x.reshape(-1, x.shape[-1]).T @ d_projected
    dz = jnp.stack(dz, axis=-1)  # [g, E, K']
    return dx, dz, dpacked, jnp.stack(dbias1), jnp.stack(dkernel2), jnp.stack(dbias2)


def _chunking(x, z, hidden):
    """(x `[chunks, g, N, F]`, z `[chunks, g, E, K]`, leading shape): ~_CHUNK_ELEMENTS each."""
    lead = x.shape[:-2]
    graphs = int(np.prod(lead))
    edges = z.shape[-2]
    per_chunk = max(1, min(graphs, _CHUNK_ELEMENTS // (hidden * edges)))
    while graphs % per_chunk:
        per_chunk -= 1
    x = x.reshape((graphs // per_chunk, per_chunk) + x.shape[-2:])
    z = jnp.broadcast_to(z, lead + z.shape[-2:]).reshape(
        (graphs // per_chunk, per_chunk, edges, -1)
    )
    return x, z, lead


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def aggregated_messages(activation, used, x, z, kernel1, bias1, kernel2, bias2):
    """sum over incoming edges of sum_k z_k f_k([x_s, x_r]): `[..., N, F]` -> `[..., N, H]`.

    z `[..., E, K]` broadcasts against x's leading axes; `used` lists the types that run.
    """
    return _aggregated_fwd(activation, used, x, z, kernel1, bias1, kernel2, bias2)[0]


def _aggregated_fwd(activation, used, x, z, kernel1, bias1, kernel2, bias2):
    xs, zs, lead = _chunking(x, z, bias1.shape[-1])
    packed = _packed_kernel1(kernel1, used)

    def chunk(_, inputs):
        return None, _messages_fwd_chunk(activation, used, *inputs, packed, bias1, kernel2, bias2)

    _, (aggregated, outs) = jax.lax.scan(chunk, None, (xs, zs))
    aggregated = aggregated.reshape(lead + aggregated.shape[-2:])
    return aggregated, (x, z, kernel1, bias1, kernel2, outs)


def _aggregated_bwd(activation, used, residuals, g):
    x, z, kernel1, bias1, kernel2, outs = residuals
    xs, zs, lead = _chunking(x, z, bias1.shape[-1])
    gs = g.reshape(xs.shape[:2] + g.shape[-2:])
    packed = _packed_kernel1(kernel1, used)

    def chunk(sums, inputs):
        x_c, z_c, outs_c, g_c = inputs
        dx, dz, *grads = _messages_bwd_chunk(
            activation, used, x_c, z_c, packed, bias1, kernel2, outs_c, g_c
        )
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
_FUSED_ACTIVATIONS = {_relu: "relu", jax.nn.relu: "relu", jnp.tanh: "tanh"}


class EdgeTypeMessages(nn.Module):
    """sum_k z_ij,k f_e^k([x_i, x_j]) (eqs. 10, 13): one 2-layer MLP per edge type.

    `x` `[..., objects, F]`, `z` `[..., edges, K]` (broadcast against x's leading axes) ->
    messages `[..., edges, hidden]`. With skip_first, type 0 is the non-edge: its MLP is never
    run (its parameters exist, unused, as in the original).

    Cost: the second layer's K matmuls [rows, H] x [H, H] dominate. They run as K plain 2D
    matmuls: on XLA:CPU a batched matmul over a type axis costs large transposes in the
    backward pass that plain matmuls do not. project_nodes computes the first layer per node
    ([x_s, x_r] W = x_s W_s + x_r W_r, all types and both halves in one matmul, then a gather
    to edges): N - 1 times fewer flops, worth it for wide node features (the RNN decoder's
    hidden state); the MLP decoder's few input dims are cheaper to gather to edges first.

    aggregate=True returns the messages summed over each object's incoming edges,
    `[..., objects, hidden]` (eqs. 11, 14), which is what both decoders use. Then, unless
    dropout is active, the fused `aggregated_messages` with its hand-written VJP runs instead
    (always projecting nodes, chunked to stay in cache); it computes the same function.
    """

    edge_types: int
    hidden: int
    activation: Callable[[jax.Array], jax.Array] = _relu
    skip_first: bool = False
    project_nodes: bool = False
    dropout: float = 0.0
    train: bool = False
    aggregate: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array) -> jax.Array:
        num_objects, features = x.shape[-2:]
        receivers, senders = fully_connected(num_objects)
        types, size = self.edge_types, self.hidden
        kernel1 = self.param("kernel1", torch_kernel_init((0,)), (types, 2 * features, size))
        bias1 = self.param("bias1", torch_bias_init(2 * features), (types, size))
        kernel2 = self.param("kernel2", torch_kernel_init((0,)), (types, size, size))
        bias2 = self.param("bias2", torch_bias_init(size), (types, size))
        used = range(int(self.skip_first), types)  # type 0 skipped by slicing, not by z = 0
        dropout = nn.Dropout(self.dropout, deterministic=not self.train)
        fused_activation = _FUSED_ACTIVATIONS.get(self.activation)
        if self.aggregate and fused_activation and (self.dropout == 0 or not self.train):
            z = z.reshape((1,) * (x.ndim - z.ndim) + z.shape)
            args = (x, z, kernel1, bias1, kernel2, bias2)
            return aggregated_messages(fused_activation, tuple(used), *args)

        if self.project_nodes:
            # [F, 2 (sender, receiver) * K * H]: every type's projections in one matmul.
            halves = kernel1[used.start :].reshape(len(used), 2, features, size)
            projected = x @ jnp.transpose(halves, (2, 1, 0, 3)).reshape(features, -1)
            projected = projected.reshape(x.shape[:-1] + (2, len(used), size))
            by_sender = jnp.take(projected[..., 0, :, :], senders, axis=-3)
            by_receiver = jnp.take(projected[..., 1, :, :], receivers, axis=-3)
            first = by_sender + by_receiver  # [..., E, K', H]
        else:
            pairs = node_to_edge(x, senders, receivers)  # [..., E, 2F]

        messages = None
        for slot, k in enumerate(used):
            pre = first[..., slot, :] if self.project_nodes else pairs @ kernel1[k]
            h = dropout(self.activation(pre + bias1[k]))
            h = self.activation(h @ kernel2[k] + bias2[k])
            weighted = h * z[..., k : k + 1]
            messages = weighted if messages is None else messages + weighted
        if self.aggregate:
            return edge_to_node(messages, receivers, num_objects)
        return messages


class MLPDecoderStep(nn.Module):
    """One Markovian step x^t -> mu^{t+1} (eqs. 10-12), shaped as a scan body.

    carry `[..., objects, dims]`, z `[..., edges, K]` -> (mu, mu). Messages are summed over
    incoming edges (no division), then an output MLP on [x, agg] predicts the change of state.
    """

    edge_types: int
    hidden: int
    skip_first: bool = False
    dropout: float = 0.0
    train: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        dims = x.shape[-1]
        dropout = nn.Dropout(self.dropout, deterministic=not self.train)
        aggregated = EdgeTypeMessages(
            self.edge_types,
            self.hidden,
            _relu,
            self.skip_first,
            dropout=self.dropout,
            train=self.train,
            aggregate=True,
            name="messages",
        )(x, z)  # eqs. 10-11: summed over types and over incoming edges
        h = jnp.concatenate([x, aggregated], axis=-1)
        h = dropout(_relu(torch_dense(self.hidden, dims + self.hidden, name="out_fc1")(h)))
        h = dropout(_relu(torch_dense(self.hidden, self.hidden, name="out_fc2")(h)))
        mu = x + torch_dense(dims, self.hidden, name="out_fc3")(h)  # eq. 11: x^t + delta
        return mu, mu


# Unroll the M-step loop when a step's message activations span at least this many chunks.
# Then each step's saved messages stay separate arrays; in a loop, the backward pass's stacked
# copy of them is zero-filled and written again, a single-threaded pass over ~130 MB per edge
# type at batch 128 and 256 units. Measured on 2 CPU cores (docs/benchmarks.md): 256 units,
# batch 128 (8 chunks per step), decoder forward + backward ~1050 -> ~990 ms; 64 units, batch
# 64 (1 chunk), unrolling was slower (77 -> 85 ms unrolled by 2, 100 ms by 10).
_UNROLL_MIN_CHUNKS = 4
_MAX_UNROLL = 10  # bounds the program size (and compile time) for long rollouts


def _step_unroll(length: int, graphs: int, num_objects: int, hidden: int) -> int:
    """Unroll factor of the M-step scan: `graphs` decoded in parallel, `hidden` units."""
    elements = graphs * num_objects * (num_objects - 1) * hidden
    return min(length, _MAX_UNROLL) if elements >= _UNROLL_MIN_CHUNKS * _CHUNK_ELEMENTS else 1


class MLPDecoder(nn.Module):
    """Markovian GNN decoder (eqs. 10-12) trained on M-step rollouts (section 3.4).

    From every M-th true frame (0, M, 2M, ...) it runs M steps feeding its own predictions
    back; all restarts run as one batch through a `scan` over the M steps. M = 1 is one-step
    prediction from the true previous frame.
    """

    edge_types: int
    hidden: int = 256
    skip_first: bool = False
    dropout: float = 0.0

    @nn.compact
    def __call__(
        self, inputs: jax.Array, edges: jax.Array, prediction_steps: int, train: bool = False
    ) -> jax.Array:
        """inputs `[B, N, T, D]`, edges `[B, E, K]` -> preds `[B, N, T - 1, D]`."""
        batch, num_objects, time, dims = inputs.shape
        if prediction_steps < 1:
            raise ValueError(f"prediction_steps={prediction_steps} must be at least 1")
        # Restarts at frame T - 1 or later, and steps past frame T - 1, would only predict
        # frames past the end (the original runs and then truncates them).
        starts = jnp.swapaxes(inputs[:, :, : time - 1 : prediction_steps], 1, 2)  # [B, S, N, D]
        length = min(prediction_steps, time - 1)
        steps = nn.scan(
            MLPDecoderStep,
            variable_broadcast="params",
            split_rngs={"params": False, "dropout": True},
            in_axes=nn.broadcast,
            length=length,
            unroll=_step_unroll(
                length, starts.shape[0] * starts.shape[1], num_objects, self.hidden
            ),
        )
        step = steps(
            self.edge_types, self.hidden, self.skip_first, self.dropout, train, name="step"
        )
        _, preds = step(starts, edges[:, None])  # [M, B, S, N, D]
        # Restart s, step m predicts frame s*M + m + 1: back to one timeline (if fewer than M
        # steps ran, there is one restart).
        preds = jnp.transpose(preds, (1, 3, 2, 0, 4)).reshape(batch, num_objects, -1, dims)
        return preds[:, :, : time - 1]


class RNNDecoderCell(nn.Module):
    """One recurrent step (eqs. 13-17), shaped as a scan body.

    carry = (hidden `[B, N, H]`, previous prediction `[B, N, D]`); per step: the true frame
    `[B, N, D]`, whether to feed it rather than the previous prediction `[]`, z `[B, E, K]`.
    Returns (carry, prediction `[B, N, D]`).
    """

    edge_types: int
    hidden: int
    skip_first: bool = False
    dropout: float = 0.0
    train: bool = False

    @nn.compact
    def __call__(self, carry, truth, use_truth, z):
        hidden, previous = carry
        x = jnp.where(use_truth, truth, previous)
        num_objects, dims = x.shape[-2:]
        used_types = self.edge_types - int(self.skip_first)
        dropout = nn.Dropout(self.dropout, deterministic=not self.train)
        summed = EdgeTypeMessages(
            self.edge_types,
            self.hidden,
            jnp.tanh,
            self.skip_first,
            project_nodes=True,
            dropout=self.dropout,
            train=self.train,
            aggregate=True,
            name="messages",
        )(hidden, z)  # eqs. 13-14, summed over types and over incoming edges
        # Averaged over the used types, and the sum over edges divided by N, as the original.
        aggregated = summed / (used_types * num_objects)
        # GRU gates exactly as the original's (eq. 15): input x, and the aggregated messages in
        # place of the usual hidden-state input; the three gates' Linears run as one matmul.
        size = self.hidden
        gates_x = torch_dense(3 * size, dims, name="input_gates")(x)
        gates_m = torch_dense(3 * size, size, use_bias=False, name="hidden_gates")(aggregated)
        r = jax.nn.sigmoid(gates_x[..., :size] + gates_m[..., :size])
        i = jax.nn.sigmoid(gates_x[..., size : 2 * size] + gates_m[..., size : 2 * size])
        n = jnp.tanh(gates_x[..., 2 * size :] + r * gates_m[..., 2 * size :])
        hidden = (1 - i) * n + i * hidden
        h = dropout(_relu(torch_dense(size, size, name="out_fc1")(hidden)))
        h = dropout(_relu(torch_dense(size, size, name="out_fc2")(h)))
        mu = x + torch_dense(dims, size, name="out_fc3")(h)  # eqs. 16-17
        return (hidden, mu), mu


class RNNDecoder(nn.Module):
    """Recurrent GNN decoder (section 3.5): a GRU over message passing on hidden states.

    The input at step t is the true frame t while t < burn_in_steps and the previous
    prediction after (training: burn_in_steps = T - M). With prediction_steps = M given, the
    true frame is also fed at every step t divisible by M, the hidden state carried through
    (the original's mode without burn-in; M = 1 is teacher forcing). edges are `[B, E, K]`, or
    per step `[B, T - 1, E, K]` for a graph that changes over time (section 5.2).
    """

    edge_types: int
    hidden: int = 256
    skip_first: bool = False
    dropout: float = 0.0

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        edges: jax.Array,
        burn_in_steps: int,
        train: bool = False,
        prediction_steps: int | None = None,
    ) -> jax.Array:
        """inputs `[B, N, T, D]`, edges `[B, E, K]` or `[B, T - 1, E, K]` -> `[B, N, T - 1, D]`."""
        batch, num_objects, time, dims = inputs.shape
        if burn_in_steps < 1:
            raise ValueError(f"burn_in_steps={burn_in_steps} must be at least 1")
        truth = jnp.moveaxis(inputs[:, :, :-1], 2, 0)  # [T-1, B, N, D]
        use_truth = np.arange(time - 1) < burn_in_steps
        if prediction_steps is not None:
            use_truth |= np.arange(time - 1) % prediction_steps == 0
        per_step_edges = edges.ndim == 4
        if per_step_edges:
            edges = jnp.swapaxes(edges, 0, 1)  # [T-1, B, E, K]
        cells = nn.scan(
            RNNDecoderCell,
            variable_broadcast="params",
            split_rngs={"params": False, "dropout": True},
            in_axes=(0, 0, 0 if per_step_edges else nn.broadcast),
            length=time - 1,
        )
        cell = cells(
            self.edge_types, self.hidden, self.skip_first, self.dropout, train, name="cell"
        )
        carry = (
            jnp.zeros((batch, num_objects, self.hidden), inputs.dtype),
            jnp.zeros((batch, num_objects, dims), inputs.dtype),
        )
        _, preds = cell(carry, truth, jnp.asarray(use_truth), edges)
        return jnp.moveaxis(preds, 0, 2)
