"""Kuramoto oscillators, 5 objects (REFERENCE.md §1): 4 features per oscillator.

    python -m nri_jax.generate --config configs/kuramoto.py
    python train.py --config configs/kuramoto.py --workdir runs/kuramoto5
    python eval.py --workdir runs/kuramoto5

The CNN encoder reads the oscillators' waveforms better than the flattened MLP one, and the
recurrent decoder handles non-Markovian features (scaled phase velocity).
"""

from nri_jax.config import base_config


def get_config():
    config = base_config("kuramoto")
    # Model.
    config.model.encoder = "cnn"
    config.model.decoder = "rnn"
    return config
