"""Steady-state training throughput of the compiled train step, compile time reported apart.

    python benchmarks/train_step.py --config configs/springs.py
    python benchmarks/train_step.py --config configs/springs.py \
        --config.model.encoder=cnn --config.model.decoder=rnn
    python benchmarks/train_step.py --config configs/springs_cpu.py --dtypes float32,bfloat16

Runs on synthetic data of the config's shape (no dataset needed). Reports the median over
`--repeats` timed runs of `--steps` steps, the step's matmul FLOPs (counted by hand from the
layer shapes, as this code runs them; the original formulation's count beside it), the GFLOP/s
they imply, and this machine's own matmul rate in the model's dtype (`config.model.dtype`:
float32, or bfloat16 operands with a float32 result) on the decoder's largest matmul shape in
the same run. `--dtypes` compiles one step per `model.dtype` and alternates their timed runs
in one process, so that the machine's drifts hit every variant alike. Prints one JSON object
per variant with `samples_per_sec`, the last line being the last variant's.
"""

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from jax import lax  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from nri_jax import cli, host_memory, train_state, training  # noqa: E402
from nri_jax.model import make_model  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.")
_STEPS = flags.DEFINE_integer("steps", 20, "Train steps per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs; the median is reported.")
_DTYPES = flags.DEFINE_list(
    "dtypes", None, "model.dtype values timed alternately in one process (default: the config's)."
)
_HUGE_PAGES = flags.DEFINE_bool(
    "huge_pages",
    True,
    "Restart with glibc's hugetlb tunable, as train.py does (nri_jax/host_memory.py).",
)
flags.mark_flags_as_required(["config"])


