"""Shared test set-up: CPU only, cheap compilation, one persistent compilation cache.

The tests run tiny shapes, so compiling dominates their time. LLVM's optimisation level 0
compiles the small train steps 2-3x faster (e.g. one step: 6.8 -> 2.4 s) and costs nothing at
these sizes; the benchmarks and the entry points keep XLA's default. The cache lets the many
short training runs (and their subprocesses, which inherit the environment) reuse compiled
steps instead of recompiling identical programs.
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
FAST_COMPILE = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "nri_jax_test_cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


import jax  # noqa: E402  (after the environment above is set)
import pytest  # noqa: E402


@pytest.fixture
def x64():
    """float64 inside one test only: `jax.enable_x64` is a context manager, so nothing leaks."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A tiny springs dataset (configs/test.py) written once by the generator; read-only."""
    from configs import test as test_config
    from nri_jax.generate import generate_dataset

    config = test_config.get_config()
    config.data.dir = str(tmp_path_factory.mktemp("data"))
    generate_dataset(config.data, progress=False)
    return Path(config.data.dir)
