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
from qsim_dist.network import (DistributedProgram, LocalGate, RemoteGate, Runtime, Teleport,
                               network_from_dict, program_fidelity, run_program)
from qsim_dist.network import protocols as P
from qsim_dist.network.lowering import Prelowered
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
    return get_backend("reference").run(circuit, shots=shots, seed=seed,
                                        noise=Prelowered(noisy)).counts


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
    assert P.teleport_fidelity(1.0) == 1.0 and P.teleport_fidelity(0.25) == pytest.approx(0.5)
    assert P.swap_fidelity(1.0, 0.8) == pytest.approx(0.8)
    assert P.chain_fidelity([0.9]) == 0.9
    p, f = P.bbpssw(0.8)
    assert 0 < p < 1 and f > 0.8
    p2, out = P.dejmps([0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3])  # Werner input: same as BBPSSW
    assert p2 == pytest.approx(p) and out[0] == pytest.approx(f) and out.sum() == pytest.approx(1)
    assert P.bbpssw(0.5)[1] == pytest.approx(0.5)        # the fixed point below which it fails


# ---- EPR pairs, swapping ------------------------------------------------------------------------

@pytest.mark.parametrize("fidelities", [(0.9,), (0.95, 0.85), (0.97, 0.9, 0.93),
                                        (0.98, 0.95, 0.97, 0.9)])
def test_swapping_werner_pairs_along_a_chain(fidelities):
    net, names = chain_network(fidelities)
    rt = Runtime(net, np.random.default_rng(0))
    a, b = P.pair_between(rt, names[0], names[-1])
    counts = sample(rt, bell_fidelity_ops(a.index, b.index, rt.num_clbits))
    c0 = rt.num_clbits
    good = sum(n for k, n in counts.items() if bit(k, c0) == 0 and bit(k, c0 + 1) == 0)
    expected = P.chain_fidelity(fidelities)
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
    expected = P.teleport_fidelity(fidelity)
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
    good = sum(n for k, n in success.items() if bit(k, c0) == 0 and bit(k, c0 + 1) == 0)
    return n_success / SHOTS, good / n_success, n_success


@pytest.mark.parametrize("fidelity", [0.75, 0.9])
def test_bbpssw_success_probability_and_fidelity(fidelity):
    p_hat, f_hat, n = _purify("bbpssw", fidelity)
    p, f = P.bbpssw(fidelity)
    assert within(p_hat, p, SHOTS) and within(f_hat, f, n), (p_hat, p, f_hat, f)


def test_dejmps_on_a_bell_diagonal_state():
    noise = {"X": 0.05, "Z": 0.15, "Y": 0.02}    # (I, X, Y, Z) = (Phi+, Psi+, Psi-, Phi-)
    p_hat, f_hat, n = _purify("dejmps", 1.0, noise)
    a, b, c, d = 0.78, noise["Y"], noise["X"], noise["Z"]
    p, out = P.dejmps([a, b, c, d])
    assert within(p_hat, p, SHOTS) and within(f_hat, out[0], n), (p_hat, p, f_hat, out[0])
    # and DEJMPS beats BBPSSW's bilateral CNOT alone on this (non-Werner) state
    _, f_plain, _ = _purify("bbpssw", 1.0, noise)
    assert f_hat > f_plain


def test_purified_pair_bookkeeping():
    net, _ = chain_network([0.8])
    link = net.links[0]
    seconds, weights, generated, discarded, attempts = P.purified_pair(
        link, "bbpssw", 2, np.random.default_rng(1))
    assert weights[0] == pytest.approx(P.purification_rounds(0.8, "bbpssw", 2)[-1][1][0])
    assert generated >= 4 and (generated - discarded) == 4 and attempts == generated


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
