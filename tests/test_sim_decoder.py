"""The simulation decoder: it reproduces the simulators, and its gradients are right."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nri_jax import sim_decoder
from nri_jax.config import base_config
from nri_jax.data import Normalisation
from nri_jax.model import make_model
from nri_jax.original_format import edge_labels as off_diagonal_labels
from simulators import charged, kuramoto, springs

N, FRAMES = 3, 4
SYSTEMS = {"springs": springs, "charged": charged}


def _kuramoto_trajectory(seed, num_frames):
    """Frames [cos phi, sin phi, omega, d(phi)/dt] [1, N, num_frames + 1, 4] from a tight
    float64 solve; d(phi)/dt is the generator's forward difference over dt = 0.01."""
    phi0, omega, coupling = kuramoto.sample_system(jax.random.key(seed), N)
    ts = jnp.stack([jnp.arange(num_frames + 1) * 0.1, jnp.arange(num_frames + 1) * 0.1 + 0.01])
    both = kuramoto.simulate(phi0, omega, coupling, ts.T.reshape(-1), rtol=1e-12, atol=1e-12)
    phi, ahead = both[0::2], both[1::2]  # [T, N] each
    velocity = (ahead - phi) / 0.01
    omega = jnp.broadcast_to(omega, phi.shape)
    frames = jnp.stack([jnp.cos(phi), jnp.sin(phi), omega, velocity], -1)
    labels = off_diagonal_labels(np.asarray(coupling)[None])
    return frames.transpose(1, 0, 2)[None], jnp.asarray(labels)


def _trajectory(system, seed=0, num_frames=FRAMES):
    """Physical frames [1, N, num_frames + 1, D] (initial state first) and labels [1, E]."""
    if system == "kuramoto":
        return _kuramoto_trajectory(seed, num_frames)
    module = SYSTEMS[system]
    loc0, vel0, weights, edges = module.sample_system(jax.random.key(seed), N)
    locs, vels = module.simulate(loc0, vel0, weights, num_frames=num_frames)
    loc = jnp.concatenate([loc0[None], locs])  # [T, N, 2]
    vel = jnp.concatenate([vel0[None], vels])
    frames = jnp.concatenate([loc, vel], axis=-1).transpose(1, 0, 2)[None]
    return frames, jnp.asarray(off_diagonal_labels(np.asarray(edges)[None]))


@pytest.mark.parametrize("system", ["springs", "charged"])
@pytest.mark.parametrize("prediction_steps", [1, FRAMES])
def test_true_graph_reproduces_the_simulator(system, prediction_steps):
    with jax.enable_x64(True):
        frames, labels = _trajectory(system)
        decoder = sim_decoder.SimDecoder(sim_decoder.identity_physics(system))
        edges = jax.nn.one_hot(labels, 2, dtype=jnp.float64)
        preds = decoder(frames, edges, prediction_steps)
        assert preds.shape == (1, N, FRAMES, 4)
        np.testing.assert_allclose(preds, frames[:, :, 1:], rtol=0, atol=1e-9)


@pytest.mark.parametrize("prediction_steps", [1, FRAMES])
def test_kuramoto_true_graph_reproduces_the_simulator(x64, prediction_steps):
    """Fixed-step Dopri5 in the decoder against an adaptive 1e-12 solve of the generator's ODE."""
    frames, labels = _trajectory("kuramoto")
    edges = jax.nn.one_hot(labels, 2, dtype=jnp.float64)
    for steps, atol in ((2, 1e-4), (20, 1e-9)):
        decoder = sim_decoder.SimDecoder(sim_decoder.identity_physics("kuramoto", steps=steps))
        preds = decoder(frames, edges, prediction_steps)
        assert preds.shape == (1, N, FRAMES, 4)
        target = frames[:, :, 1:]
        np.testing.assert_allclose(preds[..., :3], target[..., :3], rtol=0, atol=atol)
        # d(phi)/dt differences phases 0.01 apart: their error, amplified 100-fold.
        np.testing.assert_allclose(preds[..., 3], target[..., 3], rtol=0, atol=100 * atol)
    # The graph matters: dropping every edge moves the prediction well off the data.
    far = sim_decoder.SimDecoder(sim_decoder.identity_physics("kuramoto"))(frames, 0 * edges, 1)
    assert np.max(np.abs(far - frames[:, :, 1:])) > 1e-2


def test_normalisation_round_trip():
    """Normalised in, normalised out: the decoder undoes and redoes data.Normalisation."""
    with jax.enable_x64(True):
        frames, labels = _trajectory("springs")
        norm = Normalisation("springs", [-3.0, -0.7], [2.5, 0.9])
        physics = sim_decoder.SimPhysics("springs", (-3.0, -3.0, -0.7, -0.7), (2.5, 2.5, 0.9, 0.9))
        scaled = jnp.asarray(norm.apply(np.asarray(frames)), jnp.float64)
        preds = sim_decoder.SimDecoder(physics)(scaled, jax.nn.one_hot(labels, 2), 1)
        # float32 rounding of the scaled inputs, amplified by one frame of dynamics.
        np.testing.assert_allclose(preds, scaled[:, :, 1:], atol=1e-5)


