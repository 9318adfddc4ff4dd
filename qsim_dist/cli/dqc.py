"""``qsim-dist dqc``: run a circuit on a modelled distributed quantum computer.

::

    qsim-dist dqc CIRCUIT.qasm --network NET.toml [--placement 0:A,1:A,2:B,...]
                  [--compiler auto|naive] [--shots N] [--seed S]
                  [--backend NAME] [--spread modules|groups] [--stats] [--ideal]
                  [--purify bbpssw|dejmps[:ROUNDS]] [--schedules K]
                  [--out REPORT.h5] [--json] [--plot SCHEDULE.png] [--topology-plot NET.png]

The circuit is distributed by the distribution compiler (:func:`qsim_dist.network.distribute.
distribute`, ``--compiler auto``, the default without ``--placement``) or by the naive
distributor (:mod:`qsim_dist.network.naive`, ``--compiler naive``, the default with
``--placement``), run by :func:`qsim_dist.dqc.run_program`, and summarised (``--json``: the
report's summary). The backends come from the registry, :data:`qsim_dist.backends.BACKENDS`;
shots and seed are resolved once, as :class:`qsim_dist.options.RunOptions`.

In one process ``--backend auto`` is the default: ``statevector`` for a machine of at most
:data:`qsim_dist.dqc.AUTO_DENSE_QUBITS` live qubits, ``modulenet`` (one tensor per module)
beyond; the report says which it picked and why. Under ``mpiexec -n P`` (P > 1) the
``distributed`` backend is the default: every rank takes the same steps with the same seed, the
lowered circuit's state is sharded over the ranks. ``--backend modulenet`` is allowed too: each
node's tensor lives on one rank (``--spread modules``, the default: the nodes dealt out by a walk
of the network graph, only bond factors crossing between ranks), or each rank runs whole
schedule groups (``--spread groups``). Either way rank 0 alone prints the report and writes
``--out`` and the pictures, and the report is the same as the one-process run's for the same
seed; ``--stats`` adds the messages, bytes and per-rank times of the MPI job.
Everything a user can get wrong (missing or malformed files, a bad placement, a circuit larger
than the network, an unwritable output) is checked before anything is simulated or written, and
raised as a :class:`~qsim_dist.errors.QsimDistError`, which ``qsim-dist`` prints as one line with
exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..backends import BACKENDS
from ..errors import OptionError, QsimDistError
from ..options import MAX_SEED, MAX_SHOTS, RunOptions
from .common import Job, backend_help, check_input_file, choose_backend, circuit_fingerprint, \
    file_fingerprint, int_option, job_fields, load_circuit, mpi_world_size, parse_inputs, \
    world_comm, INPUT_HELP, \
    write_top_counts

PURIFY_HELP = "distill every link pair: PROTOCOL[:ROUNDS], PROTOCOL bbpssw or dejmps (1 round)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``dqc`` command to ``subparsers`` (of :func:`qsim_dist.cli.build_parser`)."""
    dqc = subparsers.add_parser(
        "dqc", help="run a circuit on a modelled network of QPUs",
        description="Distribute an OpenQASM circuit over a network of QPU modules (network "
                    "file in TOML), simulate it with noisy links, timing and decoherence, and "
                    "report fidelity, EPR pairs, classical bits and makespan.")
    dqc.add_argument("circuit", metavar="CIRCUIT.qasm", help="OpenQASM 2 or 3 file")
    dqc.add_argument("--input", metavar="NAME=VALUE", action="append", default=None,
                     help=INPUT_HELP)
    dqc.add_argument("--network", metavar="NET.toml", required=True,
                     help="network file (see qsim_dist/network/topology.py and examples/)")
    dqc.add_argument("--placement", metavar="0:A,1:B,...", default=None,
                     help="node of every qubit (default: in order, filling nodes in file order)")
    dqc.add_argument("--shots", type=int_option("shots", maximum=MAX_SHOTS), default=1024,
                     help="shots, each one trajectory (default 1024)")
    dqc.add_argument("--seed", type=int_option("seed", maximum=MAX_SEED), default=None,
                     help="random seed (default: fresh entropy, reported in the output)")
    dqc.add_argument("--compiler", choices=("auto", "naive"), default=None,
                     help="auto: the distribution compiler (placement by partitioning, "
                          "bursts of remote gates sharing one EPR pair, teleportation where "
                          "cheaper; never more EPR pairs than naive); naive: one remote gate "
                          "per cross-node gate, qubits never move (default: auto, or naive "
                          "with --placement)")
    dqc.add_argument("--backend", choices=["auto", *BACKENDS], default=None,
                     help=backend_help() + "; auto (the default in one process): statevector "
                          "for a small machine, modulenet when the whole-machine statevector "
                          "would hold more than 2^14 amplitudes (the report says which)")
    dqc.add_argument("--spread", choices=("modules", "groups"), default="modules",
                     help="under mpiexec with --backend modulenet: modules (each node's tensor "
                          "on one rank, the default) or groups (whole schedule groups per rank)")
    dqc.add_argument("--stats", action="store_true",
                     help="under mpiexec: print the messages and bytes between ranks and each "
                          "rank's time in MPI and in the rest")
    dqc.add_argument("--ideal", action="store_true",
                     help="perfect links and nodes (F = 1, no noise, zero times)")
    dqc.add_argument("--purify", metavar="PROTOCOL[:ROUNDS]", default=None, help=PURIFY_HELP)
    dqc.add_argument("--observable", metavar="PAULI_SUM", action="append", default=None,
                     help="a Pauli sum over the circuit's qubits ('Z0 Z1 + 0.5 X3'), read off the "
                          "output qubits of every trajectory: its mean and standard error "
                          "(repeat for several)")
    dqc.add_argument("--schedules", type=int_option("schedules"), default=None,
                     help="sampled schedules (random generation times), shots spread over "
                          "them (default 16, or 1 when timing is deterministic)")
    dqc.add_argument("--out", metavar="REPORT.h5", default=None,
                     help="write counts and the report to this HDF5 file")
    dqc.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    dqc.add_argument("--plot", metavar="SCHEDULE.png", default=None,
                     help="draw the schedule (Gantt chart) to a PNG/SVG/PDF file")
    dqc.add_argument("--topology-plot", metavar="NET.png", default=None,
                     help="draw the network with its link fidelities to a PNG/SVG/PDF file")
    return dqc


