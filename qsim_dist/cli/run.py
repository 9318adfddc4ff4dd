"""``qsim-dist run``: simulate an OpenQASM circuit and sample its measurements.

::

    qsim-dist run CIRCUIT.qasm [--shots N] [--seed S] [--precision single|double]
                               [--backend NAME] [--save-state] [--out results.h5] [--json]
                               [--stats] [--noise NOISE.toml]
                               [--checkpoint CKPT.h5 [--checkpoint-every SECONDS]]
                               [--resume CKPT.h5]
                               [--split-shots [--shot-block N]]   (distributed backend)
                               [--amplitude BITSTRING ...] [--observable 'Z0 Z1 + 0.5 X3']
                               [--optimize NAME] [--max-memory BYTES]   (tensor backend)

``--amplitude`` and ``--observable`` read the state after the circuit's gates (its measurements
left out) on any backend; with ``--backend tensor`` they are contractions of the circuit's tensor
network (only the past light cone of each Pauli term), so circuits far wider than a statevector
are answered exactly.

The backends and their defaults come from the registry, :data:`qsim_dist.backends.BACKENDS`;
shots, seed and precision are resolved once, as :class:`qsim_dist.options.RunOptions`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..backends import BACKENDS
from ..backends.tensor import OPTIMIZERS as TENSOR_OPTIMIZERS
from ..errors import OptionError
from ..options import MAX_SEED, MAX_SHOTS, PRECISIONS, RunOptions
from .common import Job, backend_help, check_input_file, choose_backend, circuit_fingerprint, \
    file_fingerprint, int_option, job_fields, load_circuit, parse_inputs, world_comm, \
    write_top_counts, INPUT_HELP

# The run statistics --stats adds to the JSON summary (and that are kept out of it otherwise).
STATS_KEYS = ("ranks", "exchanges", "bytes_sent", "comm_time_s", "compute_time_s",
              "device_buffers")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds, got '{text}'")
    return value


def _precision_defaults() -> str:
    """Which precision each backend runs in by default, e.g. "single for a and b, double for
    c", from the registry."""
    by_precision: dict[str, list[str]] = {}
    for name, info in BACKENDS.items():
        by_precision.setdefault(info.default_precision, []).append(name)
    return ", ".join(f"{precision} for " + " and ".join(names)
                     for precision, names in by_precision.items())


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``run`` command to ``subparsers`` (of :func:`qsim_dist.cli.build_parser`)."""
    run = subparsers.add_parser(
        "run", help="simulate an OpenQASM circuit and sample its measurements",
        description="Simulate an OpenQASM 2/3 circuit and sample its measurements.")
    run.add_argument("circuit", metavar="CIRCUIT.qasm", help="OpenQASM 2 or 3 file")
    run.add_argument("--input", metavar="NAME=VALUE", action="append", default=None,
                     help=INPUT_HELP)
    run.add_argument("--shots", type=int_option("shots", maximum=MAX_SHOTS), default=1024,
                     help="number of measurement samples (default 1024)")
    run.add_argument("--seed", type=int_option("seed", maximum=MAX_SEED), default=None,
                     help="random seed (default: fresh entropy, reported in the output). One "
                          "seed gives the same counts run after run; at another rank count or "
                          "with checkpoints only in double precision (in single, up to 1 shot "
                          "in 100 may differ: README, 'Reproducible counts')")
    run.add_argument("--precision", choices=PRECISIONS, default=None,
                     help="complex64 or complex128 amplitudes (default: the backend's; "
                          f"{_precision_defaults()}); double gives the same counts at any rank "
                          "count and after a resume")
    run.add_argument("--backend", choices=BACKENDS, default=None, help=backend_help())
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
                          "device_buffers (exchanges on device arrays); with the tensor "
                          "backend, the contraction cost (flops, largest intermediate, paths, "
                          "seconds)")
    run.add_argument("--checkpoint", metavar="CKPT.h5", default=None,
                     help="write checkpoints of the run to this HDF5 file (atomically; see "
                          "qsim_dist/io/checkpoint.py), every --checkpoint-every seconds")
    run.add_argument("--checkpoint-every", metavar="SECONDS", type=_non_negative_float,
                     default=None, help="seconds between checkpoints (default 600; 0 = after "
                                         "every chunk of gates)")
    run.add_argument("--checkpoint-gates", metavar="N",
                     type=int_option("checkpoint gates", minimum=1),
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
    run.add_argument("--shot-block", metavar="N", type=int_option("shot block", minimum=1),
                     default=None, help="shots per block of --split-shots (default 1024)")
    run.add_argument("--amplitude", metavar="BITSTRING", nargs="+", default=None,
                     help="amplitudes of these basis states after the gates (qubit 0 "
                          "rightmost, as counts are printed)")
    run.add_argument("--observable", metavar="PAULI_SUM", default=None,
                     help="expectation value of a Pauli sum after the gates, e.g. "
                          "'Z0 Z1 + 0.5 X3' or 'XZI'")
    run.add_argument("--optimize", choices=TENSOR_OPTIMIZERS, default=None,
                     help="tensor backend: the contraction path finder (default auto: "
                          "opt-einsum's choice by size; cotengra when installed)")
    run.add_argument("--max-memory", metavar="BYTES", type=int_option("max memory", minimum=1),
                     default=None, help="tensor backend: bytes the largest intermediate of one "
                                        "contraction may take (default a third of the free "
                                        "memory); beyond, a clear refusal with its cost")
    return run


def _bitstrings(texts: list[str], num_qubits: int) -> list[int]:
    """``--amplitude`` bitstrings as basis indices (qubit 0 rightmost)."""
    indices = []
    for text in texts:
        if len(text) != num_qubits or set(text) - {"0", "1"}:
            raise OptionError(f"--amplitude '{text[:80]}': a bitstring of {num_qubits} "
                              f"characters 0/1 is needed (qubit 0 rightmost)")
        indices.append(int(text, 2))
    return indices


def _check_options(args: argparse.Namespace) -> Path:
    """Everything that can be checked before the circuit is read or simulated."""
    args.backend = choose_backend(args.backend)
    path = Path(args.circuit)
    check_input_file("circuit", path)
    if not os.access(path, os.R_OK):
        raise OptionError(f"cannot read circuit '{path}': permission denied")
    if args.save_state and args.out is None:
        raise OptionError("--save-state needs --out (the statevector is written to the "
                          "results file)")
    if args.out is not None:
        from ..io.hdf5 import check_writable

        check_writable(args.out)
        if Path(args.out).resolve() == path.resolve():
            raise OptionError(f"--out '{args.out}' would overwrite the circuit file")
    if args.checkpoint is None and args.resume is None and args.checkpoint_gates is not None:
        raise OptionError("--checkpoint-gates needs --checkpoint or --resume")
    if args.checkpoint is None and args.checkpoint_every is not None:
        raise OptionError("--checkpoint-every needs --checkpoint (the file to write)")
    if (args.optimize is not None or args.max_memory is not None) and args.backend != "tensor":
        raise OptionError(f"--optimize and --max-memory are options of the tensor backend, "
                          f"not of '{args.backend}'")
    if args.shot_block is not None and not args.split_shots:
        raise OptionError("--shot-block needs --split-shots")
    if args.split_shots and not BACKENDS[args.backend].sharded:
        raise OptionError(f"--split-shots needs the distributed backend (mpiexec, or "
                          f"--backend distributed), not '{args.backend}'")
    if args.checkpoint is not None:
        from ..io.checkpoint import check_writable as checkpoint_writable

        checkpoint_writable(args.checkpoint)
        if args.out is not None and Path(args.out).resolve() == Path(args.checkpoint).resolve():
            raise OptionError("--out and --checkpoint name the same file")
    return path


def _checkpointing(args: argparse.Namespace):
    """The run's checkpoint options, or None when it neither writes nor resumes one."""
    if args.checkpoint is None and args.resume is None:
        return None
    from ..io.checkpoint import DEFAULT_CHUNK_GATES, Checkpointing

    DEFAULT_EVERY = 600.0

    return Checkpointing(
        path=Path(args.checkpoint) if args.checkpoint else None,
        every=DEFAULT_EVERY if args.checkpoint_every is None else args.checkpoint_every,
        resume=Path(args.resume) if args.resume else None,
        gates=args.checkpoint_gates or DEFAULT_CHUNK_GATES)


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
    if not result.counts:
        w(f"shots      {result.shots} (no measurements: no counts)\n")
    else:
        write_top_counts(w, f"shots      {result.shots}, ", result.counts)
    for bits, (re_, im) in result.metadata.get("amplitudes", {}).items():
        w(f"amplitude  {bits}: {re_:+.12g} {im:+.12g}i\n")
    if "expectation" in result.metadata:
        w(f"<H>        {result.metadata['expectation']:.12g}  (H = {result.metadata['observable']})\n")
    if out is not None:
        w(f"results    {out}" + (" (with statevector)" if result.statevector is not None
                                 else "") + "\n")


