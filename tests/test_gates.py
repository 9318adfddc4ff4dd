"""The gate table: unitarity, structure flags, Qiskit's matrices (bit order), QASM definitions,
and every fact on an entry (inverse, controlled forms, controls, X embedding, names) against the
matrices."""

from __future__ import annotations

import numpy as np
import pytest

from qsim_dist.backends.reference import unitary as reference_unitary
from qsim_dist.gates import (GATES, commutes_with_x_at, controlled, decomposition,
                             definition_gates, from_qiskit_name, gate_matrix, inverse_of,
                             never_flips_at, qiskit_name, usual_name, with_controls, x_embedding)
from qsim_dist.io import loads
from qsim_dist.linalg import commutes_with_x, never_flips, operator_of

ALL = sorted(GATES)
DEFINED = sorted(n for n, s in GATES.items() if s.definition is not None)


def random_params(name: str, seed: int = 0) -> tuple[float, ...]:
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    return tuple(float(x) for x in rng.uniform(-np.pi, np.pi, GATES[name].num_params))


def equal_up_to_phase(a: np.ndarray, b: np.ndarray, atol: float = 1e-10) -> bool:
    i = np.unravel_index(np.argmax(np.abs(b)), b.shape)
    phase = a[i] / b[i]
    return abs(abs(phase) - 1) < atol and np.allclose(a, phase * b, atol=atol)


unitary = reference_unitary


