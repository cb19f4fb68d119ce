"""Springs with three edge types (no spring, k = 0.1, k = 1.0), 5 objects, the CPU protocol.

    python train.py --config configs/springs_types_cpu.py --workdir runs/springs_types_cpu
    python eval.py --workdir runs/springs_types_cpu

Type 0 hard-coded as no interaction, with the sparsity prior, on the same data:

    python train.py --config configs/springs_types_cpu.py --workdir runs/springs_types_sparse_cpu \
        --config.model.skip_first=True --config.model.prior=sparse
    python eval.py --workdir runs/springs_types_sparse_cpu

The settings of `configs/springs_cpu.py` (`nri_jax.config.cpu_protocol`); each pair is joined
with probability 0.5, as in the paper, by a weak (k = 0.1, the paper's) or a strong (k = 1.0)
spring with equal probability, so the labels are 0 / 1 / 2 with frequencies 1/2, 1/4, 1/4.
"""

from nri_jax.config import cpu_protocol


def get_config():
    config = cpu_protocol("springs")
    # Data.
    config.data.spring_constants = (0.0, 0.1, 1.0)
    config.data.dir = "data/springs_types_cpu"
    # Model: one edge type per spring constant.
    config.model.edge_types = 3
    return config
