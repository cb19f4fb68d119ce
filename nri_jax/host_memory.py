"""Keep freed host memory in the process, so XLA:CPU's per-call buffers do not page-fault.

XLA:CPU allocates each compiled call's large buffers (temporaries, outputs) with malloc and
frees them when the call ends. glibc serves blocks above its mmap threshold (at most 32 MiB)
with fresh `mmap`s and returns them with `munmap`, so every training step touches new pages:
the kernel zero-fills and maps each 4 KiB page on first touch. The MLP decoder's forward +
backward at batch 64 and 64 units took 14.5k minor page faults and 32 ms of system time per
call, 77 ms a call, against 0.7k faults and 62 ms with freed memory kept (docs/benchmarks.md).

`reuse_freed_memory()` sets glibc's `M_MMAP_MAX` to 0 (every block comes from the heap, which
malloc reuses) and raises `M_TRIM_THRESHOLD` (freed memory is not handed back to the kernel).
The process then keeps its peak host memory until it exits, which is what a training job wants;
call it from entry points, not from library code that shares a process with other work. Without
glibc (macOS, musl) it does nothing. Same effect, set before Python starts:
`GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295`.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: ~2 GiB of free heap top kept


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep and reuse freed memory. True if it applied, False without glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return all([bool(mallopt(param, value)) for param, value in settings])
