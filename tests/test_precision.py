"""Mixed precision (`config.model.dtype`, nri_jax/precision.py): bfloat16 matmul operands.

Tolerances. bfloat16 keeps 8 significant bits, so rounding an operand errs by at most
u = 2^-8 relative, and a product of two rounded operands by at most ~2u = 2^-7; a matmul with
float32 accumulation therefore errs by at most 2^-7 relative to sum |a_i b_i|, which for
inputs of mixed signs is the scale of its output. Through L matmuls whose layers do not
amplify relative errors, the first-order bound is L 2^-7 of the output's scale; the tests hold
bfloat16 to that, where a wrong cast or a float32 value truncated elsewhere would err by O(1).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from nri_jax import precision, train_state, training
from nri_jax.config import base_config
from nri_jax.model import NRI, make_model

B, N, T, D = 4, 4, 16, 3
ROUNDING = 2.0**-7  # one matmul's relative error bound with both operands in bfloat16
# Matmuls on the longest path: the factor MLP encoder has 9 (two per MLP, fc_out), the CNN
# encoder 4 convolutions and 7 Dense layers; a teacher-forced decoder step 5 (two message
# layers, three output layers), the RNN decoder's 2 more (the GRU gates). Its hidden state
# carries errors from step to step, but the GRU's update (1 - i) n + i h is a convex
# combination, which does not grow them (to first order).
ENCODER_MATMULS = {"mlp": 9, "cnn": 11}
DECODER_MATMULS = {"mlp": 5, "rnn": 7}


def _rngs(seed=0):
    keys = jax.random.split(jax.random.key(seed), 3)
    return {"params": keys[0], "gumbel": keys[1], "dropout": keys[2]}


def _bf16(a):
    return np.asarray(jnp.asarray(a).astype(jnp.bfloat16).astype(jnp.float32))


def test_matmul_rounds_operands_and_cotangent_and_returns_float32_gradients():
    a = jax.random.normal(jax.random.key(0), (5, 7, 16))
    b = jax.random.normal(jax.random.key(1), (16, 12))
    g = jax.random.normal(jax.random.key(2), (5, 7, 12))
    out, vjp = jax.vjp(lambda a, b: precision.matmul(a, b, jnp.bfloat16), a, b)
    da, db = vjp(g)
    assert out.dtype == da.dtype == db.dtype == jnp.float32
    # Products of bfloat16 values are exact in float32: only the summation order differs.
    close = lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)  # noqa: E731
    close(out, _bf16(a) @ _bf16(b))
    close(da, _bf16(g) @ _bf16(b).T)
    close(db, np.einsum("ijk,ijl->kl", _bf16(a), _bf16(g)))
    # float32 is plain `@`, so forward mode works there.
    assert precision.matmul(a, b) is not None
    jax.jvp(lambda a: precision.matmul(a, b), (a,), (a,))


def _outputs(model, variables, x):
    return model.apply(
        variables,
        x,
        train=False,
        temperature=0.5,
        hard=False,
        prediction_steps=1,
        rngs=_rngs(1),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "encoder, decoder, messages",
    [("mlp", "mlp", None), ("mlp", "mlp", "plain"), ("cnn", "rnn", None)],
)
def test_bfloat16_model_is_close_to_float32(encoder, decoder, messages, seed):
    x = jax.random.uniform(jax.random.key(seed), (B, N, T, D), minval=-1.0, maxval=1.0)
    models = {
        dtype: NRI(encoder, decoder, hidden=32, decoder_hidden=32, messages=messages, dtype=dtype)
        for dtype in precision.DTYPES
    }
    variables = models["float32"].init(
        _rngs(seed), x, train=False, temperature=0.5, hard=False, prediction_steps=1
    )
    # Parameters do not depend on the dtype: the same tree, all float32.
    shapes = jax.eval_shape(
        lambda: models["bfloat16"].init(
            _rngs(seed), x, train=False, temperature=0.5, hard=False, prediction_steps=1
        )
    )
    assert jax.tree.structure(shapes) == jax.tree.structure(variables)
    assert {leaf.dtype for leaf in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}

    ref = _outputs(models["float32"], variables, x)
    low = _outputs(models["bfloat16"], variables, x)
    assert {a.dtype for a in low.values()} == {jnp.dtype(jnp.float32)}
    scale = np.abs(ref["logits"]).max()
    error = np.abs(low["logits"] - ref["logits"]).max()
    assert error <= ENCODER_MATMULS[encoder] * ROUNDING * scale
    assert error > 0  # bfloat16 did run
    # The decoder on the same edges: its error is relative to the predicted change x + delta - x.
    decode = lambda m: m.apply(variables, x, ref["edges"], 1, method="decode")  # noqa: E731
    preds_ref, preds_low = decode(models["float32"]), decode(models["bfloat16"])
    assert preds_low.dtype == jnp.float32
    delta_scale = np.abs(preds_ref - x[:, :, :-1]).max()
    error = np.abs(preds_low - preds_ref).max()
    assert 0 < error <= DECODER_MATMULS[decoder] * ROUNDING * delta_scale


def test_bfloat16_train_step_keeps_state_gradients_loss_and_metrics_float32():
    config = test_config.get_config()
    config.model.dtype = "bfloat16"
    n, frames = config.data.num_objects, config.train.timesteps
    rng = np.random.default_rng(0)
    features = jnp.asarray(rng.uniform(-1, 1, (16, n, frames, 4)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 2, (16, n * (n - 1))), jnp.int32)
    model = make_model(config.model)
    assert model.dtype == "bfloat16"
    state, tx = train_state.init_state(model, config, np.asarray(features[:2]), 2)
    step = training.make_train_step(model, tx, config)
    batch = jnp.arange(config.train.batch_size)
    new_state, metrics = step(state, features, labels, batch, jax.random.key(0))  # donates state
    float32 = {jnp.dtype(jnp.float32)}
    for tree in (new_state.params, new_state.batch_stats, metrics):
        assert {leaf.dtype for leaf in jax.tree.leaves(tree)} == float32
    adam = [leaf for leaf in jax.tree.leaves(new_state.opt_state) if leaf.ndim > 0]
    assert adam and {leaf.dtype for leaf in adam} == float32
    assert all(np.isfinite(float(v)) for v in metrics.values())

    def loss(params):
        out = model.apply(
            {"params": params, "batch_stats": new_state.batch_stats},
            features[:8],
            train=False,
            temperature=0.5,
            hard=False,
            prediction_steps=3,
            rngs=_rngs(),
        )
        return jnp.mean((out["preds"] - features[:8, :, 1:]) ** 2)

    value, grads = jax.value_and_grad(loss)(new_state.params)
    assert value.dtype == jnp.float32
    assert {leaf.dtype for leaf in jax.tree.leaves(grads)} == float32
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_unknown_dtype_is_a_one_line_error():
    config = base_config("springs").model
    config.dtype = "float16"
    with pytest.raises(ValueError, match=r"^config\.model\.dtype='float16' is not one of "):
        make_model(config)
