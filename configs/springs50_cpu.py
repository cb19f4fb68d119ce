"""Springs with 50 objects on a 2-core CPU: generate, train and evaluate in about 30 minutes.

    python train.py --config configs/springs50_cpu.py --workdir runs/springs50_cpu
    python eval.py --workdir runs/springs50_cpu

The CPU protocol's model and schedule (`nri_jax.config.cpu_protocol`) at N = 50 (2450 directed
edges a sample): Erdos-Renyi graphs with edge probability 0.1 (about 5 springs an object, as
sparse as StructInfer's larger graphs; at the paper's 0.5 each object would hang on 25 springs),
a 128-unit encoder, and fewer, smaller batches of samples: a sample holds 122 times the edges
of a springs5 sample, and each edge is one training example for the encoder. Results:
docs/results.md.
"""

from nri_jax.config import cpu_protocol


def get_config():
    config = cpu_protocol("springs")
    # Data.
    config.data.num_objects = 50
    config.data.edge_prob = 0.1
    config.data.num_train = 2000
    config.data.num_valid = 200
    config.data.num_test = 500
    config.data.dir = "data/springs50_cpu"
    # Model.
    config.model.hidden = 128
    # Optimisation.
    config.train.batch_size = 8
    config.train.epochs = 6
    # Evaluation.
    config.eval.batch_size = 16
    return config
