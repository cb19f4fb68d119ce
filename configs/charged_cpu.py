"""Charged particles, 5 objects, sized for a 2-core CPU: generate, train and evaluate.

    python train.py --config configs/charged_cpu.py --workdir runs/charged_cpu
    python eval.py --workdir runs/charged_cpu

The settings of `configs/springs_cpu.py` on charged data (10k / 2k / 10k trajectories); the
measured result and what was tried: docs/results.md.
"""

from nri_jax.config import base_config


def get_config():
    config = base_config("charged")
    config.data.num_train = 10000
    config.data.num_valid = 2000
    config.data.num_test = 10000
    config.data.dir = "data/charged_cpu"
    config.model.hidden = 256
    config.model.decoder_hidden = 64
    config.train.epochs = 46
    config.train.batch_size = 64
    config.train.lr = 1e-3
    config.train.lr_schedule = "cosine"
    config.train.temperature = 1.0
    return config
