"""Decoders: equivariance, what the messages carry, and which true frames feed each prediction."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nri_jax.decoders import MLPDecoder, RNNDecoder
from nri_jax.graph import fully_connected

B, N, T, D, K, H = 2, 4, 10, 3, 3, 16
E = N * (N - 1)


def _edge_permutation(perm):
    """Edge indices such that edges of x[:, perm] are edges[:, edge_perm] of x."""
    n = len(perm)
    receivers, senders = fully_connected(n)
    r, s = perm[receivers], perm[senders]
    return r * (n - 1) + np.where(s < r, s, s - 1)


def _data(seed=0):
    x = jax.random.normal(jax.random.key(seed), (B, N, T, D))
    z = jax.nn.softmax(jax.random.normal(jax.random.key(seed + 1), (B, E, K)), axis=-1)
    return x, z


@functools.cache
def _decoder(kind, skip_first=False):
    """(module, params, jitted apply(params, x, z, steps)) for a decoder kind."""
    x, z = _data()
    if kind == "mlp":
        module = MLPDecoder(K, H, skip_first=skip_first)
    else:
        module = RNNDecoder(K, H, skip_first=skip_first)
    params = module.init(jax.random.key(2), x, z, 1)["params"]
    apply = jax.jit(
        lambda p, x, z, steps: module.apply({"params": p}, x, z, steps), static_argnums=3
    )
    return module, params, apply


@pytest.mark.parametrize("kind", ["mlp", "rnn"])
def test_decoder_permutation_equivariance(kind):
    _, params, apply = _decoder(kind)
    x, z = _data()
    perm = np.array([3, 1, 0, 2])
    steps = 3 if kind == "mlp" else 6  # multi-step rollouts / burn-in then free running
    preds = apply(params, x, z, steps)
    permuted = apply(params, x[:, perm], z[:, _edge_permutation(perm)], steps)
    np.testing.assert_allclose(permuted, preds[:, perm], rtol=1e-5, atol=1e-5)


def test_mlp_decoder_without_edges_predicts_each_object_alone():
    _, params, apply = _decoder("mlp")
    x, z = _data()
    other = x.at[:, 1:].set(jax.random.normal(jax.random.key(7), (B, N - 1, T, D)))
    zeros = jnp.zeros_like(z)
    np.testing.assert_allclose(
        apply(params, other, zeros, 3)[:, 0], apply(params, x, zeros, 3)[:, 0]
    )
    # With edges, object 0 does hear the others.
    assert not np.allclose(apply(params, other, z, 3)[:, 0], apply(params, x, z, 3)[:, 0])


@pytest.mark.parametrize("kind", ["mlp", "rnn"])
def test_skip_first_type_zero_carries_no_messages(kind):
    x, z = _data()
    type_zero = jax.nn.one_hot(jnp.zeros((B, E), jnp.int32), K)
    _, params, apply = _decoder(kind, skip_first=True)
    np.testing.assert_allclose(
        apply(params, x, type_zero, 3), apply(params, x, jnp.zeros_like(z), 3), rtol=1e-6
    )
    _, params, apply = _decoder(kind, skip_first=False)
    assert not np.allclose(apply(params, x, type_zero, 3), apply(params, x, jnp.zeros_like(z), 3))


def _changed_steps(apply, params, x, z, steps, frame):
    """Prediction steps t (preds[:, :, t] predicts frame t + 1) that move when `frame` moves."""
    moved = x.at[:, :, frame].add(0.5)
    diff = np.abs(apply(params, moved, z, steps) - apply(params, x, z, steps)).max(axis=(0, 1, 3))
    return set(np.flatnonzero(diff > 1e-6).tolist())


def test_mlp_decoder_refeeds_truth_every_m_steps():
    _, params, apply = _decoder("mlp")
    x, z = _data()
    # M = 3: rollouts start from true frames 0, 3, 6; frame 3 feeds steps 3, 4, 5 only.
    assert _changed_steps(apply, params, x, z, 3, frame=3) == {3, 4, 5}
    assert _changed_steps(apply, params, x, z, 3, frame=0) == {0, 1, 2}
    assert _changed_steps(apply, params, x, z, 3, frame=4) == set()  # only ever a target
    assert _changed_steps(apply, params, x, z, 1, frame=4) == {4}  # teacher forcing

    # Each rollout iterates the one-step decoder on its own predictions.
    def one_step(frame):  # [B, N, D] -> mu of the next frame
        return apply(params, jnp.stack([frame, frame], axis=2), z, 1)[:, :, 0]

    preds = apply(params, x, z, 3)
    mu1 = one_step(x[:, :, 3])
    mu2 = one_step(mu1)
    np.testing.assert_allclose(preds[:, :, 3], mu1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(preds[:, :, 4], mu2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(preds[:, :, 5], one_step(mu2), rtol=1e-5, atol=1e-6)


def test_two_frame_mlp_decoder_reads_the_last_change():
    x, z = _data()
    module = MLPDecoder(K, H, frames=2)
    params = module.init(jax.random.key(2), x, z, 1)["params"]
    apply = jax.jit(lambda p, x, z, m: module.apply({"params": p}, x, z, m), static_argnums=3)
    # M = 3: the rollout from true frame 3 also reads frame 2 (its last change), the first
    # rollout frame 0 only (change 0); frame 5 is the change into restart 6.
    assert _changed_steps(apply, params, x, z, 3, frame=3) == {3, 4, 5}
    assert _changed_steps(apply, params, x, z, 3, frame=2) == {3, 4, 5}
    assert _changed_steps(apply, params, x, z, 3, frame=5) == {6, 7, 8}
    assert _changed_steps(apply, params, x, z, 3, frame=4) == set()
    assert _changed_steps(apply, params, x, z, 1, frame=4) == {4, 5}  # teacher forcing

    # One step from (x^t, x^{t-1}) is the frames=1 network on [x^t, x^t - x^{t-1}], and the
    # rollout carries (mu^{t+1}, x^t) on.
    def one_step(frame, before):  # [B, N, D] x 2 -> mu of the frame after `frame`
        # Teacher-forced on [before, frame, any]: step 1 reads frame and frame - before.
        return apply(params, jnp.stack([before, frame, frame], axis=2), z, 1)[:, :, 1]

    preds = apply(params, x, z, 3)
    mu1 = one_step(x[:, :, 3], x[:, :, 2])
    mu2 = one_step(mu1, x[:, :, 3])
    np.testing.assert_allclose(preds[:, :, 3], mu1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(preds[:, :, 4], mu2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(preds[:, :, 5], one_step(mu2, mu1), rtol=1e-5, atol=1e-6)
    # The change is an input of its own: the same frame after another one predicts otherwise.
    assert not np.allclose(mu1, one_step(x[:, :, 3], x[:, :, 1]))
    # `previous` gives the first rollout its change in place of zero.
    given = module.apply({"params": params}, x[:, :, 3:], z, 3, previous=x[:, :, 2])
    np.testing.assert_allclose(given[:, :, :3], preds[:, :, 3:6], rtol=1e-5, atol=1e-6)


def _input_frames(module, params, x, z, **kwargs):
    """Frames whose true values the predictions depend on (nonzero input gradient)."""
    grad = jax.grad(lambda a: module.apply({"params": params}, a, z, **kwargs).sum())(x)
    return set(np.flatnonzero(np.abs(grad).max(axis=(0, 1, 3)) > 0).tolist())


def test_rnn_decoder_uses_truth_only_during_burn_in():
    module, params, apply = _decoder("rnn")
    x, z = _data()
    # Steps t <= 5 read true frame t (the original's `step <= burn_in_steps`); later steps
    # read their own previous prediction, so frames 6..9 never enter (exact zeros in the
    # gradient, not just small values).
    assert _input_frames(module, params, x, z, burn_in_steps=5) == {0, 1, 2, 3, 4, 5}
    # Moving frame 5 moves the prediction of step 5 and, through it, every later one.
    assert _changed_steps(apply, params, x, z, 5, frame=5) == {5, 6, 7, 8}
    assert _changed_steps(apply, params, x, z, 5, frame=6) == set()
    # Teacher forcing: every frame but the last is read.
    assert _input_frames(module, params, x, z, burn_in_steps=T) == set(range(T - 1))
    # The original's mode without burn-in: truth at every M-th step, hidden state carried on.
    kwargs = {"burn_in_steps": 0, "prediction_steps": 4}
    assert _input_frames(module, params, x, z, **kwargs) == {0, 4, 8}


def test_rnn_decoder_per_step_edges():
    _, params, apply = _decoder("rnn")
    x, z = _data()
    per_step = jnp.broadcast_to(z[:, None], (B, T - 1, E, K))
    static = apply(params, x, z, 6)
    # Two compiled programs (z broadcast vs scanned) may round differently near zero.
    np.testing.assert_allclose(apply(params, x, per_step, 6), static, rtol=1e-6, atol=1e-7)
    # A graph that changes at step 4 changes the predictions from step 4 on.
    changed = per_step.at[:, 4:].set(jnp.roll(z, 1, axis=-1)[:, None])
    diff = np.abs(apply(params, x, changed, 6) - static).max(axis=(0, 1, 3))
    assert set(np.flatnonzero(diff > 1e-6).tolist()) == set(range(4, T - 1))


@pytest.mark.parametrize("implementation", ["plain", "fused"])
@pytest.mark.parametrize("kind", ["mlp", "rnn"])
def test_decoder_gradients_match_finite_differences(kind, implementation):
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), (1, 3, 5, 2), jnp.float64)
        z = jax.nn.softmax(jax.random.normal(jax.random.key(1), (1, 6, 2), jnp.float64))
        decoder = MLPDecoder if kind == "mlp" else RNNDecoder
        module = decoder(2, 4, implementation=implementation)
        params = module.init(jax.random.key(2), x, z, 2)["params"]
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)

        def loss(params, x, z):
            preds = module.apply({"params": params}, x, z, 2)
            return jnp.sum(jnp.sin(preds))

        # The fused path is a custom VJP: reverse mode only. The plain one has both.
        modes = ["rev"] if implementation == "fused" else ["fwd", "rev"]
        check_grads(loss, (params, x, z), order=1, modes=modes, eps=1e-6)


def test_dropout_only_in_training():
    x, z = _data()
    module = MLPDecoder(K, H, dropout=0.5)
    params = module.init(jax.random.key(2), x, z, 1)["params"]
    evaluation = module.apply({"params": params}, x, z, 3)  # no dropout RNG needed
    np.testing.assert_allclose(evaluation, module.apply({"params": params}, x, z, 3))
    rngs = {"dropout": jax.random.key(3)}
    training = module.apply({"params": params}, x, z, 3, train=True, rngs=rngs)
    assert not np.allclose(training, evaluation)
