"""Springs with 20 objects on a 2-core CPU: generate, train and evaluate in about 25 minutes.

    python train.py --config configs/springs20_cpu.py --workdir runs/springs20_cpu
    python eval.py --workdir runs/springs20_cpu

The CPU protocol's model and schedule (`nri_jax.config.cpu_protocol`) at N = 20 (380 directed
edges a sample, 19 times springs5's): Erdos-Renyi graphs with edge probability 0.1, so an
object hangs on about 1.9 springs, as in springs5 (0.5 x 4 = 2; at the paper's 0.5 it would
hang on 9.5), a 128-unit encoder, batches of 16 samples, 5000 training trajectories and 40
epochs (at 20 the validation accuracy stopped at 88.5%, below the 90% of no edge anywhere).

Edge type 0 is "no interaction" (`skip_first`) with the paper's sparsity prior
(p(no edge) = 0.91, close to this data's 0.9): with the uniform prior the KL term holds every
edge near 50/50, so each receiver sums ~9.5 sampled springs of which ~1.9 are real, and the
encoder stayed near chance (54.8% validation after 10 epochs). Results: docs/results.md.
"""

from nri_jax.config import cpu_protocol


def get_config():
    config = cpu_protocol("springs")
    # Data.
    config.data.num_objects = 20
    config.data.edge_prob = 0.1
    config.data.num_train = 5000
    config.data.num_valid = 500
    config.data.num_test = 1000
    config.data.dir = "data/springs20_cpu"
    # Model.
    config.model.hidden = 128
    config.model.skip_first = True
    config.model.prior = "sparse"
    # Optimisation.
    config.train.batch_size = 16
    config.train.epochs = 40
    return config
