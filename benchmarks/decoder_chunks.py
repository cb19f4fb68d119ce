"""Decoder forward + backward time against the fused messages' chunk size.

    python benchmarks/decoder_chunks.py --batch 64 --hidden 64 --rows 640,1280,2560,6400

The MLP decoder (M = 10, 5 objects, 49 frames, 2 edge types) under `jax.grad`, compiled once per
chunk size (rows = graphs x edges per chunk, set through `decoders._CHUNK_ELEMENTS`); the
compiled calls are timed interleaved, and the median and minimum per size printed in ms.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402
from decoder_timing import compiled_gradient, decoder_inputs, time_interleaved  # noqa: E402

from nri_jax import decoders  # noqa: E402
from nri_jax.host_memory import restart_with_huge_pages  # noqa: E402

_BATCH = flags.DEFINE_integer("batch", 64, "Trajectories per batch.")
_HIDDEN = flags.DEFINE_integer("hidden", 64, "Decoder hidden units.")
_ROWS = flags.DEFINE_list("rows", ["640", "1280", "2560", "6400"], "Rows per chunk to compare.")
_REPEATS = flags.DEFINE_integer("repeats", 15, "Timed calls per chunk size.")


def main(argv):
    del argv
    restart_with_huge_pages()  # as train.py does
    x, z = decoder_inputs(_BATCH.value)
    calls = {}
    for rows in map(int, _ROWS.value):
        decoders._CHUNK_ELEMENTS = rows * _HIDDEN.value  # read when the function is traced
        calls[rows] = compiled_gradient(decoders.MLPDecoder(2, _HIDDEN.value), x, z)
    time_interleaved(calls, _REPEATS.value)


if __name__ == "__main__":
    app.run(main)
