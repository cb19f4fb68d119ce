"""Charged particles, 5 objects, sized for a 2-core CPU: generate, train and evaluate.

    python train.py --config configs/charged_cpu.py --workdir runs/charged_cpu
    python eval.py --workdir runs/charged_cpu

The settings of `configs/springs_cpu.py` (`nri_jax.config.cpu_protocol`) on charged data,
10k / 2k / 10k trajectories. The measured result and what was tried: docs/cpu_protocols.md.
"""

from nri_jax.config import cpu_protocol


def get_config():
    return cpu_protocol("charged")
