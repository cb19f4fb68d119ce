"""Is NRI (sim.)'s graph identifiable through its decoder, apart from any encoder?

Two checks on validation trajectories, both through `nri_jax.sim_decoder.SimDecoder` and the
paper's Gaussian NLL (var 5e-5) over the first 49 frames with M-step rollouts (section 3.4):

1. flips: with the true graph, flip one edge at a time; the fraction of edges whose flip raises
   the NLL is the accuracy a perfect optimiser of the likelihood could reach;
2. direct: free per-trajectory edge weights w = sigmoid(logit), every logit starting at 0
   (w = 0.5), optimised by Adam (lr 0.1) on the NLL; the fraction of edges with w > 0.5 is
   what gradient descent through the decoder recovers without an encoder.

    python -m nri_jax.generate --config configs/kuramoto_cpu.py
    python benchmarks/sim_identifiability.py --system kuramoto --data_dir data/kuramoto_cpu

Prints one JSON line per check.
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nri_jax import sim_decoder
from nri_jax.config import base_config
from nri_jax.data import load_dataset

VARIANCE = 5e-5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="kuramoto", choices=("springs", "charged", "kuramoto"))
    parser.add_argument("--data_dir", default="data/kuramoto_cpu")
    parser.add_argument("--flip_samples", type=int, default=500)
    parser.add_argument("--direct_samples", type=int, default=200)
    parser.add_argument("--direct_steps", type=int, default=300)
    parser.add_argument("--prediction_steps", default="1,10", help="M values for 'direct'")
    args = parser.parse_args()

    config = base_config(args.system)
    config.data.dir = args.data_dir
    if args.system == "kuramoto":
        config.data.features = "phase"
    splits, norm = load_dataset(config.data, splits=("train", "valid"))
    decoder = sim_decoder.SimDecoder(sim_decoder.physics_from_config(config, norm))
    frames = jnp.asarray(splits["valid"].features[:, :, : config.train.timesteps])
    labels = splits["valid"].labels
    num_objects = frames.shape[1]

    def nll(x, z1, m):  # per trajectory [B], eq. 18 divided by N
        preds = decoder(x, jnp.stack([1 - z1, z1], axis=-1), m)
        return jnp.sum((preds - x[:, :, 1:]) ** 2, axis=(1, 2, 3)) / (2 * VARIANCE) / num_objects

    # 1. Flips.
    start = time.perf_counter()
    x, y = frames[: args.flip_samples], labels[: args.flip_samples]
    m = config.train.prediction_steps
    flip_nll = jax.jit(nll, static_argnums=2)
    truth = jnp.asarray(y, frames.dtype)
    base = flip_nll(x, truth, m)
    rises = np.stack(
        [
            np.asarray(flip_nll(x, truth.at[:, e].set(1 - truth[:, e]), m) - base)
            for e in range(y.shape[1])
        ],
        axis=1,
    )
    print(
        json.dumps(
            {
                "check": "flips",
                "system": args.system,
                "samples": len(y),
                "prediction_steps": m,
                "fraction_identified": float(np.mean(rises > 0)),
                "rise_quantiles_1_5_50": [float(q) for q in np.quantile(rises, [0.01, 0.05, 0.5])],
                "seconds": round(time.perf_counter() - start, 1),
            }
        ),
        flush=True,
    )

    # 2. Direct optimisation of free edge weights.
    x, y = frames[: args.direct_samples], labels[: args.direct_samples]
    optimiser = optax.adam(0.1)
    for m in (int(v) for v in args.prediction_steps.split(",")):
        start = time.perf_counter()

        def loss(logits, m=m):
            return jnp.mean(nll(x, jax.nn.sigmoid(logits), m))

        @jax.jit
        def step(logits, state, loss=loss):
            grads = jax.grad(loss)(logits)
            updates, state = optimiser.update(grads, state)
            return optax.apply_updates(logits, updates), state

        logits = jnp.zeros(y.shape, frames.dtype)
        state = optimiser.init(logits)
        for _ in range(args.direct_steps):
            logits, state = step(logits, state)
        print(
            json.dumps(
                {
                    "check": "direct",
                    "system": args.system,
                    "samples": len(y),
                    "prediction_steps": m,
                    "adam_steps": args.direct_steps,
                    "fraction_recovered": float(np.mean((np.asarray(logits) > 0) == y)),
                    "seconds": round(time.perf_counter() - start, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
