"""NetQASM SDK applications (SquidASM style) run unchanged on qsim_dist's network runtime
(qsim_dist.netqasm_backend), checked against analytic values."""

from __future__ import annotations

import math
import random

import pytest

import qsim_dist.netqasm_backend as nq   # before the SDK's external names are used
from netqasm.lang.ir import BreakpointAction
from netqasm.sdk import EPRSocket, Qubit
from netqasm.sdk.classical_communication.message import StructuredMessage
from netqasm.sdk.epr_socket import EprMeasBasis
from netqasm.sdk.external import NetQASMConnection, Socket

from qsim_dist.errors import QsimDistError
from qsim_dist.network import network_from_dict

THETA = 1.1   # the teleported state: rot_y(THETA)|0>


def _network(names, links, fidelity=1.0, comm_qubits=2, latency=1e-6, **node):
    return network_from_dict({
        "nodes": {n: {"data_qubits": 3, "comm_qubits": comm_qubits, **node} for n in names},
        "links": [{"between": list(pair), "fidelity": fidelity, "latency": latency,
                   "attempt_time": 1e-6} for pair in links]})


def _angle(theta):
    """rot_y takes an angle n * pi / 2^d: the closest with d = 10."""
    return round(theta / math.pi * 2 ** 10), 10


# ---- applications, written as for SquidASM ------------------------------------------------------

def teleport_sender(prepare_plus: bool = False):
    epr_socket = EPRSocket("bob")
    socket = Socket("alice", "bob")
    with NetQASMConnection("alice", epr_sockets=[epr_socket]) as alice:
        q = Qubit(alice)
        if prepare_plus:
            q.H()
        else:
            n, d = _angle(THETA)
            q.rot_Y(n=n, d=d)
        e = epr_socket.create_keep()[0]
        q.cnot(e)
        q.H()
        m1 = q.measure()
        m2 = e.measure()
    socket.send_structured(StructuredMessage("corrections", (int(m1), int(m2))))
    return {"m1": int(m1), "m2": int(m2)}


def teleport_receiver(prepare_plus: bool = False):
    """Undoes the preparation after the corrections: a perfect teleport then measures 0."""
    epr_socket = EPRSocket("alice")
    socket = Socket("bob", "alice")
    with NetQASMConnection("bob", epr_sockets=[epr_socket]) as bob:
        e = epr_socket.recv_keep()[0]
        bob.flush()
        m1, m2 = socket.recv_structured().payload
        if m2 == 1:
            e.X()
        if m1 == 1:
            e.Z()
        if prepare_plus:
            e.H()
        else:
            n, d = _angle(THETA)
            e.rot_Y(n=2 ** (d + 1) - n, d=d)   # rot_y(-THETA) = rot_y(4 pi - THETA)
        m = e.measure()
    return {"m": int(m)}


def ghz_end(name, peer, create):
    def main():
        epr_socket = EPRSocket(peer)
        socket = Socket(name, peer)
        with NetQASMConnection(name, epr_sockets=[epr_socket]) as conn:
            e = (epr_socket.create_keep if create else epr_socket.recv_keep)()[0]
            conn.flush()
            if not create:   # the far end of the fused pair: X on bob's parity bit
                if int(socket.recv()) == 1:
                    e.X()
            m = e.measure()
        return int(m)
    return main


def ghz_middle():
    """bob fuses his halves of alice-bob and bob-charlie into a GHZ state of three."""
    to_alice, to_charlie = EPRSocket("alice"), EPRSocket("charlie")
    socket = Socket("bob", "charlie")
    with NetQASMConnection("bob", epr_sockets=[to_alice, to_charlie]) as bob:
        a = to_alice.recv_keep()[0]
        c = to_charlie.create_keep()[0]
        a.cnot(c)
        parity = c.measure()
        bob.flush()
        socket.send(str(int(parity)))
        m = a.measure()
    return int(m)


def bb84_party(name, peer, create, pairs):
    """Each pair measured in a basis drawn with Python's random module (Z, or X through H);
    the parties then exchange their bases and keep the pairs where they agree."""
    def main():
        epr_socket = EPRSocket(peer)
        socket = Socket(name, peer)
        bases = [random.randint(0, 1) for _ in range(pairs)]
        with NetQASMConnection(name, epr_sockets=[epr_socket]) as conn:
            outcomes = []
            for basis in bases:
                e = (epr_socket.create_keep if create else epr_socket.recv_keep)()[0]
                if basis:
                    e.H()
                outcomes.append(e.measure())
        bits = [int(m) for m in outcomes]
        if create:
            socket.send("".join(map(str, bases)))
            theirs = [int(b) for b in socket.recv()]
        else:
            theirs = [int(b) for b in socket.recv()]
            socket.send("".join(map(str, bases)))
        return {"key": [b for b, mine, other in zip(bits, bases, theirs) if mine == other],
                "bases": bases}
    return main


