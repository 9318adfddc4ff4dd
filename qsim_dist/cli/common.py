"""What the commands of ``qsim-dist`` share: the parser conventions, numeric option types, the
choice of backend, circuit loading, content fingerprints and the MPI agreement of a job.

Every command module (:mod:`.run`, :mod:`.info`, :mod:`.dqc`) has ``add_parser(subparsers)``,
which adds its subcommand, and ``prepare(args) -> Job``, which makes every check and reads every
input without simulating or writing anything. :func:`agreed_job` has every MPI rank of a job
agree on the prepared :class:`Job` before it executes. Nothing here imports a backend, JAX or
MPI at import time, so that a mistake is reported at once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..backends import BACKENDS, DEFAULT_BACKEND, DEFAULT_MPI_BACKEND
from ..errors import OptionError, QsimDistError

__all__ = ["PROG", "EXIT_USAGE", "EXIT_INTERRUPTED", "TOP_COUNTS", "UsageError", "Parser",
           "int_option", "fail", "mpi_world_size", "world_comm", "choose_backend",
           "backend_help", "check_input_file", "load_circuit", "write_top_counts", "Job",
           "job_fields", "file_fingerprint", "circuit_fingerprint", "agreed_job"]

PROG = "qsim-dist"
EXIT_USAGE = 2   # a user mistake (every QsimDistError), as argparse uses it
EXIT_INTERRUPTED = 130
TOP_COUNTS = 10   # outcomes listed in a human-readable summary


class UsageError(Exception):
    """An argparse error, reported like every other user mistake."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump); subparsers inherit it."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(message)


