"""The paper's comparison rows: Supervised, NRI (true graph) and NRI (full graph)."""

import eval_reference
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nri_jax import data as data_lib
from nri_jax import original_format, train_state, training
from nri_jax.model import fixed_edges, make_model
from simulators import springs

S, N, T = 8, 3, 8


@pytest.fixture(scope="module")
def tiny_set():
    """S springs trajectories of T frames, normalised, with their labels."""
    keys = jax.random.split(jax.random.key(0), S)
    loc0, vel0, weights, edges = jax.vmap(lambda k: springs.sample_system(k, N))(keys)
    locs, vels = springs.simulate(loc0, vel0, weights, num_frames=T)
    features = np.concatenate([np.asarray(locs), np.asarray(vels)], -1).transpose(0, 2, 1, 3)
    norm = data_lib.fit_normalisation("springs", features)
    return norm.apply(features), original_format.edge_labels(np.asarray(edges))


def _config(**overrides):
    from configs import test as test_config

    config = test_config.get_config()
    config.train.batch_size = S
    config.train.timesteps = T
    config.train.prediction_steps = 2
    for key, value in overrides.items():
        group, name = key.split(".")
        config[group][name] = value
    return config


def _train(config, features, labels, steps):
    model = make_model(config.model)
    state, tx = train_state.init_state(model, config, features[:2], steps_per_epoch=1)
    initial = jax.tree.map(np.array, state.params)
    step = training.make_train_step(model, tx, config)
    features, labels = jnp.asarray(features), jnp.asarray(labels)
    index = jnp.arange(S)
    metrics = None
    for _ in range(steps):
        state, metrics = step(state, features, labels, index, jax.random.key(1))
    return model, state, initial, metrics


def test_supervised_mode_fits_the_labels(tiny_set):
    features, labels = tiny_set
    config = _config(**{"train.mode": "supervised", "train.lr": 1e-2})
    model, state, _, metrics = _train(config, features, labels, steps=40)
    logits = model.apply(
        {"params": state.params, "batch_stats": state.batch_stats},
        jnp.asarray(features),
        method="encode",
    )
    assert float(jnp.mean(jnp.argmax(logits, -1) == labels)) == 1.0
    # The reported loss is the edge cross-entropy, not the ELBO.
    assert float(metrics["loss"]) / S < 0.1


def test_supervised_runs_keep_the_most_accurate_checkpoint():
    """The untrained decoder's NLL must not pick a supervised run's best checkpoint."""
    valid = {"nll": 3.0, "accuracy": 0.75}
    assert training.selection_score(_config(), valid) == 3.0
    supervised = _config(**{"train.mode": "supervised"})
    assert training.selection_score(supervised, valid) == pytest.approx(0.25)


@pytest.mark.parametrize("graph", ["true", "full"])
def test_fixed_graph_training_ignores_the_encoder(tiny_set, graph):
    features, labels = tiny_set
    config = _config(**{"model.graph": graph})
    model, state, initial, metrics = _train(config, features, labels, steps=1)
    # Zero gradients give Adam updates of exactly zero: the encoder does not move ...
    jax.tree.map(np.testing.assert_array_equal, state.params["encoder_net"], initial["encoder_net"])
    # ... while the decoder trains, on the NLL alone.
    moved = jax.tree.map(
        lambda a, b: bool(np.any(a != b)), state.params["decoder_net"], initial["decoder_net"]
    )
    assert any(jax.tree.leaves(moved))
    np.testing.assert_allclose(metrics["loss"], metrics["nll"], rtol=1e-6)

    # The decoder's input is the fixed graph, whatever the encoder says; the loss has no
    # gradient w.r.t. the encoder.
    variables = {"params": initial, "batch_stats": state.batch_stats}
    x, y = jnp.asarray(features), jnp.asarray(labels)

    def nll(params):
        out = model.apply(
            {**variables, "params": params},
            x,
            train=False,
            temperature=0.5,
            hard=True,
            prediction_steps=2,
            labels=y,
            rngs={"gumbel": jax.random.key(2)},
        )
        return jnp.sum((out["preds"] - x[:, :, 1:]) ** 2), out

    grads, out = jax.grad(nll, has_aux=True)(initial)
    assert all(np.all(g == 0) for g in jax.tree.leaves(grads["encoder_net"]))
    expected = jax.nn.one_hot(y if graph == "true" else jnp.ones_like(y), 2)
    np.testing.assert_array_equal(out["edges"], expected)
    np.testing.assert_array_equal(fixed_edges(graph, y.shape, 2, y), expected)


