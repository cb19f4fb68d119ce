"""The paper's baselines: Static, LSTM (single / joint), Corr. (path / LSTM)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nri_jax import baselines
from nri_jax.baselines import RecurrentBaseline

B, N, T, D, H = 2, 3, 8, 4, 8


def _init(joint):
    model = RecurrentBaseline(hidden=H, joint=joint)
    x = jax.random.normal(jax.random.key(0), (B, N, T, D))
    variables = model.init(jax.random.key(1), x, train=False, prediction_steps=1)
    return model, variables, x


@pytest.mark.parametrize("joint", [False, True])
def test_single_lstm_keeps_objects_apart_and_joint_mixes_them(joint):
    model, variables, x = _init(joint)
    other = x.at[:, 2].set(jax.random.normal(jax.random.key(5), (B, T, D)))
    preds = model.apply(variables, x, train=False, prediction_steps=3)["preds"]
    moved = model.apply(variables, other, train=False, prediction_steps=3)["preds"]
    assert not np.allclose(preds[:, 2], moved[:, 2])  # object 2's own prediction moves
    unchanged = np.allclose(preds[:, :2], moved[:, :2], rtol=1e-6, atol=1e-7)
    assert unchanged != joint  # single: objects 0, 1 untouched; joint: they hear object 2


def _input_frames(f, x):
    grad = jax.grad(lambda a: f(a).sum())(x)
    return set(np.flatnonzero(np.abs(grad).max(axis=(0, 1, 3)) > 0).tolist())


def test_lstm_burn_in_as_the_original():
    model, variables, x = _init(False)
    # Training with M = 3: the truth at steps 0..T - M = 5 (the original's step <= burn-in).
    train = _input_frames(
        lambda a: model.apply(variables, a, train=False, prediction_steps=3)["preds"], x
    )
    assert train == {0, 1, 2, 3, 4, 5}
    # Validation: teacher forcing, every frame but the last.
    one_step = _input_frames(
        lambda a: model.apply(variables, a, train=False, prediction_steps=1)["preds"], x
    )
    assert one_step == set(range(T - 1))
    rollout = _input_frames(lambda a: model.apply(variables, a, 4, method="rollout"), x)
    assert rollout == {0, 1, 2, 3, 4}


def test_static_is_exact_on_constant_trajectories_and_matches_numpy_otherwise():
    from nri_jax.config import base_config
    from nri_jax.evaluation import _predictor_batch_fn

    config = base_config("springs")
    config.train.timesteps, config.eval.prediction_steps = 5, 3
    constant = jnp.broadcast_to(jnp.arange(4.0), (3, N, 9, 4))
    batch = _predictor_batch_fn(None, config, constant, horizon=3)
    mask = jnp.ones(3)
    sums, _ = batch({}, jnp.arange(3), mask, jax.random.key(0))
    assert float(sums["nll"]) == 0 and np.all(np.asarray(sums["mse_per_step"]) == 0)
    x = jax.random.normal(jax.random.key(0), (3, N, 9, 4))
    sums, (future, _) = _predictor_batch_fn(None, config, x, horizon=3)(
        {}, jnp.arange(3), mask, jax.random.key(0)
    )
    xn = np.asarray(x)
    expected = [np.mean((xn[:, :, 5] - xn[:, :, 5 + k]) ** 2, axis=(1, 2)).sum() for k in (1, 2, 3)]
    np.testing.assert_allclose(sums["mse_per_step"], expected, rtol=1e-5)
    one_step = np.sum((xn[:, :, -5:-1] - xn[:, :, -4:]) ** 2) / (2 * config.train.var) / N
    np.testing.assert_allclose(sums["nll"], one_step, rtol=1e-5)


def _hand_made_graphs(samples, seed, anti=False):
    """Objects joined by an edge share a signal (or its negative); others are independent."""
    rng = np.random.default_rng(seed)
    from nri_jax.graph import fully_connected

    receivers, senders = fully_connected(4)
    vectors, labels = [], []
    for _ in range(samples):
        x = rng.normal(size=(4, 40))
        x[1] = (-1 if anti else 1) * x[0] + 0.05 * rng.normal(size=40)  # 0 - 1 joined
        x[3] = (-1 if anti else 1) * x[2] + 0.05 * rng.normal(size=40)  # 2 - 3 joined
        joined = {(0, 1), (1, 0), (2, 3), (3, 2)}
        vectors.append(x)
        labels.append([int((r, s) in joined) for r, s in zip(receivers, senders, strict=True)])
    return np.stack(vectors), np.asarray(labels)


@pytest.mark.parametrize("anti", [False, True])
def test_correlation_recovers_strongly_correlated_pairs(anti):
    valid_x, valid_y = _hand_made_graphs(20, 0, anti)
    test_x, test_y = _hand_made_graphs(20, 1, anti)
    fit = baselines.fit_threshold(baselines.correlation_scores(valid_x), valid_y)
    assert fit["valid_accuracy"] == 1.0
    assert fit["transform"] in (("negated", "absolute") if anti else ("signed", "absolute"))
    predicted = baselines.predict_edges(baselines.correlation_scores(test_x), fit)
    np.testing.assert_array_equal(predicted, test_y)


def test_correlation_lstm_sees_identical_objects_as_joined():
    """Identical trajectories give a shared-weight LSTM identical states: correlation 1."""
    model, variables, _ = _init(False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, N, T, D)).astype(np.float32)
    x[:, 1] = x[:, 0]  # objects 0 and 1 joined
    hidden = model.apply(variables, jnp.asarray(x), method="final_hidden")
    scores = baselines.correlation_scores(np.asarray(hidden))
    np.testing.assert_allclose(scores[:, [0, 2]], 1.0, rtol=1e-5)  # edges (0, 1) and (1, 0)
    assert np.all(scores[:, [1, 3, 4, 5]] < 0.999)


def test_fit_threshold_by_hand():
    scores = np.array([[0.1, 0.2, 0.35, 0.4, 0.8]])
    labels = np.array([[0, 1, 0, 0, 1]])
    fit = baselines.fit_threshold(scores, labels)
    # Type 1 above a cut between 0.4 and 0.8 gets 4 of 5 right; every other cut, and the
    # negated scores, get at most 3 (ties would go to the first transform and lowest cut).
    assert fit == {"transform": "signed", "threshold": pytest.approx(0.6), "valid_accuracy": 0.8}
    np.testing.assert_array_equal(baselines.predict_edges(scores, fit), [[0, 0, 0, 0, 1]])


@pytest.mark.parametrize("baseline", ["static", "corr_path", "lstm_single"])
def test_baselines_train_and_eval_end_to_end(tmp_path, baseline):
    from configs import test as test_config
    from nri_jax.evaluation import evaluate
    from nri_jax.generate import generate_dataset
    from nri_jax.training import train_and_evaluate

    config = test_config.get_config()
    config.data.dir = str(tmp_path / "data")
    config.train.epochs = 1
    config.model.baseline = baseline
    generate_dataset(config.data, progress=False)
    metrics = train_and_evaluate(config, tmp_path / "run")
    result = evaluate(tmp_path / "run")
    assert result["baseline"] == baseline and result["num_test"] == 12
    if baseline == "corr_path":
        assert set(result) >= {"edge_accuracy", "edge_auroc", "threshold"}
        assert 0.0 <= result["edge_auroc"] <= 1.0
        assert 0.5 <= result["threshold"]["valid_accuracy"] <= 1.0
    else:
        assert len(result["mse_per_step"]) == 5 and np.all(np.isfinite(result["mse_per_step"]))
    if baseline == "lstm_single":
        assert np.isfinite(metrics["valid_nll"]) and result["checkpoint_epoch"] == 1
    else:
        assert metrics == {} and result["checkpoint_epoch"] is None
    with pytest.raises(ValueError, match="--plots needs NRI's inferred graphs"):
        evaluate(tmp_path / "run", plots=True)


def test_a_run_saved_without_the_baseline_key_is_nri(tmp_path):
    """A run folder written before `model.baseline` existed holds NRI: no baseline resumes it."""
    import json

    from configs import test as test_config
    from nri_jax import checkpoints

    (tmp_path / "run").mkdir()
    config = test_config.get_config()
    saved = json.loads(config.to_json())
    del saved["model"]["baseline"]
    (tmp_path / "run" / checkpoints.CONFIG_FILE).write_text(json.dumps(saved))
    config.model.baseline = "lstm_single"
    with pytest.raises(ValueError, match="config.model.baseline='none', not 'lstm_single'"):
        checkpoints.check_compatible(tmp_path / "run", config)
    config.model.baseline = "none"
    checkpoints.check_compatible(tmp_path / "run", config)
