"""The NRI model: factory, forward pass, methods for evaluation, and one optimisation step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nri_jax import losses
from nri_jax.config import base_config
from nri_jax.model import NRI, make_model

B, N, T, D = 2, 3, 8, 2


def _rngs(seed=0):
    keys = jax.random.split(jax.random.key(seed), 3)
    return {"params": keys[0], "gumbel": keys[1], "dropout": keys[2]}


def _init(model, x):
    return model.init(_rngs(), x, train=False, temperature=0.5, hard=True, prediction_steps=1)


def _input_frames(fn, x):
    """Frames of x that fn(x) depends on (nonzero gradient)."""
    grad = jax.grad(lambda a: jnp.sum(fn(a)))(x)
    return set(np.flatnonzero(np.abs(grad).max(axis=(0, 1, 3)) > 0).tolist())


def test_make_model_from_config():
    config = base_config("springs").model
    config.hidden, config.decoder_hidden = 8, 8
    model = make_model(config)
    assert isinstance(model, NRI)
    assert (model.encoder, model.decoder, model.edge_types) == ("mlp", "mlp", 2)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("encoder", "gnn", r"^config\.model\.encoder='gnn' is not one of 'mlp', 'cnn'$"),
        ("decoder", "lstm", r"^config\.model\.decoder='lstm' is not one of 'mlp', 'rnn', 'sim'$"),
        ("graph", "random", r"^config\.model\.graph='random' is not one of 'learned', 'true', "),
        ("messages", "fast", r"^config\.model\.messages='fast' is not one of 'auto', 'plain', "),
    ],
)
def test_make_model_rejects_unknown_names(field, value, message):
    config = base_config("springs").model
    config[field] = value
    with pytest.raises(ValueError, match=message):
        make_model(config)


def test_decoder_frames_error_names_the_fix():
    from nri_jax.config import check_config

    config = base_config("kuramoto")
    config.model.decoder_frames = 3
    with pytest.raises(ValueError, match=r"^config\.model\.decoder_frames=3 must be 1 or 2 "):
        check_config(config, num_devices=1)
    for decoder in ("mlp", "rnn"):  # the RNN (and sim) decoders ignore it
        config.model.decoder_frames, config.model.decoder = 2, decoder
        check_config(config, num_devices=1)


@pytest.mark.parametrize("encoder, decoder", [("mlp", "mlp"), ("cnn", "rnn")])
def test_one_adam_step_lowers_the_loss(encoder, decoder):
    x = 0.5 * jax.random.normal(jax.random.key(0), (4, N, 16, D))
    model = NRI(encoder, decoder, edge_types=2, hidden=8, decoder_hidden=8, dropout=0.1)
    variables = _init(model, x)
    tx = optax.adam(1e-3)

    def loss_fn(params, batch_stats):
        out, updates = model.apply(
            {"params": params, "batch_stats": batch_stats},
            x,
            train=True,
            temperature=0.5,
            hard=False,
            prediction_steps=4,
            rngs=_rngs(1),  # the same noise before and after the step
            mutable=["batch_stats"],
        )
        nll = losses.nll_gaussian(out["preds"], x[:, :, 1:], 5e-5)
        loss = nll + losses.kl_categorical(out["probs"], N)
        return loss, updates["batch_stats"]

    @jax.jit
    def step(params, batch_stats, opt_state):
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss, grads

    params, batch_stats = variables["params"], variables["batch_stats"]
    params, new_stats, _, before, grads = step(params, batch_stats, tx.init(params))
    after, _ = loss_fn(params, batch_stats)
    assert np.isfinite(before) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    assert after < before
    # Gradients reach the encoder through the Gumbel-softmax sample, and statistics moved.
    assert np.abs(grads["encoder_net"]["fc_out"]["kernel"]).max() > 0
    assert not np.allclose(new_stats["encoder_net"]["mlp1"]["bn"]["mean"], 0.0)


def test_forward_outputs():
    x = jax.random.normal(jax.random.key(0), (B, N, T, D))
    model = NRI("mlp", "mlp", edge_types=3, hidden=8, decoder_hidden=8)
    variables = _init(model, x)
    out = model.apply(
        variables, x, train=False, temperature=0.5, hard=True, prediction_steps=2, rngs=_rngs()
    )
    assert out["logits"].shape == out["probs"].shape == out["edges"].shape == (B, N * 2, 3)
    assert out["preds"].shape == (B, N, T - 1, D)
    np.testing.assert_allclose(out["probs"], jax.nn.softmax(out["logits"]), rtol=1e-6)
    np.testing.assert_array_equal(out["edges"].sum(-1), 1.0)  # hard samples
    # The encoder and the decoder can see different frames.
    other = model.apply(
        variables,
        x,
        train=False,
        temperature=0.5,
        hard=True,
        prediction_steps=2,
        encoder_inputs=-x,
        rngs=_rngs(),
    )
    assert not np.allclose(other["logits"], out["logits"])


def test_rnn_training_burn_in_is_t_minus_m():
    x = jax.random.normal(jax.random.key(0), (B, N, T, D))
    model = NRI("mlp", "rnn", edge_types=2, hidden=8, decoder_hidden=8)
    variables = _init(model, x)

    def preds(inputs):
        out = model.apply(
            variables,
            inputs,
            train=False,
            temperature=0.5,
            hard=False,
            prediction_steps=3,
            encoder_inputs=x,
            rngs=_rngs(),
        )
        return out["preds"]

    # Ground truth at steps 0..T - M = 5 (the original's `step <= burn_in_steps`), own
    # predictions at the remaining M - 2 of the T - 1 steps.
    assert _input_frames(preds, x) == {0, 1, 2, 3, 4, 5}


def test_methods_compose_for_evaluation():
    x = jax.random.normal(jax.random.key(0), (B, N, T, D))
    model = NRI("mlp", "mlp", edge_types=2, hidden=8, decoder_hidden=8)
    variables = _init(model, x)
    logits = model.apply(variables, x, method="encode")
    edges = model.apply(variables, logits, 0.5, True, method="sample", rngs=_rngs())
    one_step = model.apply(variables, x, edges, 1, method="decode")

    def rollout(inputs):
        return model.apply(variables, inputs, edges, 4, method="rollout")

    roll = rollout(x)
    # Truth for steps 0..4, then a free run from true frame 4.
    np.testing.assert_allclose(roll[:, :, :4], one_step[:, :, :4], rtol=1e-6)
    free = model.apply(variables, x[:, :, 4:], edges, T - 5, method="decode")
    np.testing.assert_allclose(roll[:, :, 4:], free, rtol=1e-5, atol=1e-6)
    assert _input_frames(rollout, x) == {0, 1, 2, 3, 4}


def test_two_frame_decoder_rollout_starts_from_the_true_last_change():
    x = jax.random.normal(jax.random.key(0), (B, N, T, D))
    model = NRI("mlp", "mlp", edge_types=2, hidden=8, decoder_hidden=8, decoder_frames=2)
    variables = _init(model, x)
    edges = jax.nn.softmax(model.apply(variables, x, method="encode"))

    def rollout(inputs):
        return model.apply(variables, inputs, edges, 4, method="rollout")

    # Truth for steps 0..4 (one-step predictions from (x^t, x^{t-1})), then a free run from
    # true frame 4 that starts with the change x^4 - x^3.
    assert _input_frames(rollout, x) == {0, 1, 2, 3, 4}
    assert _input_frames(lambda a: rollout(a)[:, :, 4:], x) == {3, 4}
    decoder = model.bind(variables).decoder_net
    expected = decoder(x[:, :, 4:], edges, T - 5, previous=x[:, :, 3])
    np.testing.assert_allclose(rollout(x)[:, :, 4:], expected, rtol=1e-5, atol=1e-6)


def test_dynamic_graph_rollout():
    window = 6
    x = jax.random.normal(jax.random.key(0), (B, N, window + 4, D))
    model = NRI("mlp", "rnn", edge_types=2, hidden=8, decoder_hidden=8)
    variables = _init(model, x[:, :, :window])  # the encoder sees `window` frames
    edges = jax.nn.one_hot(jnp.arange(N * 2) % 2, 2)[None].repeat(B, 0)

    def rollout(inputs, dynamic):
        return model.apply(
            variables,
            inputs,
            edges,
            window,
            method="rollout",
            dynamic_graph=dynamic,
            encoder_window=window,
            temperature=0.5,
            rngs=_rngs(),
        )

    static, dynamic = rollout(x, False), rollout(x, True)
    # Steps before `window` use the given edges; later ones re-encode frames [t - window, t).
    np.testing.assert_allclose(dynamic[:, :, :window], static[:, :, :window], rtol=1e-6)
    assert _input_frames(lambda a: rollout(a, False), x) == set(range(window + 1))
    # Through the straight-through samples, frames after the burn-in now matter too.
    assert _input_frames(lambda a: rollout(a, True), x) == set(range(window + 2))
