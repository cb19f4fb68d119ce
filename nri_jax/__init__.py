"""Neural Relational Inference (Kipf, Fetaya et al., ICML 2018) in JAX/Flax."""

from nri_jax.decoders import EdgeTypeMessages, MLPDecoder, RNNDecoder
from nri_jax.encoders import CNNEncoder, MLPEncoder
from nri_jax.graph import edge_to_node, fully_connected, node_to_edge
from nri_jax.gumbel import gumbel_softmax, sample_gumbel
from nri_jax.losses import (
    edge_cross_entropy,
    kl_categorical,
    kl_categorical_uniform,
    nll_gaussian,
    sparse_log_prior,
)
from nri_jax.metrics import (
    best_permutation,
    confusion_matrix,
    edge_accuracy,
    edge_accuracy_best_permutation,
)
from nri_jax.model import NRI, make_model
from nri_jax.modules import MLP, AttentionCNN
from nri_jax.sim_decoder import SimDecoder, SimPhysics, physics_from_config

__all__ = [
    "NRI",
    "MLP",
    "AttentionCNN",
    "CNNEncoder",
    "EdgeTypeMessages",
    "MLPDecoder",
    "MLPEncoder",
    "RNNDecoder",
    "SimDecoder",
    "SimPhysics",
    "best_permutation",
    "confusion_matrix",
    "edge_accuracy",
    "edge_accuracy_best_permutation",
    "edge_cross_entropy",
    "edge_to_node",
    "fully_connected",
    "gumbel_softmax",
    "kl_categorical",
    "kl_categorical_uniform",
    "make_model",
    "nll_gaussian",
    "node_to_edge",
    "physics_from_config",
    "sample_gumbel",
    "sparse_log_prior",
]
