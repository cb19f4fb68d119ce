"""Layers of the encoders and decoders, with the original's initialisations.

- `MLP`: the encoder's two-layer ELU block with batch normalisation over batch x items.
- `PairDense`: a Dense layer on each edge's [x_sender, x_receiver(, skip)], computed per node.
- `AttentionCNN`: the CNN encoder's per-edge 1D convolution with attentive pooling over time.
- `torch_dense`: a Dense layer initialised like PyTorch's default `nn.Linear` (the decoders).

Every layer takes `dtype`, the dtype of its matmul operands (`config.model.dtype`,
`nri_jax.precision`): parameters, results and batch statistics stay float32.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from nri_jax import precision
from nri_jax.graph import receiver_rows, sender_rows

# The encoders' Linear layers: Xavier (Glorot) *normal*, not flax's truncated normal, and bias 0.1.
xavier_normal = nn.initializers.variance_scaling(1.0, "fan_avg", "normal")
bias_point_one = nn.initializers.constant(0.1)


def batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
    """BatchNorm over every axis but the last, updated like PyTorch's (momentum 0.1, eps 1e-5).

    Flax keeps `momentum` of the old statistic where PyTorch keeps `1 - momentum`. One known
    difference: PyTorch's running variance uses the unbiased batch variance, flax's the biased.
    """
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


def encoder_dense(features: int, name: str | None = None, dtype: Any = jnp.float32) -> nn.Dense:
    """Dense layer with the encoders' initialisation (Xavier normal, bias 0.1)."""
    return nn.Dense(
        features,
        kernel_init=xavier_normal,
        bias_init=bias_point_one,
        dot_general=precision.dense_dot_general(dtype),
        name=name,
    )


# PyTorch's default nn.Linear init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kernel and bias;
# variance_scaling(1/3, fan_in, uniform) is exactly that bound for the kernel.
def torch_kernel_init(batch_axis: tuple[int, ...] = ()) -> jax.nn.initializers.Initializer:
    """Kernel init of PyTorch's `nn.Linear`; `batch_axis` for stacked per-edge-type kernels."""
    return nn.initializers.variance_scaling(
        1.0 / 3.0, "fan_in", "uniform", in_axis=-2, out_axis=-1, batch_axis=batch_axis
    )


def torch_bias_init(fan_in: int) -> jax.nn.initializers.Initializer:
    """Bias init of PyTorch's `nn.Linear` with `fan_in` inputs."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_dense(
    features: int,
    fan_in: int,
    use_bias: bool = True,
    name: str | None = None,
    dtype: Any = jnp.float32,
) -> nn.Dense:
    """Dense layer initialised like PyTorch's default `nn.Linear(fan_in, features)`."""
    return nn.Dense(
        features,
        use_bias=use_bias,
        kernel_init=torch_kernel_init(),
        bias_init=torch_bias_init(fan_in),
        dot_general=precision.dense_dot_general(dtype),
        name=name,
    )


class PairDense(nn.Module):
    """The encoders' Dense layer on v->e inputs [x_sender, x_receiver, skip], run per node.

    `nodes` `[..., N, F]` (and `skip` `[..., E, S]`, the edge embedding of eq. 8) ->
    `[..., E, features]`, equal to `encoder_dense` applied to the concatenation. The kernel is
    stored whole, [2F (+ S), features], so parameters and their initial values are exactly
    nn.Dense's; but [x_s, x_r] W = x_s W_s + x_r W_r, so each node is projected once and the
    projections are added per edge: N rather than N (N - 1) rows through the 2F inputs, which
    took a third of the MLP encoder's matmul work (docs/benchmarks.md).
    """

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, nodes: jax.Array, skip: jax.Array | None = None) -> jax.Array:
        size = nodes.shape[-1]
        fan_in = 2 * size + (0 if skip is None else skip.shape[-1])
        kernel = self.param("kernel", xavier_normal, (fan_in, self.features))
        bias = self.param("bias", bias_point_one, (self.features,))
        # One matmul for both halves: [..., N, F] x [F, 2 * features].
        both = jnp.concatenate([kernel[:size], kernel[size : 2 * size]], axis=1)
        projected = precision.matmul(nodes, both, self.dtype)
        out = sender_rows(projected[..., : self.features])
        out = out + receiver_rows(projected[..., self.features :]) + bias
        if skip is not None:
            out = out + precision.matmul(skip, kernel[2 * size :], self.dtype)
        return out


class MLP(nn.Module):
    """Linear -> ELU -> dropout -> Linear -> ELU -> BatchNorm: the encoders' f(...) networks.

    `[..., items, F]` -> `[..., items, out]`; batch statistics are taken over all leading axes
    (batch x objects or batch x edges), as the original reshapes to [batch * items, features].
    With `pairs=True` the input is node features `[..., N, F]` and the MLP runs on each edge's
    [x_sender, x_receiver] (eqs. 6 and 8, with the `skip` edge features appended for eq. 8),
    the first layer as a `PairDense`: `[..., N, F]` -> `[..., E, out]`.
    """

    hidden: int
    out: int
    dropout: float = 0.0
    pairs: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, skip: jax.Array | None = None) -> jax.Array:
        if self.pairs:
            x = PairDense(self.hidden, self.dtype, name="fc1")(x, skip)
        else:
            x = encoder_dense(self.hidden, "fc1", self.dtype)(x)
        x = nn.elu(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.elu(encoder_dense(self.out, "fc2", self.dtype)(x))
        return batch_norm(train, name="bn")(x)


def _conv_init(kernel_size: int, out_channels: int) -> jax.nn.initializers.Initializer:
    # The original's He-style init: normal(0, sqrt(2 / (kernel_size * out_channels))).
    return nn.initializers.normal(math.sqrt(2.0 / (kernel_size * out_channels)))


def _conv(out_channels: int, kernel_size: int, name: str, dtype: Any) -> nn.Conv:
    return nn.Conv(
        out_channels,
        (kernel_size,),
        padding="VALID",
        kernel_init=_conv_init(kernel_size, out_channels),
        bias_init=bias_point_one,
        dtype=None if not precision.is_mixed(dtype) else dtype,
        conv_general_dilated=precision.conv_general_dilated(dtype),
        name=name,
    )


class AttentionCNN(nn.Module):
    """1D CNN with attentive pooling over time (Lin et al., 2017), the CNN encoder's f_emb.

    `[sequences, time, channels]` (flax's NWC layout) -> `[sequences, out]`. Two VALID k=5
    convolutions with a stride-2 max-pool between them, so it needs at least 14 frames.
    """

    hidden: int
    out: int
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        conv = functools.partial(_conv, dtype=self.dtype)
        x = batch_norm(train, "bn1")(nn.relu(conv(self.hidden, 5, "conv1")(x)))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.max_pool(x, (2,), strides=(2,))  # VALID: floors odd lengths like MaxPool1d
        x = batch_norm(train, "bn2")(nn.relu(conv(self.hidden, 5, "conv2")(x)))
        features = conv(self.out, 1, "conv_predict")(x)
        attention = jax.nn.softmax(conv(1, 1, "conv_attention")(x), axis=-2)  # over time
        return jnp.mean(features * attention, axis=-2)
