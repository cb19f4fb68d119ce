"""The one way generation spreads a batch over devices (`simulators.devices`)."""

import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from simulators import devices

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_padded_chunk_size_is_a_device_multiple():
    assert devices.padded_chunk_size(1024, 10_000, 2) == 1024
    assert devices.padded_chunk_size(1000, 7, 2) == 8  # All items, padded by one.
    assert devices.padded_chunk_size(5, 3, 4) == 4  # At least one item per device.


def test_padded_chunk_size_holds_at_most_chunk_bytes():
    # 40 MB a trajectory (Kuramoto, 250 oscillators, 10000 grid points): 26 fit in 1 GiB, 26
    # is already a multiple of 2 devices; tiny items keep the requested chunk.
    item = 2 * 10_000 * 250 * 8
    assert devices.padded_chunk_size(1000, 10_000, 2, item) == devices.CHUNK_BYTES // item == 26
    assert devices.padded_chunk_size(1000, 10_000, 3, item) == 27
    assert devices.padded_chunk_size(1000, 10_000, 2, 100) == 1000
    assert devices.padded_chunk_size(1000, 10_000, 2, 10 * devices.CHUNK_BYTES) == 2


def test_default_devices_split_over_cpu_cores_only(monkeypatch):
    assert devices.default_devices() == jax.local_devices()  # CPU: every host device
    gpus = [type("Device", (), {"platform": "gpu"})() for _ in range(2)]
    monkeypatch.setattr(jax, "local_devices", lambda: gpus)
    assert devices.default_devices() == gpus[:1]


def test_split_over_devices_rejects_uneven_batches():
    fn = jax.jit(lambda *args: args[0])
    with pytest.raises(ValueError, match="multiple"):
        devices.split_over_devices(fn, (np.zeros(3),), jax.devices() * 2)
    with pytest.raises(ValueError, match="equal"):
        devices.split_over_devices(fn, (np.zeros(2), np.zeros(4)), jax.devices())


TWO_DEVICES_SCRIPT = """
import jax
import numpy as np
from simulators import devices

both = jax.local_devices()
assert len(both) == 2

@jax.jit
def fn(key, x, y):
    bits = jax.vmap(lambda i: jax.random.bits(jax.random.fold_in(key, i)))(x.astype(np.uint32))
    return x * 2 + y.sum(1), bits

key = jax.random.key(0)
x, y = np.arange(8.0), np.ones((8, 3))
results = []
for devs in ([both[0]], both, both[::-1]):
    parts = devices.split_over_devices(fn, (x, y), devs, shared=(key,))
    outputs = [part.result() for part in parts]
    assert [o[0].devices() for o in outputs] == [{d} for d in devs]
    results.append(devices.to_host(parts, count=7))
for other in results[1:]:
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(other), strict=True):
        assert a.shape[0] == 7 and np.array_equal(a, b)
print("identical")
"""


def test_one_and_two_devices_give_identical_results():
    """The helper's parts land on their devices and join to the same values for any count.

    Generation on two devices is checked end to end for charged particles in
    tests/test_generate.py and for Kuramoto in tests/test_kuramoto.py (slow).
    """
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        XLA_FLAGS=f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count=2",
    )
    result = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "identical" in result.stdout
