"""The ``qsim-dist`` command line.

::

    qsim-dist run CIRCUIT.qasm [--shots N] [--seed S] [--precision single|double]
                               [--backend NAME] [--save-state] [--out results.h5] [--json]
                               [--stats] [--noise NOISE.toml]
                               [--checkpoint CKPT.h5 [--checkpoint-every SECONDS]]
                               [--resume CKPT.h5]
                               [--split-shots [--shot-block N]]   (distributed backend)
    qsim-dist dqc CIRCUIT.qasm --network NET.toml [...]   (see qsim_dist/network/cli.py)
    qsim-dist info [--json]

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
import json
import os
import platform
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .backends import BACKENDS
from .errors import OptionError, QsimDistError

PROG = "qsim-dist"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_SEED = (1 << 63) - 1
MAX_SHOTS = (1 << 63) - 1   # counts are int64 in results files
TOP_COUNTS = 10


class _UsageError(Exception):
    """An argparse error, reported like every other user mistake."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump); subparsers inherit it."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise _UsageError(message)


def _int_option(what: str, *, minimum: int = 0, maximum: int | None = None):
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


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds, got '{text}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog=PROG, description="Exact simulator for distributed quantum computing.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="simulate an OpenQASM circuit and sample its measurements",
                         description="Simulate an OpenQASM 2/3 circuit and sample its "
                                     "measurements.")
    run.add_argument("circuit", metavar="CIRCUIT.qasm", help="OpenQASM 2 or 3 file")
    run.add_argument("--shots", type=_int_option("shots", maximum=MAX_SHOTS), default=1024,
                     help="number of measurement samples (default 1024)")
    run.add_argument("--seed", type=_int_option("seed", maximum=MAX_SEED), default=None,
                     help="random seed (default: fresh entropy, reported in the output). One "
                          "seed gives the same counts run after run; at another rank count or "
                          "with checkpoints only in double precision (in single, up to 1 shot "
                          "in 100 may differ: README, 'Reproducible counts')")
    run.add_argument("--precision", choices=("single", "double"), default=None,
                     help="complex64 or complex128 amplitudes (default: the backend's; "
                          "single for statevector and distributed, double for reference); "
                          "double gives the same counts at any rank count and after a resume")
    run.add_argument("--backend", choices=BACKENDS, default=None,
                     help="simulator backend (default: statevector; distributed when started "
                          "by mpiexec with more than one rank)")
    run.add_argument("--save-state", action="store_true",
                     help="store the final statevector in the --out file (needs --out)")
    run.add_argument("--out", metavar="RESULTS.h5", default=None,
                     help="write counts, statevector and metadata to this HDF5 file")
    run.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    run.add_argument("--noise", metavar="NOISE.toml", default=None,
                     help="noise model (TOML, see qsim_dist/noise.py and examples/noise.toml); "
                          "each shot is then one trajectory")
    run.add_argument("--stats", action="store_true",
                     help="add communication statistics to the JSON summary: exchanges, "
                          "bytes_sent (all ranks), per-rank comm_time_s and compute_time_s, "
                          "device_buffers (exchanges on device arrays)")
    run.add_argument("--checkpoint", metavar="CKPT.h5", default=None,
                     help="write checkpoints of the run to this HDF5 file (atomically; see "
                          "qsim_dist/io/checkpoint.py), every --checkpoint-every seconds")
    run.add_argument("--checkpoint-every", metavar="SECONDS", type=_non_negative_float,
                     default=None, help="seconds between checkpoints (default 600; 0 = after "
                                         "every chunk of gates)")
    run.add_argument("--checkpoint-gates", metavar="N",
                     type=_int_option("checkpoint gates", minimum=1),
                     default=None, help="gates per chunk between checkpoint decisions "
                                        "(default 256)")
    run.add_argument("--resume", metavar="CKPT.h5", default=None,
                     help="continue the run saved in this checkpoint (same circuit, noise, "
                          "precision and shots; its seed unless --seed repeats it; any rank "
                          "count)")
    run.add_argument("--split-shots", action="store_true",
                     help="distributed backend, runs with trajectories (--noise, or a dynamic "
                          "circuit): cut the shots into blocks seeded from (seed, block) and "
                          "spread them over groups of ranks, each group as few ranks as hold "
                          "the state; the counts depend on --seed and --shot-block only, not on "
                          "the rank count (they differ from an unsplit run's). An error with "
                          "another backend")
    run.add_argument("--shot-block", metavar="N", type=_int_option("shot block", minimum=1),
                     default=None, help="shots per block of --split-shots (default 1024)")

    from .network.cli import add_dqc_parser

    add_dqc_parser(sub)

    info = sub.add_parser("info", help="show versions, devices and MPI library",
                          description="Show versions of qsim_dist and its dependencies, JAX "
                                      "devices, the MPI library and the CPU count.")
    info.add_argument("--json", action="store_true", help="print JSON on stdout")
    return parser


