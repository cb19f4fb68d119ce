"""Your own trajectories: a folder of train.npz, valid.npz and optionally test.npz
(docs/usage.md; the format is nri_jax/own_data.py's).

    python train.py --config configs/own_data.py --config.data.dir=DIR --workdir runs/mine
    python eval.py --workdir runs/mine

Objects, dims and frames are read from the files: the encoder reads every frame of train.npz
(train.timesteps = 0; set it to use each trajectory's first N frames) and eval predicts every
frame test.npz holds after those (eval.prediction_steps = 0). Edges are optional: without them
training is unsupervised and no accuracy is reported. Every other key is the paper's default
(nri_jax/config.py) and is overridden as for the systems, e.g. --config.train.epochs=50
--config.train.batch_size=32 --config.model.edge_types=3.
"""

from nri_jax.config import base_config


def get_config():
    return base_config("own")