def measure_directly(name, peer, create, pairs, basis):
    def main():
        epr_socket = EPRSocket(peer)
        with NetQASMConnection(name, epr_sockets=[epr_socket]):
            if create:
                results = epr_socket.create_measure(number=pairs, basis_local=basis,
                                                    basis_remote=basis)
            else:
                results = epr_socket.recv_measure(number=pairs)
        return [r.measurement_outcome for r in results]
    return main


def measure_flush_correct():
    """Measure |+> and keep the qubit, flush, flip it back when the outcome was 1: the second
    measurement gives 0 every time."""
    with NetQASMConnection("alice") as alice:
        q = Qubit(alice)
        q.H()
        first = q.measure(inplace=True)
        alice.flush()
        if int(first) == 1:
            q.X()
        second = q.measure()
    return int(first), int(second)


# ---- tests --------------------------------------------------------------------------------------

def _within_3_sigma(hits, n, p):
    sigma = math.sqrt(p * (1 - p) / n)
    return abs(hits / n - p) <= 3 * sigma


def test_teleport_is_exact_on_a_perfect_link():
    net = _network(["alice", "bob"], [("alice", "bob")])
    run = nq.run_netqasm({"alice": teleport_sender, "bob": teleport_receiver}, net, shots=40,
                         seed=3)
    assert [r["m"] for r in run.results["bob"]] == [0] * 40
    corrections = {(r["m1"], r["m2"]) for r in run.results["alice"]}
    assert len(corrections) >= 3          # the Bell outcomes are random; the result is not
    assert run.report.epr_pairs == 1.0 and run.report.execution == "online"


def test_teleport_fidelity_on_a_werner_link():
    fidelity = 0.8
    net = _network(["alice", "bob"], [("alice", "bob")], fidelity=fidelity)
    shots = 200
    run = nq.run_netqasm({"alice": teleport_sender, "bob": teleport_receiver}, net,
                         shots=shots, seed=5,
                         inputs={"alice": {"prepare_plus": True}, "bob": {"prepare_plus": True}})
    zeros = sum(r["m"] == 0 for r in run.results["bob"])
    # teleporting over a Werner pair of fidelity F gives fidelity (2F + 1)/3
    assert _within_3_sigma(zeros, shots, (2 * fidelity + 1) / 3)
    assert zeros < shots                  # the noise is there


def test_ghz_outcomes_all_equal():
    net = _network(["alice", "bob", "charlie"], [("alice", "bob"), ("bob", "charlie")])
    apps = {"alice": ghz_end("alice", "bob", create=True), "bob": ghz_middle,
            "charlie": ghz_end("charlie", "bob", create=False)}
    run = nq.run_netqasm(apps, net, shots=30, seed=7)
    triples = list(zip(*(run.results[n] for n in ("alice", "bob", "charlie"))))
    assert set(triples) == {(0, 0, 0), (1, 1, 1)}
    assert run.report.epr_pairs == 2.0


def test_bb84_matching_bases_agree_and_qber_matches_the_werner_value():
    pairs = 60
    perfect = _network(["alice", "bob"], [("alice", "bob")])
    apps = {"alice": bb84_party("alice", "bob", True, pairs),
            "bob": bb84_party("bob", "alice", False, pairs)}
    run = nq.run_netqasm(apps, perfect, seed=11)
    a, b = run.results["alice"][0], run.results["bob"][0]
    assert a["key"] == b["key"] and len(a["key"]) > pairs // 3

    fidelity, pairs = 0.7, 240
    noisy = _network(["alice", "bob"], [("alice", "bob")], fidelity=fidelity)
    apps = {"alice": bb84_party("alice", "bob", True, pairs),
            "bob": bb84_party("bob", "alice", False, pairs)}
    run = nq.run_netqasm(apps, noisy, seed=12)
    a, b = run.results["alice"][0], run.results["bob"][0]
    errors = sum(x != y for x, y in zip(a["key"], b["key"]))
    # a Werner pair flips a matching-basis outcome with probability 2(1 - F)/3
    assert _within_3_sigma(errors, len(a["key"]), 2 * (1 - fidelity) / 3)


def test_same_seed_same_results_and_random_module_restored():
    net = _network(["alice", "bob"], [("alice", "bob")], fidelity=0.9)
    apps = {"alice": bb84_party("alice", "bob", True, 20),
            "bob": bb84_party("bob", "alice", False, 20)}
    random.seed(99)
    expected_next = random.random()
    random.seed(99)
    first = nq.run_netqasm(apps, net, shots=2, seed=4).results
    assert random.random() == expected_next
    assert nq.run_netqasm(apps, net, shots=2, seed=4).results == first
    assert first["alice"][0]["bases"] != first["alice"][1]["bases"]


