"""Train NRI: `python train.py --config configs/springs.py --workdir runs/springs5`.

Thin entry point: flags, then `nri_jax.training.train_and_evaluate`. Rerunning the same
command resumes from the latest checkpoint in --workdir; on SIGTERM or SIGINT the run writes a
checkpoint and exits with status 128 + the signal's number. Several processes:
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I` (docs/usage.md). Override
any config value on the command line, e.g. `--config.train.epochs=50`.
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
# Multi-host (nri_jax/distributed.py): one process per host, all with the same flags except
# --process_id; not needed where jax.distributed detects the cluster (SLURM, TPU pods).
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "HOST:PORT of process 0, for a multi-process run."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 .. N-1.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}")
    from nri_jax import distributed
    from nri_jax.preemption import Preempted

    with cli.one_line_errors():
        distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
        from nri_jax.training import train_and_evaluate

        try:
            train_and_evaluate(_CONFIG.value, _WORKDIR.value)
        except Preempted as stopped:
            # 128 + signal number, as a shell reports a process the signal ended: a job script
            # can tell an interrupted run (rerun to resume) from a finished or failed one.
            sys.exit(128 + stopped.signum)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
