"""Shared by the decoder benchmarks: inputs, the compiled gradient, interleaved timing."""

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def decoder_inputs(batch: int) -> tuple[jax.Array, jax.Array]:
    """Random springs5-shaped inputs `[batch, 5, 49, 4]` and soft edges `[batch, 20, 2]`."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, 5, 49, 4)), jnp.float32)
    z = jax.nn.softmax(jnp.asarray(rng.normal(size=(batch, 20, 2)), jnp.float32))
    return x, z


def compiled_gradient(decoder, x: jax.Array, z: jax.Array) -> Callable[[], tuple]:
    """`() -> (loss, (d params, d z))` of an MLP decoder (M = 10), compiled, run once."""
    params = decoder.init(jax.random.key(0), x, z, 10)

    def loss(params, x, z):
        return jnp.mean(decoder.apply(params, x, z, 10) ** 2)

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 2))).lower(params, x, z).compile()
    jax.block_until_ready(f(params, x, z))
    return lambda: f(params, x, z)


def time_interleaved(calls: dict, repeats: int) -> None:
    """Time each call `repeats` times, round-robin, and print median and minimum in ms."""
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[name].append(time.perf_counter() - start)
    for name, t in times.items():
        median, best = 1e3 * statistics.median(t), 1e3 * min(t)
        print(f"{name!s:>8}: median {median:8.1f} ms  min {best:8.1f} ms")
