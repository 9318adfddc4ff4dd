"""Gate-level protocols that read their outcomes (qsim_dist.network.gate_protocols), each checked
against its analytic counterpart or an independent density-matrix computation (written here,
from the definitions: Werner pairs, Qiskit's depolarizing channel, bit-flip readout)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsim_dist.dqc import run_nodes
from qsim_dist.network import network_from_dict
from qsim_dist.network.gate_protocols import heralded_end, parity_check, purify, \
    remote_rz_source, remote_rz_target, swap_heralded
from qsim_dist.network.physics import purification_rounds, swap_fidelity
from qsim_dist.network.program import ProgramError

PHI_PLUS = np.array([1, 0, 0, 1]) / math.sqrt(2)
I2 = np.eye(2)
PAULIS = [I2, np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])]


def _pair(fidelity, comm=3, **node):
    spec = {"data_qubits": 2, "comm_qubits": comm, **node}
    return network_from_dict({
        "nodes": {"A": dict(spec), "B": dict(spec)},
        "links": [{"between": ["A", "B"], "fidelity": fidelity, "latency": 1e-6,
                   "attempt_time": 1e-6}]})


def _within(value, expected, stderr, what):
    assert abs(value - expected) <= 3 * stderr + 1e-9, \
        f"{what}: {value:.4f} vs {expected:.4f} (3 sigma = {3 * stderr:.4f})"


def _purifying(protocol, rounds, **kw):
    def program(peer):
        def run(node):
            return (yield from purify(node, peer, protocol=protocol, rounds=rounds, **kw))
        return run
    return {"A": program("B"), "B": program("A")}


# ---- purification against the formulas ---------------------------------------------------------

@pytest.mark.parametrize("protocol, rounds", [("bbpssw", 1), ("bbpssw", 2), ("dejmps", 2)])
def test_purification_with_ideal_local_gates_follows_the_analytic_rounds(protocol, rounds):
    fidelity, shots = 0.8, 600
    report = run_nodes(_purifying(protocol, rounds), _pair(fidelity), shots=shots, seed=5,
                       backend="statevector", target=PHI_PLUS)
    assert report.execution == "online"
    table = purification_rounds(fidelity, protocol, rounds)
    _within(report.fidelity, table[-1][1][0], report.fidelity_stderr, "output fidelity")
    if rounds == 1:   # raw pairs per delivered pair: 2 x the geometric number of rounds
        p = table[0][0]
        _within(report.epr_pairs, 2 / p, 2 * math.sqrt((1 - p) / p ** 2 / shots), "EPR pairs")
        spread = report.distribution["epr_pairs"]
        assert spread["min"] == 2 and spread["max"] >= 4   # some shots retried


# ---- purification against an independent density matrix -----------------------------------------

def _apply(rho, u, qubits, n=4):
    """U rho U^dagger with U on ``qubits`` of an n-qubit density matrix (qubit 0 the most
    significant)."""
    rest = [q for q in range(n) if q not in qubits]
    inv = list(np.argsort(list(qubits) + rest))
    full = np.kron(u, np.eye(2 ** len(rest))).reshape([2] * 2 * n)
    full = full.transpose(inv + [n + i for i in inv]).reshape(2 ** n, 2 ** n)
    return full @ rho @ full.conj().T


def _depolarize(rho, p, qubits):
    """Qiskit's depolarizing channel: (1 - p) rho + p I/2^k (x) Tr_qubits rho."""
    if p == 0:
        return rho
    twirled = np.zeros_like(rho)
    for labels in np.ndindex(*([4] * len(qubits))):
        op = PAULIS[labels[0]]
        for lab in labels[1:]:
            op = np.kron(op, PAULIS[lab])
        twirled += _apply(rho, op, qubits)
    return (1 - p) * rho + p * twirled / 4 ** len(qubits)


