"""Neural Relational Inference (Kipf, Fetaya et al., ICML 2018) in JAX/Flax.

The public names below are imported on first use (PEP 562), so `import nri_jax` and its light
modules (`nri_jax.config`, `nri_jax.host_memory`) do not import jax: the entry points restart
themselves before their heavy imports (`host_memory.restart_with_huge_pages`), and a config
file read while flags are parsed should not cost a second jax import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Run": "nri_jax.api",
    "fit": "nri_jax.api",
    "load": "nri_jax.api",
    "EdgeTypeMessages": "nri_jax.decoders",
    "MLPDecoder": "nri_jax.decoders",
    "RNNDecoder": "nri_jax.decoders",
    "CNNEncoder": "nri_jax.encoders",
    "MLPEncoder": "nri_jax.encoders",
    "edge_to_node": "nri_jax.graph",
    "edges_to_matrix": "nri_jax.graph",
    "matrix_to_edges": "nri_jax.graph",
    "fully_connected": "nri_jax.graph",
    "node_to_edge": "nri_jax.graph",
    "gumbel_softmax": "nri_jax.gumbel",
    "sample_gumbel": "nri_jax.gumbel",
    "edge_cross_entropy": "nri_jax.losses",
    "kl_categorical": "nri_jax.losses",
    "nll_gaussian": "nri_jax.losses",
    "sparse_log_prior": "nri_jax.losses",
    "best_permutation": "nri_jax.metrics",
    "confusion_matrix": "nri_jax.metrics",
    "edge_accuracy": "nri_jax.metrics",
    "edge_accuracy_best_permutation": "nri_jax.metrics",
    "NRI": "nri_jax.model",
    "evaluate": "nri_jax.evaluation",
    "load_run": "nri_jax.checkpoints",
    "train_and_evaluate": "nri_jax.training",
    "generate_dataset": "nri_jax.generate",
    "make_model": "nri_jax.model",
    "MLP": "nri_jax.layers",
    "AttentionCNN": "nri_jax.layers",
    "SimDecoder": "nri_jax.sim_decoder",
    "SimPhysics": "nri_jax.sim_decoder",
    "physics_from_config": "nri_jax.sim_decoder",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nri_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
