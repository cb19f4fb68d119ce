"""Encoders: the original's computation, permutation equivariance, initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nri_jax.encoders import CNNEncoder, MLPEncoder
from nri_jax.graph import fully_connected, node_to_edge
from nri_jax.layers import PairDense, encoder_dense


def _edge_permutation(perm):
    """Edge indices such that logits(x[:, perm])[:, e] == logits(x)[:, edge_perm[e]]."""
    n = len(perm)
    receivers, senders = fully_connected(n)
    r, s = perm[receivers], perm[senders]
    return r * (n - 1) + np.where(s < r, s, s - 1)  # row-major off-diagonal index of (r, s)


def _numpy_mlp_encoder(params, x, factor):
    """The original MLPEncoder.forward with dense rel_rec / rel_send, in float64 numpy."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    n = x.shape[1]
    off_diag = np.ones((n, n)) - np.eye(n)
    rel_rec = np.eye(n)[np.where(off_diag)[0]]
    rel_send = np.eye(n)[np.where(off_diag)[1]]

    def elu(a):
        return np.where(a > 0, a, np.expm1(np.minimum(a, 0)))

    def mlp(name, a):
        q = p[name]
        a = elu(a @ q["fc1"]["kernel"] + q["fc1"]["bias"])
        a = elu(a @ q["fc2"]["kernel"] + q["fc2"]["bias"])
        flat = a.reshape(-1, a.shape[-1])  # BatchNorm1d over batch * items, batch statistics
        mean, var = flat.mean(0), flat.var(0)
        return (a - mean) / np.sqrt(var + 1e-5) * q["bn"]["scale"] + q["bn"]["bias"]

    def node2edge(a):
        return np.concatenate([rel_send @ a, rel_rec @ a], axis=-1)

    h = mlp("mlp1", x.reshape(x.shape[0], n, -1).astype(np.float64))
    h = mlp("mlp2", node2edge(h))
    skip = h
    if factor:
        incoming = rel_rec.T @ h
        h = node2edge(mlp("mlp3", incoming / incoming.shape[1]))
    else:
        h = mlp("mlp3", h)
    h = mlp("mlp4", np.concatenate([h, skip], axis=-1))
    return h @ p["fc_out"]["kernel"] + p["fc_out"]["bias"]


