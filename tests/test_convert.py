"""Qiskit and Cirq conversions: round trips, bit order, state vectors against both libraries."""

from __future__ import annotations

import sys

import cirq
import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit.classical import expr
from qiskit.quantum_info import Statevector

from qsim_dist.backends.reference import ReferenceBackend
from qsim_dist.circuit import Circuit, Condition, Instruction, Register
from qsim_dist.errors import CircuitError, QsimDistError
from qsim_dist.gates import GATES
from qsim_dist.io import from_cirq, from_qiskit, to_qiskit

# to_qiskit writes these table aliases as Qiskit's standard gate; u0 (an idle) becomes id.
ALIASES = {"phase": "p", "cphase": "cp", "U": "u", "CX": "cx", "u0": "id"}


def statevector(circuit: Circuit) -> np.ndarray:
    return ReferenceBackend().statevector(circuit)


def cirq_state_little_endian(circuit, qubit_order) -> np.ndarray:
    """Cirq's final state with bit order reversed: Cirq's first qubit is the most significant."""
    state = cirq.Simulator(dtype=np.complex128).simulate(
        circuit, qubit_order=qubit_order).final_state_vector
    n = len(qubit_order)
    return state.reshape((2,) * n).transpose(range(n)[::-1]).reshape(-1)


def equal_up_to_phase(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> bool:
    i = np.argmax(np.abs(b))
    phase = a[i] / b[i]
    return abs(abs(phase) - 1) < atol and np.allclose(a, phase * b, atol=atol)


def random_circuit(seed: int, n: int = 5, dynamic: bool = False) -> Circuit:
    rng = np.random.default_rng(seed)
    c = Circuit(n, 3 if dynamic else 0, qregs=[Register("a", 0, 2), Register("b", 2, n - 2)],
                cregs=[Register("c", 0, 2), Register("d", 2, 1)] if dynamic else [])
    names = list(GATES) + list(rng.choice(sorted(GATES), 20))
    rng.shuffle(names)
    for name in names:
        spec = GATES[name]
        qubits = [int(q) for q in rng.choice(n, spec.num_qubits, replace=False)]
        cond = None
        if dynamic and rng.random() < 0.3:
            cond = [Condition((0, 1), 3), Condition((2,), 1), Condition((1, 2), 2)][rng.integers(3)]
        c.add(name, *qubits, params=rng.uniform(-4, 4, spec.num_params), condition=cond)
        if dynamic and rng.random() < 0.2:
            c.measure(int(rng.integers(n)), int(rng.integers(3)))
    return c


def normalised(circuit: Circuit) -> list[tuple]:
    out = []
    for i in circuit:
        name = ALIASES.get(i.name, i.name)
        params = () if i.name == "u0" else tuple(round(p, 12) for p in i.params)
        out.append((name, i.qubits, params, i.clbits, i.condition))
    return out


# ---- Qiskit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_qiskit_round_trip(seed):
    c = random_circuit(seed, dynamic=True)
    qc = to_qiskit(c)
    assert [r.name for r in qc.qregs] == ["a", "b"] and [r.name for r in qc.cregs] == ["c", "d"]
    back = from_qiskit(qc)
    assert normalised(back) == normalised(c)
    assert (back.qregs, back.cregs) == (c.qregs, c.cregs)


@pytest.mark.parametrize("seed", range(3))
def test_statevector_matches_qiskit_exactly(seed):
    c = random_circuit(seed)
    np.testing.assert_allclose(statevector(c), Statevector(to_qiskit(c)).data, atol=1e-10)


def test_bit_order_qiskit_qubit_0_is_our_qubit_0():
    qc = QuantumCircuit(3)
    qc.x(0)
    c = from_qiskit(qc)
    assert c.instructions == [Instruction("x", (0,))]
    state = statevector(c)
    assert state[1] == pytest.approx(1)  # |001>: qubit 0 is the least significant bit
    np.testing.assert_allclose(state, Statevector(qc).data)


def test_from_qiskit_library_gates_and_definitions():
    from qiskit.circuit.library import C3SXGate, C4XGate, QFTGate, RC3XGate, UnitaryGate

    qc = QuantumCircuit(5)
    qc.h(range(5))
    qc.mcx([0, 1, 2], 3)
    qc.append(C4XGate(), [4, 3, 2, 1, 0])
    qc.append(RC3XGate(), [0, 1, 2, 3])
    qc.append(C3SXGate(), [1, 2, 3, 4])
    qc.rzx(0.3, 1, 4)
    qc.global_phase = 0.7  # the IR has no global phase: dropped
    names = [i.name for i in from_qiskit(qc)]
    assert names[5:] == ["c3x", "c4x", "rc3x", "c3sqrtx", "rzx"]
    # instructions outside the table are inlined through their definitions
    sub = QuantumCircuit(2, name="my_block")
    sub.cx(0, 1)
    sub.ry(0.4, 1)
    qc.append(sub.to_gate(), [2, 0])
    qc.append(QFTGate(3), [0, 1, 4])
    rng = np.random.default_rng(3)
    m = np.linalg.qr(rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)))[0]
    qc.append(UnitaryGate(m), [3, 1])
    c = from_qiskit(qc)
    assert [(i.name, i.qubits) for i in c][10:12] == [("cx", (2, 0)), ("ry", (0,))]
    assert all(i.name in GATES for i in c)
    assert equal_up_to_phase(statevector(c), Statevector(qc).data)


