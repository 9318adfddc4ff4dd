"""Node programs that read their outcomes, online, under ``mpiexec -n 1``, ``-n 2`` and ``-n 4``
(and plain pytest, one rank): each program runs only on the rank that owns its node (its code
runs once, there), the other ranks replay what it did, and every rank returns the report that
one process gives for the same seed, on ``modulenet`` (tensors on their owners) and on
``statevector``."""

from __future__ import annotations

import pytest

from qsim_dist.comm import Comm
from qsim_dist.dqc import ModuleRanks, run_nodes
from qsim_dist.network import gate_protocols as gp
from qsim_dist.network.nodes import NodeProgramError, ProgramError
from qsim_dist.network.workloads import purified_chain, repeater_chain


@pytest.fixture(scope="module")
def ranks():
    return Comm()


def _same(a, b):
    assert a.counts == b.counts
    assert a.fidelity == pytest.approx(b.fidelity, abs=1e-12)
    for key in ("epr_pairs", "classical_bits", "makespan_s", "seed", "execution"):
        assert getattr(a, key) == getattr(b, key), key
    assert a.distribution == b.distribution


def _rus_programs(runs_on: dict):
    """A repeat-until-success remote rotation; each program notes where its code ran."""
    def alice(node):
        runs_on.setdefault("alice", set()).add(Comm().rank)
        ok = yield from gp.remote_rz_source(node, "bob", 0.3, max_attempts=8)
        return ok

    def bob(node):
        runs_on.setdefault("bob", set()).add(Comm().rank)
        q = node.qubit()
        node.gate("h", q)
        yield from gp.remote_rz_target(node, q, "alice")
        node.gate("h", q)
        yield node.measure(q, output=True)
    return {"alice": alice, "bob": bob}


@pytest.mark.parametrize("backend", ["modulenet", "statevector"])
def test_purified_chain_online_is_the_one_process_report(ranks, backend):
    net, programs = purified_chain(3, fidelity=0.9, protocol="dejmps", rounds=1,
                                   gate_error_2q=0.01)
    alone = run_nodes(programs, net, shots=12, seed=3, backend=backend, execution="online")
    spread = run_nodes(programs, net, shots=12, seed=3, backend=backend, execution="online",
                       ranks=ranks)
    _same(spread, alone)
    assert spread.execution == "online"
    assert ranks.comm.allgather(spread.counts) == [spread.counts] * ranks.size


def test_each_program_runs_only_on_its_owner(ranks):
    from qsim_dist.network.topology import network_from_dict

    net = network_from_dict({"nodes": {"alice": {"data_qubits": 2, "comm_qubits": 2},
                                       "bob": {"data_qubits": 2, "comm_qubits": 2}},
                             "links": [{"between": ["alice", "bob"], "fidelity": 1.0}]})
    runs_on: dict = {}
    report = run_nodes(_rus_programs(runs_on), net, shots=8, seed=5, backend="modulenet",
                       execution="online", ranks=ranks)
    owner = ModuleRanks(ranks, net).owner
    for name, where in runs_on.items():   # on this rank: only the programs it owns ran
        assert where == {ranks.rank}
        assert owner[name] == ranks.rank
    everyone = ranks.comm.allgather(sorted(runs_on))
    assert sorted(n for part in everyone for n in part) == ["alice", "bob"]
    alone = run_nodes(_rus_programs({}), net, shots=8, seed=5, backend="modulenet",
                      execution="online")
    _same(report, alone)


def test_a_program_that_fails_on_its_owner_fails_on_every_rank(ranks):
    net, _ = repeater_chain(1)

    def a(node):
        q = node.qubit()
        m = yield node.measure(q)
        value = yield node.read(m)
        raise ValueError(f"bad value {value}")

    def b(node):
        yield node.wait(1e-6)

    with pytest.raises(NodeProgramError, match="bad value 0"):
        run_nodes({"A": a, "B": b}, net, shots=2, seed=1, backend="modulenet",
                  execution="online", ranks=ranks)

    def reads_foreign(node):   # a refusal inside an operation, also everywhere
        q = node.qubit()
        yield node.read(node.measure(q))
        yield node.read(*[])

    with pytest.raises(ProgramError, match="read needs at least one bit"):
        run_nodes({"A": reads_foreign, "B": b}, net, shots=2, seed=1, backend="modulenet",
                  execution="online", ranks=ranks)
