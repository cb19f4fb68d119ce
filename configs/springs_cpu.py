"""Springs, 5 objects, sized for a 2-core CPU: generate, train and evaluate in under 20 minutes.

    python train.py --config configs/springs_cpu.py --workdir runs/springs_cpu
    python eval.py --workdir runs/springs_cpu --plots

The paper's model and loss; a narrower decoder, smaller batches, a higher learning rate with
cosine decay, a softer Gumbel-softmax and fewer, shorter epochs, so the encoder gets the
thousands of Adam steps it needs to leave the ~50% plateau within minutes (each setting and
why: `nri_jax.config.cpu_protocol`). Measured protocol and result, and the runs that chose
these settings: docs/cpu_protocols.md.
"""

from nri_jax.config import cpu_protocol


def get_config():
    return cpu_protocol("springs")
