"""Spreading dataset generation over the host's CPU cores.

XLA:CPU runs the small elementwise programs of a simulation chunk on about one core. With one
XLA host device per core (`use_all_cpu_cores`), a chunk is cut into one equal part per device
and each part is dispatched to its device from a thread of its own, so the devices run
concurrently and the wall time is that of the slowest part. Every part runs the same jitted
program a user would call on that batch, which `jax.shard_map` would replace by a different,
SPMD-partitioned one; the price is one compilation per device (in parallel, in those
threads). Both generators use this one path: `simulators.particles` (springs, charged) and
`simulators.kuramoto`.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np


def use_all_cpu_cores() -> None:
    """Expose one XLA host device per core, so chunks are split across cores.

    XLA:CPU runs an elementwise loop on one core; with one host device per core each chunk is
    split over the devices and all cores work (docs/benchmarks.md). Must run before JAX's first
    computation; a no-op if the user set the device count in XLA_FLAGS.
    """
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    try:
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except RuntimeError:  # JAX already started: keep its devices.
        pass


def default_devices() -> list[jax.Device]:
    """Where generation runs unless told: every local device on CPU (one per core with
    `use_all_cpu_cores`), the first device on an accelerator, where a split over several
    devices has not been measured (one GPU or TPU runs a whole chunk as one batch)."""
    devices = jax.local_devices()
    return devices if devices[0].platform == "cpu" else devices[:1]


# The most bytes a chunk's arrays may take (`padded_chunk_size`): many objects shrink the
# chunk instead of the machine running out of memory (a Kuramoto chunk of 1000 trajectories of
# 250 oscillators would hold 40 GB of solver output).
CHUNK_BYTES = 1 << 30


def padded_chunk_size(
    chunk_size: int, num_items: int, num_devices: int, item_bytes: int = 0
) -> int:
    """Items per chunk: at most `chunk_size` (or all items), rounded up to a device multiple.

    Every chunk, the last one included, then has one shape, so nothing recompiles; the last
    chunk is padded with items past the end, computed and dropped. With `item_bytes` (the
    memory one item's arrays take) the chunk also holds at most `CHUNK_BYTES` (but at least
    one item per device).
    """
    chunk = min(chunk_size, num_items)
    if item_bytes > 0:
        chunk = min(chunk, max(1, CHUNK_BYTES // item_bytes))
    return max(num_devices, -(-chunk // num_devices) * num_devices)


def split_over_devices(
    fn: Callable[..., Any],
    batch: Sequence[Any],
    devices: Sequence[jax.Device],
    shared: Sequence[Any] = (),
) -> list[concurrent.futures.Future]:
    """Start `fn(*shared, *part)` for one equal part of `batch` per device, without waiting.

    Each part is dispatched from a thread of its own. Asynchronous dispatch alone does not
    make the devices concurrent: JAX runs a program that holds a host callback (diffrax's
    run-time checks in the Kuramoto solve, say) synchronously, so one thread would run the
    parts one after the other.

    Args:
      fn: jitted, batched over the leading axis of its `batch` arguments; it runs where its
        (committed) inputs are. JAX's config contexts (`jax.enable_x64`, ...) are per thread:
        enter those it needs inside `fn`.
      batch: arrays (jax or numpy) with one leading axis of size B, a multiple of the device
        count.
      devices: where the parts run, part d (rows d B/D .. (d + 1) B/D) on devices[d].
      shared: arguments every part gets whole (e.g. a PRNG key), copied to each device.

    Returns:
      One future per device, in order, of fn's output on its part (`to_host` joins them).
    """
    size = len(batch[0])
    if size % len(devices) or any(len(a) != size for a in batch):
        raise ValueError(
            f"batch sizes {[len(a) for a in batch]} must be equal and a multiple of the "
            f"{len(devices)} devices"
        )
    per_device = size // len(devices)

    def start(d):
        part = tuple(a[d * per_device : (d + 1) * per_device] for a in batch)
        return fn(*jax.device_put((*shared, *part), devices[d]))

    threads = concurrent.futures.ThreadPoolExecutor(len(devices), "split_over_devices")
    futures = [threads.submit(start, d) for d in range(len(devices))]
    threads.shutdown(wait=False)  # Each thread ends with its part.
    return futures


def to_host(outputs: list[concurrent.futures.Future], count: int | None = None) -> Any:
    """The outputs of `split_over_devices`, once done, joined into numpy arrays (blocks).

    `count` keeps the first `count` rows only (drops the padding of a last chunk).
    """
    return jax.tree.map(
        lambda *parts: np.concatenate([np.asarray(p) for p in parts])[:count],
        *(future.result() for future in outputs),
    )