def prepare(args: argparse.Namespace) -> Job:
    """``qsim-dist run``: every check, the noise file and the circuit read; nothing simulated."""
    path = _check_options(args)
    noise = None
    if args.noise is not None:
        from ..noise import load_noise_model

        noise = load_noise_model(args.noise)
    circuit = load_circuit(path, parse_inputs(args.input))
    if args.amplitude is not None:
        args.amplitude_indices = _bitstrings(args.amplitude, circuit.num_qubits)
    if args.observable is not None:
        from ..observables import as_pauli_sum

        args.pauli_sum = as_pauli_sum(args.observable, circuit.num_qubits)
    fields = job_fields(args, {"circuit": circuit_fingerprint(circuit),
                               "noise": file_fingerprint(args.noise)},
                        outputs=("out", "checkpoint", "resume"))
    return Job(fields, lambda: execute(args, circuit, noise))


def execute(args: argparse.Namespace, circuit, noise) -> int:
    """Run the prepared ``qsim-dist run`` (on every rank of an MPI job) and report it."""
    from ..backends import get_backend

    # an unseeded run's seed is drawn here, once, rank 0's on every rank (a resumed run keeps
    # its checkpoint's unless --seed is given)
    run = RunOptions.resolve(args.shots, args.seed, args.precision,
                             default_precision=BACKENDS[args.backend].default_precision,
                             comm=world_comm(), resume=args.resume is not None)
    options: dict[str, Any] = {}
    if args.split_shots:
        options["split_shots"] = True
        if args.shot_block is not None:
            options["shot_block"] = args.shot_block
    if args.optimize is not None:
        options["optimize"] = args.optimize
    if args.max_memory is not None:
        options["max_memory"] = args.max_memory
    sharded = BACKENDS[args.backend].sharded
    sliced = BACKENDS[args.backend].sliced and world_comm() is not None
    if sliced:   # every rank contracts its share of the slices and gets the whole answer
        options["comm"] = world_comm()
    backend = get_backend(args.backend, **options)
    result = backend.run(circuit, shots=run.shots, seed=run.seed, precision=run.precision,
                         save_state=args.save_state, progress=None, noise=noise,
                         checkpoint=_checkpointing(args))
    if args.noise is not None:
        result.metadata["noise_model"] = str(args.noise)
    if args.amplitude is not None:
        values = backend.amplitudes(circuit, args.amplitude_indices, precision=run.precision)
        result.metadata["amplitudes"] = {b: [float(v.real), float(v.imag)]
                                         for b, v in zip(args.amplitude, values)}
    if args.observable is not None:
        result.metadata["observable"] = args.observable
        result.metadata["expectation"] = float(backend.expectation(circuit, args.pauli_sum,
                                                                   precision=run.precision))
    if args.stats and hasattr(backend, "stats"):
        result.metadata["contraction"] = backend.stats.as_dict()
        if sliced:   # collective: each rank's seconds contracting its slices
            result.metadata["ranks"] = backend.comm.size
            result.metadata["compute_time_s"] = [
                round(t, 6) for t in backend.comm.allgather(backend.stats.contract_seconds)]
    one_writer = sliced and backend.comm.rank != 0
    if args.out is not None and not one_writer:
        if sharded:  # collective: every rank writes its shard
            backend.save_result(result, args.out)
        else:
            from ..io.hdf5 import save_result

            save_result(result, args.out)
    if (sharded or sliced) and backend.comm.rank != 0:
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
