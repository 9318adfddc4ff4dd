"""The ``qsim-dist`` command line: the layer above the network model, :mod:`qsim_dist.dqc` and
the backends, which nothing in the package imports.

::

    qsim-dist run CIRCUIT.qasm [...]                      (qsim_dist/cli/run.py)
    qsim-dist dqc CIRCUIT.qasm --network NET.toml [...]   (qsim_dist/cli/dqc.py)
    qsim-dist info [--json]                               (qsim_dist/cli/info.py)

This module is the entry point (:func:`main`, the ``qsim-dist`` console script and
``python -m qsim_dist.cli``): it builds the parser from the command modules, prepares the job
and runs it. What the commands share (parser conventions, option types, backend choice, circuit
loading, the MPI agreement of a job) is :mod:`qsim_dist.cli.common`.

Under ``mpiexec -n P`` (P > 1) the ``distributed`` backend is the default, every rank runs
through :func:`qsim_dist.mpi_launch.run_main` (an error on one rank ends all of them), and only
rank 0 prints; the results file is written by all ranks together.

Every user mistake (bad option, missing or malformed circuit file, unknown gate, qubit out of range,
...) is reported as one line ``qsim-dist: error: ...`` on stderr with exit status 2; nothing is
written. Ctrl-C exits with status 130. JAX, numba and MPI are imported only when needed, so
errors come back at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from ..errors import OptionError, QsimDistError
from . import dqc, info, run
from .common import EXIT_INTERRUPTED, EXIT_USAGE, PROG, Job, Parser, UsageError, agreed_job, \
    fail, mpi_world_size

__all__ = ["main", "build_parser", "prepare"]

# the commands, in the order of --help, each a module with add_parser(subparsers) and
# prepare(args) -> Job
COMMANDS = {"run": run, "dqc": dqc, "info": info}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``qsim-dist`` and every command of :data:`COMMANDS`."""
    from ..version import __version__

    parser = Parser(prog=PROG, description="Exact simulator for distributed quantum computing.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def prepare(argv: Sequence[str] | None) -> Job | int:
    """Parse ``argv`` and prepare its command (:class:`~qsim_dist.cli.common.Job`), or the exit
    status of a command that is already done (``--help``, ``--version``). User mistakes raise
    QsimDistError."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    except UsageError as exc:
        raise OptionError(str(exc)) from None
    if args.command is None:
        raise OptionError(f"missing command (choose from {', '.join(COMMANDS)}; see "
                          f"{PROG} --help)")
    return COMMANDS[args.command].prepare(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Under an MPI launcher with more than one rank, the run goes through
    :func:`qsim_dist.mpi_launch.run_main`, so that a failure on one rank ends every rank."""
    if mpi_world_size() > 1:  # (inside `python -m qsim_dist.mpi_launch` too: nesting is harmless)
        from ..mpi_launch import bind_local_gpu, run_main

        bind_local_gpu()  # before anything starts JAX
        run_main(lambda: _main(argv))
    return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    """:func:`main` in this process: every error turned into its line and exit status."""
    try:
        job = agreed_job(lambda: prepare(argv))
        return job if isinstance(job, int) else job.execute()
    except UsageError as exc:
        return fail(str(exc))
    except QsimDistError as exc:
        if mpi_world_size() > 1:
            raise  # run_main reports it once for the job and ends every rank
        return fail(str(exc))
    except MemoryError:  # (only `run` takes --precision; `dqc` does not)
        is_run = (sys.argv[1:] if argv is None else list(argv))[:1] == ["run"]
        return fail("not enough memory for this simulation (try "
                    f"{'--precision single or ' if is_run else ''}fewer qubits)")
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `qsim-dist info | head -1`
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