def int_option(what: str, *, minimum: int = 0, maximum: int | None = None):
    """An argparse type: an integer from ``minimum`` (to ``maximum``), else one clear line."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
                minimum, f"an integer from {minimum}")
            # the bound is named when it is what the value broke (it is 2^63 - 1 for most)
            bound = f" at most {maximum}" if maximum is not None and value > maximum else ""
            raise argparse.ArgumentTypeError(f"{what} must be {kind}{bound}, got '{text}'")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def fail(message: str, status: int = EXIT_USAGE) -> int:
    """Report a user mistake as one line ``qsim-dist: error: ...`` on stderr; ``status``."""
    line = " ".join(str(message).split()) or "unknown error"
    sys.stderr.write(f"{PROG}: error: {line}\n")
    return status


# ---- MPI --------------------------------------------------------------------------------------

def mpi_world_size(environ=None) -> int:
    """Ranks in this MPI job, read from the launcher's environment (1 outside mpiexec/srun);
    mpi4py is not imported for this, so a plain run starts no MPI."""
    from ..mpi_launch.launcher import world_size

    return world_size(environ)


def world_comm():
    """``MPI.COMM_WORLD`` under mpiexec with more than one rank, else None. Call it only once
    the job is agreed (it starts MPI)."""
    if mpi_world_size() <= 1:
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


# ---- backends ---------------------------------------------------------------------------------

def choose_backend(requested: str | None, groups_over_ranks: bool = False) -> str:
    """The backend of a command: ``requested``, or the default (a sharded one under mpiexec with
    more than one rank); a one-process backend under mpiexec is refused, except, with
    ``groups_over_ranks`` (``qsim-dist dqc``), one that takes modules (its modules, or its
    schedule groups, are shared out among the ranks), and one whose contraction slices are
    shared out (``sliced``, the tensor backend)."""
    ranks = mpi_world_size()
    if requested is None:
        return DEFAULT_MPI_BACKEND if ranks > 1 else DEFAULT_BACKEND
    info = BACKENDS[requested]
    if not (info.sharded or info.sliced or (groups_over_ranks and info.modules)) and ranks > 1:
        raise OptionError(f"backend '{requested}' runs in one process, but mpiexec started "
                          f"{ranks}: use --backend {DEFAULT_MPI_BACKEND} (the default under "
                          f"mpiexec)")
    return requested


def backend_help() -> str:
    """The ``--backend`` help of every command, from the registry of backends."""
    names = "; ".join(f"{name}: {info.description}" for name, info in BACKENDS.items())
    return (f"simulator backend ({names}). Default {DEFAULT_BACKEND}; {DEFAULT_MPI_BACKEND} "
            f"when started by mpiexec with more than one rank")


# ---- inputs -----------------------------------------------------------------------------------

def check_input_file(what: str, path: Path) -> None:
    """Refuse an input ``path`` that does not exist or is not a file, naming ``what`` it is."""
    if not path.exists():
        raise OptionError(f"cannot read {what} '{path}': no such file")
    if not path.is_file():
        raise OptionError(f"cannot read {what} '{path}': not a file")


INPUT_HELP = ("the value of an OpenQASM 3 'input float' / 'input angle' parameter of the "
              "circuit, NAME=VALUE (repeat for each input)")


def parse_inputs(items: Sequence[str] | None) -> dict[str, float]:
    """``--input NAME=VALUE`` options as a mapping (one line for a malformed one)."""
    out: dict[str, float] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name.strip() or not math.isfinite(number):
            raise OptionError(f"--input must be NAME=VALUE with a finite number, got {item!r}")
        out[name.strip()] = number
    return out


def load_circuit(path: Path, inputs: Mapping[str, float] | None = None):
    """The circuit of an OpenQASM 2/3 file, named after the file unless it has a name
    (``inputs``: the values of its ``input`` parameters)."""
    from ..errors import QasmError
    from ..io.qasm import load

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise OptionError(f"cannot read circuit '{path}': {exc.strerror or exc}") from None
    if not text.strip():
        raise QasmError(f"'{path}' is empty: no OpenQASM program")
    circuit = load(path, inputs=inputs)
    if getattr(circuit, "name", "circuit") in ("", "circuit"):
        circuit.name = path.stem
    return circuit


# ---- output -----------------------------------------------------------------------------------

def write_top_counts(write: Callable[[str], object], heading: str,
                     counts: dict[str, int]) -> None:
    """``heading`` with the number of distinct outcomes, then the :data:`TOP_COUNTS` most
    frequent ones, one line each with count and frequency; ``counts`` must not be empty."""
    total = sum(counts.values())
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_COUNTS]
    write(f"{heading}{len(counts)} distinct outcomes"
          + (f", top {len(top)}" if len(top) < len(counts) else "") + "\n")
    width = max(len(k) for k, _ in top)
    for key, count in top:
        write(f"  {key:>{width}}  {count:>8}  {count / total:7.4f}\n")


# ---- jobs and their MPI agreement -------------------------------------------------------------

@dataclass
class Job:
    """A command checked and its files read, before anything collective starts.

    ``fields`` is what every MPI rank must agree on (:func:`qsim_dist.mpi_launch.agree`): the
    options, output paths as absolute paths, and the fingerprints of the input files' contents;
    ``execute`` runs the command and returns its exit status."""

    fields: dict[str, str]
    execute: Callable[[], int]


def job_fields(args: argparse.Namespace, inputs: dict[str, str],
               outputs: Sequence[str] = ()) -> dict[str, str]:
    """The fields of :class:`Job`: every option as given, the ``outputs`` options as absolute
    paths (every rank writes to one file), ``inputs`` (name -> content fingerprint) in place
    of the input paths (ranks may read their own copies)."""
    fields = {name: repr(value) for name, value in sorted(vars(args).items())
              if name not in inputs and name != "handler"}
    for name in outputs:
        value = getattr(args, name, None)
        fields[name] = repr(None if value is None else os.path.abspath(value))
    fields.update(inputs)
    return fields


def file_fingerprint(path: str | os.PathLike | None) -> str:
    """SHA-256 of a file's bytes ("none" for no file)."""
    if path is None:
        return "none"
    import hashlib

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise OptionError(f"cannot read '{path}': {exc.strerror or exc}") from None


def circuit_fingerprint(circuit) -> str:
    """The fingerprint of a parsed circuit (what checkpoints compare), so that two files that
    differ only in formatting are the same circuit."""
    from ..io.checkpoint import fingerprint

    return fingerprint(circuit.num_qubits, circuit.num_clbits, list(circuit))


def agreed_job(prepare: Callable[[], Job | int]) -> Job | int:
    """``prepare()`` on every rank, then every rank agrees (a no-op in one process): a mistake
    on any rank, or ranks given different arguments, stops every rank before anything
    collective, with one line (raised as :class:`~qsim_dist.mpi_launch.JobRefused`). An int
    from ``prepare`` is the status of a command already done (``--help``)."""
    if mpi_world_size() <= 1:
        return prepare()
    from ..mpi_launch import agree

    error, status, job = None, EXIT_USAGE, None
    try:
        job = prepare()
    except QsimDistError as exc:
        error = " ".join(str(exc).split()) or type(exc).__name__
    except Exception as exc:  # a bug on this rank: its traceback here, one line for the job
        import traceback

        sys.stderr.write(traceback.format_exc())
        error, status = f"internal error: {type(exc).__name__}: {exc}", 1
    if isinstance(job, int):  # --help or --version: nothing collective follows
        return job
    agree(job.fields if job is not None else None, error, status)
    return job