def test_from_qiskit_registers_measure_and_conditions():
    q, r = QuantumRegister(2, "q"), QuantumRegister(1, "r")
    c, flag = ClassicalRegister(2, "c"), ClassicalRegister(1, "flag")
    qc = QuantumCircuit(q, r, c, flag)
    qc.h(q[0])
    qc.measure(q, c)
    with qc.if_test((c, 2)):
        qc.x(r[0])
        qc.cx(q[1], r[0])
    with qc.if_test((flag[0], 0)) as else_:
        qc.z(q[0])
    with else_:
        qc.y(q[0])
    with qc.if_test(expr.logic_and(c[0], expr.logic_not(flag[0]))):
        qc.s(q[1])
    with qc.if_test(expr.equal(c, 1)):
        qc.reset(q[1])
    qc.barrier()
    circuit = from_qiskit(qc)
    assert circuit.qregs == [Register("q", 0, 2), Register("r", 2, 1)]
    assert circuit.cregs == [Register("c", 0, 2), Register("flag", 2, 1)]
    assert [(i.name, i.qubits, i.clbits, i.condition) for i in circuit] == [
        ("h", (0,), (), None),
        ("measure", (0,), (0,), None), ("measure", (1,), (1,), None),
        ("x", (2,), (), Condition((0, 1), 2)), ("cx", (1, 2), (), Condition((0, 1), 2)),
        ("z", (0,), (), Condition((2,), 0)), ("y", (0,), (), Condition((2,), 1)),
        ("s", (1,), (), Condition((0, 2), 1)), ("reset", (1,), (), Condition((0, 1), 1)),
        ("barrier", (0, 1, 2), (), None),
    ]


def test_from_qiskit_errors():
    from qiskit.circuit import Parameter

    qc = QuantumCircuit(1)
    qc.rx(Parameter("t"), 0)
    with pytest.raises(CircuitError, match="unbound parameter"):
        from_qiskit(qc)
    qc = QuantumCircuit(1, 1)
    with qc.while_loop((qc.clbits[0], 0)):
        qc.x(0)
    with pytest.raises(CircuitError, match="control flow 'while_loop' is not supported"):
        from_qiskit(qc)
    qc = QuantumCircuit(1, 2)
    with qc.if_test(expr.less(qc.cregs[0], 2)):
        qc.x(0)
    with pytest.raises(CircuitError, match="unsupported qiskit condition"):
        from_qiskit(qc)


def test_missing_dependency_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "qiskit", None)  # makes `import qiskit` fail
    monkeypatch.setitem(sys.modules, "cirq", None)
    with pytest.raises(QsimDistError,
                       match=r"qiskit is not installed \(install qsim-dist\[interop\]\)"):
        from_qiskit(object())
    with pytest.raises(QsimDistError, match=r"qiskit is not installed"):
        to_qiskit(Circuit(1))
    with pytest.raises(QsimDistError, match=r"cirq is not installed"):
        from_cirq(object())


