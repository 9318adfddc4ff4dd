"""Network protocols against analytic physics: teleportation over Werner pairs, swapping chains,
BBPSSW/DEJMPS purification, remote gates over ideal links, makespan arithmetic and idle
decoherence. Statistical checks are seeded, with 4-sigma tolerances; each runs one branching
trajectory simulation (shots share their state until a random event splits them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsim_dist import Circuit, Condition, Instruction
from qsim_dist.backends import get_backend
from qsim_dist.dqc import program_fidelity, run_program
from qsim_dist.network import (DistributedProgram, LocalGate, RemoteGate, Runtime, Teleport,
                               network_from_dict)
from qsim_dist.network import physics
from qsim_dist.network import protocols as P
from qsim_dist.noise import NoiseOp, NoisyCircuit, pauli_channel

SHOTS = 20000


def inst(name, *qubits, params=(), clbits=(), condition=None):
    return Instruction(name, tuple(qubits), tuple(float(p) for p in params), tuple(clbits),
                       condition)


def chain_network(fidelities, data=1, **node):
    names = [f"N{i}" for i in range(len(fidelities) + 1)]
    nodes = {n: {"data_qubits": data, **node} for n in names}
    links = [{"between": [a, b], "fidelity": f} for a, b, f in zip(names, names[1:], fidelities)]
    return network_from_dict({"nodes": nodes, "links": links}), names


def sample(rt: Runtime, extra: list[Instruction], shots=SHOTS, seed=1) -> dict[str, int]:
    """Run what ``rt`` recorded plus ``extra`` instructions (which may use new clbits)."""
    ops = list(rt.ops) + extra
    clbits = max([rt.num_clbits] + [c + 1 for i in extra for c in i.clbits])
    circuit = Circuit(rt.num_qubits, clbits, [op for op in ops if isinstance(op, Instruction)])
    noisy = NoisyCircuit(circuit, ops, dict(rt.readout))
    return get_backend("reference").run(noisy, shots=shots, seed=seed).counts


def bit(key: str, c: int) -> int:
    return int(key[len(key) - 1 - c])


def bell_fidelity_ops(a: int, b: int, c0: int) -> list[Instruction]:
    """Measure <Phi+| rho |Phi+> of (a, b): CX, H, and both read 0 exactly on Phi+."""
    return [inst("cx", a, b), inst("h", a), inst("measure", a, clbits=(c0,)),
            inst("measure", b, clbits=(c0 + 1,))]


def within(p_hat: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(p_hat - p) <= sigmas * math.sqrt(max(p * (1 - p), 1e-4) / n)


# ---- formulas ---------------------------------------------------------------------------------

def test_formulas_are_consistent():
    assert physics.teleport_fidelity(1.0) == 1.0
    assert physics.teleport_fidelity(0.25) == pytest.approx(0.5)
    assert physics.swap_fidelity(1.0, 0.8) == pytest.approx(0.8)
    assert physics.chain_fidelity([0.9]) == 0.9
    p, f = physics.bbpssw(0.8)
    assert 0 < p < 1 and f > 0.8
    p2, out = physics.dejmps([0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3])  # Werner input: same as BBPSSW
    assert p2 == pytest.approx(p) and out[0] == pytest.approx(f) and out.sum() == pytest.approx(1)
    assert physics.bbpssw(0.5)[1] == pytest.approx(0.5)  # the fixed point below which it fails


def test_swap_fidelity_by_hand():
    """F1 F2 + (1-F1)(1-F2)/3: the second term matters at low fidelity (F1 F2 alone is not it)."""
    assert physics.swap_fidelity(0.7, 0.6) == pytest.approx(0.42 + 0.3 * 0.4 / 3, rel=1e-14)
    assert physics.swap_fidelity(0.6, 0.5) == pytest.approx(0.3 + 0.4 * 0.5 / 3, rel=1e-14)
    assert physics.swap_fidelity(0.5, 0.5) == pytest.approx(1 / 3, rel=1e-14)
    assert physics.swap_fidelity(0.25, 0.9) == pytest.approx(0.25, rel=1e-14)  # maximally mixed
    assert physics.swap_fidelity(1.0, 0.8) == pytest.approx(0.8, rel=1e-14)
    assert physics.swap_fidelity(0.6, 0.5) == pytest.approx(physics.swap_fidelity(0.5, 0.6),
                                                            rel=1e-14)


def test_chain_fidelity_of_three_and_four_links_by_hand():
    # step by step: swap(0.9, 0.8) = 0.72 + 0.1 * 0.2 / 3 = 0.72 + 1/150 = 109/150, then
    # swap(109/150, 0.7) = 0.7 * 109/150 + (41/150) * 0.3 / 3 = 76.3/150 + 4.1/150 = 0.536
    assert physics.chain_fidelity([0.9, 0.8, 0.7]) == pytest.approx(0.536, rel=1e-12)
    # then swap(0.536, 0.6) = 0.3216 + 0.464 * 0.4 / 3 = 0.3216 + 0.0618666... = 0.3834666...
    assert physics.chain_fidelity([0.9, 0.8, 0.7, 0.6]) == pytest.approx(0.3216 + 0.1856 / 3,
                                                                  rel=1e-12)
    # the same in closed form: the Werner parameters w = (4F - 1)/3 multiply along the chain,
    # F = 1/4 + 3/4 * prod(w); with w = 13/15, 11/15, 9/15, 7/15: 7236/13500 and 77652/202500
    assert physics.chain_fidelity([0.9, 0.8, 0.7]) == pytest.approx(7236 / 13500, rel=1e-12)
    assert physics.chain_fidelity([0.9, 0.8, 0.7, 0.6]) == pytest.approx(77652 / 202500, rel=1e-12)
    # any order, any grouping: the same
    assert physics.chain_fidelity([0.6, 0.9, 0.7, 0.8]) == pytest.approx(77652 / 202500, rel=1e-12)
    assert physics.chain_fidelity([0.5, 0.5, 0.6]) == pytest.approx(0.2 + (2 / 3) * 0.4 / 3,
                                                             rel=1e-12)


# ---- EPR pairs, swapping ------------------------------------------------------------------------

@pytest.mark.parametrize("fidelities", [(0.9,), (0.95, 0.85), (0.97, 0.9, 0.93),
                                        (0.98, 0.95, 0.97, 0.9),
                                        # low fidelities, where F1 F2 alone is far off:
                                        # 0.3667 (F1 F2: 0.3), 0.2889 (0.15), 0.3835 (0.3024)
                                        (0.6, 0.5), (0.5, 0.5, 0.6), (0.9, 0.8, 0.7, 0.6)])
def test_swapping_werner_pairs_along_a_chain(fidelities):
    net, names = chain_network(fidelities)
    rt = Runtime(net, np.random.default_rng(0))
    a, b = P.pair_between(rt, names[0], names[-1])
    counts = sample(rt, bell_fidelity_ops(a.index, b.index, rt.num_clbits))
    c0 = rt.num_clbits
    good = sum(n for k, n in counts.items() if bit(k, c0) == 0 and bit(k, c0 + 1) == 0)
    expected = physics.chain_fidelity(fidelities)
    assert within(good / SHOTS, expected, SHOTS), (good / SHOTS, expected)
    assert rt.stats.classical_bits == 2 * (len(fidelities) - 1)
    assert rt.stats.epr_generated == len(fidelities)


# ---- teleportation ------------------------------------------------------------------------------

@pytest.mark.parametrize("fidelity", [0.7, 0.9])
def test_teleportation_fidelity_over_a_werner_pair(fidelity):
    net, names = chain_network([fidelity])
    angles = (1.1, 0.4, -0.7)
    program = DistributedProgram(1, 1, ("N0",), [
        LocalGate(inst("u3", 0, params=angles)), Teleport(0, "N1"),
        LocalGate(inst("u3", 0, params=(-angles[0], -angles[2], -angles[1]))),  # the inverse
        LocalGate(inst("measure", 0, clbits=(0,)))])
    report = run_program(program, net, shots=SHOTS, seed=2, backend="reference")
    expected = physics.teleport_fidelity(fidelity)
    assert within(report.counts.get("0", 0) / SHOTS, expected, SHOTS)
    # the report's own fidelity (against the ideal state, before the inverse) agrees
    program.ops = program.ops[:2]
    report = run_program(program, net, shots=4000, seed=3, backend="reference")
    assert abs(report.fidelity - expected) < 4 * report.fidelity_stderr + 1e-12
    assert report.epr_pairs == 1 and report.classical_bits == 2


# ---- purification -------------------------------------------------------------------------------

def _purify(protocol, fidelity, extra_noise=None):
    net = network_from_dict({"nodes": {"A": {"data_qubits": 1}, "B": {"data_qubits": 1}},
                             "links": [{"between": ["A", "B"], "fidelity": fidelity}]})
    rt = Runtime(net, np.random.default_rng(0))
    keep = rt.epr("A", "B")
    sacrifice = rt.epr("A", "B")
    if extra_noise:
        for pair in (keep, sacrifice):
            rt.ops.append(NoiseOp(pauli_channel(extra_noise), (pair[1].index,)))
    ba, bb = P.purify(rt, keep, sacrifice, protocol)
    c0 = rt.num_clbits
    counts = sample(rt, bell_fidelity_ops(keep[0].index, keep[1].index, c0))
    success = {k: n for k, n in counts.items() if bit(k, ba.index) == bit(k, bb.index)}
    n_success = sum(success.values())
    # the Bell measurement (CX, H) reads (0, 0) on Phi+, (1, 1) on Psi-, (0, 1) on Psi+ and
    # (1, 0) on Phi-: the kept pair's weights in the DEJMPS order (Phi+, Psi-, Psi+, Phi-)
    bell = np.zeros(4)
    for k, n in success.items():
        bell[{(0, 0): 0, (1, 1): 1, (0, 1): 2, (1, 0): 3}[bit(k, c0), bit(k, c0 + 1)]] += n
    return n_success / SHOTS, bell[0] / n_success, n_success, bell / n_success


@pytest.mark.parametrize("fidelity", [0.75, 0.9])
def test_bbpssw_success_probability_and_fidelity(fidelity):
    p_hat, f_hat, n, _ = _purify("bbpssw", fidelity)
    p, f = physics.bbpssw(fidelity)
    assert within(p_hat, p, SHOTS) and within(f_hat, f, n), (p_hat, p, f_hat, f)


def test_dejmps_on_a_bell_diagonal_state():
    noise = {"X": 0.05, "Z": 0.15, "Y": 0.02}    # (I, X, Y, Z) = (Phi+, Psi+, Psi-, Phi-)
    p_hat, f_hat, n, bell = _purify("dejmps", 1.0, noise)
    a, b, c, d = 0.78, noise["Y"], noise["X"], noise["Z"]
    p, out = physics.dejmps([a, b, c, d])
    assert within(p_hat, p, SHOTS) and within(f_hat, out[0], n), (p_hat, p, f_hat, out[0])
    # the whole output: (Phi+, Psi-, Psi+, Phi-) = (0.8953, 0.0221, 0.0368, 0.0459)
    for k in range(4):
        assert within(bell[k], out[k], n), (k, bell, out)
    # and DEJMPS beats BBPSSW's bilateral CNOT alone on this (non-Werner) state
    _, f_plain, _, _ = _purify("bbpssw", 1.0, noise)
    assert f_hat > f_plain


# Conventions of these checks: DEJMPS coefficients in the order of Deutsch et al. 1996 and of
# physics.dejmps, (A, B, C, D) = weights of (Phi+, Psi-, Psi+, Phi-); physics.purification_rounds
# and the runtime use the Pauli order (I, X, Y, Z) = (Phi+, Psi+, Psi-, Phi-), i.e. (A, C, B, D).
_S2 = math.sqrt(2)
_BELL = np.array([[1, 0, 0, 1], [0, 1, -1, 0], [0, 1, 1, 0], [1, 0, 0, -1]]) / _S2  # A,B,C,D


def _published_dejmps(a, b, c, d):
    """The published map: N = (A+B)^2 + (C+D)^2, (A^2+B^2, 2CD, C^2+D^2, 2AB) / N."""
    n = (a + b) ** 2 + (c + d) ** 2
    return n, np.array([a * a + b * b, 2 * c * d, c * c + d * d, 2 * a * b]) / n


def _dejmps_density_matrix(coefficients):
    """One DEJMPS round computed on density matrices, independently of the package: two copies
    of the Bell-diagonal pair on qubits (a1, b1, a2, b2) (a: Alice's halves), Rx(pi/2) on
    Alice's, Rx(-pi/2) on Bob's, CNOT a1 -> a2 and b1 -> b2, a2 and b2 measured in Z, kept when
    they agree. Returns (success probability, the kept pair's 4x4 density matrix)."""
    pair = sum(w * np.outer(v, v) for w, v in zip(coefficients, _BELL))
    rho = np.kron(pair, pair).astype(complex)

    def rx(theta):
        c, s = math.cos(theta / 2), math.sin(theta / 2)
        return np.array([[c, -1j * s], [-1j * s, c]])

    def cnot(control, target):
        u = np.zeros((16, 16))
        for i in range(16):
            bits = [(i >> (3 - k)) & 1 for k in range(4)]
            bits[target] ^= bits[control]
            u[int("".join(map(str, bits)), 2), i] = 1
        return u

    rot = np.kron(np.kron(rx(np.pi / 2), rx(-np.pi / 2)), np.kron(rx(np.pi / 2), rx(-np.pi / 2)))
    u = cnot(1, 3) @ cnot(0, 2) @ rot
    rho = (u @ rho @ u.conj().T).reshape([2] * 8)
    kept = sum(rho[:, :, m, m, :, :, m, m] for m in (0, 1)).reshape(4, 4)
    p = float(np.trace(kept).real)
    return p, kept / p


def _bell_weights(rho):
    """(A, B, C, D) of a pair's density matrix; asserts that it is Bell-diagonal."""
    in_bell = _BELL @ rho @ _BELL.T
    assert np.allclose(in_bell, np.diag(np.diag(in_bell)), atol=1e-12)
    return np.diag(in_bell).real


def test_dejmps_formula_is_the_published_map_by_hand():
    # (A, B, C, D) = (0.7, 0.1, 0.15, 0.05): N = 0.8^2 + 0.2^2 = 0.68,
    # A' = 0.5/0.68, B' = 0.015/0.68, C' = 0.025/0.68, D' = 0.14/0.68
    p, out = physics.dejmps([0.7, 0.1, 0.15, 0.05])
    assert p == pytest.approx(0.68, rel=1e-14)
    assert out == pytest.approx(np.array([0.5, 0.015, 0.025, 0.14]) / 0.68, rel=1e-14)
    assert out.sum() == pytest.approx(1, rel=1e-14)
    # Pauli order (I, X, Y, Z) = (A, C, B, D): the same map, reordered
    p2, pauli = physics._dejmps_pauli(np.array([0.7, 0.15, 0.1, 0.05]))
    assert p2 == pytest.approx(0.68, rel=1e-14)
    assert pauli == pytest.approx(np.array([0.5, 0.025, 0.015, 0.14]) / 0.68, rel=1e-14)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dejmps_formula_against_a_density_matrix_round(seed):
    coefficients = np.random.default_rng(seed).dirichlet(np.ones(4))
    p_dm, rho = _dejmps_density_matrix(coefficients)
    out_dm = _bell_weights(rho)
    p, out = physics.dejmps(coefficients)
    assert p == pytest.approx(p_dm, abs=1e-12) and out == pytest.approx(out_dm, abs=1e-12)
    p_pub, out_pub = _published_dejmps(*coefficients)
    assert p == pytest.approx(p_pub, abs=1e-14) and out == pytest.approx(out_pub, abs=1e-14)


@pytest.mark.parametrize("fidelity", [0.6, 0.8])
def test_two_dejmps_rounds_against_density_matrices(fidelity):
    """physics.purification_rounds (Pauli order) against two density-matrix rounds: the second on
    two copies of the first's (no longer Werner) output."""
    q = (1 - fidelity) / 3
    coefficients = np.array([fidelity, q, q, q])
    table = physics.purification_rounds(fidelity, "dejmps", 2)
    assert len(table) == 2
    for p_code, pauli in table:
        p_dm, rho = _dejmps_density_matrix(coefficients)
        coefficients = _bell_weights(rho)
        assert p_code == pytest.approx(p_dm, abs=1e-12)
        assert pauli == pytest.approx(coefficients[[0, 2, 1, 3]], abs=1e-12)
    assert table[1][1][0] > table[0][1][0] > fidelity


def test_purified_pair_bookkeeping():
    net, _ = chain_network([0.8])
    link = net.links[0]
    made = physics.purified_pair(link, "bbpssw", 2, np.random.default_rng(1))
    seconds, weights, generated, discarded, attempts, round_attempts = made
    assert weights[0] == pytest.approx(physics.purification_rounds(0.8, "bbpssw", 2)[-1][1][0])
    assert generated >= 4 and (generated - discarded) == 4 and attempts == generated
    # every level-1 attempt takes two raw pairs; at least one level-2 attempt on top
    assert round_attempts - generated // 2 >= 1 and generated % 2 == 0
    assert physics.purification_comm_qubits(0) == 1 and physics.purification_comm_qubits(2) == 3


@pytest.mark.parametrize("seed", range(5))
def test_purified_pair_counts_every_round_attempt_and_its_time(seed):
    """One round: each attempt takes two raw pairs, a failed one discards both; every attempt,
    failed or not, lasts its gates, measurement and the one-way exchange of outcomes."""
    net, _ = chain_network([0.6])     # p = 0.59 for BBPSSW: failures are common
    link = net.links[0]               # attempt_time 0: the time is the rounds' alone
    made = physics.purified_pair(link, "bbpssw", 1, np.random.default_rng(seed), local_time=1.0)
    assert made.round_attempts == made.generated // 2 and made.generated % 2 == 0
    assert made.discarded == 2 * (made.round_attempts - 1)
    assert made.seconds == made.round_attempts * 1.0
    assert made.attempts == made.generated


# ---- remote gates over ideal links equal local gates ------------------------------------------

def _random_start(n, seed):
    rng = np.random.default_rng(seed)
    return [inst("u3", q, params=rng.uniform(-np.pi, np.pi, 3)) for q in range(n)]


GATES_2Q = [("cx", ()), ("cz", ()), ("cp", (0.7,)), ("crx", (1.3,)), ("cu3", (0.4, 1.0, -0.3)),
            ("rzz", (0.9,)), ("cy", ())]


@pytest.mark.parametrize("name,params", GATES_2Q)
def test_remote_gate_equals_local_gate(name, params):
    net, names = chain_network([0.9], data=2)    # link fidelity ignored: ideal run
    start = _random_start(3, 5)
    body = (inst(name, 0, 2, params=params),)
    circuit = Circuit(3, 0, start + list(body))
    program = DistributedProgram(3, 0, ("N0", "N0", "N1"),
                                 [LocalGate(i) for i in start] + [RemoteGate(0, "N1", body)])
    assert program_fidelity(program, net, circuit) >= 1 - 1e-9


def test_burst_multi_hop_and_teleport_equal_the_circuit():
    net, names = chain_network([0.9, 0.9, 0.9], data=3)   # N0 - N1 - N2 - N3
    start = _random_start(4, 7)
    burst = (inst("cx", 0, 2), inst("cp", 0, 3, params=(0.3,)), inst("h", 2),
             inst("cu3", 0, 2, params=(0.2, 0.5, 0.1)), inst("ccx", 0, 2, 3))
    tail = [inst("cx", 2, 0), inst("swap", 3, 0)]
    circuit = Circuit(4, 0, start + list(burst) + tail)
    program = DistributedProgram(4, 0, ("N0", "N0", "N3", "N3"),
                                 [LocalGate(i) for i in start] + [
                                     RemoteGate(0, "N3", burst),          # 3 hops, 2 swaps
                                     Teleport(0, "N3"), LocalGate(tail[0]), LocalGate(tail[1])])
    assert program_fidelity(program, net, circuit) >= 1 - 1e-9
    cost = program.cost(net)
    report = run_program(program, net, shots=16, seed=0, ideal=True, backend="reference")
    assert report.fidelity >= 1 - 1e-9
    assert report.epr_pairs == cost.epr_pairs == 6
    assert report.classical_bits == cost.classical_bits


# ---- timing -------------------------------------------------------------------------------------

def test_makespan_is_generation_plus_gates_plus_latency():
    t_attempt, latency, g, m = 3e-6, 7e-6, 1e-7, 5e-7
    node = {"data_qubits": 1, "gate_time": g, "measure_time": m}
    net = network_from_dict({"nodes": {"A": node, "B": node}, "links": [
        {"between": ["A", "B"], "attempt_time": t_attempt, "latency": latency}]})
    program = DistributedProgram(2, 0, ("A", "B"), [RemoteGate(0, "B", (inst("cx", 0, 1),))])
    report = run_program(program, net, shots=1, seed=0)
    # EPR, then cx + measure at A, a bit to B, X, the body cx, H + measure, a bit back, Z at A
    assert report.makespan_s == pytest.approx(t_attempt + 5 * g + 2 * m + 2 * latency, rel=1e-12)
    assert report.makespan_std_s == 0 and report.schedules == 1
    # random generation: attempts are geometric with mean 1/p
    lossy = network_from_dict({"nodes": {"A": node, "B": node}, "links": [
        {"between": ["A", "B"], "attempt_time": t_attempt, "success_probability": 0.25,
         "transduction_efficiency": 0.8, "latency": latency}]})
    report = run_program(program, lossy, shots=0, trajectories=64, schedules=64, seed=1)
    mean_attempts = report.links["A-B"]["attempts"]
    assert abs(mean_attempts - 5.0) < 4 * math.sqrt(0.8 / 0.2 ** 2 / 64)


def test_a_waiting_qubit_keeps_coherence_exp_minus_t_over_t2():
    t2, m, latency = 4e-6, 1e-6, 3e-6
    node = {"data_qubits": 1, "t2": t2, "measure_time": m}
    net = network_from_dict({"nodes": {"A": node, "B": {**node, "t2": 1e9}},
                             "links": [{"between": ["A", "B"], "latency": latency}]})
    # q0 on A in |+> waits for a bit measured on B (always 0, so the X never fires)
    program = DistributedProgram(2, 2, ("A", "B"), [
        LocalGate(inst("h", 0)), LocalGate(inst("measure", 1, clbits=(1,))),
        LocalGate(inst("x", 0, condition=Condition((1,), 1))), LocalGate(inst("h", 0)),
        LocalGate(inst("measure", 0, clbits=(0,)))])
    report = run_program(program, net, shots=SHOTS, seed=4, backend="reference")
    wait = m + latency
    expected = (1 + math.exp(-wait / t2)) / 2
    p0 = sum(n for k, n in report.counts.items() if k[-1] == "0") / SHOTS
    assert within(p0, expected, SHOTS), (p0, expected)
    assert report.classical_bits == 1                     # the bit was sent to A
    assert report.idle_s["A"] == pytest.approx(wait)
