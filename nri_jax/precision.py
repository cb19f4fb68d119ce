"""Mixed precision: the model's matmuls with `config.model.dtype` operands.

`config.model.dtype` ('float32', the default, or 'bfloat16') is the dtype of the encoders' and
decoders' matmul and convolution operands, what a Flax layer's `dtype` sets. Accumulation and
results are float32, and so is everything else: parameters, optimiser state, activations and
the elementwise work between the matmuls, the decoders' residual x + delta, losses, metrics.
bfloat16 keeps float32's exponent range with an 8-bit mantissa (relative rounding error at
most 2^-9 per operand).

Why float32 results rather than bfloat16 ones: on XLA:CPU a bfloat16 x bfloat16 -> bfloat16
dot ran no faster than float32 (221 against 291 GFLOP/s, [12800, 256] x [256, 256]), and only
with a float32 result (`preferred_element_type`) at 1.9x it (541 GFLOP/s), the AVX-512 BF16
dot-product instructions; GPU and TPU matrix units also accumulate bfloat16 products in
float32. A mixed float32 x bfloat16 dot ran at about the float32 rate (317), so
`matmul`'s VJP rounds the output cotangent to bfloat16 and its backward matmuls are bfloat16
too; the gradients it returns are float32 (docs/benchmarks.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from nri_jax.config import choice

DTYPES = ("float32", "bfloat16")


def compute_dtype(name: str) -> jnp.dtype:
    """The matmul operand dtype named by `config.model.dtype`; ValueError for others."""
    choice("model.dtype", name, DTYPES)
    return jnp.dtype(name)


def is_mixed(dtype) -> bool:
    """Whether `dtype` asks for low-precision operands (anything but float32)."""
    return jnp.dtype(dtype) != jnp.float32


def _contract_last_first(a: jax.Array) -> tuple:
    return (((a.ndim - 1,), (0,)), ((), ()))


def dot(a: jax.Array, b: jax.Array, dtype=jnp.float32) -> jax.Array:
    """`a @ b` (`[..., K] x [K, N]`) with `dtype` operands and a float32 result.

    float32: plain `a @ b`. Otherwise plain `lax.dot_general` on the cast operands, whose
    autodiff runs mixed float32 x `dtype` matmuls; for use inside hand-written VJPs
    (`nri_jax.fused_messages`). Differentiable layers use `matmul`.
    """
    if not is_mixed(dtype):
        return a @ b
    a, b = a.astype(dtype), b.astype(dtype)
    return lax.dot_general(a, b, _contract_last_first(a), preferred_element_type=jnp.float32)


def dot_t(a: jax.Array, b: jax.Array, dtype=jnp.float32) -> jax.Array:
    """`a^T @ b` over every leading axis (`[..., K] x [..., N] -> [K, N]`): weight gradients."""
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    if not is_mixed(dtype):
        return a.T @ b
    a, b = a.astype(dtype), b.astype(dtype)
    return lax.dot_general(a, b, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)


def matmul(a: jax.Array, b: jax.Array, dtype=jnp.float32) -> jax.Array:
    """`a @ b` (`[..., K] x [K, N]`) with `dtype` operands, float32 accumulation and result.

    float32: plain `a @ b` (forward and reverse mode). Otherwise a `jax.custom_vjp` (reverse
    mode only): the forward pass saves the `dtype` operands, the backward pass rounds the
    output cotangent to `dtype` and runs both gradient matmuls on `dtype` operands with float32
    accumulation; the gradients come back in the dtypes of `a` and `b`.
    """
    if not is_mixed(dtype):
        return a @ b
    return _mixed_matmul(jnp.dtype(dtype), a, b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _mixed_matmul(dtype, a, b):
    return dot(a, b, dtype)


def _mixed_matmul_fwd(dtype, a, b):
    # Zero-size arrays carry the input dtypes to the backward pass (residuals are arrays).
    witnesses = (jnp.zeros((0,), a.dtype), jnp.zeros((0,), b.dtype))
    return dot(a, b, dtype), (a.astype(dtype), b.astype(dtype), witnesses)


def _mixed_matmul_bwd(dtype, residuals, g):
    a, b, (a_dtype, b_dtype) = residuals
    g = g.astype(dtype)
    # da = g b^T: contract g's last axis with b's last.
    dims = (((g.ndim - 1,), (1,)), ((), ()))
    da = lax.dot_general(g, b, dims, preferred_element_type=jnp.float32)
    return da.astype(a_dtype.dtype), dot_t(a, g, dtype).astype(b_dtype.dtype)


_mixed_matmul.defvjp(_mixed_matmul_fwd, _mixed_matmul_bwd)


def dense_dot_general(dtype):
    """A Flax `nn.Dense` `dot_general` computing in `dtype` (`matmul`); None for float32.

    Use with the layer's `dtype` left unset, so that Flax hands it the float32 inputs and
    kernel and the kernel's gradient is never rounded.
    """
    if not is_mixed(dtype):
        return None

    def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
        if dimension_numbers != _contract_last_first(lhs) or precision is not None:
            raise NotImplementedError("mixed precision supports Dense's [..., K] x [K, N] only")
        return matmul(lhs, rhs, dtype)

    return dot_general


def conv_general_dilated(dtype):
    """A Flax `nn.Conv` `conv_general_dilated` with float32 results; None for float32.

    Use with the layer's `dtype` set to `dtype` (Flax casts the operands). Its VJP is
    autodiff's, whose convolutions take the float32 cotangent and `dtype` operands.
    """
    if not is_mixed(dtype):
        return None
    return functools.partial(lax.conv_general_dilated, preferred_element_type=jnp.float32)