def _werner(f):
    bell = np.outer(PHI_PLUS, PHI_PLUS)
    rho = f * bell
    for p in PAULIS[1:]:
        v = np.kron(I2, p) @ PHI_PLUS
        rho = rho + (1 - f) / 3 * np.outer(v, v.conj())
    return rho


def _rx(theta):
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def _dejmps_density_matrix(f, p1, p2, readout):
    """One DEJMPS round with noisy gates and readout: (success probability, output fidelity).
    Qubits (a1, b1, a2, b2): pairs (a1, b1) kept, (a2, b2) sacrificed; A = a1, a2."""
    rho = np.kron(_werner(f), _werner(f))
    for q, angle in ((0, np.pi / 2), (2, np.pi / 2), (1, -np.pi / 2), (3, -np.pi / 2)):
        rho = _depolarize(_apply(rho, _rx(angle), [q]), p1, [q])
    cx = np.eye(4)[[0, 1, 3, 2]]
    for c, t in ((0, 2), (1, 3)):
        rho = _depolarize(_apply(rho, cx, [c, t]), p2, [c, t])
    t = rho.reshape([2] * 8)
    success, kept = 0.0, np.zeros((4, 4), dtype=complex)
    for ma in (0, 1):
        for mb in (0, 1):
            block = t[:, :, ma, mb, :, :, ma, mb].reshape(4, 4)
            agree = (1 - readout) ** 2 + readout ** 2 if ma == mb else 2 * readout * (1 - readout)
            kept += agree * block
    success = float(np.real(np.trace(kept)))
    return success, float(np.real(PHI_PLUS @ kept @ PHI_PLUS)) / success


def test_dejmps_with_noisy_gates_and_readout_agrees_with_the_density_matrix():
    f, p1, p2, readout, shots = 0.85, 0.02, 0.05, 0.03, 800
    net = _pair(f, gate_error_1q=p1, gate_error_2q=p2, readout_error=readout)
    report = run_nodes(_purifying("dejmps", 1), net, shots=shots, seed=8, backend="statevector",
                       target=PHI_PLUS)
    p, fid = _dejmps_density_matrix(f, p1, p2, readout)
    _within(report.fidelity, fid, report.fidelity_stderr, "output fidelity")
    _within(report.epr_pairs, 2 / p, 2 * math.sqrt((1 - p) / p ** 2 / shots), "EPR pairs")
    ideal_p, ideal = purification_rounds(f, "dejmps", 1)[0]
    assert fid < ideal[0] - 0.02 and p < ideal_p   # the noise really shows


def test_the_density_matrix_check_reduces_to_the_formula_without_local_noise():
    p, fid = _dejmps_density_matrix(0.85, 0.0, 0.0, 0.0)
    ideal_p, weights = purification_rounds(0.85, "dejmps", 1)[0]
    assert p == pytest.approx(ideal_p, abs=1e-12) and fid == pytest.approx(weights[0], abs=1e-12)


def test_purification_gives_up_after_max_attempts_on_both_ends():
    seen = {}

    def program(peer):
        def run(node):
            half = yield from purify(node, peer, rounds=1, max_attempts=1)
            seen.setdefault(node.name, []).append(half is None)
            if half is not None:
                node.free(half)
        return run

    run_nodes({"A": program("B"), "B": program("A")}, _pair(0.6), shots=60, seed=1,
              backend="statevector")
    assert seen["A"] == seen["B"] and any(seen["A"]) and not all(seen["A"])


# ---- heralded swapping -----------------------------------------------------------------------

def _chain(fidelity):
    end = {"data_qubits": 1, "comm_qubits": 1}
    return network_from_dict({
        "nodes": {"A": dict(end), "R": {"repeater": True, "comm_qubits": 2}, "B": dict(end)},
        "links": [{"between": [a, b], "fidelity": fidelity, "latency": 1e-6,
                   "attempt_time": 1e-6} for a, b in (("A", "R"), ("R", "B"))]})


