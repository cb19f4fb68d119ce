"""The train step's memory: O(N^2) in objects, and the estimate that refuses a batch too big.

The O(N^2) claim is checked on XLA's memory analysis of the compiled train step at two object
counts; the estimate (`nri_jax.memory`, traced shapes only) against the same analysis.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from nri_jax import memory, training
from nri_jax.model import make_model
from nri_jax.train_state import abstract_state, make_optimizer

TIMESTEPS = 8


def _setup(num_objects, batch):
    config = test_config.get_config()
    config.data.num_objects = num_objects
    config.model.hidden = config.model.decoder_hidden = 8  # H < N: an N^3 term would show
    config.train.batch_size = batch
    config.train.timesteps = TIMESTEPS
    model = make_model(config.model)
    example = np.zeros((2, num_objects, TIMESTEPS, 4), np.float32)
    return config, model, abstract_state(model, config, example)


def _estimate(num_objects, batch, available=1 << 60):
    config, model, state = _setup(num_objects, batch)
    loss_fn = training.make_loss_fn(model, config)
    sample = (num_objects, TIMESTEPS, 4)
    return memory.check_batch_fits(loss_fn, state, batch, sample, np.int32, 0, available)


def _compiled_bytes(num_objects, batch):
    config, model, state = _setup(num_objects, batch)
    step = training.make_train_step(model, make_optimizer(config.train, 1), config)
    edges = num_objects * (num_objects - 1)
    stats = (
        step.lower(
            state,
            jax.ShapeDtypeStruct((batch, num_objects, TIMESTEPS, 4), jnp.float32),
            jax.ShapeDtypeStruct((batch, edges), jnp.int32),
            jax.ShapeDtypeStruct((batch,), jnp.int32),
            jax.eval_shape(lambda: jax.random.key(0)),
        )
        .compile()
        .memory_analysis()
    )
    return stats.temp_size_in_bytes, stats.argument_size_in_bytes + stats.output_size_in_bytes


def test_step_memory_grows_as_edges_and_the_estimate_follows_it():
    batch = 4
    small, large = 12, 24
    temp_small, io_small = _compiled_bytes(small, batch)
    temp_large, io_large = _compiled_bytes(large, batch)
    edge_ratio = (large * (large - 1)) / (small * (small - 1))  # 4.18; N^3 would give 8
    assert 2.0 < temp_large / temp_small <= 1.1 * edge_ratio
    for n, temp, io in ((small, temp_small, io_small), (large, temp_large, io_large)):
        compiled = temp + io
        # 0.67-0.69 at these sizes (temporaries besides the residuals weigh more here than at
        # real sizes, where it was 0.8-0.99: nri_jax/memory.py)
        assert 0.6 * compiled <= _estimate(n, batch) <= 1.2 * compiled, n


def test_a_batch_too_large_names_the_largest_that_fits():
    need = _estimate(12, 16)
    available = int(need / 2 / memory.MEMORY_FRACTION)  # about half the batch fits
    with pytest.raises(memory.BatchTooLarge, match="batch_size=16 needs about") as error:
        _estimate(12, 16, available)
    assert "\n" not in str(error.value)
    fits = int(re.search(r"use --config.train.batch_size=(\d+) or less", str(error.value))[1])
    assert 4 <= fits < 16 and fits % jax.device_count() == 0
    _estimate(12, fits, available)  # fits, and
    with pytest.raises(memory.BatchTooLarge):  # the next batch the devices take does not
        _estimate(12, fits + jax.device_count(), available)


def test_training_refuses_a_batch_too_large_before_compiling(tiny_data, tmp_path, monkeypatch):
    config = test_config.get_config()
    config.data.dir = str(tiny_data)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1 << 12)
    compiled = []
    monkeypatch.setattr(training, "init_state", lambda *a: compiled.append(a))
    with pytest.raises(memory.BatchTooLarge, match="GiB free on the host"):
        training.train_and_evaluate(config, tmp_path / "run")
    assert not compiled  # nothing was initialised (compiled) before the refusal
    config.train.check_memory = False  # the switch skips the estimate
    with pytest.raises(TypeError):  # and reaches init_state (here the stub, which returns None)
        training.train_and_evaluate(config, tmp_path / "run2")
    assert compiled


def test_evaluation_batches_shrink_for_many_objects():
    from configs import springs
    from nri_jax.evaluation import EVAL_ELEMENTS, eval_batch_size

    config = springs.get_config()
    assert eval_batch_size(config) == config.eval.batch_size == 256  # the paper's: unchanged
    config.data.num_objects = 250  # 62250 edges x 256 units: 2 samples in EVAL_ELEMENTS
    assert eval_batch_size(config) == EVAL_ELEMENTS // (250 * 249 * 256) == 2
    config.model.encoder = "cnn"  # a time axis per edge too: one sample a batch
    assert eval_batch_size(config) == 1
