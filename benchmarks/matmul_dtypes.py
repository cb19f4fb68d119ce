"""Matmul rates by operand and result dtype: why nri_jax/precision.py computes as it does.

    python benchmarks/matmul_dtypes.py --rows 12800 --hidden 256 --repeats 20

Times [rows, hidden] x [hidden, hidden] (the paper's decoder shape) and the weight-gradient
form [rows, hidden]^T x [rows, hidden] with float32 operands, bfloat16 operands and a
bfloat16 result, bfloat16 operands and a float32 result (`preferred_element_type`), and mixed
float32 x bfloat16 operands (what autodiff of a float32-result bfloat16 matmul runs). The
variants are called round-robin, so drifts of a shared machine's speed hit all alike. Prints
one JSON line per variant (median GFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
from jax import lax

F32, BF16 = jnp.float32, jnp.bfloat16
FORWARD = (((1,), (0,)), ((), ()))
WEIGHT_GRADIENT = (((0,), (0,)), ((), ()))
VARIANTS = {
    # name: (dimension numbers, lhs dtype, rhs dtype, result dtype or None)
    "float32": (FORWARD, F32, F32, None),
    "bfloat16 -> bfloat16": (FORWARD, BF16, BF16, None),
    "bfloat16 -> float32": (FORWARD, BF16, BF16, F32),
    "float32 x bfloat16 -> float32": (FORWARD, F32, BF16, F32),
    "weight gradient, float32": (WEIGHT_GRADIENT, F32, F32, None),
    "weight gradient, bfloat16 -> float32": (WEIGHT_GRADIENT, BF16, BF16, F32),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12800)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rows, hidden = args.rows, args.hidden
    calls = {}
    for name, (dims, lhs, rhs, result) in VARIANTS.items():
        rhs_shape = (rows, hidden) if dims is WEIGHT_GRADIENT else (hidden, hidden)
        a = jnp.ones((rows, hidden), lhs)
        b = jnp.ones(rhs_shape, rhs)
        f = jax.jit(
            lambda a, b, dims=dims, result=result: lax.dot_general(
                a, b, dims, preferred_element_type=result
            )
        )
        jax.block_until_ready(f(a, b))
        calls[name] = lambda f=f, a=a, b=b: f(a, b)
    times = {name: [] for name in calls}
    for _ in range(args.repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[name].append(time.perf_counter() - start)
    flops = 2 * rows * hidden * hidden
    for name, runs in times.items():
        gflops = flops / statistics.median(runs) / 1e9
        print(
            json.dumps(
                {"variant": name, "rows": rows, "hidden": hidden, "gflops": round(gflops, 1)}
            )
        )


if __name__ == "__main__":
    main()