@pytest.mark.parametrize("factor", [True, False])
def test_mlp_encoder_matches_original(factor):
    x = jax.random.normal(jax.random.key(0), (3, 4, 6, 2))
    encoder = MLPEncoder(hidden=16, edge_types=3, factor=factor)
    variables = encoder.init(jax.random.key(1), x)
    logits, _ = encoder.apply(variables, x, train=True, mutable=["batch_stats"])
    expected = _numpy_mlp_encoder(variables["params"], np.asarray(x), factor)
    np.testing.assert_allclose(logits, expected, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("with_skip", [False, True])
def test_pair_dense_is_dense_on_edges(with_skip):
    """The per-node first layer has nn.Dense's parameters, initial values and outputs."""
    rng = np.random.default_rng(0)
    nodes = jnp.asarray(rng.normal(size=(2, 4, 5)), jnp.float32)
    skip = jnp.asarray(rng.normal(size=(2, 12, 3)), jnp.float32) if with_skip else None
    receivers, senders = fully_connected(4)
    edges = node_to_edge(nodes, senders, receivers)  # [x_sender, x_receiver]
    if with_skip:
        edges = jnp.concatenate([edges, skip], axis=-1)
    pair_vars = PairDense(6).init(jax.random.key(3), nodes, skip)
    dense_vars = encoder_dense(6).init(jax.random.key(3), edges)
    jax.tree.map(np.testing.assert_array_equal, pair_vars, dense_vars)
    np.testing.assert_allclose(
        PairDense(6).apply(pair_vars, nodes, skip),
        encoder_dense(6).apply(dense_vars, edges),
        rtol=1e-5,
        atol=1e-5,
    )


def test_batch_norm_momentum_is_pytorch_like():
    x = jax.random.normal(jax.random.key(0), (3, 4, 6, 2)) + 3.0
    encoder = MLPEncoder(hidden=8, edge_types=2)
    variables = encoder.init(jax.random.key(1), x)
    _, updates = encoder.apply(variables, x, train=True, mutable=["batch_stats"])
    # From mean 0 / var 1, one update moves 10% of the way (PyTorch's momentum 0.1).
    # mlp1's BatchNorm sees elu(elu(x W1 + b1) W2 + b2) over the 12 (batch, object) rows.
    p = variables["params"]["mlp1"]
    h = jax.nn.elu(x.reshape(3, 4, -1) @ p["fc1"]["kernel"] + p["fc1"]["bias"])
    h = jax.nn.elu(h @ p["fc2"]["kernel"] + p["fc2"]["bias"]).reshape(12, 8)
    stats = updates["batch_stats"]["mlp1"]["bn"]
    np.testing.assert_allclose(stats["mean"], 0.1 * h.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * h.var(0), rtol=1e-5)


@pytest.mark.parametrize(
    "encoder",
    [
        MLPEncoder(hidden=16, edge_types=3, factor=True),
        MLPEncoder(hidden=16, edge_types=3, factor=False),
        CNNEncoder(hidden=16, edge_types=3, factor=True),
    ],
    ids=["mlp", "mlp-nonfactor", "cnn"],
)
def test_encoder_permutation_equivariance(encoder):
    x = jax.random.normal(jax.random.key(0), (2, 4, 16, 3))
    variables = encoder.init(jax.random.key(1), x)
    # Non-trivial running statistics, so eval-mode BatchNorm is not an identity.
    _, updates = encoder.apply(variables, 2.0 * x + 0.5, train=True, mutable=["batch_stats"])
    variables = {**variables, **updates}
    apply = jax.jit(lambda v, a: encoder.apply(v, a, train=False))
    perm = np.array([2, 0, 3, 1])
    logits = apply(variables, x)
    permuted = apply(variables, x[:, perm])
    np.testing.assert_allclose(permuted, logits[:, _edge_permutation(perm)], rtol=1e-5, atol=1e-5)
    # Directed: the logits of (i, j) and (j, i) differ, so the sender/receiver order matters.
    assert not np.allclose(logits[:, 0], logits[:, 3])


def test_encoder_initialisation():
    x = jnp.zeros((1, 3, 16, 2))
    params = CNNEncoder(hidden=8, edge_types=2).init(jax.random.key(0), x)["params"]
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        if name.endswith("['bias']") and "bn" not in name:
            np.testing.assert_array_equal(leaf, np.float32(0.1))  # Linear and conv biases
    # Xavier normal for Linear (std sqrt(2 / (fan_in + fan_out))), not a truncated normal.
    big = MLPEncoder(hidden=256, edge_types=2).init(jax.random.key(0), jnp.zeros((1, 3, 64, 4)))
    kernel = np.asarray(big["params"]["mlp1"]["fc1"]["kernel"])
    np.testing.assert_allclose(kernel.std(), np.sqrt(2 / (256 + 256)), rtol=0.02)
    assert np.abs(kernel).max() > 3 * kernel.std()  # tails a 2-sigma truncation would cut


def test_cnn_encoder_refuses_fewer_frames_than_its_convolutions_need():
    from nri_jax.config import CNN_MIN_FRAMES, base_config, check_config

    config = base_config("kuramoto")
    config.model.encoder = "cnn"
    config.train.timesteps = CNN_MIN_FRAMES
    check_config(config, num_devices=1)
    config.train.timesteps = CNN_MIN_FRAMES - 1
    with pytest.raises(ValueError, match="encoder='cnn' needs config.train.timesteps >= 14"):
        check_config(config, num_devices=1)
    # The bound is tight: 14 frames give finite logits, 13 leave the second convolution nothing.
    key = jax.random.key(0)
    for frames, finite in ((CNN_MIN_FRAMES, True), (CNN_MIN_FRAMES - 1, False)):
        x = jax.random.normal(key, (2, 3, frames, 4))
        encoder = CNNEncoder(hidden=8, edge_types=2)
        logits = encoder.apply(encoder.init(key, x), x)
        assert bool(np.all(np.isfinite(logits))) == finite
