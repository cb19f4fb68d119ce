"""restart_with_huge_pages: the program runs again once, with glibc's hugetlb tunable, and
XLA:CPU-like malloc/free rounds then fault in 2 MiB pages instead of 4 KiB ones."""

import os
import platform
import subprocess
import sys

import pytest

from nri_jax import host_memory

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or not host_memory.huge_pages_on_request(),
    reason="needs glibc and transparent huge pages in madvise mode",
)

# Prints GLIBC_TUNABLES as this run sees it, then restarts; a second run prints it again.
_RESTART = """
import os, sys
from nri_jax import host_memory
print("run", os.environ.get("GLIBC_TUNABLES"), sys.argv[1:])
host_memory.restart_with_huge_pages()
print("done")
"""

# Allocates, writes and frees a 64 MiB block five times, as XLA:CPU does with a call's
# buffers; prints the minor page faults of the last four rounds.
_FAULTS = """
import ctypes, ctypes.util, resource
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 64 * 2**20
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[1:]))
"""


def _run(script: str, tunables: str | None, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    return subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, check=True
    ).stdout


def test_restarts_once_with_the_tunable_and_the_same_arguments():
    out = _run(_RESTART, None, "--flag", "x").splitlines()
    assert out == [
        "run None ['--flag', 'x']",
        "run glibc.malloc.hugetlb=1 ['--flag', 'x']",
        "done",
    ]


def test_keeps_other_tunables_and_respects_an_opt_out():
    out = _run(_RESTART, "glibc.malloc.arena_max=2").splitlines()
    assert out[1] == "run glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1 []"
    assert len(out) == 3
    out = _run(_RESTART, "glibc.malloc.hugetlb=0").splitlines()
    assert out == ["run glibc.malloc.hugetlb=0 []", "done"]  # no restart


def test_huge_pages_cut_the_page_faults_of_fresh_blocks():
    fresh = int(_run(_FAULTS, None))
    huge = int(_run(_FAULTS, "glibc.malloc.hugetlb=1"))
    # 4 rounds x 64 MiB of 4 KiB pages is 65536 faults; of 2 MiB pages, 128.
    assert fresh > 60000
    assert huge < fresh / 20


def test_no_restart_when_an_accelerator_is_visible():
    env_script = _RESTART
    out = subprocess.run(
        [sys.executable, "-c", env_script],
        env={
            **{k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"},
            "JAX_PLATFORMS": "cuda",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines() == ["run None []", "done"]
    assert out.stderr == ""


def test_restart_says_so_in_one_line():
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", _RESTART], env=env, capture_output=True, text=True, check=True
    )
    assert len(out.stderr.splitlines()) == 1
    assert "glibc.malloc.hugetlb=1" in out.stderr and "opts out" in out.stderr


def test_accelerator_device_nodes_are_recognised(tmp_path, monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    assert not host_memory.accelerator_visible(tmp_path)
    (tmp_path / "nvidia0").touch()
    assert host_memory.accelerator_visible(tmp_path)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")  # a user forcing the CPU gets the restart
    assert not host_memory.accelerator_visible(tmp_path)
    monkeypatch.setenv("JAX_PLATFORMS", "tpu,cpu")
    assert host_memory.accelerator_visible(tmp_path)
