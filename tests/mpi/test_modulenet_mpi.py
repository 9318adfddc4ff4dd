"""modulenet under ``mpiexec -n 1``, ``-n 2`` and ``-n 4`` (and plain pytest, one rank): every
module's tensor lives on one rank (or, with ``spread="groups"``, the schedule groups of a
network run are shared out among the ranks), and every rank returns the report one process
gives for the same seed; ``qsim-dist dqc --backend modulenet`` under mpiexec prints that report
once, from rank 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import numpy as np

from qsim_dist import library as lib
from qsim_dist.backends import get_backend
from qsim_dist.backends.modulenet import ModuleNetBackend, place_modules
from qsim_dist.comm import Comm
from qsim_dist.dqc import run_nodes, run_program
from qsim_dist.network import load_network
from qsim_dist.network.distribute import distribute
from qsim_dist.network.workloads import ghz_modules, repeater_chain
from qsim_dist.io import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def ranks():
    return Comm()


def _same(a, b):
    assert a.counts == b.counts
    assert a.fidelity == pytest.approx(b.fidelity, abs=1e-12)
    assert a.fidelity_stderr == pytest.approx(b.fidelity_stderr, abs=1e-12)
    for key in ("epr_pairs", "classical_bits", "makespan_s", "state_stats", "seed"):
        assert getattr(a, key) == getattr(b, key), key


@pytest.mark.parametrize("spread", ["modules", "groups"])
def test_a_chain_over_ranks_gives_the_one_process_report(ranks, spread):
    """Random link timing (success probability 0.5): 6 schedule groups, each over the module
    owners or dealt out round robin."""
    net, programs = repeater_chain(6, fidelity=0.97, success_probability=0.5)
    alone = run_nodes(programs, net, shots=60, seed=4, backend="modulenet", schedules=6)
    spread_report = run_nodes(programs, net, shots=60, seed=4, backend="modulenet",
                              schedules=6, ranks=ranks, spread=spread)
    _same(spread_report, alone)
    assert ranks.comm.allgather(spread_report.counts) == [spread_report.counts] * ranks.size
    stats = spread_report.rank_stats
    assert stats["spread"] == spread and stats["ranks"] == ranks.size
    assert len(stats["comm_time_s"]) == len(stats["other_time_s"]) == ranks.size
    if spread == "modules" and ranks.size > 1:   # bond factors crossed between owners
        assert stats["messages"] > 0 and stats["bytes_sent"] > 0
    if spread == "groups" or ranks.size == 1:
        assert stats["messages"] == 0


@pytest.mark.parametrize("spread", ["modules", "groups"])
def test_a_program_over_ranks_gives_the_one_process_report(ranks, spread):
    net = load_network(EXAMPLES / "network_chain.toml")
    program = distribute(load(EXAMPLES / "dqc_small.qasm"), net)
    alone = run_program(program, net, shots=40, seed=7, backend="modulenet")
    spread_report = run_program(program, net, shots=40, seed=7, backend="modulenet",
                                ranks=ranks, spread=spread)
    _same(spread_report, alone)


@pytest.mark.parametrize("topology", ["line", "star"])
def test_ghz_over_modules_on_ranks_is_exact_on_the_tensors(ranks, topology):
    """16 modules (beyond the dense target: the fidelity is an overlap of module tensors)."""
    net, programs = ghz_modules(16, topology)
    alone = run_nodes(programs, net, shots=20, seed=2, backend="modulenet", ideal=True)
    spread = run_nodes(programs, net, shots=20, seed=2, backend="modulenet", ideal=True,
                       ranks=ranks)
    _same(spread, alone)
    assert spread.fidelity == pytest.approx(1.0, abs=1e-9)


def test_every_rank_holds_only_the_tensors_of_its_modules(ranks):
    """A random circuit over 6 modules of 2 qubits: the tensors of a module are amplitudes on
    its owner and a shape elsewhere, and every readout equals the one-process reference."""
    modules = [q // 2 for q in range(12)]
    circuit = lib.random_circuit(12, 5, seed=11)
    backend = ModuleNetBackend(modules=modules, comm=ranks)
    state = backend.final_state(circuit, "double")
    owner = place_modules(modules, ranks.size)
    for m, t in state.tensors.items():
        assert isinstance(t, np.ndarray) == (owner[m] == ranks.rank or ranks.size == 1), m
    assert state.nbytes() == ModuleNetBackend(modules=modules).final_state(
        circuit, "double").nbytes()
    held = ranks.comm.allgather(state.local_nbytes())
    assert sum(held) == state.nbytes()
    reference = get_backend("reference").statevector(circuit)
    np.testing.assert_allclose(state.statevector(), reference, atol=1e-12)
    rng = np.random.default_rng(5)
    for _ in range(4):
        x, z = (int(v) for v in rng.integers(0, 1 << 12, size=2))
        dense = get_backend("reference").expectation(
            circuit, _pauli_string(x, z, 12))
        assert state.pauli_expectation(x, z).real == pytest.approx(dense, abs=1e-10)
    rho = state.reduced_density_matrix([0, 5, 11])
    dense_rho = get_backend("reference").final_state(circuit, "double") \
        .reduced_density_matrix([0, 5, 11])
    np.testing.assert_allclose(rho, dense_rho, atol=1e-12)


def _pauli_string(x: int, z: int, n: int) -> str:
    letters = {(0, 0): "", (1, 0): "X", (0, 1): "Z", (1, 1): "Y"}
    terms = [f"{letters[(x >> q) & 1, (z >> q) & 1]}{q}" for q in range(n)
             if letters[(x >> q) & 1, (z >> q) & 1]]
    return " ".join(terms) or "I0"


def test_a_bad_spread_is_one_clear_error(ranks):
    from qsim_dist.errors import OptionError

    net, programs = repeater_chain(2)
    with pytest.raises(OptionError, match="spread"):
        run_nodes(programs, net, shots=4, seed=1, backend="modulenet", ranks=ranks,
                  spread="qubits")


def test_an_unseeded_run_agrees_on_rank_zero_s_seed(ranks):
    net, programs = repeater_chain(2, fidelity=0.97, success_probability=0.5)
    report = run_nodes(programs, net, shots=20, backend="modulenet", schedules=3, ranks=ranks)
    assert ranks.comm.allgather(report.seed) == [report.seed] * ranks.size


def test_ranks_with_a_sharded_backend_is_refused(ranks):
    from qsim_dist.errors import OptionError

    net, programs = repeater_chain(2)
    with pytest.raises(OptionError, match="sharded"):
        run_nodes(programs, net, shots=4, seed=1, backend="distributed", ranks=ranks)


def test_dqc_command_on_modulenet_prints_one_report(ranks, capsys):
    from qsim_dist.cli import _main

    args = ["dqc", str(EXAMPLES / "dqc_small.qasm"), "--network",
            str(EXAMPLES / "network_chain.toml"), "--shots", "40", "--seed", "9", "--json",
            "--backend", "modulenet"]
    assert _main(args) == 0
    text = capsys.readouterr().out
    ranks.comm.Barrier()
    if ranks.rank != 0:
        assert text == ""
        return
    summary = json.loads(text)
    assert summary["backend"] == "modulenet"
    net = load_network(EXAMPLES / "network_chain.toml")
    ref = run_program(distribute(load(EXAMPLES / "dqc_small.qasm"), net), net, shots=40,
                      seed=9, backend="modulenet")
    assert summary["counts"] == ref.counts
    assert summary["fidelity"] == pytest.approx(ref.fidelity, abs=1e-12)


def test_dqc_stats_print_the_traffic_between_ranks(ranks, capsys):
    from qsim_dist.cli import _main

    args = ["dqc", str(EXAMPLES / "dqc_small.qasm"), "--network",
            str(EXAMPLES / "network_chain.toml"), "--shots", "20", "--seed", "3",
            "--backend", "modulenet", "--stats"]
    assert _main(args) == 0
    text = capsys.readouterr().out
    ranks.comm.Barrier()
    if ranks.rank != 0:
        assert text == ""
    elif ranks.size > 1:
        assert f"ranks      {ranks.size} (modules spread)" in text
        assert f"rank {ranks.size - 1:<5}" in text and "s in MPI" in text
