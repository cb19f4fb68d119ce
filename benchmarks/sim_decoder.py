"""Cost and gradient health of the simulation decoder (NRI (sim.), nri_jax/sim_decoder.py).

For each system and integration steps per frame it times the whole compiled train step
(MLP encoder, Gumbel sampling, the sim decoder's M-step rollouts, loss, Adam) on a batch of
trajectories of the paper's shape (5 objects, 49 frames, M = 10), and reports the gradient of
the NLL w.r.t. the encoder's logits over the batch (norm quantiles, non-finite count):

    taskset -c 0 python benchmarks/sim_decoder.py --system springs --steps 100 10 1
    taskset -c 0 python benchmarks/sim_decoder.py --system charged --steps 100 --softening 0 0.1
    taskset -c 0 python benchmarks/sim_decoder.py --system kuramoto --steps 2 10 --encoder cnn

Step times are medians over `--repeats` calls after one compiling call (its time is printed
apart). Kuramoto runs on [cos phi, sin phi, omega] frames (`data.features='phase'`).
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from nri_jax import data as data_lib
from nri_jax import losses, original_format, sim_decoder, train_state, training
from nri_jax.config import SYSTEMS, base_config
from nri_jax.model import make_model
from simulators import charged, kuramoto, springs


def _kuramoto_dataset(batch, num_objects, frames, seed):
    keys = jax.random.split(jax.random.key(seed), batch)
    ts = jnp.arange(frames) * 0.1

    def one(key):
        phi0, omega, coupling = kuramoto.sample_system(key, num_objects)
        return kuramoto.simulate(phi0, omega, coupling, ts), omega, coupling

    with jax.enable_x64(True):
        phi, omega, coupling = (np.asarray(a) for a in jax.vmap(one)(keys))
    # phi [S, T, N] -> [S, N, T]
    features = original_format.phase_frames(phi.transpose(0, 2, 1), omega)
    norm = data_lib.fit_normalisation("kuramoto", features)
    return norm.apply(features), original_format.edge_labels(coupling), norm


def _dataset(system, batch, num_objects, frames, seed=0):
    if system == "kuramoto":
        return _kuramoto_dataset(batch, num_objects, frames, seed)
    module = {"springs": springs, "charged": charged}[system]
    keys = jax.random.split(jax.random.key(seed), batch)
    loc0, vel0, weights, edges = jax.vmap(lambda k: module.sample_system(k, num_objects))(keys)
    locs, vels = module.simulate(loc0, vel0, weights, num_frames=frames)
    features = np.concatenate([np.asarray(locs), np.asarray(vels)], -1).transpose(0, 2, 1, 3)
    norm = data_lib.fit_normalisation(system, features)
    return norm.apply(features), original_format.edge_labels(np.asarray(edges)), norm


def measure(system, steps, softening, features, labels, norm, repeats, encoder="mlp"):
    """Print one line: train step time and dNLL/dlogits statistics."""
    batch = len(features)
    config = base_config(system)
    if system == "kuramoto":
        config.data.features = "phase"
    config.model.encoder = encoder
    config.model.decoder = "sim"
    config.model.sim_steps = steps
    config.model.sim_softening = softening
    config.train.batch_size = batch
    physics = sim_decoder.physics_from_config(config, norm)
    model = make_model(config.model, physics)
    state, tx = train_state.init_state(model, config, features[:2], steps_per_epoch=1)

    # Gradient of the NLL w.r.t. the encoder's logits, per sample.
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    logits = model.apply(variables, features, method="encode")

    def nll(logits):
        edges = jax.nn.softmax(logits / config.train.temperature, -1)  # noise-free z
        preds = model.apply(variables, features, edges, 10, method="decode")
        return losses.nll_gaussian(preds, features[:, :, 1:], config.train.var)

    grad = np.asarray(jax.jit(jax.grad(nll))(logits))
    norms = np.linalg.norm(grad.reshape(len(grad), -1), axis=1)
    finite = np.isfinite(norms)

    step = training.make_train_step(model, tx, config)
    index = jnp.arange(batch)
    key = jax.random.key(0)
    start = time.perf_counter()
    state, metrics = step(state, features, labels, index, key)  # compile
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = step(state, features, labels, index, key)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    q = np.quantile(norms[finite], [0.5, 0.9, 1.0]) if finite.any() else [np.nan] * 3
    print(
        f"steps/frame {steps:4d} softening {softening:g}: train step {1e3 * median:8.1f} ms"
        f" = {batch / median:8.0f} samples/s (first call {compile_s:.1f} s)"
        f" | dNLL/dlogits norm median {q[0]:.3g} p90 {q[1]:.3g} max {q[2]:.3g},"
        f" non-finite {int((~finite).sum())}"
        f"/{len(norms)} | loss {float(metrics['loss']) / batch:.4g}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", default="springs", choices=SYSTEMS)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 10, 1])
    parser.add_argument("--softening", type=float, nargs="+", default=[0.0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--encoder", default="mlp", choices=("mlp", "cnn"))
    args = parser.parse_args()

    features, labels, norm = _dataset(args.system, args.batch, 5, 49)
    features, labels = jnp.asarray(features), jnp.asarray(labels)
    print(
        f"{args.system}: batch {args.batch}, 5 objects, 49 frames, M = 10, {args.encoder} "
        f"encoder; device {jax.devices()}"
    )
    for steps in args.steps:
        for softening in args.softening:
            measure(
                args.system, steps, softening, features, labels, norm, args.repeats, args.encoder
            )


if __name__ == "__main__":
    main()