@pytest.mark.parametrize("system", ["springs", "charged", "kuramoto"])
def test_gradients_match_finite_differences(system):
    with jax.enable_x64(True):
        frames, labels = _trajectory(system, seed=1)
        decoder = sim_decoder.SimDecoder(sim_decoder.identity_physics(system))
        probe = jax.random.normal(jax.random.key(2), frames[:, :, 1:].shape, jnp.float64)

        def loss(z1):
            edges = jnp.stack([1 - z1, z1], axis=-1)
            return jnp.sum(decoder(frames, edges, FRAMES) * probe)

        z1 = jax.random.uniform(jax.random.key(3), labels.shape, jnp.float64, 0.2, 0.8)
        grad = jax.grad(loss)(z1)
        assert np.all(np.isfinite(grad)) and np.any(grad != 0)
        # Central differences' error is O(eps^2); a smaller eps drowns them in the round-off of
        # Kuramoto's d(phi)/dt (phases 0.01 apart, differenced).
        eps = 1e-4
        for e in range(z1.shape[1]):
            step = jnp.zeros_like(z1).at[0, e].set(eps)
            fd = (loss(z1 + step) - loss(z1 - step)) / (2 * eps)
            np.testing.assert_allclose(grad[0, e], fd, rtol=1e-5, atol=1e-8)


def test_charged_weights_repel_on_type_one():
    z = jnp.asarray([[[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]])
    np.testing.assert_array_equal(sim_decoder.interaction_weights("charged", z), [[1, -1, 0]])
    np.testing.assert_array_equal(sim_decoder.interaction_weights("springs", z), [[1, 0, 0.5]])


def test_nri_with_sim_decoder_trains_the_encoder_through_the_physics():
    config = base_config("springs")
    config.model.decoder, config.model.hidden = "sim", 8
    config.model.sim_steps = 10
    frames, _ = _trajectory("springs", num_frames=6)
    norm = Normalisation("springs", [-5.0, -1.0], [5.0, 1.0])
    x = jnp.asarray(norm.apply(np.asarray(frames)))
    model = make_model(config.model, sim_decoder.physics_from_config(config, norm))
    split = jax.random.split(jax.random.key(0), 3)
    keys = dict(zip(("params", "gumbel", "dropout"), split, strict=True))
    kwargs = dict(temperature=0.5, hard=False, prediction_steps=3)
    variables = model.init(keys, x, train=False, **kwargs)

    def nll(params):
        out = model.apply(
            {**variables, "params": params},
            x,
            train=False,
            rngs={"gumbel": keys["gumbel"]},
            **kwargs,
        )
        return jnp.sum((out["preds"] - x[:, :, 1:]) ** 2)

    grads = jax.grad(nll)(variables["params"])
    leaves = jax.tree.leaves(grads["encoder_net"])
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert any(np.any(g != 0) for g in leaves)


def test_sim_decoder_config_errors():
    from nri_jax.config import check_config

    config = base_config("kuramoto")
    config.model.decoder = "sim"
    with pytest.raises(ValueError, match="features='phase'"):
        check_config(config)
    config.data.features = "phases"
    with pytest.raises(ValueError, match="data.features"):
        check_config(config)
    config.data.features = "phase"
    check_config(config)
    config = base_config("charged")
    config.model.decoder, config.model.edge_types = "sim", 3
    with pytest.raises(ValueError, match="edge_types=2"):
        check_config(config)
    config = base_config("springs")
    config.model.decoder, config.data.spring_constants = "sim", (0.0, 0.5)
    with pytest.raises(ValueError, match=r"simulates the paper's springs \(k = 0.1\)"):
        check_config(config)
    # Without the data's physics the model builds (for name checks) but cannot decode.
    model_config = base_config("springs").model
    model_config.decoder = "sim"
    with pytest.raises(ValueError, match="physics_from_config"):
        sim_decoder.SimDecoder(None)(jnp.zeros((1, N, 3, 4)), jnp.zeros((1, 6, 2)), 1)
    assert make_model(model_config).physics is None


def test_validation_with_the_true_graph_sim_decoder_has_zero_error():
    """Validation with the sim decoder and graph="true" on identity-normalised data: no error."""
    from nri_jax.data import Split
    from nri_jax.evaluation import make_validation

    frames, labels = _trajectory("springs", num_frames=6)
    config = base_config("springs")
    config.model.decoder, config.model.graph, config.model.hidden = "sim", "true", 8
    config.train.timesteps, config.eval.batch_size = 7, 2
    norm = Normalisation("springs", [-1.0, -1.0], [1.0, 1.0])
    model = make_model(config.model, sim_decoder.physics_from_config(config, norm))
    x = jnp.asarray(frames, jnp.float32)
    split = jax.random.split(jax.random.key(0), 3)
    keys = dict(zip(("params", "gumbel", "dropout"), split, strict=True))
    variables = model.init(keys, x, train=False, temperature=0.5, hard=True, prediction_steps=1)
    split = Split(np.repeat(np.asarray(x), 2, 0), np.repeat(np.asarray(labels), 2, 0))
    validate = make_validation(model, config, split)
    result = validate(variables["params"], variables.get("batch_stats", {}))
    assert result["mse"] < 1e-10 and result["nll"] < 1e-5
