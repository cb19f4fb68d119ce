"""Springs, 5 objects, the paper's settings (REFERENCE.md §1, §3).

    python -m nri_jax.generate --config configs/springs.py
    python train.py --config configs/springs.py --workdir runs/springs5
    python eval.py --workdir runs/springs5

Ten objects: add --config.data.num_objects=10.
"""

from nri_jax.config import base_config


def get_config():
    return base_config("springs")
