"""modulenet under ``mpiexec -n 1``, ``-n 2`` and ``-n 4`` (and plain pytest, one rank): the
schedule groups of a network run are shared out among the ranks and gathered in group order,
so every rank returns the report one process gives for the same seed; ``qsim-dist dqc
--backend modulenet`` under mpiexec prints that report once, from rank 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qsim_dist.comm import Comm
from qsim_dist.dqc import run_nodes, run_program
from qsim_dist.network import load_network
from qsim_dist.network.distribute import distribute
from qsim_dist.network.workloads import repeater_chain
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


def test_a_chain_over_ranks_gives_the_one_process_report(ranks):
    """Random link timing (success probability 0.5): 6 schedule groups dealt out round robin."""
    net, programs = repeater_chain(6, fidelity=0.97, success_probability=0.5)
    alone = run_nodes(programs, net, shots=120, seed=4, backend="modulenet", schedules=6)
    spread = run_nodes(programs, net, shots=120, seed=4, backend="modulenet", schedules=6,
                       ranks=ranks)
    _same(spread, alone)
    assert ranks.comm.allgather(spread.counts) == [spread.counts] * ranks.size


def test_a_program_over_ranks_gives_the_one_process_report(ranks):
    net = load_network(EXAMPLES / "network_chain.toml")
    program = distribute(load(EXAMPLES / "dqc_small.qasm"), net)
    alone = run_program(program, net, shots=80, seed=7, backend="modulenet")
    spread = run_program(program, net, shots=80, seed=7, backend="modulenet", ranks=ranks)
    _same(spread, alone)


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
