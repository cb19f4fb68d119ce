"""250 objects end to end: generate, train one epoch, evaluate (springs, Kuramoto, charged).

Slow (`pytest -m slow`): at 250 objects a sample has 62250 edges, so even tiny datasets take
tens of seconds each. Memory per sample is checked at small N (tests/test_memory.py).
"""

import json

import numpy as np
import pytest

from nri_jax import evaluation, reproduce, training
from nri_jax.config import base_config

OBJECTS = 250


@pytest.mark.slow
@pytest.mark.parametrize("system", ["springs", "kuramoto", "charged"])
def test_250_objects_generate_train_and_evaluate(system, tmp_path):
    config = base_config(system)
    reproduce._shrink(config)  # the smoke sizes, then fewer, smaller batches
    config.data.num_objects = OBJECTS
    config.data.num_train, config.data.num_valid, config.data.num_test = 4, 2, 2
    config.data.dir = str(tmp_path / "data")
    config.model.hidden = config.model.decoder_hidden = 8
    config.train.batch_size = 2
    config.eval.batch_size = 2
    training.train_and_evaluate(config, tmp_path / "run")
    result = evaluation.evaluate(tmp_path / "run")
    assert result == json.loads((tmp_path / "run" / "eval.json").read_text())
    assert 0.0 <= result["edge_accuracy"] <= 1.0 and 0.0 <= result["edge_auroc"] <= 1.0
    assert np.isfinite(result["nll"]) and np.isfinite(result["mse_per_step"]).all()
    assert len(result["mse_per_step"]) == 20
