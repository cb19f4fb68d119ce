"""reuse_freed_memory: freed blocks are reused instead of being unmapped and faulted in again."""

import subprocess
import sys

import pytest

# Allocates, writes and frees a 64 MiB block five times; prints the minor page faults of the
# last four rounds (the first maps the memory in either case).
_SCRIPT = """
import ctypes, ctypes.util, resource, sys
from nri_jax.host_memory import release_freed_memory, reuse_freed_memory
def resident():  # resident set in MiB
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
applied = reuse_freed_memory() if sys.argv[1] == "reuse" else False
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 64 * 2**20
faults = []
for _ in range(5):  # as XLA:CPU's per-call buffers: malloc, write every page, free
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
kept = resident()
release_freed_memory()
print(applied, sum(faults[1:]), kept - resident())
"""


def _faults(mode: str) -> tuple[str, int, float]:
    """(whether the settings applied, page faults of rounds 2-5, MiB released at the end)."""
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1]), float(out[2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_blocks_are_reused_without_page_faults():
    applied, reused, released = _faults("reuse")
    if applied != "True":
        pytest.skip("no glibc mallopt here")
    _, fresh, _ = _faults("default")
    # 4 x 64 MiB of 4 KiB pages is 65536 faults when each block is a fresh mapping.
    assert fresh > 10000
    assert reused < fresh / 20
    # The freed block stayed resident until release_freed_memory handed it back.
    assert released > 48
