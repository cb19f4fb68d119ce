"""The train step sharded over 4 forced CPU devices matches the single-device step."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
import jax, jax.numpy as jnp, numpy as np
from configs import test as test_config
from nri_jax import train_state, training
from nri_jax.model import make_model

config = test_config.get_config()
rng = np.random.default_rng(0)
features = rng.uniform(-1, 1, size=(16, 3, 9, 4)).astype(np.float32)
labels = rng.integers(0, 2, size=(16, 6)).astype(np.int32)
model = make_model(config.model)
state, tx = train_state.init_state(model, config, features[:2], steps_per_epoch=2)
step = training.make_train_step(model, tx, config)
key = jax.random.key(3)
for i in range(2):
    state, metrics = step(state, jnp.asarray(features), jnp.asarray(labels),
                          jnp.arange(8) + 8 * i, key)
leaves = jax.tree.leaves(jax.device_get(state.params))
np.savez(sys.argv[1], loss=np.asarray(metrics["loss"]), devices=jax.device_count(),
         *[np.asarray(x) for x in leaves])
"""


def _run(out, devices):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    # Appended, so the suite's compile settings (conftest.py) carry over.
    env["XLA_FLAGS"] += f" --xla_force_host_platform_device_count={devices}"
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env, check=True)
    return np.load(out)


@pytest.mark.processes  # two processes, each with its own JAX start-up and compilation (~26 s)
def test_four_devices_match_one(tmp_path):
    one = _run(tmp_path / "one.npz", 1)
    four = _run(tmp_path / "four.npz", 4)
    assert int(one["devices"]) == 1 and int(four["devices"]) == 4
    np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-4)
    names = [k for k in one.files if k.startswith("arr_")]
    assert names
    for name in names:
        np.testing.assert_allclose(four[name], one[name], rtol=2e-3, atol=2e-5)
