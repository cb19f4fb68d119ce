"""float32 matmul rate of a Dense layer's three products, by layout, on this machine.

    python benchmarks/matmul_layouts.py --shapes 1600x256,6400x64,12800x256

For each `ROWSxWIDTH` (activations x `[rows, width]`, kernel W `[width, width]`, output
cotangent g `[rows, width]`) it times, jitted, median of `--repeats` runs of `--calls` calls:

- `forward`: x W, the layer itself (what `train_step.py` calls the machine's matmul rate);
- `input_grad`: g W^T, the cotangent of x;
- `weight_grad`: x^T g, the cotangent of W, as autodiff writes it: a contraction over the rows,
  the long axis, with both operands transposed (XLA:CPU runs it through Eigen, not YNNPACK);
- `weight_grad_nt`: the same product with both operands first copied into `[width, rows]`
  (an optimisation barrier stops XLA from folding the copies back into the dot).

All four do 2 rows width^2 FLOPs. The last line is a JSON object of GFLOP/s per shape.
"""

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

from nri_jax.host_memory import restart_with_huge_pages  # noqa: E402

_SHAPES = flags.DEFINE_list("shapes", ["1600x256", "6400x64", "12800x256"], "ROWSxWIDTH list.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed runs; the median is reported.")
_CALLS = flags.DEFINE_integer("calls", 30, "Calls per timed run.")


def _contract(a: jax.Array, b: jax.Array, dims: tuple[int, int]) -> jax.Array:
    return jax.lax.dot_general(a, b, (((dims[0],), (dims[1],)), ((), ())))


def _weight_grad_nt(x: jax.Array, g: jax.Array) -> jax.Array:
    xt, gt = jax.lax.optimization_barrier((x.T, g.T))
    return _contract(xt, gt, (1, 1))


PRODUCTS = {
    "forward": lambda x, w, g: x @ w,
    "input_grad": lambda x, w, g: _contract(g, w, (1, 1)),
    "weight_grad": lambda x, w, g: _contract(x, g, (0, 0)),
    "weight_grad_nt": lambda x, w, g: _weight_grad_nt(x, g),
}


def gflops(f, args: tuple, flop: float, repeats: int, calls: int) -> float:
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = f(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / calls)
    return flop / statistics.median(times) / 1e9


def main(argv):
    del argv
    restart_with_huge_pages()  # as train.py runs
    results = {}
    for shape in _SHAPES.value:
        rows, width = (int(v) for v in shape.split("x"))
        keys = jax.random.split(jax.random.key(0), 3)
        x = jax.random.normal(keys[0], (rows, width))
        w = jax.random.normal(keys[1], (width, width))
        g = jax.random.normal(keys[2], (rows, width))
        flop = 2.0 * rows * width * width
        rates = {
            name: round(gflops(jax.jit(f), (x, w, g), flop, _REPEATS.value, _CALLS.value), 1)
            for name, f in PRODUCTS.items()
        }
        print(f"{shape:>10s}  " + "  ".join(f"{k} {v:6.1f}" for k, v in rates.items()))
        results[shape] = rates
    print(json.dumps(results))


if __name__ == "__main__":
    app.run(main)