# ---- run ------------------------------------------------------------------------------------

def mpi_world_size(environ=None) -> int:
    """Ranks in this MPI job, read from the launcher's environment (1 outside mpiexec/srun);
    mpi4py is not imported for this, so a plain run starts no MPI."""
    from .mpi_launch.launcher import world_size

    return world_size(environ)


# The run statistics --stats adds to the JSON summary (and that are kept out of it otherwise).
STATS_KEYS = ("ranks", "exchanges", "bytes_sent", "comm_time_s", "compute_time_s",
              "device_buffers")


def choose_backend(requested: str | None) -> str:
    """The backend of a command: ``requested``, or ``distributed`` under mpiexec with more than
    one rank and ``statevector`` otherwise; a one-process backend under mpiexec is refused."""
    ranks = mpi_world_size()
    if requested is None:
        return "distributed" if ranks > 1 else "statevector"
    if requested != "distributed" and ranks > 1:
        raise OptionError(f"backend '{requested}' runs in one process, but mpiexec started "
                          f"{ranks}: use --backend distributed (the default under mpiexec)")
    return requested


def _check_run_options(args: argparse.Namespace) -> Path:
    """Everything that can be checked before the circuit is read or simulated."""
    args.backend = choose_backend(args.backend)
    path = Path(args.circuit)
    if not path.exists():
        raise OptionError(f"cannot read circuit '{path}': no such file")
    if not path.is_file():
        raise OptionError(f"cannot read circuit '{path}': not a file")
    if not os.access(path, os.R_OK):
        raise OptionError(f"cannot read circuit '{path}': permission denied")
    if args.save_state and args.out is None:
        raise OptionError("--save-state needs --out (the statevector is written to the "
                          "results file)")
    if args.out is not None:
        from .io.hdf5 import check_writable

        check_writable(args.out)
        if Path(args.out).resolve() == path.resolve():
            raise OptionError(f"--out '{args.out}' would overwrite the circuit file")
    if args.checkpoint is None and args.resume is None and args.checkpoint_gates is not None:
        raise OptionError("--checkpoint-gates needs --checkpoint or --resume")
    if args.checkpoint is None and args.checkpoint_every is not None:
        raise OptionError("--checkpoint-every needs --checkpoint (the file to write)")
    if args.shot_block is not None and not args.split_shots:
        raise OptionError("--shot-block needs --split-shots")
    if args.split_shots and args.backend != "distributed":
        raise OptionError(f"--split-shots needs the distributed backend (mpiexec, or "
                          f"--backend distributed), not '{args.backend}'")
    if args.checkpoint is not None:
        from .io.checkpoint import check_writable as checkpoint_writable

        checkpoint_writable(args.checkpoint)
        if args.out is not None and Path(args.out).resolve() == Path(args.checkpoint).resolve():
            raise OptionError("--out and --checkpoint name the same file")
    return path


def _checkpointing(args: argparse.Namespace):
    """The run's checkpoint options, or None when it neither writes nor resumes one."""
    if args.checkpoint is None and args.resume is None:
        return None
    from .io.checkpoint import DEFAULT_CHUNK_GATES, Checkpointing

    DEFAULT_EVERY = 600.0

    return Checkpointing(
        path=Path(args.checkpoint) if args.checkpoint else None,
        every=DEFAULT_EVERY if args.checkpoint_every is None else args.checkpoint_every,
        resume=Path(args.resume) if args.resume else None,
        gates=args.checkpoint_gates or DEFAULT_CHUNK_GATES)


def _load_circuit(path: Path):
    from .errors import QasmError
    from .io.qasm import load

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise OptionError(f"cannot read circuit '{path}': {exc.strerror or exc}") from None
    if not text.strip():
        raise QasmError(f"'{path}' is empty: no OpenQASM program")
    circuit = load(path)
    if getattr(circuit, "name", "circuit") in ("", "circuit"):
        circuit.name = path.stem
    return circuit


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    return str(obj)


