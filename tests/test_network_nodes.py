"""Node programs (one generator per node) on the discrete-event runtime: teleportation written
as Alice's and Bob's programs against (2F+1)/3 and the makespan arithmetic, decoherence of a
node that waits on a message, deadlocks as clear errors, repeaters, capacity, and agreement
with the protocol functions of the runtime."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsim_dist.errors import OptionError
from qsim_dist.dqc import run_nodes
from qsim_dist.network import DeadlockError, ProgramError, lower_nodes, network_from_dict
from qsim_dist.network import physics
from qsim_dist.network.nodes import (cat_disentangle_recv, cat_disentangle_send,
                                     cat_entangle_recv, cat_entangle_send, swap_at,
                                     swap_correct, teleport_recv, teleport_send)

ANGLES = (1.1, 0.4, -0.7)


def within(p_hat: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(p_hat - p) <= sigmas * math.sqrt(max(p * (1 - p), 1e-4) / n)


def pair_network(fidelity=1.0, node=None, **link):
    node = {"data_qubits": 1, **(node or {})}
    return network_from_dict({"nodes": {"A": node, "B": node},
                              "links": [{"between": ["A", "B"], "fidelity": fidelity, **link}]})


def alice(node):
    q = node.qubit()
    node.gate("u3", q, params=ANGLES)
    a = yield node.epr("B")
    node.gate("cx", q, a)
    node.gate("h", q)
    z = node.measure(q)
    x = node.measure(a)
    node.free(q)
    node.free(a)
    yield node.send("B", z, x)


def bob(node):
    b = yield node.epr("A")
    z, x = yield node.recv("A")
    node.correct("x", b, bits=x)
    node.correct("z", b, bits=z)
    return b


@pytest.mark.parametrize("fidelity", [0.7, 0.9])
def test_teleportation_as_two_node_programs(fidelity):
    net = pair_network(fidelity)
    report = run_nodes({"A": alice, "B": bob}, net, shots=4000, seed=3, backend="reference")
    expected = physics.teleport_fidelity(fidelity)
    assert abs(report.fidelity - expected) < 4 * report.fidelity_stderr + 1e-12
    assert report.epr_pairs == 1 and report.classical_bits == 2
    # the ideal output state is the prepared one: u3(angles)|0>
    t, p, l = ANGLES
    psi = np.array([math.cos(t / 2), np.exp(1j * p) * math.sin(t / 2)])
    exact = run_nodes({"A": alice, "B": bob}, pair_network(1.0), shots=50, seed=1)
    assert exact.fidelity == pytest.approx(1.0, abs=1e-9)
    again = run_nodes({"A": alice, "B": bob}, pair_network(1.0), shots=50, seed=1, target=psi)
    assert again.fidelity == pytest.approx(1.0, abs=1e-9)


def test_teleportation_counts_after_the_inverse():
    """The same with Bob undoing the rotation and measuring: P(0) = (2F+1)/3 in the counts."""
    fidelity, shots = 0.8, 20000

    def bob_measures(node):
        b = yield from teleport_recv(node, "A")
        node.gate("u3", b, params=(-ANGLES[0], -ANGLES[2], -ANGLES[1]))
        node.measure(b, output=True)

    def alice_sends(node):
        q = node.qubit()
        node.gate("u3", q, params=ANGLES)
        yield from teleport_send(node, q, "B")

    report = run_nodes({"A": alice_sends, "B": bob_measures}, pair_network(fidelity),
                       shots=shots, seed=5, backend="reference")
    assert report.fidelity is None and sum(report.counts.values()) == shots
    assert within(report.counts.get("0", 0) / shots, physics.teleport_fidelity(fidelity), shots)


def test_teleportation_makespan_is_generation_plus_gates_measure_latency():
    t_attempt, latency, g, m = 3e-6, 7e-6, 1e-7, 5e-7
    net = pair_network(0.9, {"gate_time": g, "measure_time": m}, attempt_time=t_attempt,
                       latency=latency)
    report = run_nodes({"A": alice, "B": bob}, net, shots=10, seed=0)
    # EPR; cx, h, measure at A; the bits travel; X and Z at B (the u3 runs during generation)
    assert report.makespan_s == pytest.approx(t_attempt + 4 * g + m + latency, rel=1e-12)
    assert report.schedules == 1 and report.makespan_std_s == 0
    # without gate times: generation + measurement + latency
    net = pair_network(0.9, {"measure_time": m}, attempt_time=t_attempt, latency=latency)
    report = run_nodes({"A": alice, "B": bob}, net, shots=10, seed=0)
    assert report.makespan_s == pytest.approx(t_attempt + m + latency, rel=1e-12)
    # Bob's half waited for the bits: measure + latency, exactly
    assert report.idle_s["B"] == pytest.approx(m + latency, rel=1e-12)
    assert report.idle_s["A"] == pytest.approx(t_attempt, rel=1e-12)   # q waited for the pair


def test_a_node_waiting_on_recv_decoheres_exp_minus_t_over_t2():
    t2, m, latency, shots = 4e-6, 1e-6, 3e-6, 20000
    node = {"data_qubits": 1, "t2": t2, "measure_time": m}
    net = network_from_dict({"nodes": {"A": node, "B": {**node, "t2": 1e9}},
                             "links": [{"between": ["A", "B"], "latency": latency}]})

    def waiter(node):
        q = node.qubit()
        node.gate("h", q)
        yield node.recv("B")            # blocked: q idles until the message arrives
        node.gate("h", q)
        node.measure(q, output=True)

    def sender(node):
        bit = node.measure(node.qubit())
        yield node.send("A", bit)

    report = run_nodes({"A": waiter, "B": sender}, net, shots=shots, seed=4,
                       backend="reference")
    wait = m + latency
    expected = (1 + math.exp(-wait / t2)) / 2
    assert within(report.counts.get("0", 0) / shots, expected, shots)
    assert report.idle_s["A"] == pytest.approx(wait, rel=1e-12)
    # the same wait as a pause of the program
    def pauser(node):
        q = node.qubit()
        node.gate("h", q)
        yield node.wait(wait)
        node.gate("h", q)
        node.measure(q, output=True)

    report = run_nodes({"A": pauser}, net, shots=shots, seed=4, backend="reference")
    assert within(report.counts.get("0", 0) / shots, expected, shots)


def test_deadlock_is_a_clear_error():
    def first_recv(peer):
        def program(node):
            q = node.qubit()
            yield node.recv(peer)
            yield node.send(peer, node.measure(q))
        return program

    with pytest.raises(DeadlockError, match=r"A waits for a message from B.*B waits for a "
                                            r"message from A"):
        run_nodes({"A": first_recv("B"), "B": first_recv("A")}, pair_network(), shots=1, seed=0)

    def lonely(node):
        yield node.epr("B")

    def idle(node):
        yield node.wait(1e-6)

    with pytest.raises(DeadlockError, match="A waits for an EPR pair with B"):
        run_nodes({"A": lonely, "B": idle}, pair_network(), shots=1, seed=0)

    def hoarder(node):        # one communication qubit, two pairs at once, never freed
        peer = "B" if node.name == "A" else "A"
        yield node.epr(peer)
        yield node.epr(peer)

    net = network_from_dict({"nodes": {"A": {"data_qubits": 1, "comm_qubits": 1},
                                       "B": {"data_qubits": 1, "comm_qubits": 1}},
                             "links": [{"between": ["A", "B"]}]})
    with pytest.raises(DeadlockError, match="waits for an EPR pair"):
        run_nodes({"A": hoarder, "B": hoarder}, net, shots=1, seed=0)


def test_program_mistakes_are_errors():
    net = pair_network()

    def not_a_generator(node):
        node.qubit()

    with pytest.raises(ProgramError, match="generator"):
        lower_nodes({"A": not_a_generator}, net)

    def uses_before_delivery(node):
        a = node.epr("B")
        node.gate("h", a)
        yield a

    with pytest.raises(ProgramError, match="yield it first"):
        lower_nodes({"A": uses_before_delivery, "B": bob}, net)

    def touches_remote(node):
        b = yield node.epr("A")
        yield node.send("A")
        return b

    def greedy(node):
        a = yield node.epr("B")
        yield node.recv("B")
        node.gate("x", node.qubit())
        node.gate("x", node.qubit())   # A has one data qubit
        return a

    with pytest.raises(ProgramError, match="data qubits"):
        lower_nodes({"A": greedy, "B": touches_remote}, net)

    def yields_junk(node):
        yield 3

    with pytest.raises(ProgramError, match="yielded 3"):
        lower_nodes({"A": yields_junk}, net)


@pytest.mark.parametrize("fidelities", [(0.95, 0.9),
                                        # low fidelities, where F1 F2 alone is far off:
                                        # F' = 0.3667 (F1 F2: 0.3), 0.2889 (F1 F2 F3: 0.15)
                                        (0.6, 0.5), (0.5, 0.5, 0.6)])
def test_repeater_chain_of_node_programs_gives_the_swapped_fidelity(fidelities):
    """A - R1 - ... - B: every repeater swaps and sends its bits to B, which corrects; the
    end-to-end pair teleports at (2F'+1)/3 with F' the chain's swapped fidelity (two links:
    F' = F1 F2 + (1-F1)(1-F2)/3)."""
    repeaters = [f"R{i}" for i in range(1, len(fidelities))]
    names = ["A", *repeaters, "B"]
    net = network_from_dict({
        "nodes": {"A": {"data_qubits": 1}, "B": {"data_qubits": 1},
                  **{r: {"repeater": True, "comm_qubits": 2} for r in repeaters}},
        "links": [{"between": [x, y], "fidelity": f}
                  for x, y, f in zip(names, names[1:], fidelities)]})

    def a(node):
        q = node.qubit()
        node.gate("u3", q, params=ANGLES)
        half = yield node.epr(names[1])
        yield node.recv("B")                       # B says: the pair is ready
        yield from teleport_send(node, q, "B", pair=half)

    def repeater(i):
        def program(node):
            yield from swap_at(node, names[i - 1], names[i + 1], to="B")
        return program

    def b(node):
        half = yield node.epr(names[-2])
        yield from swap_correct(node, half, repeaters)
        yield node.send("A")
        return (yield from teleport_recv(node, "A", pair=half))

    programs = {"A": a, "B": b, **{r: repeater(i) for i, r in enumerate(repeaters, 1)}}
    report = run_nodes(programs, net, shots=8000, seed=8, backend="reference")
    swapped = physics.chain_fidelity(fidelities)
    if len(fidelities) == 2:
        f1, f2 = fidelities
        assert swapped == pytest.approx(f1 * f2 + (1 - f1) * (1 - f2) / 3)
    expected = physics.teleport_fidelity(swapped)
    assert abs(report.fidelity - expected) < 4 * report.fidelity_stderr + 1e-12, \
        (report.fidelity, report.fidelity_stderr, expected)
    assert report.epr_pairs == len(fidelities)
    assert report.classical_bits == 2 * len(repeaters) + 2


def test_node_programs_wait_for_the_comm_qubits_a_purification_holds():
    """Two comm qubits and one purification round: a distillation holds both, so a second pair
    asked for at once is made only after the first one's halves are freed; each round attempt
    sends two bits."""
    net = pair_network(0.8, {"comm_qubits": 2}, attempt_time=1e-6, latency=2e-6)

    def side(node):
        peer = "B" if node.name == "A" else "A"
        first, second = node.epr(peer), node.epr(peer)
        half = yield first
        node.measure(half, output=True)
        node.free(half)
        half = yield second
        node.measure(half, output=True)
        node.free(half)

    low = lower_nodes({"A": side, "B": side}, net, purification=("dejmps", 1))
    use = low.stats.links["A-B"]
    assert use.pairs == 2 and use.rounds == use.generated // 2 >= 2
    assert low.stats.classical_bits == 2 * use.rounds
    epr = sorted((e.start, e.end) for e in low.events if e.kind == "epr" and e.node == "A")
    assert epr[1][0] >= epr[0][1] > 0      # the second distillation starts after the first
    with pytest.raises(OptionError, match="comm_qubits = 1"):
        lower_nodes({"A": side, "B": side}, pair_network(0.8, {"comm_qubits": 1}),
                    purification=("dejmps", 1))


def test_remote_cnot_node_programs_equal_the_local_gate():
    """Cat-entangle / cat-disentangle halves over an ideal link: CX(A -> B) exactly."""
    from qsim_dist.backends import get_backend
    from qsim_dist import Circuit

    def a(node):
        q = node.qubit()
        node.gate("u3", q, params=(0.7, 0.2, -0.3))
        yield from cat_entangle_send(node, q, "B")
        yield from cat_disentangle_recv(node, q, "B")
        return q

    def b(node):
        t = node.qubit()
        node.gate("u3", t, params=(1.3, -0.5, 0.9))
        share = yield from cat_entangle_recv(node, "A")
        node.gate("cx", share, t)
        yield from cat_disentangle_send(node, share, "A")
        return t

    c = Circuit(2)
    c.add("u3", 0, params=(0.7, 0.2, -0.3))
    c.add("u3", 1, params=(1.3, -0.5, 0.9))
    c.add("cx", 0, 1)
    target = get_backend("reference").statevector(c)
    report = run_nodes({"A": a, "B": b}, pair_network(1.0), shots=20, seed=2, target=target)
    assert report.fidelity >= 1 - 1e-9


def test_capacity_makes_a_pair_wait_for_a_freed_communication_qubit():
    t_attempt = 2e-6
    net = network_from_dict({"nodes": {"A": {"data_qubits": 1, "comm_qubits": 1},
                                       "B": {"data_qubits": 1, "comm_qubits": 1}},
                             "links": [{"between": ["A", "B"], "attempt_time": t_attempt}]})

    def side(node, peer):
        first = node.epr(peer)
        second = node.epr(peer)        # asked at once; waits for the first half's qubit
        a = yield first
        node.measure(a)
        node.free(a)
        b = yield second
        node.measure(b)
        node.free(b)

    low = lower_nodes({"A": lambda n: side(n, "B"), "B": lambda n: side(n, "A")}, net)
    assert low.stats.epr_generated == 2
    assert low.makespan == pytest.approx(2 * t_attempt)
    eprs = sorted({(e.start, e.end) for e in low.events if e.kind == "epr"})
    assert eprs == [(0.0, t_attempt), (t_attempt, 2 * t_attempt)]
