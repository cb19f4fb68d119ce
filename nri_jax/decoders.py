"""Decoders p(x|z) (sections 3.3-3.5): GNNs with one message MLP per edge type.

Both map inputs `[batch, objects, time, dims]` and edges z `[batch, edges, K]` to predictions
`[batch, objects, time - 1, dims]`, where preds[:, :, t] is the mean mu^{t+1} for frame t + 1.
Their layers use PyTorch's default nn.Linear initialisation, as the original's decoders do.

`EdgeTypeMessages` defines the edge-type messages plainly (autodiff, forward and reverse mode);
`nri_jax.fused_messages` is a faster implementation of the same function for XLA:CPU, chosen
by `implementation` (`config.model.messages`): 'plain', 'fused', or None (default) for the
fused path on CPU only, the backend where it was measured faster. `dtype` is the matmul
operand dtype (`nri_jax.precision`); predictions, the residual x + delta and the recurrent
state stay float32.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nri_jax import fused_messages, precision
from nri_jax.graph import edge_to_node, fully_connected, node_to_edge
from nri_jax.layers import torch_bias_init, torch_dense, torch_kernel_init

IMPLEMENTATIONS = ("plain", "fused")
_ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


def use_fused(implementation: str | None) -> bool:
    """Whether `implementation` (None, 'plain' or 'fused') runs the fused messages here."""
    if implementation is None:
        return jax.default_backend() == "cpu"
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"config.model.messages={implementation!r} is not one of 'auto', "
            f"{', '.join(map(repr, IMPLEMENTATIONS))}"
        )
    return implementation == "fused"


def _relu(fused: bool):
    # The fused path's ReLU keeps only its output for the backward pass (same values and
    # gradients); the plain one also works in forward mode.
    return fused_messages.relu if fused else jax.nn.relu


class EdgeTypeMessages(nn.Module):
    """sum_k z_ij,k f_e^k([x_j, x_i]) (eqs. 10, 13): one 2-layer MLP per edge type.

    `x` `[..., objects, F]`, `z` `[..., edges, K]` (broadcast against x's leading axes) ->
    messages `[..., edges, hidden]`, or with aggregate=True summed over each object's incoming
    edges, `[..., objects, hidden]` (eqs. 11, 14), which is what both decoders use.
    `activation` is 'relu' (MLP decoder) or 'tanh' (RNN decoder). With skip_first, type 0 is
    the non-edge: its MLP is never run (its parameters exist, unused, as in the original).

    project_nodes computes the first layer per node ([x_s, x_r] W = x_s W_s + x_r W_r, all
    types and both halves in one matmul, then a gather to edges): N - 1 times fewer flops,
    worth it for wide node features (the RNN decoder's hidden state); the MLP decoder's few
    input dims are cheaper to gather to edges first. The second layer's K matmuls
    [rows, H] x [H, H] run as K plain 2D matmuls: on XLA:CPU a batched matmul over a type axis
    costs large transposes in the backward pass.

    implementation: see the module docstring. The fused path computes the aggregated messages
    only and has no dropout, so it runs when aggregate=True and dropout is inactive.
    """

    edge_types: int
    hidden: int
    activation: str = "relu"
    skip_first: bool = False
    project_nodes: bool = False
    dropout: float = 0.0
    train: bool = False
    aggregate: bool = False
    implementation: str | None = None
    dtype: Any = jnp.float32

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
        dropout_active = self.dropout > 0 and self.train
        if self.aggregate and not dropout_active and use_fused(self.implementation):
            z = z.reshape((1,) * (x.ndim - z.ndim) + z.shape)
            args = (x, z, kernel1, bias1, kernel2, bias2)
            dtype = jnp.dtype(self.dtype).name
            return fused_messages.aggregated_messages(self.activation, tuple(used), dtype, *args)

        act = _ACTIVATIONS[self.activation]
        dropout = nn.Dropout(self.dropout, deterministic=not self.train)
        if self.project_nodes:
            # [F, 2 (sender, receiver) * K * H]: every type's projections in one matmul.
            halves = kernel1[used.start :].reshape(len(used), 2, features, size)
            packed = jnp.transpose(halves, (2, 1, 0, 3)).reshape(features, -1)
            projected = precision.matmul(x, packed, self.dtype)
            projected = projected.reshape(x.shape[:-1] + (2, len(used), size))
            by_sender = jnp.take(projected[..., 0, :, :], senders, axis=-3)
            by_receiver = jnp.take(projected[..., 1, :, :], receivers, axis=-3)
            first = by_sender + by_receiver  # [..., E, K', H]
        else:
            pairs = node_to_edge(x, senders, receivers)  # [..., E, 2F]

        messages = None
        for slot, k in enumerate(used):
            if self.project_nodes:
                pre = first[..., slot, :]
            else:
                pre = precision.matmul(pairs, kernel1[k], self.dtype)
            h = dropout(act(pre + bias1[k]))
            h = act(precision.matmul(h, kernel2[k], self.dtype) + bias2[k])
            weighted = h * z[..., k : k + 1]
            messages = weighted if messages is None else messages + weighted
        if self.aggregate:
            return edge_to_node(messages, receivers, num_objects)
        return messages


class MLPDecoderStep(nn.Module):
    """One step x^t -> mu^{t+1} (eqs. 10-12), shaped as a scan body.

    carry `[..., objects, dims]`, z `[..., edges, K]` -> (mu, mu). Messages are summed over
    incoming edges (no division), then an output MLP on [x, agg] predicts the change of state.
    With frames=2 the carry is (x^t, x^{t-1}) and both the messages and the output MLP see
    [x^t, x^t - x^{t-1}] in place of x^t: the last change tells the direction of motion, which
    a frame alone may not (Kuramoto's features carry sin(phi) but not the sign of cos(phi)).
    """

    edge_types: int
    hidden: int
    skip_first: bool = False
    dropout: float = 0.0
    train: bool = False
    implementation: str | None = None
    dtype: Any = jnp.float32
    frames: int = 1

    @nn.compact
    def __call__(self, carry, z: jax.Array):
        x = carry[0] if self.frames == 2 else carry
        features = jnp.concatenate([x, x - carry[1]], axis=-1) if self.frames == 2 else x
        dims, width = x.shape[-1], features.shape[-1]
        dropout = nn.Dropout(self.dropout, deterministic=not self.train)
        relu = _relu(use_fused(self.implementation))
        aggregated = EdgeTypeMessages(
            self.edge_types,
            self.hidden,
            "relu",
            self.skip_first,
            dropout=self.dropout,
            train=self.train,
            aggregate=True,
            implementation=self.implementation,
            dtype=self.dtype,
            name="messages",
        )(features, z)  # eqs. 10-11: summed over types and over incoming edges
        dense = functools.partial(torch_dense, dtype=self.dtype)
        h = jnp.concatenate([features, aggregated], axis=-1)
        h = dropout(relu(dense(self.hidden, width + self.hidden, name="out_fc1")(h)))
        h = dropout(relu(dense(self.hidden, self.hidden, name="out_fc2")(h)))
        mu = x + dense(dims, self.hidden, name="out_fc3")(h)  # eq. 11: x^t + delta
        return ((mu, x) if self.frames == 2 else mu), mu


class MLPDecoder(nn.Module):
    """Markovian GNN decoder (eqs. 10-12) trained on M-step rollouts (section 3.4).

    From every M-th true frame (0, M, 2M, ...) it runs M steps feeding its own predictions
    back; all restarts run as one batch through a `scan` over the M steps. M = 1 is one-step
    prediction from the true previous frame. frames=2 (`config.model.decoder_frames`) is the
    step that also sees the last change x^t - x^{t-1} (`MLPDecoderStep`): each restart takes
    it from the true frames, the first from `previous` `[B, N, D]` (the frame before
    inputs[:, :, 0]) if given, else as zero.
    """

    edge_types: int
    hidden: int = 256
    skip_first: bool = False
    dropout: float = 0.0
    implementation: str | None = None
    dtype: Any = jnp.float32
    frames: int = 1

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        edges: jax.Array,
        prediction_steps: int,
        train: bool = False,
        previous: jax.Array | None = None,
    ) -> jax.Array:
        """inputs `[B, N, T, D]`, edges `[B, E, K]` -> preds `[B, N, T - 1, D]`."""
        batch, num_objects, time, dims = inputs.shape
        if prediction_steps < 1:
            raise ValueError(f"prediction_steps={prediction_steps} must be at least 1")
        if self.frames not in (1, 2):
            raise ValueError(f"config.model.decoder_frames={self.frames} must be 1 or 2")
        # Restarts at frame T - 1 or later, and steps past frame T - 1, would only predict
        # frames past the end (the original runs and then truncates them).
        restarts = np.arange(0, time - 1, prediction_steps)
        starts = jnp.swapaxes(inputs[:, :, restarts], 1, 2)  # [B, S, N, D]
        if self.frames == 2:
            before = inputs[:, :, np.maximum(restarts - 1, 0)]
            if previous is not None:
                before = before.at[:, :, 0].set(previous)
            starts = (starts, jnp.swapaxes(before, 1, 2))
        length = min(prediction_steps, time - 1)
        unroll = 1
        if use_fused(self.implementation):
            graphs = batch * len(restarts)
            unroll = fused_messages.step_unroll(length, graphs, num_objects, self.hidden)
        steps = nn.scan(
            MLPDecoderStep,
            variable_broadcast="params",
            split_rngs={"params": False, "dropout": True},
            in_axes=nn.broadcast,
            length=length,
            unroll=unroll,
        )
        step = steps(
            self.edge_types,
            self.hidden,
            self.skip_first,
            self.dropout,
            train,
            self.implementation,
            self.dtype,
            self.frames,
            name="step",
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
    implementation: str | None = None
    dtype: Any = jnp.float32

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
            "tanh",
            self.skip_first,
            project_nodes=True,
            dropout=self.dropout,
            train=self.train,
            aggregate=True,
            implementation=self.implementation,
            dtype=self.dtype,
            name="messages",
        )(hidden, z)  # eqs. 13-14, summed over types and over incoming edges
        # Averaged over the used types, and the sum over edges divided by N, as the original.
        aggregated = summed / (used_types * num_objects)
        # GRU gates exactly as the original's (eq. 15): input x, and the aggregated messages in
        # place of the usual hidden-state input; the three gates' Linears run as one matmul.
        size = self.hidden
        dense = functools.partial(torch_dense, dtype=self.dtype)
        gates_x = dense(3 * size, dims, name="input_gates")(x)
        gates_m = dense(3 * size, size, use_bias=False, name="hidden_gates")(aggregated)
        r = jax.nn.sigmoid(gates_x[..., :size] + gates_m[..., :size])
        i = jax.nn.sigmoid(gates_x[..., size : 2 * size] + gates_m[..., size : 2 * size])
        n = jnp.tanh(gates_x[..., 2 * size :] + r * gates_m[..., 2 * size :])
        hidden = (1 - i) * n + i * hidden
        relu = _relu(use_fused(self.implementation))
        h = dropout(relu(dense(size, size, name="out_fc1")(hidden)))
        h = dropout(relu(dense(size, size, name="out_fc2")(h)))
        mu = x + dense(dims, size, name="out_fc3")(h)  # eqs. 16-17
        return (hidden, mu), mu


class RNNDecoder(nn.Module):
    """Recurrent GNN decoder (section 3.5): a GRU over message passing on hidden states.

    The input at step t is the true frame t for t <= burn_in_steps and the previous prediction
    after, as the original's `step <= burn_in_steps` (training: burn_in_steps = T - M, so of
    the T - 1 inputs the last M - 2 are the decoder's own; evaluation: burn_in_steps = 49, so
    the free run starts from true frame 49). With prediction_steps = M given, the
    true frame is also fed at every step t divisible by M, the hidden state carried through
    (the original's mode without burn-in; M = 1 is teacher forcing). edges are `[B, E, K]`, or
    per step `[B, T - 1, E, K]` for a graph that changes over time (section 5.2).
    """

    edge_types: int
    hidden: int = 256
    skip_first: bool = False
    dropout: float = 0.0
    implementation: str | None = None
    dtype: Any = jnp.float32

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
        if burn_in_steps < 0:
            raise ValueError(f"burn_in_steps={burn_in_steps} must be at least 0")
        truth = jnp.moveaxis(inputs[:, :, :-1], 2, 0)  # [T-1, B, N, D]
        use_truth = np.arange(time - 1) <= burn_in_steps
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
            self.edge_types,
            self.hidden,
            self.skip_first,
            self.dropout,
            train,
            self.implementation,
            self.dtype,
            name="cell",
        )
        carry = (
            jnp.zeros((batch, num_objects, self.hidden), inputs.dtype),
            jnp.zeros((batch, num_objects, dims), inputs.dtype),
        )
        _, preds = cell(carry, truth, jnp.asarray(use_truth), edges)
        return jnp.moveaxis(preds, 0, 2)