def _print_human(result, out: str | None) -> None:
    w = sys.stdout.write
    w(f"circuit    {result.circuit_name} ({result.num_qubits} qubits, "
      f"{result.num_clbits} clbits)\n")
    w(f"backend    {result.backend}, {result.precision} precision, seed {result.seed}\n")
    w(f"time       {result.wall_time:.3f} s wall, {result.compile_time:.3f} s compile\n")
    total = sum(result.counts.values())
    if not result.counts:
        w(f"shots      {result.shots} (no measurements: no counts)\n")
    else:
        top = sorted(result.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_COUNTS]
        w(f"shots      {result.shots}, {len(result.counts)} distinct outcomes"
          + (f", top {len(top)}" if len(top) < len(result.counts) else "") + "\n")
        width = max(len(k) for k, _ in top)
        for key, count in top:
            w(f"  {key:>{width}}  {count:>8}  {count / total:7.4f}\n")
    if out is not None:
        w(f"results    {out}" + (" (with statevector)" if result.statevector is not None
                                 else "") + "\n")


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
    from .io.checkpoint import fingerprint

    return fingerprint(circuit.num_qubits, circuit.num_clbits, list(circuit))


def prepare_run(args: argparse.Namespace) -> Job:
    """``qsim-dist run``: every check, the noise file and the circuit read; nothing simulated."""
    path = _check_run_options(args)
    noise = None
    if args.noise is not None:
        from .noise import load_noise_model

        noise = load_noise_model(args.noise)
    circuit = _load_circuit(path)
    fields = job_fields(args, {"circuit": circuit_fingerprint(circuit),
                               "noise": file_fingerprint(args.noise)},
                        outputs=("out", "checkpoint", "resume"))
    return Job(fields, lambda: execute_run(args, circuit, noise))


def execute_run(args: argparse.Namespace, circuit, noise) -> int:
    from .backends import get_backend

    options: dict[str, Any] = {}
    if args.split_shots:
        options["split_shots"] = True
        if args.shot_block is not None:
            options["shot_block"] = args.shot_block
    backend = get_backend(args.backend, **options)
    result = backend.run(circuit, shots=args.shots, seed=args.seed, precision=args.precision,
                         save_state=args.save_state, progress=None, noise=noise,
                         checkpoint=_checkpointing(args))
    if args.noise is not None:
        result.metadata["noise_model"] = str(args.noise)
    if args.out is not None:
        if hasattr(backend, "save_result"):  # collective: every rank writes its shard
            backend.save_result(result, args.out)
        else:
            from .io.hdf5 import save_result

            save_result(result, args.out)
    if getattr(getattr(backend, "comm", None), "rank", 0) != 0:
        return 0  # one report per job
    if args.json:
        summary = result.summary()
        if args.stats:
            summary.setdefault("ranks", 1)
            summary.setdefault("exchanges", 0)
            summary.setdefault("bytes_sent", 0)
            summary.setdefault("comm_time_s", [0.0])
            summary.setdefault("compute_time_s", [round(result.wall_time, 6)])
            summary.setdefault("device_buffers", False)
        else:
            for key in STATS_KEYS:
                summary.pop(key, None)
        if args.out is not None:
            summary["results_file"] = str(args.out)
        sys.stdout.write(json.dumps(summary, indent=2, default=_json_default) + "\n")
    else:
        _print_human(result, args.out)
    return 0


# ---- info -----------------------------------------------------------------------------------

def _version_of(module_name: str) -> str:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return "not installed"
    return str(getattr(module, "__version__", "unknown"))