def test_heralded_swapping_retries_until_the_bell_measurement_succeeds():
    f, success, shots = 0.9, 0.5, 600

    def a(node):
        return (yield from heralded_end(node, "R", far=False))

    def r(node):
        yield from swap_heralded(node, "A", "B", success=success)

    def b(node):
        return (yield from heralded_end(node, "R", far=True))

    report = run_nodes({"A": a, "R": r, "B": b}, _chain(f), shots=shots, seed=4,
                       backend="statevector", target=PHI_PLUS)
    _within(report.fidelity, swap_fidelity(f, f), report.fidelity_stderr, "swapped fidelity")
    # two raw pairs per attempt, attempts geometric(success)
    sigma = 2 * math.sqrt((1 - success) / success ** 2 / report.schedules)
    _within(report.epr_pairs, 2 / success, sigma, "EPR pairs")


# ---- repeat-until-success remote rotation -------------------------------------------------------

def test_remote_rotation_is_exact_after_a_geometric_number_of_attempts():
    theta, shots = 0.7, 200

    def server(node):
        yield from remote_rz_source(node, "B", theta)

    def client(node):
        q = node.qubit()
        node.gate("u3", q, params=(1.1, 0.4, -0.7))
        return (yield from remote_rz_target(node, q, "A"))

    u3 = lambda t, p, l: np.array([[math.cos(t / 2), -np.exp(1j * l) * math.sin(t / 2)],
                                   [np.exp(1j * p) * math.sin(t / 2),
                                    np.exp(1j * (p + l)) * math.cos(t / 2)]])
    rz = np.diag([np.exp(-0.5j * theta), np.exp(0.5j * theta)])
    target = rz @ u3(1.1, 0.4, -0.7) @ np.array([1, 0])
    report = run_nodes({"A": server, "B": client}, _pair(1.0, comm=1), shots=shots, seed=6,
                       backend="statevector", target=target)
    assert report.fidelity == pytest.approx(1.0, abs=1e-9)
    # one EPR pair per attempt; P(n attempts) = 2^-n: mean 2, variance 2
    _within(report.epr_pairs, 2.0, math.sqrt(2 / shots), "attempts")
    assert report.distribution["epr_pairs"]["max"] >= 3
    # without the retry, a wrong rotation half the time: the check can fail
    missed = run_nodes({"A": lambda n: remote_rz_source(n, "B", theta, max_attempts=1),
                        "B": client}, _pair(1.0, comm=1), shots=100, seed=6,
                       backend="statevector", target=target)
    assert missed.fidelity < 0.99


# ---- distributed parity check ---------------------------------------------------------------------

def test_parity_check_across_modules_follows_the_werner_formula():
    """A holds cos(t/2)|0> + sin(t/2)|1>, B holds |+>; the parity check and an X at B on odd
    parity make cos|00> + sin|11>. An X or Y on the pair misreads the parity (fidelity 0), a Z
    dephases a data qubit (fidelity cos^2 t): F_out = F + (1 - F)/3 cos^2 t."""
    t, f = 1.0, 0.85

    def a(node):
        q = node.qubit()
        node.gate("ry", q, params=(t,))
        yield from parity_check(node, q, "B")
        return q

    def b(node):
        q = node.qubit()
        node.gate("h", q)
        odd = yield from parity_check(node, q, "A")
        if odd:
            node.gate("x", q)
        return q

    target = np.array([math.cos(t / 2), 0, 0, math.sin(t / 2)])
    ideal = run_nodes({"A": a, "B": b}, _pair(1.0, comm=1), shots=50, seed=2,
                      backend="statevector", target=target)
    assert ideal.fidelity == pytest.approx(1.0, abs=1e-9)
    noisy = run_nodes({"A": a, "B": b}, _pair(f, comm=1), shots=800, seed=2,
                      backend="statevector", target=target)
    _within(noisy.fidelity, f + (1 - f) / 3 * math.cos(t) ** 2, noisy.fidelity_stderr,
            "parity-checked state")