def test_measure_directly_in_x_follows_the_werner_value():
    pairs, fidelity = 200, 0.8
    net = _network(["alice", "bob"], [("alice", "bob")], fidelity=fidelity)
    apps = {"alice": measure_directly("alice", "bob", True, pairs, EprMeasBasis.X),
            "bob": measure_directly("bob", "alice", False, pairs, EprMeasBasis.X)}
    run = nq.run_netqasm(apps, net, seed=2)
    a, b = run.results["alice"][0], run.results["bob"][0]
    assert 0.3 < sum(a) / pairs < 0.7      # an X outcome of half a Bell pair is a coin
    errors = sum(x != y for x, y in zip(a, b))
    assert _within_3_sigma(errors, pairs, 2 * (1 - fidelity) / 3)
    assert run.report.epr_pairs == pairs


def test_branch_on_a_flushed_outcome():
    net = network_from_dict({"nodes": {"alice": {"data_qubits": 2}}})
    run = nq.run_netqasm({"alice": measure_flush_correct}, net, shots=40, seed=1)
    firsts = {first for first, _ in run.results["alice"]}
    assert firsts == {0, 1}
    assert all(second == 0 for _, second in run.results["alice"])


def test_unsupported_instruction_is_one_error_line():
    def breakpoint_app():
        with NetQASMConnection("alice") as alice:
            q = Qubit(alice)
            alice.insert_breakpoint(BreakpointAction.DUMP_LOCAL_STATE)
            q.measure()

    net = network_from_dict({"nodes": {"alice": {"data_qubits": 2}}})
    with pytest.raises(nq.UnsupportedNetQASM) as info:
        nq.run_netqasm({"alice": breakpoint_app}, net, seed=1)
    assert isinstance(info.value, QsimDistError)
    message = str(info.value)
    assert "\n" not in message and "'breakpoint'" in message and "alice" in message


def test_application_error_names_the_node():
    def typo():
        with NetQASMConnection("alice") as alice:
            Qubit(alice).measure()
        raise ValueError("no key today")

    net = network_from_dict({"nodes": {"alice": {"data_qubits": 2}}})
    with pytest.raises(QsimDistError, match="alice.*ValueError: no key today"):
        nq.run_netqasm({"alice": typo}, net, seed=1)


def test_network_from_squidasm_maps_the_yaml_fields(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("""
stacks:
  - name: alice
    qdevice_typ: generic
    qdevice_cfg: {num_qubits: 3, num_comm_qubits: 1, T1: 1.e+9, T2: 5.e+8,
                  single_qubit_gate_time: 1000, measure_time: 10000,
                  single_qubit_gate_depolar_prob: 0.01, two_qubit_gate_depolar_prob: 0.1}
  - name: bob
    qdevice_typ: generic
    qdevice_cfg: {num_qubits: 2}
links:
  - {stack1: alice, stack2: bob, typ: depolarise,
     cfg: {fidelity: 0.9, prob_success: 0.5, t_cycle: 100}}
clinks:
  - {stack1: alice, stack2: bob, typ: default, cfg: {delay: 2000}}
""")
    net = nq.network_from_squidasm(config)
    alice, bob = net.nodes["alice"], net.nodes["bob"]
    assert (alice.data_qubits, alice.comm_qubits) == (3, 1)
    assert alice.t1 == pytest.approx(1.0) and alice.t2 == pytest.approx(0.5)
    assert alice.gate_time == pytest.approx(1e-6) and alice.measure_time == pytest.approx(1e-5)
    assert alice.gate_error_1q == pytest.approx(0.01)
    # two independent depolarisations of 0.1: entanglement fidelity (1 - 0.075)^2
    assert 1 - 15 / 16 * alice.gate_error_2q == pytest.approx(0.925 ** 2)
    assert bob.t1 == math.inf and bob.comm_qubits == 2
    link = net.link("alice", "bob")
    assert (link.fidelity, link.success_probability) == (0.9, 0.5)
    assert link.attempt_time == pytest.approx(1e-7) and link.latency == pytest.approx(2e-6)
    with pytest.raises(QsimDistError, match="heralded"):
        nq.network_from_squidasm({"stacks": [{"name": "a"}, {"name": "b"}],
                                  "links": [{"stack1": "a", "stack2": "b", "typ": "heralded"}]})


def test_example_prints_its_expected_output_and_meets_the_werner_value(capsys):
    import importlib.util
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    spec = importlib.util.spec_from_file_location("netqasm_teleport",
                                                  examples / "netqasm_teleport.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main([])
    assert capsys.readouterr().out == (examples / "expected" /
                                       "netqasm_teleport.txt").read_text()
    # idle decoherence only lowers it: at most the Werner value, within 3 sigma
    assert out["estimate"] <= out["analytic"] + 3 * out["stderr"]
    assert out["estimate"] >= out["analytic"] - 0.05 - 3 * out["stderr"]