def matmul_flops_per_sample(config, dims: int, per_node: bool = True) -> float:
    """Matmul FLOPs of one training sample (forward + backward = 3x forward), counted by hand.

    MLP encoder (eqs. 5-8) and MLP decoder (eqs. 10-12) over M-step rollouts from every M-th
    frame; the RNN decoder runs T-1 steps of its message, gate and output matmuls. CNN
    encoder convolutions are counted as matmuls over their windows. `per_node=True` counts
    what this code runs: every first layer on an edge's [x_sender, x_receiver] projected once
    per node (`PairDense`, the fused decoder messages); `per_node=False` counts the original
    formulation, those layers on every edge (the MLP decoder's 2 x dims inputs are counted
    per edge either way: they are ~1% of its work).
    """
    n, t, m = config.data.num_objects, config.train.timesteps, config.train.prediction_steps
    e, k, h, hd = (
        n * (n - 1),
        config.model.edge_types,
        config.model.hidden,
        config.model.decoder_hidden,
    )
    used = k - int(config.model.skip_first)
    pair_layer = n * 2 * h * h if per_node else e * 2 * h * h  # [x_s, x_r] (2H) -> H
    if config.model.encoder == "mlp":
        encoder = n * (t * dims * h + h * h) + pair_layer + e * h * h  # mlp1, mlp2
    else:
        t1 = t - 4
        t2 = t1 // 2 - 4
        encoder = e * (t1 * 5 * 2 * dims * h + t2 * (5 * h * h + h * h + h)) + e * (2 * h * h)
    if config.model.factor:  # node MLP, then the edge MLP on [x_s, x_r, skip]
        encoder += n * 2 * h * h + pair_layer + e * 2 * h * h
    else:  # edge MLP, then the edge MLP on [x, skip]
        encoder += e * 2 * h * h + e * 3 * h * h + e * h * h
    encoder += e * h * k  # fc_out
    if config.model.decoder == "mlp":
        starts = -(-(t - 1) // m)
        per_step = starts * (e * used * (2 * dims * hd + hd * hd))
        per_step += starts * n * ((dims + hd) * hd + hd * hd + hd * dims)
        decoder = m * per_step
    else:
        first = (n if per_node else e) * used * 2 * hd * hd  # message layer 1
        per_step = first + e * used * hd * hd  # + layer 2
        per_step += n * (dims * 3 * hd + hd * 3 * hd) + n * (2 * hd * hd + hd * dims)
        decoder = (t - 1) * per_step
    return 3 * 2 * float(encoder + decoder)


def measure_matmul(rows: int, hidden: int, dtype: str = "float32", repeats: int = 20) -> float:
    """GFLOP/s of a [rows, hidden] x [hidden, hidden] matmul as the model runs it in `dtype`.

    float32 operands and result, or `dtype` operands with a float32 result (nri_jax.precision).
    """
    a = jnp.ones((rows, hidden), dtype)
    b = jnp.ones((hidden, hidden), dtype)
    f = jax.jit(lambda a, b: lax.dot(a, b, preferred_element_type=jnp.float32))
    f(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * rows * hidden * hidden / statistics.median(times) / 1e9


class TrainStep:
    """One config's compiled train step on synthetic data of its shape, ready to time.

    `run()` runs `steps` steps (the state carried, as in training) and returns their seconds.
    """

    def __init__(self, config, steps: int):
        self.config, self.steps = config, steps
        batch, n = config.train.batch_size, config.data.num_objects
        frames, dims = config.train.timesteps, 4
        rng = np.random.default_rng(0)
        shape = (batch * steps, n, frames, dims)
        self.features = jnp.asarray(rng.uniform(-1, 1, shape), jnp.float32)
        labels = rng.integers(0, 2, (batch * steps, n * (n - 1)))
        self.labels = jnp.asarray(labels, jnp.int32)
        self.model = model = make_model(config.model)
        state, tx = train_state.init_state(model, config, np.asarray(self.features[:2]), steps)
        # Placed as train.py places it, so the step's own output state does not recompile it.
        self.state = jax.device_put(state, NamedSharding(train_state.make_mesh(), P()))
        self.step = training.make_train_step(model, tx, config)
        self.index = jnp.arange(batch * steps).reshape(steps, batch)
        self.key = jax.random.key(0)
        start = time.perf_counter()
        self.compiled = self.step.lower(
            self.state, self.features, self.labels, self.index[0], self.key
        ).compile()
        self.compile_s = time.perf_counter() - start
        self.flops = batch * matmul_flops_per_sample(config, dims)
        self.run()  # warm-up

    def run(self) -> float:
        start = time.perf_counter()
        state, metrics = self.state, None
        for i in range(self.steps):
            state, metrics = self.step(state, self.features, self.labels, self.index[i], self.key)
        jax.block_until_ready((state, metrics))
        self.state = state
        return time.perf_counter() - start


def report(bench: TrainStep, times: list[float], faults: float, matmul_gflops: float) -> dict:
    """The JSON object of one variant's timed runs."""
    config = bench.config
    batch, n = config.train.batch_size, config.data.num_objects
    step_s = statistics.median(times) / bench.steps
    result = {
        "config": f"{config.data.system}{n} {config.model.encoder}/{config.model.decoder}",
        "dtype": config.model.get("dtype", "float32"),
        "batch_size": batch,
        "hidden": config.model.hidden,
        "devices": f"{jax.device_count()}x {jax.devices()[0].device_kind}",
        "compile_s": round(bench.compile_s, 2),
        "step_ms": round(1e3 * step_s, 2),
        "step_ms_runs": [round(1e3 * t / bench.steps, 1) for t in times],
        "matmul_gflop_per_sample": round(bench.flops / batch / 1e9, 4),
        "original_formulation_gflop_per_sample": round(
            matmul_flops_per_sample(config, 4, per_node=False) / 1e9, 4
        ),
        "matmul_gflops_achieved": round(bench.flops / step_s / 1e9, 1),
        "machine_matmul_gflops": round(matmul_gflops, 1),
        "samples_per_sec": round(batch / step_s, 1),
        "huge_pages": f"{host_memory.TUNABLE}=1" in os.environ.get("GLIBC_TUNABLES", ""),
        "page_faults_per_step": round(faults),
    }
    result["fraction_of_machine_matmul"] = round(
        result["matmul_gflops_achieved"] / result["machine_matmul_gflops"], 3
    )
    return result


def main(argv):
    del argv
    config = _CONFIG.value
    if _HUGE_PAGES.value:
        host_memory.restart_with_huge_pages()
    benches = []
    for dtype in _DTYPES.value or [config.model.get("dtype", "float32")]:
        variant = config.copy_and_resolve_references()
        variant.model.dtype = dtype
        benches.append(TrainStep(variant, _STEPS.value))
    times = [[] for _ in benches]
    cpu_times = [[] for _ in benches]
    faults = [0] * len(benches)
    for _ in range(_REPEATS.value):
        for i, bench in enumerate(benches):
            before = resource.getrusage(resource.RUSAGE_SELF)
            times[i].append(bench.run())
            after = resource.getrusage(resource.RUSAGE_SELF)
            faults[i] += after.ru_minflt - before.ru_minflt
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            cpu_times[i].append(cpu)
    n = config.data.num_objects
    starts = -(-(config.train.timesteps - 1) // config.train.prediction_steps)
    rows = config.train.batch_size * starts * n * (n - 1)
    for i, bench in enumerate(benches):
        matmul = measure_matmul(rows, config.model.decoder_hidden, bench.config.model.dtype)
        per_step = faults[i] / (len(times[i]) * bench.steps)
        result = report(bench, times[i], per_step, matmul)
        # CPU seconds of all threads per step: on a shared machine, less sensitive to other
        # jobs than wall time (but XLA:CPU's threads also count while they spin-wait).
        result["cpu_ms_per_step"] = round(1e3 * statistics.median(cpu_times[i]) / bench.steps, 1)
        for key, value in result.items():
            print(f"{key:28s} {value}")
        print(json.dumps(result))


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
