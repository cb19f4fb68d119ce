"""Decoder forward + backward time against the fused messages' chunk size.

    python benchmarks/decoder_chunks.py --batch 64 --hidden 64 --rows 640,1280,2560,6400

The MLP decoder (M = 10, 5 objects, 49 frames, 2 edge types) under `jax.grad`, compiled once per
chunk size (rows = graphs x edges per chunk, set through `decoders._CHUNK_ELEMENTS`); the
compiled calls are timed interleaved, and the median and minimum per size printed in ms.
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from nri_jax import decoders  # noqa: E402
from nri_jax.host_memory import reuse_freed_memory  # noqa: E402

_BATCH = flags.DEFINE_integer("batch", 64, "Trajectories per batch.")
_HIDDEN = flags.DEFINE_integer("hidden", 64, "Decoder hidden units.")
_ROWS = flags.DEFINE_list("rows", ["640", "1280", "2560", "6400"], "Rows per chunk to compare.")
_REPEATS = flags.DEFINE_integer("repeats", 15, "Timed calls per chunk size.")


def main(argv):
    del argv
    reuse_freed_memory()  # as train.py does
    hidden = _HIDDEN.value
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(_BATCH.value, 5, 49, 4)), jnp.float32)
    z = jax.nn.softmax(jnp.asarray(rng.normal(size=(_BATCH.value, 20, 2)), jnp.float32))
    module = decoders.MLPDecoder(2, hidden)
    params = module.init(jax.random.key(0), x, z, 10)

    def loss(params, x, z):
        return jnp.mean(module.apply(params, x, z, 10) ** 2)

    compiled = {}
    for rows in map(int, _ROWS.value):
        decoders._CHUNK_ELEMENTS = rows * hidden  # read when the function is traced
        compiled[rows] = jax.jit(jax.grad(loss, argnums=(0, 2))).lower(params, x, z).compile()
        jax.block_until_ready(compiled[rows](params, x, z))
    times = {rows: [] for rows in compiled}
    for _ in range(_REPEATS.value):
        for rows, f in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(f(params, x, z))
            times[rows].append(time.perf_counter() - start)
    for rows, t in times.items():
        median, best = 1e3 * statistics.median(t), 1e3 * min(t)
        print(f"rows {rows:6d}  median {median:8.1f} ms  min {best:8.1f} ms")


if __name__ == "__main__":
    app.run(main)
