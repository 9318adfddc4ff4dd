"""OpenQASM 2/3 import and export: real-world files, round trips, Qiskit agreement, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from qsim_dist.backends.reference import unitary as reference_unitary
from qsim_dist.backends.reference import ReferenceBackend
from qsim_dist.circuit import Circuit, Condition, Instruction, Register
from qsim_dist.errors import CircuitError, QasmError
from qsim_dist.gates import GATES, controlled
from qsim_dist.io import dump, dumps, load, loads

DATA = Path(__file__).parent / "data"
H2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
H3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def statevector(circuit: Circuit) -> np.ndarray:
    return ReferenceBackend().statevector(circuit)


unitary = reference_unitary


def equal_up_to_phase(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> bool:
    i = np.unravel_index(np.argmax(np.abs(b)), b.shape)
    phase = a[i] / b[i]
    return abs(abs(phase) - 1) < atol and np.allclose(a, phase * b, atol=atol)


def gates_only(circuit: Circuit) -> Circuit:
    return Circuit(circuit.num_qubits, instructions=[i for i in circuit if i.is_gate])


def summary(circuit: Circuit) -> list[tuple]:
    return [(i.name, i.qubits, i.clbits, i.condition) for i in circuit]


def assert_same_instructions(got: Circuit, want: Circuit) -> None:
    assert summary(got) == summary(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.params, w.params, rtol=0, atol=1e-12)


# ---- files as found in the wild --------------------------------------------------------------


def test_qiskit_exporter_file():
    c = load(DATA / "qiskit_export.qasm")
    assert (c.num_qubits, c.num_clbits, c.name) == (4, 4, "qiskit_export")
    assert c.qregs == [Register("a", 0, 2), Register("b", 2, 2)]
    assert c.cregs == [Register("m", 0, 2), Register("n", 2, 2)]
    names = [i.name for i in c]
    # Qiskit's definitions of rzx, ecr, iswap, ryy reproduce the table gates: they stay table gates.
    assert names[:11] == ["h", "cx", "rzx", "ecr", "sx", "rzz", "u", "p", "cswap", "iswap", "ryy"]
    # a custom composite gate is expanded, its parameter substituted
    assert names[11:15] == ["h", "cx", "rz", "ccx"]
    assert c.instructions[13].params == (1.2345678901234567,)
    assert c.instructions[14].qubits == (3, 0, 1)
    assert c.instructions[2].qubits == (1, 3)
    assert c.instructions[2].params == pytest.approx((math.pi / 3,), abs=1e-15)
    assert c.instructions[7].params == pytest.approx((-math.pi / 8,), abs=1e-15)
    assert c.instructions[15] == Instruction("barrier", (0, 1, 2, 3))
    assert [(i.qubits, i.clbits) for i in c if i.name == "measure"] == [
        ((0,), (0,)), ((1,), (1,)), ((2,), (2,)), ((3,), (3,))]


def test_qiskit_exporter_file_state_matches_qiskit():
    import qiskit.qasm2
    from qiskit.quantum_info import Statevector

    text = (DATA / "qiskit_export.qasm").read_text()
    qc = qiskit.qasm2.loads(text, custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    qc.remove_final_measurements()
    ours = statevector(gates_only(loads(text)))
    assert equal_up_to_phase(ours, Statevector(qc).data)


def test_qasmbench_adder_and_teleport():
    c = load(DATA / "qasmbench_adder.qasm")
    assert (c.num_qubits, c.num_clbits) == (7, 5)
    assert [r.name for r in c.qregs] == ["cin", "a", "b", "cout", "tel"]
    assert [(r.name, r.start, r.size) for r in c.cregs] == [
        ("ans", 0, 2), ("c0", 2, 1), ("c1", 3, 1), ("c2", 4, 1)]
    assert sum(i.name == "ccx" for i in c) == 2
    assert next(i for i in c if i.name == "ccx").qubits == (0, 2, 1)
    assert Instruction("barrier", (4, 5, 6)) in c.instructions
    conditioned = [i for i in c if i.condition is not None]
    assert [(i.name, i.qubits, i.condition) for i in conditioned] == [
        ("z", (6,), Condition((2,), 1)), ("x", (6,), Condition((3,), 1))]
    # The adder part computes 1 + 1: sum bit b = 0, carry cout = 1, inputs restored.
    adder = Circuit(4, instructions=[i for i in c if i.is_gate and max(i.qubits) < 4])
    probs = np.abs(statevector(adder)) ** 2
    assert np.argmax(probs) == 0b1010 and probs.max() == pytest.approx(1)


def test_mqt_bench_file():
    import qiskit.qasm2
    from qiskit.quantum_info import Statevector

    c = load(DATA / "mqt_bench_qaoa.qasm")
    assert (c.num_qubits, c.num_clbits) == (4, 4)
    assert c.cregs == [Register("meas", 0, 4)]
    rzz = [i for i in c if i.name == "rzz"]
    assert [i.qubits for i in rzz] == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert rzz[0].params == (-0.8471285629458392,)
    cp = [i for i in c if i.name == "cp"]
    assert [(i.qubits, i.params) for i in cp] == [((1, 0), (math.pi / 2,)),
                                                  ((2, 0), (math.pi / 4,))]
    u3 = next(i for i in c if i.name == "u3")
    assert u3.params == pytest.approx((math.pi / 2, -math.pi / 4, 3 * math.pi / 4), abs=1e-15)
    assert [i.name for i in c][-5:] == ["barrier"] + ["measure"] * 4
    qc = qiskit.qasm2.load(str(DATA / "mqt_bench_qaoa.qasm"),
                           custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    qc.remove_final_measurements()
    np.testing.assert_allclose(statevector(gates_only(c)), Statevector(qc).data, atol=1e-12)


def test_qasm3_dynamic_file():
    c = load(DATA / "qasm3_dynamic.qasm")
    assert (c.num_qubits, c.num_clbits) == (4, 3)
    assert c.qregs == [Register("q", 0, 3), Register("anc", 3, 1)]
    assert c.cregs == [Register("c", 0, 2), Register("flag", 2, 1)]
    theta = math.pi / 8
    # prep(2*theta): ry(a); ctrl @ x -> cx; gphase dropped; inv @ s -> sdg; pow(2) @ t -> t, t
    assert [(i.name, i.qubits) for i in c][:6] == [
        ("ry", (0,)), ("cx", (0, 1)), ("sdg", (2,)), ("t", (2,)), ("t", (2,)), ("h", (3,))]
    assert c.instructions[0].params == pytest.approx((2 * theta,))
    got = [(i.name, i.qubits, i.clbits, i.condition) for i in c][6:]
    assert got == [
        ("measure", (0,), (0,), None),
        ("measure", (1,), (1,), None),
        ("x", (0,), (), Condition((0,), 1)),
        ("h", (2,), (), Condition((0,), 1)),
        ("x", (1,), (), Condition((1,), 1)),
        ("rz", (2,), (), Condition((0, 1), 3)),
        ("cx", (2, 3), (), Condition((0, 1), 3)),
        ("z", (3,), (), Condition((2,), 0)),
        ("measure", (3,), (2,), None),
        ("reset", (3,), (), None),
    ]
    assert c.instructions[11].params == pytest.approx((-theta,))
    assert c.is_dynamic()


# ---- language features -----------------------------------------------------------------------


def test_registers_and_broadcasting():
    c = loads(H2 + "qreg a[2];\nqreg b[2];\ncreg c[2];\nh a;\ncx a, b;\ncx a[0], b;\n"
                   "measure b -> c;\nreset a;\nbarrier a, b[1];\n")
    assert summary(c) == [
        ("h", (0,), (), None), ("h", (1,), (), None),
        ("cx", (0, 2), (), None), ("cx", (1, 3), (), None),
        ("cx", (0, 2), (), None), ("cx", (0, 3), (), None),
        ("measure", (2,), (0,), None), ("measure", (3,), (1,), None),
        ("reset", (0,), (), None), ("reset", (1,), (), None),
        ("barrier", (0, 1, 3), (), None),
    ]


def test_qasm3_declarations_measure_forms_and_ranges():
    c = loads(H3 + "qubit[3] q;\nqubit r;\nbit[3] c;\nbit d;\nx q[0:1];\nh q[-1];\n"
                   "c[0] = measure q[0];\nc[1:2] = measure q[1:2];\nmeasure r -> d;\n"
                   "d = measure r;\ncx r, q[{0, 2}];\n")
    assert (c.num_qubits, c.num_clbits) == (4, 4)
    assert summary(c) == [
        ("x", (0,), (), None), ("x", (1,), (), None), ("h", (2,), (), None),
        ("measure", (0,), (0,), None), ("measure", (1,), (1,), None),
        ("measure", (2,), (2,), None), ("measure", (3,), (3,), None),
        ("measure", (3,), (3,), None),
        ("cx", (3, 0), (), None), ("cx", (3, 2), (), None),
    ]


def test_parameter_expressions():
    exprs = {
        "pi": math.pi, "π": math.pi, "tau": math.tau, "τ": math.tau, "euler": math.e,
        "ℇ": math.e, "-pi/2": -math.pi / 2, "2*pi/3 - 1": 2 * math.pi / 3 - 1,
        "(1+2)*3": 9.0, "-(0.5)": -0.5, "1.5e-3": 1.5e-3, ".5": 0.5, "7 % 4": 3.0,
        "sin(pi/6)": 0.5, "cos(0)": 1.0, "tan(pi/4)": 1.0, "exp(1)": math.e, "ln(euler)": 1.0,
        "sqrt(2)": math.sqrt(2), "arcsin(1)": math.pi / 2, "arccos(0)": math.pi / 2,
        "arctan(1)": math.pi / 4, "2**3": 8.0, "-2**2": -4.0,
    }
    body = "".join(f"rz({e}) q[0];\n" for e in exprs)
    c = loads(H3 + "qubit[1] q;\nconst float half = 0.5;\nrz(half * 4) q[0];\n" + body)
    got = [i.params[0] for i in c]
    assert got == pytest.approx([2.0] + list(exprs.values()), abs=1e-14)
    # OpenQASM 2 writes powers with ^; in OpenQASM 3, ^ is xor, which is not a parameter operator
    assert loads(H2 + "qreg q[1];\nrz(2^3) q[0];\n").instructions[0].params == (8.0,)
    with pytest.raises(QasmError, match=r"line 4: operator '\^' is not supported"):
        loads(H3 + "qubit q;\nrz(2^3) q;\n")


def test_gate_definitions_nested_with_params():
    c = loads(H2 + "gate inner(a) x { rz(a/2) x; }\n"
                   "gate outer(a, b) x, y { inner(a+b) y; cx x, y; inner(-a) x; }\n"
                   "qreg q[2];\nouter(1, 2) q[1], q[0];\n")
    assert [(i.name, i.qubits, i.params) for i in c] == [
        ("rz", (0,), (1.5,)), ("cx", (1, 0), ()), ("rz", (1,), (-0.5,))]


def test_user_definition_with_builtin_name():
    # A definition reproducing the table gate stays that gate ...
    same = loads(H2 + "gate rzz(t) a, b { cx a, b; u1(t) b; cx a, b; }\nqreg q[2];\n"
                      "rzz(0.3) q[0], q[1];\n")
    assert [(i.name, i.params) for i in same] == [("rzz", (0.3,))]
    # ... any other overrides the table from its definition on; earlier bodies keep the table gate
    c = loads(H2 + "gate g a { h a; }\ngate h a { x a; }\nqreg q[1];\nh q[0];\ng q[0];\n")
    assert [i.name for i in c] == ["x", "h"]
    c = loads(H2 + "gate rzx(t) a, b { rz(t) a; }\nqreg q[2];\nrzx(0.5) q[0], q[1];\n")
    assert [(i.name, i.qubits, i.params) for i in c] == [("rz", (0,), (0.5,))]


def test_builtin_u_cx_without_include():
    c = loads("OPENQASM 2.0;\nqreg q[2];\nU(0.1, 0.2, 0.3) q[0];\nCX q[0], q[1];\n")
    assert [(i.name, i.params) for i in c] == [("U", (0.1, 0.2, 0.3)), ("CX", ())]


def test_opaque_is_dropped_until_used():
    text = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nopaque magic(a) q;\nqreg q[1];\nh q[0];\n"
    assert [i.name for i in loads(text)] == ["h"]
    with pytest.raises(QasmError, match="line 6: gate 'magic' is declared opaque"):
        loads(text + "magic(1) q[0];\n")


def test_conditions_qasm3_forms():
    c = loads(H3 + "qubit[2] q;\nbit[3] c;\n"
                   "if (c[0]) { x q[0]; } else { y q[0]; }\n"
                   "if (c[1] == 0) z q[1];\nif (c[2] != 1) h q[1];\nif (!c[0]) s q[0];\n"
                   "if (c == 5) { t q[0]; c[1] = measure q[1]; reset q[0]; barrier q; }\n"
                   "if (c[0] == 1 && !c[2]) { sx q[1]; }\nif (1 == c[1]) x q[1];\n"
                   "if (c == 0b11) x q[0];\n")
    assert [(i.name, i.condition) for i in c] == [
        ("x", Condition((0,), 1)), ("y", Condition((0,), 0)), ("z", Condition((1,), 0)),
        ("h", Condition((2,), 0)), ("s", Condition((0,), 0)), ("t", Condition((0, 1, 2), 5)),
        ("measure", Condition((0, 1, 2), 5)), ("reset", Condition((0, 1, 2), 5)),
        ("barrier", None),  # a condition on a barrier means nothing and is dropped
        ("sx", Condition((0, 2), 1)), ("x", Condition((1,), 1)), ("x", Condition((0, 1, 2), 3)),
    ]


def test_qasm2_condition_on_register():
    c = loads(H2 + "qreg q[1];\ncreg a[1];\ncreg b[2];\n"
                   "if(b==2) x q[0];\nif (a==1) u1(0.5) q[0];\n")
    assert [(i.name, i.condition) for i in c] == [
        ("x", Condition((1, 2), 2)), ("u1", Condition((0,), 1))]


@pytest.mark.parametrize("name", sorted(GATES))
def test_inv_modifier(name):
    spec = GATES[name]
    params = tuple(np.random.default_rng(len(name)).uniform(-3, 3, spec.num_params).tolist())
    args = f"({', '.join(map(repr, params))})" if params else ""
    qubits = ", ".join(f"q[{i}]" for i in range(spec.num_qubits))
    text = H3 + f"qubit[{spec.num_qubits}] q;\ninv @ {name}{args} {qubits};\n"
    if name in ("csx", "c3sqrtx", "rc3x"):  # the table has no inverse for these
        with pytest.raises(QasmError, match=f"inv @ is not supported for gate '{name}'"):
            loads(text)
        return
    m = spec.matrix(params)
    np.testing.assert_allclose(unitary(loads(text)), m.conj().T, atol=1e-12)


@pytest.mark.parametrize("base,n,expected", [
    ("x", 1, "cx"), ("x", 2, "ccx"), ("x", 3, "c3x"), ("x", 4, "c4x"), ("z", 2, "ccz"),
    ("y", 1, "cy"), ("h", 1, "ch"), ("s", 1, "cs"), ("sdg", 1, "csdg"), ("sx", 1, "csx"),
    ("sx", 3, "c3sqrtx"), ("p", 1, "cp"), ("rx", 1, "crx"), ("ry", 1, "cry"), ("rz", 1, "crz"),
    ("u3", 1, "cu3"), ("U", 1, "cu"), ("u", 1, "cu"), ("swap", 1, "cswap"), ("cx", 2, "c3x"),
])
def test_ctrl_modifier_is_exactly_controlled(base, n, expected):
    spec = GATES[base]
    params = tuple(np.random.default_rng(n).uniform(-3, 3, spec.num_params).tolist())
    args = f"({', '.join(map(repr, params))})" if params else ""
    k = n + spec.num_qubits
    qubits = ", ".join(f"q[{i}]" for i in range(k))
    c = loads(H3 + f"qubit[{k}] q;\nctrl({n}) @ {base}{args} {qubits};\n")
    assert [i.name for i in c] == [expected]
    np.testing.assert_allclose(unitary(c), controlled(spec.matrix(params), n), atol=1e-12)


def test_ctrl_gphase_pow_and_nested_modifiers():
    c = loads(H3 + "qubit[3] q;\nctrl @ gphase(0.5) q[0];\nctrl(2) @ gphase(0.25) q[1], q[2];\n"
                   "gphase(1.0);\npow(-2) @ s q[0];\nctrl @ inv @ s q[1], q[2];\n"
                   "ctrl @ ctrl @ x q[0], q[1], q[2];\n")
    assert [(i.name, i.qubits, i.params) for i in c] == [
        ("p", (0,), (0.5,)), ("cp", (1, 2), (0.25,)), ("sdg", (0,), ()), ("sdg", (0,), ()),
        ("csdg", (1, 2), ()), ("ccx", (0, 1, 2), ())]


# ---- export and round trips ------------------------------------------------------------------


def random_circuit(seed: int, version: int, dynamic: bool = True, n: int = 5) -> Circuit:
    """Every table gate at least once, random qubits and parameters, optionally measurements,
    resets and conditions (OpenQASM 2: whole registers only)."""
    rng = np.random.default_rng(seed)
    c = Circuit(n, 4 if dynamic else 0, qregs=[Register("q", 0, 2), Register("in", 2, n - 2)],
                cregs=[Register("c", 0, 3), Register("flag", 3, 1)] if dynamic else [])
    names = list(GATES) + list(rng.choice(sorted(GATES), 30))
    rng.shuffle(names)
    special = [0.0, -0.0, 1e-20, 1e5 + 0.1, -math.pi, 3.0]
    for name in names:
        spec = GATES[name]
        qubits = tuple(int(q) for q in rng.choice(n, spec.num_qubits, replace=False))
        params = [float(rng.choice(special)) if rng.random() < 0.2
                  else float(rng.uniform(-2 * math.pi, 2 * math.pi))
                  for _ in range(spec.num_params)]
        if name == "u0":  # u0(n) idles for n gate times: readers (Qiskit) want an integer
            params = [float(rng.integers(4))]
        cond = None
        if dynamic and rng.random() < 0.3:
            options = [((0, 1, 2), 8), ((3,), 2)]
            if version == 3:
                options += [((1,), 2), ((2, 0), 4)]
            clbits, limit = options[rng.integers(len(options))]
            cond = Condition(clbits, int(rng.integers(limit)))
        c.add(name, *qubits, params=params, condition=cond)
        if dynamic and rng.random() < 0.15:
            c.measure(int(rng.integers(n)), int(rng.integers(4)))
        if dynamic and rng.random() < 0.05:
            c.add("reset", int(rng.integers(n)))
        if rng.random() < 0.05:
            c.add("barrier", *sorted(int(q) for q in rng.choice(n, 2, replace=False)))
    c.add("barrier", *range(n))
    return c


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_round_trip(version, seed):
    c = random_circuit(seed, version)
    text = dumps(c, version)
    back = loads(text)
    assert_same_instructions(back, c)
    assert (back.num_qubits, back.num_clbits) == (c.num_qubits, c.num_clbits)
    assert [r.size for r in back.qregs] == [2, 3] and [r.size for r in back.cregs] == [3, 1]
    assert back.qregs[1].name == "in_"  # an OpenQASM 3 keyword gets a suffix
    assert text.startswith("OPENQASM 2.0;\ninclude \"qelib1.inc\";" if version == 2
                           else "OPENQASM 3.0;\ninclude \"stdgates.inc\";")


@pytest.mark.parametrize("version", [2, 3])
def test_export_defines_only_missing_gates(version):
    c = Circuit(3)
    c.add("h", 0)
    c.add("ecr", 0, 1)
    c.add("cu1", 1, 2, params=[0.5])
    c.add("ccz", 0, 1, 2)
    text = dumps(c, version)
    defined = [line.split()[1].split("(")[0] for line in text.splitlines()
               if line.startswith("gate ")]
    if version == 2:  # ecr needs rzx; cu1 is in qelib1.inc
        assert defined == ["rzx", "ecr", "ccz"]
    else:  # cu1 is not in stdgates.inc; its body uses u1 and cx, which are
        assert defined == ["rzx", "ecr", "cu1", "ccz"]
    assert_same_instructions(loads(text), c)


@pytest.mark.parametrize("seed", range(2))
def test_qiskit_reads_our_qasm2_to_the_same_unitary(seed):
    import qiskit.qasm2
    from qiskit.quantum_info import Operator

    c = random_circuit(seed, 2, dynamic=False)
    qc = qiskit.qasm2.loads(dumps(c, 2),
                            custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    assert qc.num_qubits == c.num_qubits
    assert equal_up_to_phase(unitary(c), Operator(qc).data)


def test_qiskit_reads_our_qasm2_conditions():
    import qiskit.qasm2

    c = Circuit(2, 3, cregs=[Register("a", 0, 1), Register("b", 1, 2)])
    c.measure(0, 0)
    c.add("x", 1, condition=Condition((1, 2), 3))
    qc = qiskit.qasm2.loads(dumps(c, 2))
    op = qc.data[-1].operation
    assert op.name == "if_else"
    reg, value = op.condition
    assert (reg.name, reg.size, value) == ("b", 2, 3)


def test_qiskit_reads_our_qasm3_conditions():
    qasm3 = pytest.importorskip("qiskit.qasm3")
    pytest.importorskip("qiskit_qasm3_import")   # what qiskit.qasm3.loads runs on

    c = Circuit(2, 3, cregs=[Register("a", 0, 1), Register("b", 1, 2)])
    c.measure(0, 0)
    c.measure(1, 1)
    c.add("x", 1, condition=Condition((1, 2), 3))    # whole register: b == 3
    c.add("z", 0, condition=Condition((1,), 1))      # single bits: b[0], !b[1]
    c.add("h", 1, condition=Condition((2,), 0))
    text = dumps(c, 3)
    assert "if (b[0]) { z q[0]; }" in text and "if (!b[1]) { h q[1]; }" in text
    qc = qasm3.loads(text)
    assert (qc.num_qubits, qc.num_clbits, len(qc.data)) == (2, 3, 5)
    assert [i.operation.name for i in qc.data[2:]] == ["if_else"] * 3
    assert_same_instructions(loads(text), c)


def test_export_conditions():
    c = Circuit(1, 3, cregs=[Register("c", 0, 2), Register("d", 2, 1)])
    c.add("x", 0, condition=Condition((0, 1), 2))
    c.add("y", 0, condition=Condition((2,), 1))
    c.add("z", 0, condition=Condition((1,), 0))
    c.add("h", 0, condition=Condition((0, 2), 1))
    text = dumps(c, 3)
    assert "if (c == 2) { x q[0]; }" in text
    assert "if (d == 1) { y q[0]; }" in text
    assert "if (!c[1]) { z q[0]; }" in text
    assert "if (c[0] && !d[0]) { h q[0]; }" in text
    assert_same_instructions(loads(text), c)
    # the reader still takes the `c[i] == v` form of single-bit tests
    old_form = (text.replace("if (!c[1])", "if (c[1] == 0)")
                .replace("if (c[0] && !d[0])", "if (c[0] == 1 && d[0] == 0)"))
    assert old_form != text
    assert_same_instructions(loads(old_form), c)
    with pytest.raises(QasmError, match=r"whole classical register.*\[1\]") as err:
        dumps(c, 2)
    assert "\n" not in str(err.value)
    c2 = Circuit(1, 3, cregs=[Register("c", 0, 2), Register("d", 2, 1)])
    c2.add("x", 0, condition=Condition((0, 1), 2))
    assert "if(c==2) x q[0];" in dumps(c2, 2)


def test_export_numbers_and_names():
    c = Circuit(2, 1, qregs=[Register("2x", 0, 1), Register("h", 1, 1)],
                cregs=[Register("meas out", 0, 1)])
    c.add("rz", 0, params=[1e-20])
    c.add("u3", 1, params=[0.1 + 0.2, -1e300, 123456789.123])
    c.measure(1, 0)
    text = dumps(c, 2)
    assert "rz(1.0e-20) r2x[0];" in text
    assert "u3(0.30000000000000004, -1.0e+300, 123456789.123) h_1[0];" in text
    assert "measure h_1[0] -> meas_out[0];" in text
    back = loads(text)
    assert_same_instructions(back, c)
    assert [r.name for r in back.qregs] == ["r2x", "h_1"]
    with pytest.raises(CircuitError, match="finite"):  # no circuit holds one to write
        Instruction("rz", (0,), (math.inf,))
    with pytest.raises(QasmError, match="version must be 2 or 3"):
        dumps(c, 4)


def test_dump_and_load_file(tmp_path):
    c = random_circuit(5, 3)
    path = tmp_path / "out.qasm"
    dump(c, path, version=3)
    assert not list(tmp_path.glob("*.tmp"))
    back = load(path)
    assert back.name == "out"
    assert_same_instructions(back, c)


def test_unregistered_bits_get_default_registers():
    c = Circuit(3, 2, qregs=[Register("a", 1, 2)], cregs=[Register("x", 0, 1)])
    c.add("cx", 0, 2)
    c.measure(2, 1)
    text = dumps(c, 2)
    assert "qreg q[3];" in text and "creg c[2];" in text
    assert_same_instructions(loads(text), c)


# ---- errors ----------------------------------------------------------------------------------

ERRORS = [
    ("", "empty OpenQASM source"),
    ("// only a comment\n", "empty OpenQASM source"),
    (H2 + "qreg q[2];\nh q[0]\ncx q[0], q[1];\n", r"line 5, column 1: syntax error: expected ';'"),
    (H2 + "qreg q[1];\nh q[0] $;\n", r"line 4, column 8: syntax error"),
    ("qubit q;\nx q ] ;\n", r"line 2, column \d+: syntax error"),
    (H2 + "qreg q[1];\nfoo q[0];\n", "line 4: unknown gate 'foo'"),
    ("OPENQASM 2.0;\nqreg q[1];\nh q[0];\n", r"line 3: unknown gate 'h' \(missing include"),
    (H2 + "qreg q[1];\nrx q[0];\n", r"line 4: gate 'rx' takes 1 parameter\(s\), got 0"),
    (H2 + "qreg q[1];\nh(0.5) q[0];\n", r"line 4: gate 'h' takes 0 parameter\(s\), got 1"),
    (H2 + "qreg q[2];\ncx q[0];\n", r"line 4: gate 'cx' acts on 2 qubit\(s\), got 1"),
    (H2 + "qreg q[2];\nh q[2];\n", "line 4: index 2 out of range for register 'q' of size 2"),
    (H2 + "qreg q[2];\ncx q[1], q[1];\n", r"line 4: gate 'cx' uses qubit q\[1\] more than once"),
    (H2 + "qreg q[2];\nh r[0];\n", "line 4: undeclared qubit register 'r'"),
    (H2 + "qreg q[2];\nmeasure q[0] -> c[0];\n", "line 4: undeclared classical register 'c'"),
    (H2 + "qreg q[2];\ncreg c[2];\nh c;\n", "line 5: 'c' is not a qubit register"),
    (H2 + "qreg a[2];\nqreg b[3];\ncx a, b;\n",
     "line 5: register size mismatch: 'a' has 2, 'b' has 3"),
    (H2 + "qreg a[2];\ncreg c[3];\nmeasure a -> c;\n", "line 5: measure: register size mismatch"),
    (H2 + "qreg q[1];\nqreg q[2];\n", "line 4: 'q' is already declared"),
    (H2 + 'include "mylib.inc";\n', "line 3: cannot include 'mylib.inc'"),
    (H2 + "gate g a {\n  h a;\n  bogus a;\n}\n", "line 5: unknown gate 'bogus'"),
    (H2 + "gate g a { h a; }\ngate g a { x a; }\n", "line 4: gate 'g' is already defined"),
    (H2 + "gate g a, b { cx a, b[0]; }\n", "line 3: qubits inside a gate body must be"),
    (H2 + "qreg q[1];\nrx(1/0) q[0];\n", r"line 4: math error in 1 / 0"),
    (H2 + "qreg q[1];\nrx(theta) q[0];\n", "line 4: unknown identifier 'theta'"),
    (H2 + "qreg q[1];\ncreg c[1];\nif(c==2) x q[0];\n", r"line 5: condition value 2 does not fit"),
    ("OPENQASM 3.0;\ninput float theta;\n", "line 2: input theta has no value"),
    ("OPENQASM 3.0;\noutput float theta;\n", "line 2: output declarations are not supported"),
    ("OPENQASM 3.0;\ninput int n;\n", "line 2: input n: only float and angle inputs"),
    ("OPENQASM 3.0;\nint i = 3;\n", "line 2: classical variables of type int are not supported"),
    (H3 + "qubit[2] q;\nfor int i in [0:1] { h q[i]; }\n", "line 4: .*not supported"),
    (H3 + "qubit[2] q;\nnegctrl @ x q[0], q[1];\n", "line 4: negctrl @ is not supported"),
    (H3 + "qubit[2] q;\nctrl @ rxx(0.1) q[0], q[1], q[1];\n", "line 4: ctrl @ with 1 control"),
    (H3 + "qubit q;\nmeasure q;\n", "line 4: measure without a target bit"),
    (H3 + "qubit q;\nh $0;\n", r"line 4: physical qubits \(\$0\) are not supported"),
    (H3 + "qubit q;\nbit[2] c;\nif (c) x q;\n", "line 5: a condition on a register needs a value"),
    (H3 + "qubit q;\nbit[2] c;\nif (c == 1) { x q; } else { y q; }\n", "line 5: else is supported"),
    ("OPENQASM 4.0;\nqubit q;\n", "unsupported OpenQASM version 4.0"),
]


@pytest.mark.parametrize("text,message", ERRORS)
def test_bad_input_raises_one_line_qasm_error(text, message, capfd):
    with pytest.raises(QasmError, match=message) as err:
        loads(text)
    assert "\n" not in str(err.value)
    out, errout = capfd.readouterr()
    assert out == "" and errout == ""


def test_missing_and_bad_files(tmp_path, capfd):
    missing = tmp_path / "nope.qasm"
    with pytest.raises(QasmError, match=f"file not found: {missing}"):
        load(missing)
    bad = tmp_path / "bad.qasm"
    bad.write_text(H2 + "qreg q[1];\nfoo q[0];\n")
    with pytest.raises(QasmError, match=f"{bad}: line 4: unknown gate 'foo'"):
        load(bad)
    binary = tmp_path / "bin.qasm"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(QasmError, match="not UTF-8"):
        load(binary)
    assert capfd.readouterr() == ("", "")


# ---- OpenQASM 3 input parameters -----------------------------------------------------------

INPUTS = H3 + """input float[64] theta;
input angle phi;
qubit[2] q;
rx(2*theta + pi/4) q[0];
gate g(a) x { rz(a - phi) x; }
g(theta) q[1];
"""


def test_input_parameters_take_the_given_values():
    from qsim_dist.io.qasm import input_names

    assert input_names(INPUTS) == ["theta", "phi"]
    c = loads(INPUTS, inputs={"theta": 0.1, "phi": 0.3})
    angles = [i.params[0] for i in c if i.params]
    assert angles == pytest.approx([0.2 + math.pi / 4, 0.1 - 0.3])


@pytest.mark.parametrize("inputs,message", [
    ({"theta": 1.0}, "line 4: input phi has no value"),
    ({"theta": 1.0, "phi": 2.0, "psi": 3.0}, "inputs name psi, which the program does not"),
    ({"theta": float("inf"), "phi": 1.0}, "inputs: theta must be a finite number"),
    ({"theta": "1", "phi": 1.0}, "inputs: theta must be a finite number"),
    ([("theta", 1.0)], "inputs must map input names to numbers"),
])
def test_bad_inputs_are_one_line(inputs, message):
    with pytest.raises(QasmError, match=message) as err:
        loads(INPUTS, inputs=inputs)
    assert "\n" not in str(err.value)


def test_the_command_line_takes_inputs(tmp_path, capsys):
    from qsim_dist.cli import main

    path = tmp_path / "in.qasm"
    path.write_text(INPUTS + "bit[2] c;\nc = measure q;\n")
    assert main(["run", str(path), "--input", "theta=0.1", "--input", "phi=0.3", "--shots",
                 "10", "--seed", "1"]) == 0
    capsys.readouterr()
    for bad in (["--input", "theta=0.1"], ["--input", "theta", "--input", "phi=1"],
                ["--input", "theta=nan", "--input", "phi=1"]):
        assert main(["run", str(path), *bad]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith("qsim-dist: error:")
