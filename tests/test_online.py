"""Node programs that read their outcomes, run online (qsim_dist.online): branching and retries
in plain Python, the same physics as the lowered path where both run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsim_dist.dqc import run_nodes
from qsim_dist.network import network_from_dict
from qsim_dist.network.nodes import ReadsOutcomes, lower_nodes
from qsim_dist.network.program import ProgramError


def _pair(fidelity=1.0, t2=None):
    node = {"data_qubits": 2, "comm_qubits": 1}
    if t2 is not None:
        node.update({"t1": 10 * t2, "t2": t2})
    return network_from_dict({
        "nodes": {"A": dict(node), "B": dict(node)},
        "links": [{"between": ["A", "B"], "fidelity": fidelity, "latency": 1e-6,
                   "attempt_time": 1e-6}]})


def _teleport(read: bool):
    """Teleport u3(1.1, 0.4, -0.7)|0> from A to B; B corrects by Python branches (read) or by
    classically controlled gates (the lowered path)."""
    def alice(node):
        q = node.qubit()
        node.gate("u3", q, params=(1.1, 0.4, -0.7))
        a = yield node.epr("B")
        node.gate("cx", q, a)
        node.gate("h", q)
        z, x = node.measure(q), node.measure(a)
        node.free(q)
        node.free(a)
        yield node.send("B", z, x)

    def bob(node):
        b = yield node.epr("A")
        msg = yield node.recv("A")
        if read:
            z, x = yield node.read(*msg)
            if x:
                node.gate("x", b)
            if z:
                node.gate("z", b)
        else:
            node.correct("x", b, bits=msg[1])
            node.correct("z", b, bits=msg[0])
        return b

    return {"A": alice, "B": bob}


@pytest.mark.parametrize("backend", ["statevector", "reference", "modulenet"])
def test_teleport_with_python_branches_is_exact_online(backend):
    report = run_nodes(_teleport(read=True), _pair(), shots=30, seed=2, backend=backend)
    assert report.execution == "online"
    assert report.fidelity == pytest.approx(1.0, abs=1e-9)
    lowered = run_nodes(_teleport(read=False), _pair(), shots=30, seed=2, backend=backend)
    assert lowered.execution == "lowered"


def test_online_and_lowered_agree_with_noisy_links_and_decoherence():
    net = _pair(fidelity=0.9, t2=5e-6)
    online = run_nodes(_teleport(read=True), net, shots=400, seed=3, backend="statevector")
    lowered = run_nodes(_teleport(read=False), net, shots=400, seed=3, backend="statevector")
    sigma = np.hypot(online.fidelity_stderr, lowered.fidelity_stderr)
    assert abs(online.fidelity - lowered.fidelity) < 3 * sigma + 1e-9
    assert online.fidelity < 0.97   # the noise is there
    assert online.epr_pairs == lowered.epr_pairs == 1


def test_repeat_until_success_loops_on_its_outcomes():
    """Measure |+> until it gives 1: the attempts are geometric (mean 2), the output bit is
    always 1, and the makespan spreads over the shots."""
    def alice(node):
        attempts = 0
        while True:
            q = node.qubit()
            node.gate("h", q)
            bit = node.measure(q, output=True)
            value = yield node.read(bit)
            node.free(q)
            attempts += 1
            if value == 1:
                return None
            yield node.wait(1e-6)

    net = _pair()
    report = run_nodes({"A": alice}, net, shots=400, seed=5, backend="statevector")
    assert report.execution == "online"
    # every attempt's bit is an output bit (the first rightmost): 1 after zeros, any length
    assert all(k == "1" + "0" * (len(k) - 1) for k in report.counts)
    lengths = np.repeat([len(k) for k in report.counts], list(report.counts.values()))
    assert abs(lengths.mean() - 2.0) < 3 * np.sqrt(2.0 / len(lengths))   # geometric, p = 1/2
    spread = report.distribution["makespan_s"]
    assert spread["max"] > spread["min"]


def test_reading_a_bit_the_node_does_not_have_is_a_program_error():
    def alice(node):
        q = node.qubit()
        bit = node.measure(q)
        yield node.send("B", bit)

    def bob(node):
        yield node.wait(1e-3)
        yield node.read(alice_bits[0])

    alice_bits = []

    def alice_keep(node):
        q = node.qubit()
        bit = node.measure(q)
        alice_bits.append(bit.value)
        yield node.wait(0)

    with pytest.raises(ProgramError, match="does not have"):
        run_nodes({"A": alice_keep, "B": bob}, _pair(), shots=2, seed=1, backend="statevector")


def test_lower_nodes_refuses_a_program_that_reads():
    def alice(node):
        q = node.qubit()
        yield node.read(node.measure(q))

    with pytest.raises(ReadsOutcomes, match="online"):
        lower_nodes({"A": alice}, _pair())


# ---- the same report online and lowered, on every workload that runs on both ---------------------

def _workloads():
    from qsim_dist.network.workloads import ghz_modules, repeater_chain
    yield "teleport", _teleport(read=False), _pair(0.9, t2=5e-5)
    net, programs = repeater_chain(2, fidelity=0.92, t2=1e-3)
    yield "repeater chain", programs, net
    net, programs = ghz_modules(3, "line", fidelity=0.95)
    yield "ghz line", programs, net
    net, programs = ghz_modules(4, "star", fidelity=0.95, measure=True)
    yield "ghz star, measured", programs, net


@pytest.mark.parametrize("name", ["teleport", "repeater chain", "ghz line",
                                  "ghz star, measured"])
def test_online_and_lowered_give_the_same_report(name):
    programs, net = next((p, n) for w, p, n in _workloads() if w == name)
    shots = 400
    reports = {ex: run_nodes(programs, net, shots=shots, seed=9, backend="statevector",
                             schedules=shots, execution=ex) for ex in ("lowered", "online")}
    low, on = reports["lowered"], reports["online"]
    assert (low.execution, on.execution) == ("lowered", "online")
    if low.fidelity is not None:
        sigma = math.hypot(low.fidelity_stderr, on.fidelity_stderr)
        assert abs(low.fidelity - on.fidelity) <= 3 * sigma + 1e-9
    for key in set(low.counts) | set(on.counts):   # each outcome's frequency within 3 sigma
        p1, p2 = low.counts.get(key, 0) / shots, on.counts.get(key, 0) / shots
        p = (p1 + p2) / 2
        assert abs(p1 - p2) <= 3 * math.sqrt(2 * p * (1 - p) / shots) + 1e-9
    assert on.epr_pairs == pytest.approx(low.epr_pairs, rel=0.1)
    assert on.classical_bits == pytest.approx(low.classical_bits, rel=0.1)


def test_execution_option_is_checked():
    with pytest.raises(Exception, match="execution must be one of"):
        run_nodes(_teleport(read=False), _pair(), shots=2, seed=1, execution="eager")
    with pytest.raises(ReadsOutcomes):
        run_nodes(_teleport(read=True), _pair(), shots=2, seed=1, execution="lowered")
