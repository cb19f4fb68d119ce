"""Back XLA:CPU's per-step buffers with transparent huge pages (glibc's `hugetlb` tunable).

XLA:CPU allocates each compiled call's large buffers with malloc and frees them when the call
ends. glibc serves blocks above its mmap threshold (at most 32 MiB) with a fresh `mmap` and
returns them with `munmap`, so every training step maps new memory, which the kernel
zero-fills and maps on first touch one 4 KiB page at a time: ~128k minor page faults per
train step for MLP/MLP at paper settings, ~451k for CNN/RNN (one 1.85 GB block), ~23k for the
CPU protocol. With `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, glibc asks the kernel
(`madvise(MADV_HUGEPAGE)`) to back those mappings and the heap with 2 MiB pages: a few hundred
faults per step, and the train step ran 7-41% faster in 9 of 10 runs paired with 4 KiB pages
(docs/benchmarks.md). It also beat keeping freed memory with `mallopt` (one arena,
no mmap, no trim), which we used before and which serialised malloc across XLA's threads.

glibc reads GLIBC_TUNABLES only when a process starts, so `restart_with_huge_pages()` executes
the running program again, in the same process, with the tunable added to the environment.
Entry points (train.py, eval.py, the benchmarks) call it first thing; library code never
does. It does nothing where it would change nothing: without glibc, unless transparent huge
pages are in `madvise` mode (with `always` the kernel uses them anyway, with `never` it cannot),
or when GLIBC_TUNABLES already sets `glibc.malloc.hugetlb` (`=0` opts out). It only runs where
it was measured, XLA:CPU: not when an accelerator is visible (an NVIDIA, AMD or TPU device
node, or JAX_PLATFORMS naming another platform first), since there the step's buffers live in
device memory. When it restarts it says so in one line on stderr.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb"
_THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")
# Device nodes of the accelerators JAX runs on: NVIDIA GPUs, AMD GPUs (ROCm), TPUs.
_ACCELERATOR_NODES = ("nvidia[0-9]*", "kfd", "accel[0-9]*")


def huge_pages_on_request() -> bool:
    """Whether this machine gives transparent huge pages to memory that asks (`madvise` mode)."""
    try:
        return "[madvise]" in _THP_MODE.read_text()
    except OSError:
        return False


def accelerator_visible(dev: Path = Path("/dev")) -> bool:
    """Whether JAX would run on an accelerator here (judged without importing jax).

    JAX_PLATFORMS decides when set (its first entry is the default backend); otherwise any
    accelerator device node counts.
    """
    platforms = os.environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return platforms.split(",")[0].strip() != "cpu"
    return any(any(dev.glob(pattern)) for pattern in _ACCELERATOR_NODES)


def restart_with_huge_pages() -> None:
    """Re-execute this program with `glibc.malloc.hugetlb=1` added to GLIBC_TUNABLES, once.

    Returns without doing anything where the tunable would not apply or is already set (see
    the module docstring); otherwise it does not return. Call it before any work: the process
    image is replaced (same pid, same arguments, same interpreter options).
    """
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if TUNABLE in tunables or platform.libc_ver()[0] != "glibc" or not huge_pages_on_request():
        return
    if accelerator_visible():
        return
    env = dict(os.environ, GLIBC_TUNABLES=":".join(filter(None, [tunables, f"{TUNABLE}=1"])))
    print(
        f"restarting with GLIBC_TUNABLES={TUNABLE}=1: 2 MiB pages for XLA:CPU's buffers "
        f"(GLIBC_TUNABLES={TUNABLE}=0 opts out)",
        file=sys.stderr,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
