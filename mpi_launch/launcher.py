"""Run a main function on every rank so that a failure on one rank ends all of them.

Without it, a rank that raises leaves the others blocked in their next collective operation
until the job's time limit. :func:`run_main` turns any exception (or a non-zero exit status) into
one message on the failing rank and ``MPI_Abort`` of the whole job: status 2 for a user error
(:class:`~qsim_dist.errors.QsimDistError`, one line), 1 for a bug (the traceback).
"""

from __future__ import annotations

import glob
import os
import sys
import time
import traceback
from typing import Callable, MutableMapping, NoReturn

from qsim_dist.errors import QsimDistError

# Node-local rank, as Open MPI, MPICH/Hydra, Slurm, PBS/PALS (Cray) and PMIx export it.
LOCAL_RANK_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID",
                        "PALS_LOCAL_RANKID", "PMI_LOCAL_RANK", "PMIX_LOCAL_RANK")


def local_rank(environ: MutableMapping[str, str] | None = None) -> int | None:
    """This process's rank among the ranks of its node, from the launcher's environment."""
    env = os.environ if environ is None else environ
    for name in LOCAL_RANK_VARIABLES:
        if env.get(name, "").strip().isdigit():
            return int(env[name])
    return None


def bind_local_gpu(environ: MutableMapping[str, str] | None = None,
                   num_gpus: int | None = None) -> str | None:
    """Give this rank one GPU of its node: ``CUDA_VISIBLE_DEVICES`` = the (local rank)-th visible
    device (round robin). Call it before JAX starts. Nothing happens when the local rank is
    unknown or at most one GPU is visible (no GPU, or the scheduler bound it already).

    Parameters
    ----------
    environ
        The environment to read and update (default ``os.environ``).
    num_gpus
        GPUs on the node when ``CUDA_VISIBLE_DEVICES`` is unset (default: counted from the
        NVIDIA driver).

    Returns
    -------
    str or None
        The device now visible to this rank, or None when nothing was changed.
    """
    env = os.environ if environ is None else environ
    rank = local_rank(env)
    if rank is None:
        return None
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        devices = [d for d in visible.split(",") if d.strip()]
    else:
        if num_gpus is None:
            num_gpus = len(glob.glob("/proc/driver/nvidia/gpus/*"))
        devices = [str(i) for i in range(num_gpus)]
    if len(devices) <= 1:
        return None
    env["CUDA_VISIBLE_DEVICES"] = devices[rank % len(devices)]
    return env["CUDA_VISIBLE_DEVICES"]


# Time given to the launcher's I/O forwarder to pass this rank's last message on before
# MPI_Abort kills it; without it the tail of a traceback is sometimes lost.
_DRAIN_SECONDS = 0.5


def _say(message: str) -> None:
    """Write ``message`` to stderr in one system call, so that it is forwarded whole."""
    sys.stderr.flush()
    data = message.encode(errors="replace")
    while data:
        data = data[os.write(sys.stderr.fileno(), data):]


def _abort(status: int) -> NoReturn:
    """End this rank with ``status``, and every other rank of the job with it."""
    sys.stdout.flush()
    sys.stderr.flush()
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() \
            and mpi.COMM_WORLD.Get_size() > 1:
        time.sleep(_DRAIN_SECONDS)
        mpi.COMM_WORLD.Abort(status)
    sys.exit(status)


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """Call ``main()`` and exit with its status; on an exception or a non-zero status on any
    rank, print why on that rank and abort all ranks within seconds."""
    try:
        status = main() or 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (exc.code is not None)
        if isinstance(exc.code, str):
            _say(f"{exc.code}\n")
    except QsimDistError as exc:
        rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "?"))
        line = " ".join(str(exc).split())
        _say(f"qsim-dist: error (rank {rank}): {line}\n")
        status = 2
    except KeyboardInterrupt:
        _say("qsim-dist: interrupted\n")
        status = 130
    except BaseException:  # a bug: the whole traceback
        _say(traceback.format_exc())
        status = 1
    if status:
        _abort(int(status))
    sys.exit(0)
