"""Run a main function on every rank so that a failure on one rank ends all of them.

Without it, a rank that raises leaves the others blocked in their next collective operation
until the job's time limit. :func:`run_main` turns any exception (or a non-zero exit status) into
one message and ``MPI_Abort`` of the whole job: status 2 for a user error
(:class:`~qsim_dist.errors.QsimDistError`, one line), 1 for a bug (the traceback). A rank that
fails before MPI is up starts MPI to abort the others (they would wait in ``MPI_Init`` for it).

Before anything collective, every rank calls :func:`agree` with what it was asked to do (or why
it cannot): a mistake found on any rank, or ranks started with different arguments, ends the job
on every rank at once with one line from rank 0 (:class:`JobRefused`), without an abort.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import traceback
from typing import Callable, Mapping, MutableMapping, NoReturn

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


class JobRefused(QsimDistError):
    """Every rank refuses the job together (see :func:`agree`); rank 0 alone reports it."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def world_size(environ: MutableMapping[str, str] | None = None) -> int:
    """Ranks in this MPI job, read from the launcher's environment (1 outside mpiexec/srun);
    mpi4py is not imported for this, so a plain run starts no MPI."""
    env = os.environ if environ is None else environ
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE",
                 "SLURM_STEP_NUM_TASKS"):
        if env.get(name, "").strip().isdigit():
            return int(env[name])
    return 1


def _world():
    """``MPI.COMM_WORLD`` (importing mpi4py starts MPI), or None in a one-process run."""
    if world_size() <= 1 and "mpi4py.MPI" not in sys.modules:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    if MPI.Is_finalized():
        return None
    return MPI.COMM_WORLD


def world_rank() -> int:
    """This process's rank (0 in a one-process run)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        return mpi.COMM_WORLD.Get_rank()
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if os.environ.get(name, "").strip().isdigit():
            return int(os.environ[name])
    return 0


def agree(fields: Mapping[str, str] | None, error: str | None = None, status: int = 2) -> None:
    """Collective (a no-op in one process): every rank gives the arguments of its job as
    ``fields`` (name -> a string that must be equal on every rank, e.g. a file's fingerprint),
    or the one-line ``error`` that stops it (and its exit ``status``).

    Raises :class:`JobRefused` on every rank when any rank has an error (the first one, naming
    the rank when not every rank has it) or when a rank's fields differ from rank 0's (naming
    the fields), so that nothing collective starts with a job the ranks disagree on."""
    world = _world()
    if world is None or world.Get_size() == 1:
        if error is not None:
            raise JobRefused(error, status)
        return
    entries = world.allgather((error, status, dict(fields or {})))
    failed = [(rank, e, st) for rank, (e, st, _) in enumerate(entries) if e is not None]
    if failed:
        rank, first, st = failed[0]
        where = "" if len(failed) == len(entries) else \
            f" (rank {rank}" + (f" and {len(failed) - 1} more" if len(failed) > 1 else "") + \
            f" of {len(entries)})"
        raise JobRefused(first + where, max(s for _, _, s in failed))
    reference = entries[0][2]
    for rank, (_, _, theirs) in enumerate(entries[1:], start=1):
        differ = [k for k in sorted(set(reference) | set(theirs))
                  if reference.get(k) != theirs.get(k)]
        if differ:
            raise JobRefused(f"the ranks were started with different arguments: rank {rank} "
                             f"differs from rank 0 in {', '.join(differ)} (every rank of a job "
                             f"must run the same command on the same files)")


# A rank other than 0 waits this long before it reports a user error: when rank 0 has the same
# error (a check every rank makes) it aborts the job first, and the line appears once.
_QUIET_SECONDS = 1.5

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
    try:
        world = _world()  # starts MPI if this rank failed before it: the others wait in MPI_Init
    except Exception:  # noqa: BLE001 - MPI itself broken: nothing left to abort with
        world = None
    if world is not None and world.Get_size() > 1:
        time.sleep(_DRAIN_SECONDS)
        world.Abort(status)
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
    except JobRefused as exc:  # every rank is here: one line from rank 0, no abort needed
        if world_rank() == 0:
            _say(f"qsim-dist: error: {' '.join(str(exc).split())}\n")
        sys.exit(exc.status)
    except QsimDistError as exc:
        rank = world_rank()
        line = " ".join(str(exc).split())
        world = _world()
        if rank != 0 and world is not None and world.Get_size() > 1:
            time.sleep(_QUIET_SECONDS)  # rank 0 may abort the job with the same line first
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
