"""Does a training step fit in memory? An estimate from traced shapes, made before compiling.

Reverse-mode autodiff keeps the forward pass's residuals (the activations the backward pass
reads) until the backward pass uses them. In NRI they are most of a step's memory and grow as
batch x time x edges x hidden units, O(B T N^2 H): at 250 objects one 49-frame sample of the
MLP decoder keeps gigabytes. `jax.vjp` returns them as the leaves of its pullback, so
`jax.eval_shape` of that pullback gives their shapes by tracing alone: the estimate costs a
trace, not a compilation, and a batch that cannot fit fails in one line naming one that does
(`check_batch_fits`, called by the training job before it compiles anything).

The estimate is the residuals, the training state twice (state, and the gradients and Adam
update in flight) and the device-resident training set. tests/test_memory.py holds it against
XLA's memory analysis of the compiled train step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Use at most this share of a device's (or the host's) free memory: the estimate came out at
# 0.80-0.99 of XLA's compiled figure at 64 hidden units and 49 frames (MLP and CNN encoders,
# MLP and RNN decoders, 5-50 objects; 0.67-0.69 in the tests' 8 units and 8 frames, where
# temporaries other than the residuals weigh more), and the validation pass and the
# allocator's fragmentation need some memory too.
MEMORY_FRACTION = 0.8

GIB = 1 << 30


def tree_bytes(tree: Any) -> int:
    """Bytes of all array leaves of `tree` (arrays or ShapeDtypeStructs)."""
    return sum(
        int(np.prod(leaf.shape)) * jnp.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(tree)
    )


def residual_bytes(loss_fn: Callable, params: Any, *args: Any) -> int:
    """Bytes autodiff keeps between the forward and the backward pass of `loss_fn(params, *args)`.

    `loss_fn` returns `(loss, aux)`; args may be ShapeDtypeStructs. Nothing is computed.
    """

    def pullback(params, *args):
        _, vjp_fn, _ = jax.vjp(lambda p: loss_fn(p, *args), params, has_aux=True)
        return vjp_fn

    return tree_bytes(jax.eval_shape(pullback, params, *args))


def available_bytes(device: jax.Device) -> int | None:
    """Free memory of an accelerator, or the host's available memory for a CPU device.

    None where neither is known (then nothing is checked).
    """
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            return None
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class BatchTooLarge(ValueError):
    """The configured batch would not fit in memory (the message names one that does)."""


def check_batch_fits(
    loss_fn: Callable,
    state: Any,
    batch_size: int,
    sample_shape: tuple[int, ...],
    label_dtype: Any,
    dataset_bytes: int,
    available: int | None = None,
) -> int:
    """Raise `BatchTooLarge` if a train step at `batch_size` would not fit; return its bytes.

    Args:
      loss_fn: `training.make_loss_fn`'s `(params, state, inputs, labels, key) -> (loss, aux)`.
      state: the train state, or its shapes (`train_state.abstract_state`).
      batch_size: the global batch; each process holds batch / processes of it, each device
        batch / devices.
      sample_shape: one input sample, (objects, time, dims).
      label_dtype: the dtype of the edge labels.
      dataset_bytes: the device-resident training set (features and labels).
      available: memory to fit in (default: `available_bytes` of the first local device, the
        host's memory shared by all CPU devices).

    Returns:
      The estimated bytes of one step where `available` is measured (a device, or the host).
    """
    device = jax.local_devices()[0]
    cpu = device.platform == "cpu"
    if available is None:
        available = available_bytes(device)
    # On a CPU all local devices share the host's memory: count the process's whole batch and
    # one copy of the training set and state per device; elsewhere one device's share.
    copies = jax.local_device_count() if cpu else 1
    local = batch_size // (jax.process_count() if cpu else jax.device_count())
    num_objects = sample_shape[0]
    edges = num_objects * (num_objects - 1)

    def residuals(batch: int) -> int:
        inputs = jax.ShapeDtypeStruct((batch, *sample_shape), jnp.float32)
        labels = jax.ShapeDtypeStruct((batch, edges), label_dtype)
        key = jax.eval_shape(lambda: jax.random.key(0))
        return residual_bytes(loss_fn, state.params, state, inputs, labels, key)

    fixed = copies * (2 * tree_bytes(state) + dataset_bytes)
    kept = residuals(local)
    need = fixed + kept
    if available is None or need <= MEMORY_FRACTION * available:
        return need
    # Residuals are affine in the batch (per-sample activations plus batch-free ones).
    one = residuals(1)
    per_sample = max(1, (kept - one) // (local - 1)) if local > 1 else one
    fits_local = int((MEMORY_FRACTION * available - fixed - (one - per_sample)) // per_sample)
    multiple = jax.device_count()
    fits = (fits_local * (batch_size // local)) // multiple * multiple
    where = "the host" if cpu else str(device)
    head = (
        f"config.train.batch_size={batch_size} needs about {need / GIB:.1f} GiB a train step "
        f"at {num_objects} objects and {sample_shape[1]} frames (activations kept for the "
        f"gradient, O(batch x frames x objects^2)), {available / GIB:.1f} GiB free on {where}"
    )
    if fits >= multiple:
        raise BatchTooLarge(f"{head}: use --config.train.batch_size={fits} or less")
    raise BatchTooLarge(
        f"{head}: even batch_size={multiple} does not fit; use fewer "
        f"config.train.timesteps or a smaller model.decoder_hidden"
    )
