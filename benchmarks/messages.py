"""The decoders' message implementations, fused (nri_jax/fused_messages.py) against plain.

    python benchmarks/messages.py                                   # CPU protocol's decoder
    python benchmarks/messages.py --hidden 256 --batch 128          # the paper's MLP decoder
    python benchmarks/messages.py --decoder rnn --hidden 256 --batch 32

Times one decoder's forward + backward pass (jax.value_and_grad w.r.t. parameters and edges)
on springs5-shaped inputs [batch, 5, 49, 4] with M = 10 (MLP) or the training burn-in (RNN),
for each implementation, compiled once each (compile time printed apart) and called
round-robin so that drifts of the machine's speed hit both alike. First checks that both give
the same loss and gradients. Prints the median and minimum per implementation in ms; the last
line is a JSON object with the medians and the speed-up of the fused path.
"""

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nri_jax import host_memory  # noqa: E402

if __name__ == "__main__":
    host_memory.restart_with_huge_pages()  # as train.py does

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from nri_jax.decoders import IMPLEMENTATIONS, MLPDecoder, RNNDecoder  # noqa: E402

_DECODER = flags.DEFINE_enum("decoder", "mlp", ["mlp", "rnn"], "Decoder.")
_BATCH = flags.DEFINE_integer("batch", 64, "Trajectories per batch.")
_HIDDEN = flags.DEFINE_integer("hidden", 64, "Decoder hidden units.")
_REPEATS = flags.DEFINE_integer("repeats", 15, "Timed calls per implementation.")
PREDICTION_STEPS = 10


def _compiled(implementation: str, x: jax.Array, z: jax.Array):
    decoder_cls = MLPDecoder if _DECODER.value == "mlp" else RNNDecoder
    decoder = decoder_cls(2, _HIDDEN.value, implementation=implementation)
    # The RNN decoder's third argument is its burn-in (training: T - M), the MLP's M.
    third = PREDICTION_STEPS if _DECODER.value == "mlp" else x.shape[2] - PREDICTION_STEPS
    params = decoder.init(jax.random.key(0), x, z, third)

    def loss(params, z):
        return jnp.mean((decoder.apply(params, x, z, third) - x[:, :, 1:]) ** 2)

    start = time.perf_counter()
    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(params, z).compile()
    compile_s = time.perf_counter() - start
    result = jax.block_until_ready(f(params, z))
    return (lambda: f(params, z)), result, compile_s


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(_BATCH.value, 5, 49, 4)), jnp.float32)
    z = jax.nn.softmax(jnp.asarray(rng.normal(size=(_BATCH.value, 20, 2)), jnp.float32))
    calls, results = {}, {}
    for name in IMPLEMENTATIONS:
        calls[name], results[name], compile_s = _compiled(name, x, z)
        print(f"{name:>6}: compiled in {compile_s:.1f} s")
    jax.tree.map(
        # float32 sums in another order: tolerances relative to each array's scale.
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max()),
        results["fused"],
        results["plain"],
    )
    times = {name: [] for name in calls}
    for _ in range(_REPEATS.value):
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[name].append(time.perf_counter() - start)
    medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name:>6}: median {medians[name]:8.1f} ms  min {1e3 * min(t):8.1f} ms")
    summary = {
        "backend": jax.default_backend(),
        "decoder": _DECODER.value,
        "batch": _BATCH.value,
        "hidden": _HIDDEN.value,
        "median_ms": medians,
        "fused_speedup": medians["plain"] / medians["fused"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main)
