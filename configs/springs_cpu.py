"""Springs, 5 objects, sized for a 2-core CPU: generate, train and evaluate in under 20 minutes.

    python train.py --config configs/springs_cpu.py --workdir runs/springs_cpu
    python eval.py --workdir runs/springs_cpu --plots

The paper's model and loss; a narrower decoder, smaller batches, a higher learning rate with
cosine decay, a softer Gumbel-softmax and fewer, shorter epochs, so the encoder gets the
thousands of Adam steps it needs to leave the ~50% plateau within minutes. Measured protocol
and result, and the runs that chose these settings: docs/results.md.
"""

from nri_jax.config import base_config


def get_config():
    config = base_config("springs")
    # Data: paper-size test split; training draws from 10k trajectories.
    config.data.num_train = 10000
    config.data.num_valid = 2000
    config.data.num_test = 10000
    config.data.dir = "data/springs_cpu"
    # Model: the paper's encoder; a narrower decoder (it holds ~95% of the matmul work).
    config.model.hidden = 256
    config.model.decoder_hidden = 64
    # Optimisation: twice the paper's learning rate, cosine-decayed to 0 over the run (rather
    # than halved every 200 epochs). The whole step takes 70-90 ms with the 64-unit decoder
    # (docs/benchmarks.md) against 240 ms for 128 units, so 46 epochs (7176 steps) fit; at 36
    # epochs every schedule tried stopped at ~98.7%, at 40 at 98.97% (docs/results.md).
    config.train.epochs = 46
    config.train.batch_size = 64
    config.train.lr = 1e-3
    config.train.lr_schedule = "cosine"
    # Gumbel-softmax tau 1 rather than the paper's 0.5: on this budget the encoder leaves the
    # ~50% plateau two epochs sooner (88% against 64% validation accuracy after 5 epochs).
    config.train.temperature = 1.0
    return config