def _jax_info() -> dict[str, Any]:
    try:
        import jax
    except ImportError:
        return {"version": "not installed"}
    info: dict[str, Any] = {"version": jax.__version__}
    try:
        info["default_backend"] = jax.default_backend()
        info["devices"] = [str(d) for d in jax.devices()]
    except Exception as exc:  # a broken accelerator setup is information, not a crash
        info["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return info


def _mpi_info() -> dict[str, Any]:
    try:
        import mpi4py
    except ImportError:
        return {"version": "not installed"}
    info: dict[str, Any] = {"version": mpi4py.__version__}
    try:
        from mpi4py import MPI

        major, minor = MPI.Get_version()
        info["mpi_standard"] = f"{major}.{minor}"
        library = MPI.Get_library_version().strip()
        info["library"] = " ".join(library.splitlines()[0].split()) if library else "unknown"
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return info


def collect_info() -> dict[str, Any]:
    """Versions and devices, as ``qsim-dist info --json`` prints them."""
    from . import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    h5 = {"version": _version_of("h5py")}
    if h5["version"] != "not installed":
        import h5py

        h5["hdf5"] = h5py.version.hdf5_version
    return {
        "qsim_dist": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, "
                  f"{sys.executable})",
        "platform": platform.platform(),
        "numpy": _version_of("numpy"),
        "jax": _jax_info(),
        "cpu_kernels": _cpu_kernels_info(),
        "numba": _version_of("numba"),
        "h5py": h5,
        "mpi4py": _mpi_info(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "backends": list(BACKENDS),
    }


def _cpu_kernels_info() -> str:
    """Whether the compiled CPU kernels load, and their thread count."""
    try:
        from qsim_dist.kernels import cpu
    except ImportError as exc:
        return f"missing ({exc})"
    return f"compiled, {cpu.get_num_threads()} OpenMP threads"


def cmd_info(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return 0
    jax, mpi, h5 = info["jax"], info["mpi4py"], info["h5py"]
    if "devices" in jax:
        jax_line = (f"{jax['version']} (default backend {jax['default_backend']}; devices: "
                    f"{', '.join(jax['devices'])})")
    else:
        jax_line = jax["version"] + (f" ({jax['error']})" if "error" in jax else "")
    if "library" in mpi:
        mpi_line = f"{mpi['version']} (MPI {mpi['mpi_standard']}: {mpi['library']})"
    else:
        mpi_line = mpi["version"] + (f" ({mpi['error']})" if "error" in mpi else "")
    h5_line = h5["version"] + (f" (HDF5 {h5['hdf5']})" if "hdf5" in h5 else "")
    rows = [
        ("qsim_dist", info["qsim_dist"]), ("python", info["python"]),
        ("platform", info["platform"]), ("numpy", info["numpy"]), ("jax", jax_line),
        ("cpu kernels", info["cpu_kernels"]), ("numba", info["numba"]), ("h5py", h5_line),
        ("mpi4py", mpi_line),
        ("cpus", f"{info['cpu_count']} ({info['cpus_usable']} usable)"),
        ("backends", ", ".join(info["backends"])),
    ]
    for name, value in rows:
        sys.stdout.write(f"{name:<12}{value}\n")
    return 0


# ---- entry point ----------------------------------------------------------------------------

def _fail(message: str, status: int = EXIT_USAGE) -> int:
    line = " ".join(str(message).split()) or "unknown error"
    sys.stderr.write(f"{PROG}: error: {line}\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Under an MPI launcher with more than one rank, the run goes through
    :func:`qsim_dist.mpi_launch.run_main`, so that a failure on one rank ends every rank."""
    if mpi_world_size() > 1:  # (inside `python -m qsim_dist.mpi_launch` too: nesting is harmless)
        from .mpi_launch import bind_local_gpu, run_main

        bind_local_gpu()  # before anything starts JAX
        run_main(lambda: _main(argv))
    return _main(argv)


def prepare(argv: Sequence[str] | None) -> Job | int:
    """Parse ``argv`` and prepare its command (:class:`Job`), or the exit status of a command
    that is already done (``--help``, ``--version``). User mistakes raise QsimDistError."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    except _UsageError as exc:
        raise OptionError(str(exc)) from None
    if args.command is None:
        raise OptionError("missing command (choose from run, dqc, info; see qsim-dist --help)")
    if args.command == "run":
        return prepare_run(args)
    if args.command == "dqc":
        from .network.cli import prepare_dqc

        return prepare_dqc(args)
    return Job(job_fields(args, {}), lambda: cmd_info(args))


def _agreed(argv: Sequence[str] | None) -> Job | int:
    """:func:`prepare` on every rank, then every rank agrees (a no-op in one process): a mistake
    on any rank, or ranks given different arguments, stops every rank before anything
    collective, with one line (raised as :class:`~qsim_dist.mpi_launch.JobRefused`)."""
    if mpi_world_size() <= 1:
        return prepare(argv)
    from .mpi_launch import agree

    error, status, job = None, EXIT_USAGE, None
    try:
        job = prepare(argv)
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


def _main(argv: Sequence[str] | None) -> int:
    try:
        job = _agreed(argv)
        return job if isinstance(job, int) else job.execute()
    except _UsageError as exc:
        return _fail(str(exc))
    except QsimDistError as exc:
        if mpi_world_size() > 1:
            raise  # run_main reports it once for the job and ends every rank
        return _fail(str(exc))
    except MemoryError:  # (only `run` takes --precision; `dqc` does not)
        run = (sys.argv[1:] if argv is None else list(argv))[:1] == ["run"]
        return _fail("not enough memory for this simulation (try "
                     f"{'--precision single or ' if run else ''}fewer qubits)")
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


if __name__ == "__main__":
    sys.exit(main())
