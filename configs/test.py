"""A tiny CPU config for the end-to-end tests (seconds, not minutes).

python train.py --config configs/test.py --workdir /tmp/nri_test
"""

from nri_jax.config import base_config


def get_config():
    config = base_config("springs")
    # Data.
    config.data.num_objects = 3
    config.data.num_train = 32
    config.data.num_valid = 12
    config.data.num_test = 12
    config.data.length = 1000  # 9 frames
    config.data.length_test = 2000  # 19 frames
    config.data.dir = "data/test"
    # Model.
    config.model.hidden = 16
    config.model.decoder_hidden = 16
    # Optimisation.
    config.train.epochs = 2
    config.train.batch_size = 8
    config.train.timesteps = 9
    config.train.prediction_steps = 3
    # Evaluation.
    config.eval.prediction_steps = 5
    config.eval.batch_size = 8
    return config
