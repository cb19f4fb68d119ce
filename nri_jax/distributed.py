"""Multi-host training: JAX's multi-controller runtime (`jax.distributed`), started once.

`python train.py ... --coordinator_address=HOST:PORT --num_processes=N --process_id=I` runs N
cooperating processes, one per host (or per GPU); on a cluster that `jax.distributed` detects
by itself (SLURM under `srun`, Open MPI, multi-host TPU VMs, or `JAX_COORDINATOR_ADDRESS` in
the environment) the flags are not needed. Every process then sees all devices of all
processes (`jax.devices()`), runs the same program on its own (`jax.local_devices()`) and the
collectives between hosts are XLA's: NCCL on GPUs, the TPU interconnect, Gloo on CPUs.

What changes in the training job (`nri_jax.training`): the batch mesh spans every device of
every process; the lead process (0) alone prints, writes the metric log, the run's JSON files
and generates a missing dataset; orbax writes each checkpoint once for all processes.
"""

from __future__ import annotations

import glob
import os
import sys

import jax

# Environment variables that say a job was started by a launcher `jax.distributed` can read.
_CLUSTER_HINTS = ("JAX_COORDINATOR_ADDRESS", "OMPI_MCA_orte_hnp_uri", "TPU_WORKER_HOSTNAMES")


def _cluster_job() -> bool:
    """Whether this process looks like one task of a multi-process job (judged cheaply: JAX's
    own detection may query a metadata server)."""
    if any(os.environ.get(name) for name in _CLUSTER_HINTS):
        return True
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
        return True
    # A Cloud TPU VM: JAX finds the other workers of a pod slice from the VM's metadata.
    return bool(glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*"))


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Start `jax.distributed` if this is a multi-process job; otherwise do nothing.

    Given `coordinator_address`, `num_processes` and `process_id` (train.py's flags), those are
    used; with none of them a cluster environment is detected as `jax.distributed` does. Call it
    before anything touches a device. ValueError for an incomplete or inconsistent set.
    """
    given = {
        "--coordinator_address": coordinator_address,
        "--num_processes": num_processes,
        "--process_id": process_id,
    }
    if any(v is not None for v in given.values()):
        missing = [name for name, v in given.items() if v is None]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} missing: a multi-process run needs --coordinator_address, "
                f"--num_processes and --process_id on every process"
            )
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise ValueError(
                f"--process_id={process_id} must lie in [0, --num_processes={num_processes})"
            )
    elif not _cluster_job():
        return
    # CPU processes exchange the batch's gradients over Gloo (XLA:CPU has no collectives
    # between processes otherwise); accelerators use their own and ignore this.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    except ValueError as e:
        if coordinator_address is not None:
            raise
        # A hint without a job JAX recognises (e.g. a single TPU VM): one process, as before.
        print(f"jax.distributed not started ({e}); running as one process", file=sys.stderr)


def is_lead() -> bool:
    """Whether this is the process that prints and writes the run's own files (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process gets here (a no-op for one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