# ---- classical values in messages -----------------------------------------------------------------

def test_a_message_carries_known_values_and_refuses_anything_else():
    got = {}

    def a(node):
        yield node.send("B", 1, 0, True)

    def b(node):
        msg = yield node.recv("A")
        got["values"] = yield node.read(msg)
        got["one"] = yield node.read(msg[0])

    run_nodes({"A": a, "B": b}, _pair(1.0, comm=1), shots=1, seed=0)
    assert got == {"values": (1, 0, 1), "one": 1}

    def bad(node):
        yield node.send("B", 2)

    with pytest.raises(ProgramError, match="bits and the values 0 and 1"):
        run_nodes({"A": bad}, _pair(1.0, comm=1), shots=1, seed=0)

    def corrects_on_a_value(node):
        q = node.qubit()
        node.correct("x", q, bits=[1])
        yield node.wait(0)

    with pytest.raises(ProgramError, match="not a bit: branch on it in Python"):
        run_nodes({"A": corrects_on_a_value}, _pair(1.0, comm=1), shots=1, seed=0)


# ---- a repeater chain with gate-level purification --------------------------------------------

@pytest.mark.parametrize("backend", ["statevector", "modulenet"])
def test_purified_chain_composes_the_purified_links_along_the_swaps(backend):
    from functools import reduce

    from qsim_dist.network.physics import swapped_weights
    from qsim_dist.network.workloads import purified_chain

    net, programs = purified_chain(2, 0.9)
    report = run_nodes(programs, net, shots=300, seed=1, backend=backend, target=PHI_PLUS)
    weights = purification_rounds(0.9, "dejmps", 1)[0][1]
    _within(report.fidelity, reduce(swapped_weights, [weights] * 3)[0],
            report.fidelity_stderr, "end-to-end fidelity")


def test_swapped_weights_of_werner_pairs_is_the_swap_formula():
    from qsim_dist.network.physics import swapped_weights, werner_pauli_probabilities

    w = swapped_weights(werner_pauli_probabilities(0.9), werner_pauli_probabilities(0.8))
    assert w[0] == pytest.approx(swap_fidelity(0.9, 0.8), abs=1e-12)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


# ---- bad arguments: one ProgramError / OptionError line, never another exception ----------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from qsim_dist.errors import QsimDistError  # noqa: E402

ANYTHING = st.one_of(st.none(), st.integers(-3, 5), st.floats(allow_nan=True), st.text(max_size=4),
                     st.booleans(), st.lists(st.integers(0, 1), max_size=2), st.just(object()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=ANYTHING)
def test_a_message_item_is_a_bit_or_a_known_value(item):
    def a(node):
        yield node.send("B", item)

    def b(node):
        msg = yield node.recv("A")
        return (yield node.read(msg))

    try:
        run_nodes({"A": a, "B": b}, _pair(1.0, comm=1), shots=1, seed=0)
    except ProgramError as exc:
        assert "\n" not in str(exc)
        assert not (isinstance(item, (bool, int)) and item in (0, 1))   # those are accepted
    else:
        assert isinstance(item, (bool, int)) and item in (0, 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol=st.one_of(st.sampled_from(["bbpssw", "dejmps"]), ANYTHING),
       rounds=st.one_of(st.integers(0, 2), ANYTHING),
       attempts=st.one_of(st.none(), st.integers(1, 3), ANYTHING))
def test_purify_arguments_are_checked(protocol, rounds, attempts):
    def program(peer):
        def run(node):
            half = yield from purify(node, peer, protocol=protocol, rounds=rounds,
                                     max_attempts=attempts)
            if half is not None:
                node.free(half)
        return run

    try:
        run_nodes({"A": program("B"), "B": program("A")}, _pair(0.9), shots=2, seed=0)
    except QsimDistError as exc:
        assert "\n" not in str(exc)