# ---- Cirq ------------------------------------------------------------------------------------


def test_cirq_bit_order_is_reversed():
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.X(q[0]))
    c = from_cirq(circuit, qubit_order=q)  # an explicit order keeps idle qubits
    assert c.num_qubits == 3 and c.instructions == [Instruction("x", (0,))]
    ours = statevector(c)
    theirs = cirq.Simulator().simulate(circuit, qubit_order=q).final_state_vector
    assert ours[0b001] == pytest.approx(1)  # our qubit 0 is the least significant bit
    assert theirs[0b100] == pytest.approx(1)  # Cirq's first qubit is the most significant bit
    np.testing.assert_allclose(ours, cirq_state_little_endian(circuit, q))


def exact_cirq_circuit(q):
    """Gates with an exact table form: the state must match Cirq's including global phase."""
    return cirq.Circuit([
        cirq.H.on_each(*q), cirq.X(q[0]), cirq.Y(q[1]), cirq.Z(q[2]), cirq.S(q[0]),
        cirq.T(q[1]), cirq.S(q[2]) ** -1, cirq.T(q[0]) ** -1, cirq.X(q[3]) ** 0.5,
        cirq.rx(0.3)(q[0]), cirq.ry(-1.1)(q[1]), cirq.rz(0.7)(q[2]), cirq.Z(q[3]) ** 0.37,
        cirq.CNOT(q[0], q[1]), cirq.CZ(q[1], q[2]), cirq.SWAP(q[2], q[3]), cirq.ISWAP(q[0], q[3]),
        cirq.CZ(q[0], q[2]) ** 0.3, cirq.CNOT(q[3], q[1]) ** 0.45, cirq.ISWAP(q[1], q[2]) ** 0.6,
        cirq.CCX(q[0], q[1], q[2]), cirq.CCZ(q[1], q[2], q[3]), cirq.CSWAP(q[3], q[0], q[1]),
        cirq.ControlledGate(cirq.Y).on(q[2], q[0]), cirq.ControlledGate(cirq.H).on(q[1], q[3]),
        cirq.ControlledGate(cirq.PhasedXPowGate(phase_exponent=0.3, exponent=0.4)).on(q[0], q[2]),
        cirq.I(q[1]),
    ])


def test_cirq_exact_gates_match_statevector_exactly():
    q = cirq.LineQubit.range(4)
    circuit = exact_cirq_circuit(q)
    c = from_cirq(circuit)
    assert {i.name for i in c} == {
        "h", "x", "y", "z", "s", "t", "sdg", "tdg", "sx", "rx", "ry", "rz", "p", "cx", "cz", "swap",
        "iswap", "cp", "crx", "xx_plus_yy", "ccx", "ccz", "cswap", "cy", "ch", "cu", "id"}
    np.testing.assert_allclose(statevector(c), cirq_state_little_endian(circuit, q), atol=1e-10)


def test_cirq_phase_dropping_gates_match_up_to_global_phase():
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit([
        cirq.H.on_each(*q), cirq.X(q[0]) ** 0.3, cirq.Y(q[1]) ** -0.7,
        cirq.PhasedXPowGate(phase_exponent=0.2, exponent=0.3)(q[2]),
        cirq.MatrixGate(cirq.unitary(cirq.rx(0.4)) * 1j).on(q[0]),
        cirq.XX(q[0], q[1]) ** 0.3, cirq.YY(q[1], q[2]) ** 0.2, cirq.ZZ(q[0], q[2]) ** 0.9,
        cirq.SWAP(q[1], q[2]) ** 0.5, cirq.GlobalPhaseGate(1j).on(),
        cirq.FSimGate(0.3, 0.5).on(q[0], q[2]),
    ])
    c = from_cirq(circuit)
    assert {"rxx", "ryy", "rzz", "u"} <= {i.name for i in c}
    assert equal_up_to_phase(statevector(c), cirq_state_little_endian(circuit, q))


