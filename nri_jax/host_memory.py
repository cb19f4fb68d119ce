"""Keep freed host memory in the process, so XLA:CPU's per-step buffers do not page-fault.

XLA:CPU allocates each compiled call's large buffers with malloc and frees them when the call
ends. glibc serves large blocks with fresh `mmap`s and returns them with `munmap`, so every
training step touches new pages, which the kernel zero-fills and maps one 4 KiB page at a
time. The CPU protocol's train step (`configs/springs_cpu.py`) took ~23k minor page faults per
step; with the settings below under ~1.2k, and the step ran 4-11% faster in paired runs
(docs/benchmarks.md).

`reuse_freed_memory()` sets three glibc malloc parameters: one arena (`M_ARENA_MAX`: a block too
large for a thread arena's 64 MiB heap is mmapped whatever the other settings say, and XLA's
worker threads allocate), no mmap (`M_MMAP_MAX` 0: blocks come from the heap, which malloc
reuses) and no trimming (`M_TRIM_THRESHOLD`: freed memory is not handed back; the training
loop hands it back once per epoch with `release_freed_memory`). Call it from an entry point,
not from library code sharing a process with other work. Without glibc (macOS, musl) it
does nothing. The same, set before Python starts:
`GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647`.

One arena serialises malloc across threads. The recurrent decoder's 48-step loop allocates
from both worker threads, and its train step ran 15-25% slower with these settings, so
`helps(config)` is true for the MLP decoder only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import ml_collections

# <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: up to ~2 GiB of free heap top kept


def helps(config: ml_collections.ConfigDict) -> bool:
    """Whether `reuse_freed_memory` made this config's train step faster (measured on CPU)."""
    return config.model.decoder == "mlp"


@functools.cache  # find_library runs ldconfig; release_freed_memory is called every epoch
def _libc():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hand the free heap memory back to the kernel (glibc `malloc_trim(0)`); once per epoch.

    With freed memory kept, the heap fragments slowly: the CPU protocol's resident memory grew
    by ~0.17 MB per step (1.03 GB after 60 steps, 1.19 GB after 1000), nearly all of it free
    heap (`malloc_trim(0)` took 1.12 GB down to 0.32 GB). Trimming once per epoch bounds it;
    the next steps fault the memory in again once.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep and reuse freed memory. True if it applied, False without glibc."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return all([bool(mallopt(param, value)) for param, value in settings])