def test_true_graph_needs_labels(tiny_set):
    features, _ = tiny_set
    config = _config(**{"model.graph": "true"})
    model = make_model(config.model)
    state, _ = train_state.init_state(model, config, features[:2], steps_per_epoch=1)
    with pytest.raises(ValueError, match="needs the edge labels"):
        model.apply(
            {"params": state.params, "batch_stats": state.batch_stats},
            jnp.asarray(features[:2]),
            train=False,
            temperature=0.5,
            hard=True,
            prediction_steps=1,
        )


def test_true_graph_train_and_eval_end_to_end(tmp_path):
    from configs import test as test_config
    from nri_jax.evaluation import evaluate
    from nri_jax.generate import generate_dataset

    config = test_config.get_config()
    config.data.dir = str(tmp_path / "data")
    config.train.epochs = 1
    config.model.graph = "true"
    generate_dataset(config.data, progress=False)
    metrics = training.train_and_evaluate(config, tmp_path / "run")
    assert np.isfinite(metrics["valid_nll"])
    result = evaluate(tmp_path / "run")
    # The NLL and both MSEs against a numpy decoder (the test split of 12 runs as batches of
    # 8, the last one padded: padding must not count).
    expected = eval_reference.true_graph_metrics(tmp_path / "run")
    np.testing.assert_allclose(result["nll"], expected["nll"], rtol=1e-4)
    np.testing.assert_allclose(result["mse_one_step"], expected["mse_one_step"], rtol=1e-4)
    np.testing.assert_allclose(result["mse_per_step"], expected["mse_per_step"], rtol=1e-4)
    assert result["num_test"] == 12
    assert set(result) == {
        "edge_accuracy",
        "edge_accuracy_raw",
        "edge_type_permutation",
        "edge_auroc",
        "nll",
        "kl",
        "mse_one_step",
        "mse_per_step",
        "num_test",
        "checkpoint_epoch",
        "data_dir",
        "dynamic_graph",
    }
    assert np.all(np.isfinite(result["mse_per_step"]))


def test_kuramoto_sim_decoder_train_and_eval_end_to_end(tmp_path):
    """NRI (sim.) on Kuramoto: phase frames from the generator's raw files, physics decoder."""
    from nri_jax.config import base_config
    from nri_jax.evaluation import evaluate
    from nri_jax.generate import generate_dataset

    config = base_config("kuramoto")
    config.data.update(num_objects=3, num_train=16, num_valid=8, num_test=8, dir=str(tmp_path))
    config.data.update(length=100, length_test=200)  # 9 / 19 frames
    config.data.features = "phase"
    config.model.update(decoder="sim", hidden=16)
    config.train.update(epochs=1, batch_size=8, timesteps=9, prediction_steps=3)
    config.eval.update(prediction_steps=5, batch_size=8)
    generate_dataset(config.data, progress=False)

    frames, _ = original_format.read_split(tmp_path, "kuramoto", 3, "train", "phase")
    phase = np.load(tmp_path / "phase_train_kuramoto3.npy")
    omega = np.load(tmp_path / "omega_train_kuramoto3.npy")
    np.testing.assert_allclose(frames[..., 0], np.cos(phase), atol=1e-6)
    np.testing.assert_allclose(frames[..., 1], np.sin(phase), atol=1e-6)
    np.testing.assert_allclose(frames[..., 2], np.broadcast_to(omega[..., None], phase.shape))

    metrics = training.train_and_evaluate(config, tmp_path / "run")
    assert np.isfinite(metrics["valid_nll"])
    result = evaluate(tmp_path / "run")
    assert len(result["mse_per_step"]) == 5 and np.all(np.isfinite(result["mse_per_step"]))
    # Edge accuracy: the restored encoder's argmax on the test split, relabelled by brute force.
    _, model, variables, features, labels = eval_reference.test_split(tmp_path / "run")
    logits = model.apply(variables, jnp.asarray(features[:, :, :9]), method="encode")
    best, raw = eval_reference.best_permutation_accuracy(np.argmax(logits, -1), labels, 2)
    assert result["edge_accuracy"] == pytest.approx(best)
    assert result["edge_accuracy_raw"] == pytest.approx(raw)
