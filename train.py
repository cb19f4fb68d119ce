"""Train NRI: `python train.py --config configs/springs.py --workdir runs/springs5`.

Thin entry point: flags, then `nri_jax.training.train_and_evaluate`. Rerunning the same
command resumes from the latest checkpoint in --workdir. Override any config value on the
command line, e.g. `--config.train.epochs=50 --config.data.num_objects=10`.
"""

import sys

from nri_jax import host_memory

if __name__ == "__main__":
    # XLA:CPU's per-step buffers in 2 MiB pages. First thing: the restarted program repeats
    # every import made before it (jax's take ~1.7 s).
    host_memory.restart_with_huge_pages()

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from nri_jax import cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}")
    from nri_jax.training import train_and_evaluate

    with cli.one_line_errors():
        train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
