"""Charged particles, 5 objects, the paper's settings (REFERENCE.md §1, §3).

python -m nri_jax.generate --config configs/charged.py
python train.py --config configs/charged.py --workdir runs/charged5
python eval.py --workdir runs/charged5
"""

from nri_jax.config import base_config


def get_config():
    return base_config("charged")
