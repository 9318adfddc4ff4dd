"""The distribution compiler (issue 6): valid programs, never worse than the baseline, the QFT
goal, and verification by simulation: every compiled program, lowered over ideal links by the
network runtime, computes what its source circuit computes (per measurement branch for dynamic
circuits)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsim_dist import Circuit, Condition, Instruction, distribute
from qsim_dist import library as L
from qsim_dist.backends.reference import unitary
from qsim_dist.gates import GATES
from qsim_dist.linalg import apply_unitary
from qsim_dist.network.lowering import data_matrix, lower_ideal
from qsim_dist.network.program import RemoteGate, Teleport
from qsim_dist.passes.decompose import controlled_form, is_controlled_form
from qsim_dist.network.distribute import (DistributeError, baseline_program, compile_distribution,
                                         estimate_makespan, simple_network, to_qasm3)

# ---- a branch simulator: exact states per history of the source's mid-circuit measurements ----


def _terminal(circuit: Circuit) -> set[int]:
    """Indices of measurements after which nothing touches their qubit or clbit."""
    out, touched, clbits = set(), set(), set()
    for k in range(len(circuit.instructions) - 1, -1, -1):
        inst = circuit.instructions[k]
        if inst.name == "barrier":
            continue
        if (inst.name == "measure" and inst.condition is None and inst.qubits[0] not in touched
                and inst.clbits[0] not in clbits):
            out.add(k)
        touched.update(inst.qubits)
        clbits.update(inst.clbits)
        if inst.condition is not None:
            clbits.update(inst.condition.clbits)
    return out


def branches(circuit: Circuit, source_clbits: int, rng: np.random.Generator,
             skip: set[int] = frozenset()) -> dict[tuple, tuple[float, np.ndarray]]:
    """Run ``circuit`` exactly: a measurement into clbit < ``source_clbits`` branches over both
    outcomes, any other measurement (a protocol's) takes one random outcome (each must have
    probability 1/2 or 1). Returns {outcomes of the branching measurements: (probability, state)}.
    Instructions at indices ``skip`` are left out."""
    out: dict[tuple, tuple[float, np.ndarray]] = {}
    n = circuit.num_qubits
    psi0 = np.zeros(1 << n, dtype=np.complex128)
    psi0[0] = 1
    stack = [(0, psi0, [0] * circuit.num_clbits, 1.0, ())]
    idx = np.arange(1 << n)
    while stack:
        k, psi, bits, prob, history = stack.pop()
        while k < len(circuit.instructions):
            inst = circuit.instructions[k]
            k += 1
            if k - 1 in skip or inst.name == "barrier":
                continue
            if inst.condition is not None and not inst.condition.holds(bits):
                continue
            if inst.name in ("measure", "reset"):
                q = inst.qubits[0]
                one = (idx >> q) & 1
                p1 = float(np.sum(np.abs(psi[one == 1]) ** 2))
                outcomes = [b for b, p in ((0, 1 - p1), (1, p1)) if p > 1e-12]
                if inst.name == "reset":
                    b = outcomes[0] if len(outcomes) == 1 else int(rng.integers(2))
                    psi = np.where(one == b, psi, 0)
                    psi /= np.linalg.norm(psi)
                    if b:
                        psi = apply_unitary(psi, GATES["x"].matrix(), (q,))
                    continue
                c = inst.clbits[0]
                if c < source_clbits and len(outcomes) == 2:
                    for b in outcomes[1:]:
                        p = p1 if b else 1 - p1
                        branch = np.where(one == b, psi, 0) / math.sqrt(p)
                        nbits = list(bits)
                        nbits[c] = b
                        stack.append((k, branch, nbits, prob * p, history + (b,)))
                    b = outcomes[0]
                    p = p1 if b else 1 - p1
                    prob *= p
                    history += (b,)
                elif c < source_clbits:
                    b = outcomes[0]
                    history += (b,)
                else:
                    if len(outcomes) == 2:
                        assert abs(p1 - 0.5) < 1e-9, f"protocol measurement with p1 = {p1}"
                    b = outcomes[int(rng.integers(len(outcomes)))]
                    p = p1 if b else 1 - p1
                psi = np.where(one == b, psi, 0)
                psi /= np.linalg.norm(psi)
                bits[c] = b
                continue
            psi = apply_unitary(psi, inst.matrix(), inst.qubits)
        out[history] = (prob, psi)
    return out


def verify(circuit: Circuit, program, network, seeds=(0, 1)) -> float:
    """Worst fidelity over branches and protocol outcomes between the source circuit and the
    program lowered over ideal links; also checks branch probabilities agree."""
    source = branches(circuit, circuit.num_clbits, np.random.default_rng(0),
                      skip=_terminal(circuit))
    lowered = lower_ideal(program, network)
    state_circuit = lowered.state_circuit().circuit
    worst = 1.0
    for seed in seeds:
        got = branches(state_circuit, lowered.num_source_clbits, np.random.default_rng(seed))
        assert set(got) == set(source), (sorted(got), sorted(source))
        for history, (p, psi) in got.items():
            q, want = source[history]
            assert abs(p - q) < 1e-9
            m = data_matrix(psi, lowered.final_qubits)
            # the other qubits end in one basis state (|0> after a reset, or a measured value)
            row = m[int(np.argmax(np.linalg.norm(m, axis=1)))]
            assert abs(np.linalg.norm(row) - 1) < 1e-9, "communication qubits left entangled"
            worst = min(worst, abs(np.vdot(want, row)) ** 2)
    return worst


# ---- circuits and networks -----------------------------------------------------------------------


def _dynamic() -> Circuit:
    """Mid-circuit measurement, feed-forward and reset across nodes."""
    c = Circuit(6, 3, name="dynamic")
    for q in range(6):
        c.add("ry", q, params=[0.3 + 0.2 * q])
    c.add("cx", 0, 5)
    c.add("cp", 1, 4, params=[0.7])
    c.measure(0, 0)
    c.add("x", 3, condition=Condition((0,), 1))
    c.add("rz", 4, params=[0.4], condition=Condition((0,), 0))
    c.add("cx", 5, 2)
    c.add("reset", 0)
    c.add("h", 0)
    c.add("cz", 0, 3)
    c.add("crx", 2, 4, params=[1.3])
    c.measure(4, 1)
    c.add("ry", 1, params=[0.5], condition=Condition((1,), 1))
    c.add("swap", 1, 5)
    c.measure(2, 2)
    return c


def _qaoa(n: int, seed: int = 0) -> Circuit:
    rng = np.random.default_rng(seed)
    edges = [(i, (i + 1) % n) for i in range(n)]
    edges += [tuple(int(x) for x in rng.choice(n, 2, replace=False)) for _ in range(n // 2)]
    return L.qaoa_maxcut(edges, n, [0.4, 0.7], [0.3, 0.2])


SMALL = {
    "qft7": lambda: L.qft(7),
    "qft8_noswap": lambda: L.qft(8, swaps=False),
    "ghz7": lambda: L.ghz(7),
    "qpe5": lambda: L.qpe(5, 5 / 32),
    "adder3": lambda: L.cuccaro_adder(3, 5, 3),
    "qaoa8": lambda: _qaoa(8),
    "random8_cx": lambda: L.random_circuit(8, 5, seed=3),
    "random8_mixed": lambda: L.random_circuit(8, 5, seed=4, entangler="mixed"),
    "all_gates6": lambda: L.random_gate_circuit(6, 30, seed=5),
    "grover4": lambda: L.grover(4, 6),
}

NETWORKS = {
    "all2": lambda n: simple_network("all", 2, -(-n // 2)),
    "line3": lambda n: simple_network("line", 3, -(-n // 3)),
    "ring4_slack": lambda n: simple_network("ring", 4, -(-n // 4) + 1),
}


# ---- rewriting into controlled form ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GATES))
def test_controlled_form_is_exact(name):
    spec = GATES[name]
    rng = np.random.default_rng(7)
    inst = Instruction(name, tuple(range(spec.num_qubits)),
                       tuple(float(x) for x in rng.uniform(-3, 3, spec.num_params)))
    pieces = controlled_form(inst)
    assert all(is_controlled_form(p) and len(p.qubits) <= 2 for p in pieces)
    a = unitary(Circuit(spec.num_qubits, instructions=[inst]))
    b = unitary(Circuit(spec.num_qubits, instructions=pieces))
    assert abs(abs(np.trace(a.conj().T @ b)) / a.shape[0] - 1) < 1e-9


# ---- verification by simulation ------------------------------------------------------------------


@pytest.mark.parametrize("net", sorted(NETWORKS))
@pytest.mark.parametrize("name", sorted(SMALL))
def test_distributed_program_computes_the_circuit(name, net):
    circuit = SMALL[name]()
    network = NETWORKS[net](circuit.num_qubits)
    result = compile_distribution(circuit, network)
    result.program.validate(network)
    assert result.cost.epr_pairs <= result.baseline_cost.epr_pairs
    assert verify(circuit, result.program, network) >= 1 - 1e-9
    # every candidate the compiler may return is correct, not only the winner: with and
    # without TeleData, with the general packings (H-embedding, whole gates) and without
    for teledata in (False, True):
        for embed in (False, True):
            result = compile_distribution(circuit, network, teledata=teledata, embed=embed)
            if embed and result.strategy.endswith("+noembed"):   # verify the embedded one too
                placement = result.program.placement
                program = _embedded_candidate(circuit, network, placement, teledata)
            else:
                program = result.program
            assert verify(circuit, program, network, seeds=(2,)) >= 1 - 1e-9


def _embedded_candidate(circuit, network, placement, teledata):
    """The pass with the general packings at ``placement`` (what compile_distribution weighs
    against the plain pass)."""
    from qsim_dist.network.distribute import _Distances, _Scheduler, _units

    return _Scheduler(circuit, _units(circuit), network, _Distances(network), placement,
                      merge=True, teledata=teledata, embed=True).run()


@pytest.mark.parametrize("net", ["all2", "line3", "ring4_slack"])
def test_dynamic_circuits(net):
    for circuit in (_dynamic(), L.teleport_dynamic()):
        network = NETWORKS[net](circuit.num_qubits)
        if net == "all2":  # a conditioned gate across nodes needs a free data qubit to meet in
            network = simple_network("all", 2, -(-circuit.num_qubits // 2) + 1)
        result = compile_distribution(circuit, network)
        result.program.validate(network)
        assert verify(circuit, result.program, network, seeds=(0, 1, 2)) >= 1 - 1e-9
        assert result.cost.epr_pairs <= result.baseline_cost.epr_pairs


def test_baseline_is_verified_too():
    circuit = L.random_gate_circuit(6, 25, seed=11)
    network = simple_network("line", 3, 2)
    program = baseline_program(circuit, network)
    program.validate(network)
    assert verify(circuit, program, network) >= 1 - 1e-9


def test_teledata_and_bursts_are_used():
    circuit = L.random_circuit(10, 8, seed=2)
    network = simple_network("ring", 2, 6)
    program = distribute(circuit, network)
    kinds = {type(op) for op in program.ops}
    assert Teleport in kinds and RemoteGate in kinds
    assert verify(circuit, program, network, seeds=(0,)) >= 1 - 1e-9
    qft = L.qft(8, swaps=False)
    program = distribute(qft, simple_network("all", 2, 4), teledata=False)
    bursts = [op for op in program.ops if isinstance(op, RemoteGate)]
    assert max(len(op.body) for op in bursts) > 1          # one EPR pair served several gates


def test_fixed_placement_is_kept():
    circuit = L.qft(6)
    network = simple_network("all", 3, 2)
    placement = ("N2", "N1", "N0", "N0", "N1", "N2")
    program = distribute(circuit, network, placement=placement)
    assert program.placement == placement
    assert verify(circuit, program, network, seeds=(0,)) >= 1 - 1e-9


# ---- more general packings: H-embedded bursts on a shared target, whole multi-qubit gates --------


def _h_around_burst(program, qubit):
    """Indices of the bursts sharing ``qubit`` in the X basis: H, RemoteGate, H."""
    ops = program.ops
    out = []
    for k, op in enumerate(ops):
        if isinstance(op, RemoteGate) and op.control == qubit and 0 < k < len(ops) - 1:
            around = [getattr(ops[j], "instruction", None) for j in (k - 1, k + 1)]
            if all(i is not None and i.name == "h" and i.qubits == (qubit,) for i in around):
                out.append(k)
    return out


def _shared_target() -> Circuit:
    """CX / CRX / CSX into one target (qubit 3) from three controls on another node, with gates
    that commute with X on the target and diagonal ones on the controls in between."""
    c = Circuit(4, name="shared_target")
    for q in range(4):
        c.add("ry", q, params=[0.4 + 0.3 * q])
    c.add("cx", 0, 3)
    c.add("rx", 3, params=[0.3])          # commutes with X: the burst of 3 stays open
    c.add("cx", 1, 3)
    c.add("rz", 1, params=[0.2])          # on a control, after its gate: absorbed or local
    c.add("crx", 2, 3, params=[0.7])
    c.add("x", 3)
    c.add("csx", 0, 3)
    c.add("cx", 2, 3)
    c.add("ry", 3, params=[0.9])          # does not commute with X: ends the burst
    c.add("cx", 0, 3)
    return c


def test_shared_target_run_is_one_embedded_burst():
    circuit = _shared_target()
    network = simple_network("all", 2, 3)
    placement = ("N0", "N0", "N0", "N1")
    plain = compile_distribution(circuit, network, placement=placement, embed=False)
    result = compile_distribution(circuit, network, placement=placement)
    assert plain.cost.epr_pairs >= 4                       # a burst per control (and after ry)
    assert result.cost.epr_pairs == 2 < plain.cost.epr_pairs
    assert not result.strategy.endswith("+noembed")
    program = result.program
    program.validate(network)
    first = _h_around_burst(program, 3)[0]
    body = program.ops[first].body
    assert [g.name for g in body] == ["cz", "cz", "crz", "cs", "cz"]   # H_t G H_t of each gate
    assert sum(isinstance(op, RemoteGate) for op in program.ops) == 2
    assert verify(circuit, program, network, seeds=(0, 1, 2)) >= 1 - 1e-9


def _toffolis() -> Circuit:
    c = Circuit(5, name="toffolis")
    for q in range(5):
        c.add("ry", q, params=[0.5 + 0.2 * q])
    c.add("ccx", 0, 1, 3)        # target 3 alone on N1: a burst of 3 in the X basis (CCZ)
    c.add("ccx", 0, 3, 4)        # control 0 alone on N0: the CCX whole in a burst of 0
    c.add("cswap", 2, 3, 4)      # control 2 alone on N0
    c.add("c3x", 3, 4, 0, 1)     # two qubits on each node: controlled-form pieces
    c.add("rxx", 1, 4, params=[0.8])  # a burst in the X basis (RZX image)
    return c


def test_whole_multi_qubit_gates_in_one_burst():
    circuit = _toffolis()
    network = simple_network("line", 2, 3)
    placement = ("N0", "N0", "N0", "N1", "N1")
    plain = compile_distribution(circuit, network, placement=placement, embed=False,
                                 teledata=False)
    result = compile_distribution(circuit, network, placement=placement, teledata=False)
    assert result.cost.epr_pairs < plain.cost.epr_pairs
    program = result.program
    program.validate(network)
    whole = [(g.name, op.control) for op in program.ops if isinstance(op, RemoteGate)
             for g in op.body if len(g.qubits) > 2]
    assert [("ccz", 3), ("ccx", 0), ("cswap", 2)] == whole[:3]
    assert _h_around_burst(program, 3)       # the CCX with its target alone on N1
    assert any(g.name == "rzx" for op in program.ops if isinstance(op, RemoteGate)
               for g in op.body)
    assert verify(circuit, program, network, seeds=(0, 1)) >= 1 - 1e-9


def _dynamic_packings() -> Circuit:
    """The new packings between mid-circuit measurements, feed-forward and reset."""
    c = Circuit(5, 2, name="dynamic_packings")
    for q in range(5):
        c.add("ry", q, params=[0.3 + 0.25 * q])
    c.add("cx", 0, 4)
    c.add("cx", 1, 4)
    c.measure(2, 0)
    c.add("cx", 2, 4)
    c.add("x", 1, condition=Condition((0,), 1))
    c.add("ccx", 0, 1, 3)
    c.measure(4, 1)
    c.add("reset", 2)
    c.add("h", 2)
    c.add("ccx", 3, 4, 2)
    c.add("ry", 0, params=[0.4], condition=Condition((1,), 0))
    c.add("cx", 0, 3)
    c.add("cx", 1, 3)
    return c


@pytest.mark.parametrize("kind", ["all", "line"])
def test_dynamic_circuit_with_the_new_packings(kind):
    circuit = _dynamic_packings()
    network = simple_network(kind, 2, 3)
    placement = ("N0", "N0", "N0", "N1", "N1")
    plain = compile_distribution(circuit, network, placement=placement, embed=False,
                                 teledata=False)
    result = compile_distribution(circuit, network, placement=placement, teledata=False)
    assert result.cost.epr_pairs < plain.cost.epr_pairs
    assert _h_around_burst(result.program, 4) and _h_around_burst(result.program, 3)
    assert verify(circuit, result.program, network, seeds=(0, 1, 2)) >= 1 - 1e-9
    free = compile_distribution(circuit, network)        # placement and TeleData of its own
    assert free.cost.epr_pairs <= free.baseline_cost.epr_pairs
    assert verify(circuit, free.program, network, seeds=(0,)) >= 1 - 1e-9


@pytest.mark.parametrize("comm_qubits", [1, 2])
def test_live_comm_limit_with_the_new_packings(comm_qubits):
    for circuit in (_shared_target(), _toffolis(), L.grover(4, 6), L.cuccaro_adder(3, 5, 3)):
        network = simple_network("all", 2, -(-circuit.num_qubits // 2), comm_qubits=comm_qubits)
        result = compile_distribution(circuit, network, comm_limit="live")
        result.program.validate(network)
        assert result.cost.epr_pairs <= result.baseline_cost.epr_pairs
        assert verify(circuit, result.program, network, seeds=(0,)) >= 1 - 1e-9


def test_general_packings_are_never_worse_than_the_plain_pass():
    for circuit in (L.cuccaro_adder(4, 9, 5), L.grover(5, 7), L.random_gate_circuit(10, 80, 3),
                    L.random_circuit(12, 8, seed=5, entangler="mixed")):
        for kind, nodes in (("ring", 4), ("line", 3), ("all", 2)):
            network = simple_network(kind, nodes, -(-circuit.num_qubits // nodes))
            plain = compile_distribution(circuit, network, embed=False)
            result = compile_distribution(circuit, network)
            assert result.cost.epr_pairs <= plain.cost.epr_pairs, (circuit.name, kind)


def test_x_embedding_table_matches_the_matrices():
    from qsim_dist.passes.decompose import block_diagonal_in
    from qsim_dist.network.distribute import x_embedded

    rng = np.random.default_rng(5)
    for name, position, image, order in [(n, *e) for n, s in GATES.items() for e in s.x_embed]:
        spec = GATES[name]
        inst = Instruction(name, tuple(range(spec.num_qubits)),
                           tuple(float(x) for x in rng.uniform(-3, 3, spec.num_params)))
        h = Instruction("h", (position,))
        a = unitary(Circuit(spec.num_qubits, instructions=[h, inst, h]))
        got = x_embedded(inst, position)
        assert got.name == image and got.qubits == tuple(order)
        b = unitary(Circuit(spec.num_qubits, instructions=[got]))
        assert np.allclose(a, b, atol=1e-12), (name, position)       # exactly, no phase
        assert is_controlled_form(got) or len(got.qubits) > 2
        assert block_diagonal_in(got, position), (name, position)


@pytest.mark.parametrize("name", sorted(GATES))
def test_x_diagonal_claims_are_sound(name):
    """A gate said to commute with X on a qubit does (the scheduler moves gates past it)."""
    from qsim_dist.network.distribute import xdiagonal_in

    spec = GATES[name]
    rng = np.random.default_rng(11)
    for _ in range(3):
        inst = Instruction(name, tuple(range(spec.num_qubits)),
                           tuple(float(x) for x in rng.uniform(-3, 3, spec.num_params)))
        m = unitary(Circuit(spec.num_qubits, instructions=[inst]))
        for q in range(spec.num_qubits):
            if xdiagonal_in(inst, q):
                x = unitary(Circuit(spec.num_qubits, instructions=[Instruction("x", (q,))]))
                assert np.allclose(m @ x, x @ m, atol=1e-12), (name, q)
    for fixed in ("x", "rx", "sx", "cx", "ccx"):   # and the ones the packings rely on say so
        assert xdiagonal_in(Instruction(fixed, tuple(range(GATES[fixed].num_qubits)),
                                        (0.3,) * GATES[fixed].num_params),
                            GATES[fixed].num_qubits - 1)


# ---- never worse than the baseline; the QFT goal -------------------------------------------------


def _many_circuits():
    yield L.qft(16)
    yield L.qft(24, swaps=False)
    yield _qaoa(20, seed=1)
    yield L.cuccaro_adder(8, 100, 57)
    yield L.ghz(16)
    yield L.grover(6, 9)
    for seed in range(2):
        yield L.random_circuit(16, 10, seed=seed, entangler="mixed")
        yield L.random_gate_circuit(12, 120, seed=seed)


@pytest.mark.parametrize("kind", ["line", "ring", "all"])
@pytest.mark.parametrize("nodes", [2, 4, 8])
def test_never_worse_than_baseline(kind, nodes):
    for circuit in _many_circuits():
        for slack in (0, 1):
            network = simple_network(kind, nodes, -(-circuit.num_qubits // nodes) + slack)
            result = compile_distribution(circuit, network)
            result.program.validate(network)
            result.baseline.validate(network)
            assert result.cost.epr_pairs <= result.baseline_cost.epr_pairs, circuit.name
            assert result.makespan > 0 or result.cost.epr_pairs == 0


@pytest.mark.parametrize("n", [16, 32, 64])
@pytest.mark.parametrize("kind", ["all", "ring", "line"])
def test_qft_four_nodes_goal(n, kind):
    network = simple_network(kind, 4, n // 4)
    result = compile_distribution(L.qft(n), network)
    assert result.cost.epr_pairs <= 0.35 * result.baseline_cost.epr_pairs


def test_baseline_counts_one_pair_per_hop_per_remote_gate():
    circuit = Circuit(4)
    circuit.add("cx", 0, 3)
    circuit.add("cz", 1, 2)
    circuit.add("swap", 0, 2)            # three CX in controlled form
    network = simple_network("line", 4, 1)
    cost = baseline_program(circuit, network).cost(network)
    assert cost.epr_pairs == 3 + 1 + 3 * 2
    assert cost.remote_gates == 5


# ---- cost, makespan, export, errors --------------------------------------------------------------


def test_cost_and_makespan():
    circuit = L.qft(8)
    network = simple_network("line", 2, 4, attempt_time=1e-6, success_probability=0.5,
                             latency=1e-5, gate_time=1e-7, measure_time=1e-6)
    result = compile_distribution(circuit, network)
    cost = result.cost
    assert cost.classical_bits == 2 * (cost.telegates + cost.teleports)   # neighbours only
    assert cost.epr_pairs == cost.telegates + cost.teleports
    # every protocol waits at least one pair (2 us) and two latencies (or one for teleport)
    assert result.makespan >= 2e-6 + 1e-5
    assert result.makespan == pytest.approx(estimate_makespan(result.program, network))
    summary = result.summary()
    assert summary["epr_pairs"] == cost.epr_pairs and summary["baseline"]["epr_pairs"] > 0


def _qasm3_cases():
    yield "qft6", L.qft(6), simple_network("line", 3, 2)               # swapped paths
    dyn = _dynamic()                                                  # measurement, feed-forward
    yield "dynamic", dyn, simple_network("ring", 4, -(-dyn.num_qubits // 4) + 1)
    yield "teledata", L.random_circuit(6, 6, seed=1), simple_network("all", 2, 4)
    yield "embedded", _shared_target(), simple_network("all", 2, 2)   # an H ... H burst


@pytest.mark.parametrize("case", ["qft6", "dynamic", "teledata", "embedded"])
def test_qasm3_export_has_every_protocol_step(case):
    from qsim_dist.io import loads

    circuit, network = next((c, n) for name, c, n in _qasm3_cases() if name == case)
    program = distribute(circuit, network)
    text = to_qasm3(program, network)
    assert text.startswith("OPENQASM 3")
    back = loads(text)
    lowered = lower_ideal(program, network)
    assert len(back.instructions) == len(lowered.circuit.instructions)
    assert "measure" in text and "if (" in text
    assert "== 1)" not in text and "== 0)" not in text     # single bits: if (c[i]) / if (!c[i])
    # what the project's reader gets back acts like the source circuit, branch by branch
    source = branches(circuit, circuit.num_clbits, np.random.default_rng(0),
                      skip=_terminal(circuit))
    tail = set(range(len(back.instructions) - lowered.terminal, len(back.instructions)))
    for seed in (0, 1):
        got = branches(back, circuit.num_clbits, np.random.default_rng(seed), skip=tail)
        assert set(got) == set(source)
        for history, (p, psi) in got.items():
            q, want = source[history]
            assert abs(p - q) < 1e-9
            m = data_matrix(psi, lowered.final_qubits)
            row = m[int(np.argmax(np.linalg.norm(m, axis=1)))]
            assert abs(np.vdot(want, row)) ** 2 >= 1 - 1e-9
    # and Qiskit's OpenQASM 3 importer takes it: same qubits, clbits and instructions
    qasm3 = pytest.importorskip("qiskit.qasm3")
    pytest.importorskip("qiskit_qasm3_import")   # what qiskit.qasm3.loads runs on
    qc = qasm3.loads(text)
    assert (qc.num_qubits, qc.num_clbits) == (back.num_qubits, back.num_clbits)
    assert len(qc.data) == len(back.instructions)
    if case == "teledata":
        assert any(isinstance(op, Teleport) for op in program.ops)
    if case == "embedded":
        assert _h_around_burst(program, 3)
    conditioned = sum(inst.condition is not None for inst in back.instructions)
    assert conditioned > 0
    assert sum(i.operation.name == "if_else" for i in qc.data) == conditioned


def test_errors():
    with pytest.raises(DistributeError, match="data qubits"):
        distribute(L.qft(9), simple_network("all", 2, 4))
    c = Circuit(2, 1)
    c.add("h", 0)
    c.measure(0, 0)
    c.add("cx", 0, 1, condition=Condition((0,), 1))
    with pytest.raises(DistributeError, match="free data qubit"):
        distribute(c, simple_network("all", 2, 1))
    net = simple_network("line", 3, 2, comm_qubits=1)
    with pytest.raises(DistributeError, match="communication qubit"):
        distribute(L.qft(6), net)


@pytest.mark.parametrize("name", sorted(GATES))
def test_known_controls_match_the_matrices(name):
    from qsim_dist.passes.decompose import block_diagonal_in, diagonal_in

    spec = GATES[name]
    rng = np.random.default_rng(3)
    inst = Instruction(name, tuple(range(spec.num_qubits)),
                       tuple(float(x) for x in rng.uniform(-3, 3, spec.num_params)))
    for q in range(spec.num_qubits):
        assert diagonal_in(inst, q) == block_diagonal_in(inst, q), (name, q)
