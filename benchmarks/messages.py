"""The decoders' message implementations, fused (nri_jax/fused_messages.py) against plain.

    python benchmarks/messages.py                                   # CPU protocol's decoder
    python benchmarks/messages.py --hidden 256 --batch 128          # the paper's MLP decoder
    python benchmarks/messages.py --decoder rnn --hidden 256 --batch 32
    python benchmarks/messages.py --hidden 256 --batch 128 --dtypes float32,bfloat16
    python benchmarks/messages.py --objects 100 --batch 1          # one graph per chunk

Times one decoder's forward + backward pass (jax.value_and_grad w.r.t. parameters and edges) on
springs-shaped inputs [batch, objects, 49, 4] (5 objects unless `--objects`) with M = 10 (MLP) or
the training burn-in (RNN), for each implementation and each `--dtypes` value (`config.model.dtype`,
nri_jax/precision.py), compiled once each (compile time printed apart) and called round-robin so
that drifts of the machine's speed hit all alike. First checks that both implementations give the
same loss and gradients in each dtype. Prints the median and minimum per variant in ms; the last
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
_OBJECTS = flags.DEFINE_integer("objects", 5, "Objects per trajectory.")
_REPEATS = flags.DEFINE_integer("repeats", 15, "Timed calls per implementation.")
_DTYPES = flags.DEFINE_list("dtypes", ["float32"], "Decoder dtypes (model.dtype) to time.")
PREDICTION_STEPS = 10


def _compiled(implementation: str, dtype: str, x: jax.Array, z: jax.Array):
    decoder_cls = MLPDecoder if _DECODER.value == "mlp" else RNNDecoder
    decoder = decoder_cls(2, _HIDDEN.value, implementation=implementation, dtype=jnp.dtype(dtype))
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
    n = _OBJECTS.value
    x = jnp.asarray(rng.normal(size=(_BATCH.value, n, 49, 4)), jnp.float32)
    z = jax.nn.softmax(jnp.asarray(rng.normal(size=(_BATCH.value, n * (n - 1), 2)), jnp.float32))
    calls, results = {}, {}
    for dtype in _DTYPES.value:
        for implementation in IMPLEMENTATIONS:
            name = implementation if _DTYPES.value == ["float32"] else f"{implementation} {dtype}"
            calls[name], results[name], compile_s = _compiled(implementation, dtype, x, z)
            print(f"{name:>6}: compiled in {compile_s:.1f} s")
        # Sums in another order: tolerances relative to each array's scale; in bfloat16 a sum
        # on the other side of a rounding boundary moves an operand by 2^-8.
        # At 250 objects the untrained decoder's 10-step rollouts sum 249 messages per step
        # and grow (|dz| up to 3.5e4): float32 paths then differ by 4e-4 of the scale.
        atol = (1e-4 if n <= 100 else 1e-3) if dtype == "float32" else 2.0**-8
        jax.tree.map(
            lambda a, b, atol=atol: np.testing.assert_allclose(
                a, b, rtol=1e-3, atol=atol * np.abs(b).max()
            ),
            results[name],
            results[name.replace("fused", "plain")],
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
        "objects": _OBJECTS.value,
        "hidden": _HIDDEN.value,
        "median_ms": medians,
    }
    for dtype in _DTYPES.value:
        suffix = "" if _DTYPES.value == ["float32"] else f" {dtype}"
        key = "fused_speedup" + suffix.replace(" ", "_")
        summary[key] = medians[f"plain{suffix}"] / medians[f"fused{suffix}"]
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main)