@pytest.mark.parametrize("name", ALL)
def test_unitary(name):
    m = gate_matrix(name, random_params(name))
    dim = 1 << GATES[name].num_qubits
    assert m.shape == (dim, dim)
    np.testing.assert_allclose(m.conj().T @ m, np.eye(dim), atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_structure_flags_match_matrix(name):
    # Convention: `diagonal` wins, so the identity is flagged diagonal and not permutation.
    spec = GATES[name]
    for seed in range(3):
        m = gate_matrix(name, random_params(name, seed))
        off_diagonal = m - np.diag(np.diag(m))
        is_diagonal = bool(np.all(np.abs(off_diagonal) < 1e-12))
        rounded = np.round(m.real, 12)
        is_permutation = bool(np.allclose(m, rounded, atol=1e-12)
                              and set(np.unique(rounded)) <= {0, 1}
                              and np.all(rounded.sum(axis=0) == 1)
                              and np.all(rounded.sum(axis=1) == 1))
        assert spec.diagonal == is_diagonal, name
        assert spec.permutation == (is_permutation and not is_diagonal), name


def qiskit_gate(name: str, params):
    """The Qiskit gate object for a table gate (same name, or a known alias), or None."""
    from qiskit.circuit import library as lib

    aliases = {"c3sqrtx": lib.C3SXGate, "rc3x": lib.RC3XGate, "c3x": lib.C3XGate,
               "c4x": lib.C4XGate, "U": lib.UGate, "CX": lib.CXGate, "phase": lib.PhaseGate,
               "cphase": lib.CPhaseGate}
    if name in aliases:
        return aliases[name](*params)
    standard = lib.get_standard_gate_name_mapping()
    return standard[name].base_class(*params) if name in standard else None


def test_qiskit_knows_every_gate_but_u0():
    assert [n for n in ALL if qiskit_gate(n, random_params(n)) is None] == ["u0"]


@pytest.mark.parametrize("name", ALL)
def test_matrix_equals_qiskit_operator(name):
    """Exact equality (not up to phase) pins the little-endian bit order and the phases."""
    from qiskit.quantum_info import Operator

    params = random_params(name)
    gate = qiskit_gate(name, params)
    if gate is None:  # u0(gamma) is the identity (OpenQASM 2's idle gate)
        np.testing.assert_allclose(gate_matrix(name, params), np.eye(2), atol=0)
        return
    np.testing.assert_allclose(gate_matrix(name, params), Operator(gate).data, atol=1e-12)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("name", DEFINED)
def test_definition_reproduces_matrix(name, version):
    """Each definition, read by our importer under a fresh name, gives the matrix up to phase."""
    spec = GATES[name]
    qubits = [f"q{i}" for i in range(spec.num_qubits)]
    body = spec.definition.format(*spec.param_names, **{q: q for q in qubits})
    params = random_params(name, seed=7)
    header = ('OPENQASM 2.0;\ninclude "qelib1.inc";' if version == 2
              else 'OPENQASM 3.0;\ninclude "stdgates.inc";')
    sig = f"({', '.join(spec.param_names)})" if spec.param_names else ""
    args = f"({', '.join(repr(p) for p in params)})" if params else ""
    text = (f"{header}\ngate check_def{sig} {', '.join(qubits)} {{ {body} }}\n"
            f"qreg r[{spec.num_qubits}];\n"
            f"check_def{args} {', '.join(f'r[{i}]' for i in range(spec.num_qubits))};\n")
    circuit = loads(text)
    assert all(inst.name != "check_def" for inst in circuit)  # expanded into table gates
    assert equal_up_to_phase(unitary(circuit), gate_matrix(name, params))


def test_every_gate_is_exportable():
    """Every gate outside qelib1.inc or stdgates.inc (U is built in) carries a definition."""
    missing = [n for n, s in GATES.items()
               if s.definition is None and not (s.qelib1 and (s.stdgates or n == "U"))]
    assert missing == []


# ---- the facts on each entry, against the matrices ------------------------------------------

def on_qubits(name: str, qubits, params, n: int) -> np.ndarray:
    """The matrix of table gate ``name`` on ``qubits`` of ``n`` qubits."""
    return operator_of(n, [(gate_matrix(name, params), qubits)])


@pytest.mark.parametrize("name", ALL)
def test_inverse_times_gate_is_the_identity(name):
    spec = GATES[name]
    n = spec.num_qubits
    params = random_params(name, seed=3)
    inverse = inverse_of(name, tuple(range(n)), params)
    if inverse is None:  # the table has no inverse gate for these
        assert name in ("csx", "c3sqrtx", "rc3x")
        return
    inv_name, inv_qubits, inv_params = inverse
    product = on_qubits(inv_name, inv_qubits, inv_params, n) @ gate_matrix(name, params)
    np.testing.assert_allclose(product, np.eye(1 << n), atol=1e-12)  # exactly, phase included


@pytest.mark.parametrize("name", ALL)
def test_controlled_forms_are_the_gate_with_controls(name):
    params = random_params(name, seed=4)
    for n, form in enumerate(GATES[name].controlled, start=1):
        got = with_controls(name, params, n)
        if form is None:
            assert got is None
            continue
        assert got[0] == form
        expected = controlled(gate_matrix(name, params), n)
        np.testing.assert_allclose(gate_matrix(*got), expected, atol=1e-12)
    assert with_controls(name, params, len(GATES[name].controlled) + 1) is None


@pytest.mark.parametrize("name", ALL)
def test_controls_and_x_commuting_positions_hold_for_any_parameters(name):
    spec = GATES[name]
    for seed in range(3):
        params = random_params(name, seed)
        m = gate_matrix(name, params)
        for q in range(spec.num_qubits):
            if q in spec.controls:
                assert never_flips(m, q), (name, q)
            if q in spec.x_commuting:
                assert commutes_with_x(m, q), (name, q)
            assert never_flips_at(name, params, q) == never_flips(m, q), (name, q)
            if commutes_with_x_at(name, params, q):
                assert commutes_with_x(m, q), (name, q)


@pytest.mark.parametrize("name", ALL)
def test_x_embedding_is_h_conjugation(name):
    spec = GATES[name]
    n = spec.num_qubits
    params = random_params(name, seed=5)
    for q in range(n):
        image = x_embedding(name, q)
        if image is None:
            continue
        h = on_qubits("h", (q,), (), n)
        target, order = image
        np.testing.assert_allclose(on_qubits(target, order, params, n),
                                   h @ gate_matrix(name, params) @ h, atol=1e-12)
        assert never_flips(gate_matrix(target, params), order.index(q))


@pytest.mark.parametrize("name", DEFINED)
def test_decomposition_reproduces_matrix(name):
    spec = GATES[name]
    params = random_params(name, seed=6)
    ops = [(gate_matrix(g, p), qubits) for g, qubits, p in decomposition(name, params)]
    assert equal_up_to_phase(operator_of(spec.num_qubits, ops), gate_matrix(name, params))
    assert set(definition_gates(name)) <= set(GATES)


@pytest.mark.parametrize("name", ALL)
def test_names_elsewhere(name):
    """A gate's usual name is the same matrix; its Qiskit name leads back to a gate with the
    same matrix (``mcx``, the name of c3x and c4x, only by the number of controls)."""
    params = random_params(name)
    np.testing.assert_allclose(gate_matrix(usual_name(name), params), gate_matrix(name, params))
    back = from_qiskit_name(qiskit_name(name))
    if qiskit_name(name) == "mcx":
        assert back is None
    else:
        np.testing.assert_allclose(gate_matrix(back, params[:GATES[back].num_params]),
                                   gate_matrix(name, params))


@pytest.mark.parametrize("name", DEFINED)
def test_expand_to_gates_without_definitions_reproduces_matrix(name):
    """The one expander of the table's definitions (passes.decompose.expand), all the way down."""
    from qsim_dist.circuit import Circuit, Instruction
    from qsim_dist.passes.decompose import expand

    spec = GATES[name]
    params = random_params(name, seed=8)
    pieces = expand([Instruction(name, tuple(range(spec.num_qubits)), params)],
                    keep=lambda piece: GATES[piece.name].definition is None)
    assert all(GATES[p.name].definition is None for p in pieces)
    assert equal_up_to_phase(unitary(Circuit(spec.num_qubits, instructions=pieces)),
                             gate_matrix(name, params))
