"""Independent numpy computations of what `nri_jax.evaluation` reports, for the tests.

The MLP decoder is re-implemented here with explicit loops over objects and edges, and the
best permutation of edge types is found by brute force, so a mistake in the library's
batching, padding, masking, reductions or rollout indexing shows up as a mismatch.
"""

import itertools

import jax
import numpy as np

from nri_jax import checkpoints
from nri_jax.data import load_dataset


def test_split(workdir):
    """(config, model, variables, test features [S, N, T, D], labels [S, E]) of a run."""
    config, norm, model, state, _ = checkpoints.load_run(workdir)
    splits, _ = load_dataset(config.data, config.model.edge_types, ("test",), norm)
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    return config, model, jax.device_get(variables), splits["test"].features, splits["test"].labels


def best_permutation_accuracy(predicted: np.ndarray, labels: np.ndarray, edge_types: int):
    """(accuracy under the best relabelling, raw accuracy), by trying every permutation."""
    raw = float(np.mean(predicted == labels))
    best = max(
        float(np.mean(np.asarray(perm)[predicted] == labels))
        for perm in itertools.permutations(range(edge_types))
    )
    return best, raw


def _relu(v):
    return np.maximum(v, 0.0)


def mlp_decoder_step(params: dict, x: np.ndarray, z: np.ndarray, skip_first: bool = False):
    """One step of the MLP decoder (eqs. 10-12) in float64: x [B, N, D], z [B, E, K] -> mu."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    msg, out1, out2, out3 = (p[k] for k in ("messages", "out_fc1", "out_fc2", "out_fc3"))
    batch, n, _ = x.shape
    hidden = msg["bias2"].shape[-1]
    aggregated = np.zeros((batch, n, hidden))
    edge = 0
    for i in range(n):  # receiver
        for j in range(n):  # sender
            if i == j:
                continue
            pair = np.concatenate([x[:, j], x[:, i]], axis=-1)  # [x_sender, x_receiver]
            for k in range(int(skip_first), z.shape[-1]):
                h = _relu(pair @ msg["kernel1"][k] + msg["bias1"][k])
                h = _relu(h @ msg["kernel2"][k] + msg["bias2"][k])
                aggregated[:, i] += h * z[:, edge, k : k + 1]
            edge += 1
    h = np.concatenate([x, aggregated], axis=-1)
    h = _relu(h @ out1["kernel"] + out1["bias"])
    h = _relu(h @ out2["kernel"] + out2["bias"])
    return x + h @ out3["kernel"] + out3["bias"]


def true_graph_metrics(workdir) -> dict:
    """NLL, one-step MSE and Table 2 MSE per step of an MLP-decoder run with graph='true'.

    With the true graph the decoder's edges are the labels one-hot: no sampling, so the
    library's figures are reproducible exactly (up to float32 rounding).
    """
    config, _, variables, features, labels = test_split(workdir)
    assert config.model.graph == "true" and config.model.decoder == "mlp"
    params = variables["params"]["decoder_net"]["step"]
    x = np.asarray(features, np.float64)
    z = np.eye(config.model.edge_types)[labels]
    timesteps, horizon = config.train.timesteps, config.eval.prediction_steps
    n = x.shape[1]
    # One-step, teacher-forced, on the last `timesteps` frames.
    window = x[:, :, -timesteps:]
    preds = np.stack(
        [mlp_decoder_step(params, window[:, :, t], z) for t in range(timesteps - 1)], axis=2
    )
    errors = (preds - window[:, :, 1:]) ** 2
    nll = errors.sum(axis=(1, 2, 3)) / (2 * config.train.var) / n
    # Table 2: a free run from true frame `timesteps`.
    state, mse_per_step = x[:, :, timesteps], []
    for step in range(1, horizon + 1):
        state = mlp_decoder_step(params, state, z)
        mse_per_step.append(float(np.mean((state - x[:, :, timesteps + step]) ** 2)))
    return {
        "nll": float(nll.mean()),
        "mse_one_step": float(errors.mean()),
        "mse_per_step": mse_per_step,
    }