def test_cirq_qubit_order_and_grid_qubits():
    g = [cirq.GridQubit(1, 0), cirq.GridQubit(0, 1), cirq.GridQubit(0, 0)]
    circuit = cirq.Circuit([cirq.X(g[0]), cirq.H(g[1]), cirq.CNOT(g[1], g[2])])
    c = from_cirq(circuit)  # sorted: (0,0) -> 0, (0,1) -> 1, (1,0) -> 2
    assert [(i.name, i.qubits) for i in c] == [("x", (2,)), ("h", (1,)), ("cx", (1, 0))]
    order = [g[0], g[1], g[2]]
    c = from_cirq(circuit, qubit_order=order)
    assert [(i.name, i.qubits) for i in c] == [("x", (0,)), ("h", (1,)), ("cx", (1, 2))]
    np.testing.assert_allclose(statevector(c), cirq_state_little_endian(circuit, order), atol=1e-12)
    with pytest.raises(CircuitError, match="qubit_order"):
        from_cirq(circuit, qubit_order=g[:2])


def test_cirq_measurements_and_classical_control():
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit([
        cirq.H(q[0]),
        cirq.measure(q[0], key="m0"),
        cirq.measure(q[1], q[2], key="pair", invert_mask=(False, True)),
        cirq.X(q[1]).with_classical_controls("m0"),
        cirq.reset(q[0]),
    ], strategy=cirq.InsertStrategy.NEW)  # one operation per moment: keeps this order
    c = from_cirq(circuit)
    assert c.cregs == [Register("m0", 0, 1), Register("pair", 1, 2)]
    assert [(i.name, i.qubits, i.clbits, i.condition) for i in c] == [
        ("h", (0,), (), None),
        ("measure", (0,), (0,), None),
        ("measure", (1,), (1,), None),
        ("x", (2,), (), None), ("measure", (2,), (2,), None), ("x", (2,), (), None),
        ("x", (1,), (), Condition((0,), 1)),
        ("reset", (0,), (), None),
    ]
    multi = cirq.Circuit([cirq.measure(*q[:2], key="k"), cirq.X(q[2]).with_classical_controls("k")])
    with pytest.raises(CircuitError, match="2-bit key 'k'"):
        from_cirq(multi)


def test_cirq_unresolved_parameters_error():
    import sympy

    q = cirq.LineQubit(0)
    with pytest.raises(CircuitError, match="unresolved parameters"):
        from_cirq(cirq.Circuit(cirq.rx(sympy.Symbol("t"))(q)))
    c = from_cirq(cirq.resolve_parameters(cirq.Circuit(cirq.rx(sympy.Symbol("t"))(q)), {"t": 0.5}))
    assert [(i.name, i.params) for i in c] == [("rx", (pytest.approx(0.5),))]


@pytest.mark.parametrize("name", sorted(n for n, s in GATES.items() if s.cirq_gate is not None))
def test_cirq_gate_facts_match_the_matrices(name):
    """A table gate's cirq_gate fact is that Cirq gate (exactly, or up to global phase where the
    fact drops it), and from_cirq reads the Cirq gate back as the table gate."""
    spec = GATES[name]
    cls, shift = spec.cirq_gate
    theta = 0.7
    gate = getattr(cirq, cls)(exponent=theta / np.pi, global_shift=0.25 if shift is None else shift)
    k = spec.num_qubits
    perm = [int(format(i, f"0{k}b")[::-1], 2) for i in range(1 << k)]  # Cirq is big-endian
    m = np.asarray(cirq.unitary(gate))[np.ix_(perm, perm)]
    if shift is None:
        assert equal_up_to_phase(m.reshape(-1), spec.matrix((theta,)).reshape(-1))
    else:
        np.testing.assert_allclose(m, spec.matrix((theta,)), atol=1e-12)
    circuit = from_cirq(cirq.Circuit(gate.on(*cirq.LineQubit.range(k))))
    (inst,) = list(circuit)
    assert (inst.name, inst.qubits) == (name, tuple(range(k)))
    assert inst.params == pytest.approx((theta,))