def _parse_purify(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    protocol, _, rounds = text.partition(":")
    if protocol not in ("bbpssw", "dejmps") or (rounds and not rounds.isdigit()):
        raise OptionError(f"--purify must be bbpssw or dejmps, optionally with :ROUNDS, "
                          f"got '{text}'")
    return protocol, int(rounds) if rounds else 1


def _check_output(option: str, value: str | None, inputs: Sequence[Path],
                  picture: bool) -> None:
    if value is None:
        return
    from ..io.files import check_output_path

    try:
        check_output_path(value, "a picture" if picture else "the report")
    except QsimDistError as exc:
        raise OptionError(f"{option}: {exc}") from None
    path = Path(value)
    if any(path.resolve() == p.resolve() for p in inputs):
        raise OptionError(f"{option} '{value}' would overwrite an input file")
    if picture and path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise OptionError(f"{option} '{value}': use a .png, .svg or .pdf file name")


def prepare(args: argparse.Namespace) -> Job:
    """``qsim-dist dqc``: every check made and every input read and compiled, nothing simulated
    or written; a :class:`~qsim_dist.cli.common.Job` whose fields every MPI rank must agree on."""
    from ..network.naive import naive_program, parse_placement
    from ..network.topology import load_network

    args.backend = "auto" if args.backend in (None, "auto") and mpi_world_size() == 1 else \
        choose_backend(None if args.backend == "auto" else args.backend, groups_over_ranks=True)
    compiler = args.compiler or ("naive" if args.placement is not None else "auto")
    circuit_path, network_path = Path(args.circuit), Path(args.network)
    check_input_file("circuit", circuit_path)
    check_input_file("network", network_path)
    inputs = [circuit_path, network_path]
    _check_output("--out", args.out, inputs, picture=False)
    _check_output("--plot", args.plot, inputs, picture=True)
    _check_output("--topology-plot", args.topology_plot, inputs, picture=True)
    outputs = [Path(p).resolve() for p in (args.out, args.plot, args.topology_plot) if p]
    if len(set(outputs)) != len(outputs):
        raise OptionError("--out, --plot and --topology-plot must name different files")
    purification = _parse_purify(args.purify)
    if args.schedules == 0:
        raise OptionError("schedules must be a positive integer, got '0'")
    if args.plot or args.topology_plot:
        from ..network.plots import _pyplot

        _pyplot()   # matplotlib missing: say so before simulating
    network = load_network(network_path)
    circuit = load_circuit(circuit_path, parse_inputs(args.input))
    from ..observables import as_pauli_sum

    args.observables = [as_pauli_sum(text, circuit.num_qubits)
                        for text in args.observable or ()]   # refused before any run
    placement = None
    if args.placement is not None:
        placement = parse_placement(args.placement, circuit.num_qubits, network)
    if compiler == "auto":
        from ..network.distribute import distribute

        program = distribute(circuit, network, placement=placement)
        program.name = circuit.name
    else:
        program = naive_program(circuit, network, placement)
    fields = job_fields(args, {"circuit": circuit_fingerprint(circuit),
                               "network": file_fingerprint(network_path)},
                        outputs=("out", "plot", "topology_plot"))
    return Job(fields, lambda: _execute(args, network, circuit, program, compiler, purification))


def _execute(args, network, circuit, program, compiler, purification) -> int:
    """Run the prepared program (on every rank of an MPI job); rank 0 reports it."""
    from ..memory import precision_hint
    from ..dqc import run_program, save_report

    # an unseeded run's seed is drawn here, once, rank 0's on every rank; dqc has no
    # --precision: run_program's own (double) is used
    world = world_comm()
    run = RunOptions.resolve(args.shots, args.seed, comm=world)
    ranks = None
    if world is not None and BACKENDS[args.backend].modules:   # modules or groups over ranks
        from ..comm import Comm

        ranks = Comm(world)
    with precision_hint(False):   # dqc has no --precision: no memory hint to use it
        report = run_program(program, network, shots=run.shots, seed=run.seed,
                             backend=args.backend, ideal=args.ideal, schedules=args.schedules,
                             purification=purification, ranks=ranks, spread=args.spread,
                             observables=args.observables)
    if _rank(args.backend) != 0:
        return 0   # one report per job: rank 0 prints and writes it
    if args.topology_plot:
        from ..network.plots import plot_topology

        plot_topology(network, args.topology_plot)
    if args.plot:
        from ..network.plots import plot_schedule

        low_nodes = _qubit_nodes(report)
        plot_schedule(report.events, args.plot, low_nodes,
                      title=f"{circuit.name} on {network.name} (seed {report.seed})")
    if args.out:
        save_report(report, args.out)
    if args.json:
        summary = report.summary()
        summary["circuit"] = circuit.name
        summary["placement"] = dict(enumerate(program.placement))
        summary["compiler"] = compiler
        for key, value in (("results_file", args.out), ("schedule_plot", args.plot),
                           ("topology_plot", args.topology_plot)):
            if value:
                summary[key] = str(value)
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        _print_human(report, circuit.name, program.placement, args, compiler)
    return 0


def _rank(backend: str) -> int:
    """This process's MPI rank for a backend that runs on every rank (0 otherwise)."""
    if backend not in BACKENDS or not (BACKENDS[backend].sharded or BACKENDS[backend].modules):
        return 0
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank()


def _qubit_nodes(report) -> list[str]:
    nodes: dict[int, str] = {}
    for e in report.events:
        for q in e.qubits:
            nodes.setdefault(q, e.node)
    return [nodes.get(q, "") for q in range(max(nodes, default=-1) + 1)]


def _print_human(report, name: str, placement: Sequence[str], args, compiler: str) -> None:
    w = sys.stdout.write
    w(f"circuit    {name} ({report.num_qubits} qubits, {report.physical_qubits} with "
      f"communication qubits) on network {report.network}\n")
    w(f"placement  {', '.join(f'{q}:{n}' for q, n in enumerate(placement))} "
      f"(compiler {compiler})\n")
    w(f"backend    {report.backend}, seed {report.seed}, {report.shots} shots, "
      f"{report.schedules} schedule(s){' (ideal)' if report.ideal else ''}\n")
    if report.backend_choice:
        w(f"           ({report.backend_choice})\n")
    if report.state_stats:
        stats = report.state_stats
        w(f"tensors    largest bond {stats['largest_bond']:g}, at most "
          f"{stats['tensor_bytes']:g} bytes of module tensors per trajectory"
          + (f", discarded weight {stats['discarded_weight']:.3g}"
             if stats.get("discarded_weight") else "") + "\n")
    if getattr(args, "stats", False) and report.rank_stats:
        rs = report.rank_stats
        w(f"ranks      {rs['ranks']} ({rs['spread']} spread): {rs['messages']} messages, "
          f"{rs['bytes_sent']} bytes, {rs['broadcasts']} broadcasts\n")
        for r, (c, o) in enumerate(zip(rs["comm_time_s"], rs["other_time_s"])):
            w(f"rank {r:<5} {c:.3f} s in MPI, {o:.3f} s in the rest\n")
    if report.fidelity is not None:
        w(f"fidelity   {report.fidelity:.6f} +- {report.fidelity_stderr:.6f}\n")
    else:
        w("fidelity   n/a (the circuit measures or branches before its end)\n")
    for text, value, err in zip(args.observable or (), report.expectations,
                                report.expectations_stderr):
        w(f"<H>        {value:.10g} +- {err:.3g}  (H = {text})\n")
    w(f"EPR pairs  {report.epr_pairs:g} generated, {report.epr_pairs_consumed:g} consumed, "
      f"{report.epr_pairs_discarded:g} discarded\n")
    w(f"classical  {report.classical_bits:g} bits\n")
    w(f"makespan   {report.makespan_s * 1e6:.4g} us (std {report.makespan_std_s * 1e6:.3g} us)\n")
    for link, use in report.links.items():
        rounds = f", {use['rounds']:g} purification rounds" if use["rounds"] else ""
        w(f"link {link:<10} {use['pairs']:g} pairs, {use['attempts']:g} attempts{rounds}, "
          f"busy {use['busy_s'] * 1e6:.4g} us\n")
    if report.counts:
        write_top_counts(w, "counts     ", report.counts)
    for option, value in (("results", args.out), ("schedule", args.plot),
                          ("topology", args.topology_plot)):
        if value:
            w(f"{option:<10} {value}\n")
