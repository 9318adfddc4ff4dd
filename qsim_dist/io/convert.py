"""Conversions between the IR and Qiskit / Cirq circuits.

Qubit order
-----------
Qiskit and the IR agree: Qiskit qubit ``i`` (``qc.find_bit(qubit).index``) is our qubit ``i``, bit
``i`` of a basis-state index, so ``Statevector(qc).data`` equals our statevector entry for entry.

Cirq is big-endian: in ``cirq.Simulator().simulate(c, qubit_order=order).final_state_vector``,
``order[0]`` is the *most* significant bit. :func:`from_cirq` maps ``order[i]`` to our qubit
``i`` (little-endian), so our statevector is Cirq's with the bits of every index reversed:
``ours == cirq_state.reshape([2] * n).transpose(range(n)[::-1]).reshape(-1)``.

Global phase
------------
The IR has no global phase. Qiskit's ``qc.global_phase`` and ``global_phase`` instructions, Cirq's
``GlobalPhaseGate`` and the global phase of Cirq gates that equal a table gate only up to a phase
(``XPowGate`` with a global shift, ``XXPowGate``, arbitrary one-qubit unitaries written as ``u``)
are dropped: the states then agree up to a global phase. Gates that have an exact table form
(Pauli, Clifford, ``cirq.rx``/``ry``/``rz``, ``ZPowGate``, ``CZPowGate``, ``CXPowGate``,
``ISwapPowGate``, one-control ``ControlledGate`` of a one-qubit gate, ...) convert exactly.
"""

from __future__ import annotations

import cmath
import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .. import validation as check
from ..circuit import Circuit, Condition, Instruction, Register
from ..errors import CircuitError, QsimDistError
from ..gates import GATES, from_qiskit_name, qiskit_name, with_controls

__all__ = ["from_qiskit", "to_qiskit", "from_cirq"]

_ATOL = 1e-12

_QISKIT_IGNORED = frozenset({"global_phase", "delay"})  # no effect on the state


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise QsimDistError(f"{module.split('.')[0]} is not installed "
                            "(install qsim-dist[interop])") from None


# ---- Qiskit ----------------------------------------------------------------------------------


def from_qiskit(qc: Any, *, max_instructions: int = check.MAX_EXPANDED_INSTRUCTIONS) -> Circuit:
    """Convert a ``qiskit.QuantumCircuit`` to a :class:`Circuit`.

    Standard gates map to the table by name (``mcx`` with 1-4 controls to ``cx``/``ccx``/``c3x``/
    ``c4x``, ``c3sx`` to ``c3sqrtx``, ``rcccx`` to ``rc3x``); any other instruction with a
    ``definition`` (custom gates, library circuits, ``unitary``) is inlined through it. ``if_test``
    blocks (``IfElseOp``) become conditioned instructions when the condition is a register or bit
    compared with a value, or a bit, ``!bit`` or ``&&`` of those; an ``else`` body is accepted
    after a single-bit condition. Registers that are contiguous runs of bits are kept. Global
    phase and delays are dropped. Inlining may produce at most ``max_instructions`` instructions
    (counted before converting: nested definitions can expand exponentially).

    Raises
    ------
    QsimDistError
        If Qiskit is not installed.
    CircuitError
        For unbound or non-finite parameters, other control flow (loops, switch), unsupported
        conditions, an instruction that is neither a table gate nor has a definition, or more
        than ``max_instructions`` instructions.
    """
    _require("qiskit")
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import get_standard_gate_name_mapping

    check.instance(qc, QuantumCircuit, "from_qiskit: qc", CircuitError)
    max_instructions = check.count(max_instructions, "max_instructions", CircuitError)

    standard = get_standard_gate_name_mapping()
    qubit_index = {bit: qc.find_bit(bit).index for bit in qc.qubits}
    clbit_index = {bit: qc.find_bit(bit).index for bit in qc.clbits}
    circuit = Circuit(qc.num_qubits, qc.num_clbits, qregs=_qiskit_registers(qc.qregs, qubit_index),
                      cregs=_qiskit_registers(qc.cregs, clbit_index), name=qc.name or "circuit")

    def convert(data: Iterable, qmap: dict, cmap: dict, condition: Condition | None) -> None:
        for item in data:
            op = item.operation
            qubits = tuple(qmap[q] for q in item.qubits)
            clbits = tuple(cmap[c] for c in item.clbits)
            name = op.name
            if name in _QISKIT_IGNORED:
                continue
            if name == "if_else":
                if condition is not None:
                    raise CircuitError("nested qiskit if_test blocks are not supported")
                cond = _qiskit_condition(op.condition, cmap)
                true_body, false_body = op.blocks[0], (op.blocks[1] if len(op.blocks) > 1
                                                       else None)
                convert(true_body.data, dict(zip(true_body.qubits, qubits)),
                        dict(zip(true_body.clbits, clbits)), cond)
                if false_body is not None and false_body.data:
                    if len(cond.clbits) != 1:
                        raise CircuitError("a qiskit else body is supported only after a "
                                           "condition on a single bit")
                    convert(false_body.data, dict(zip(false_body.qubits, qubits)),
                            dict(zip(false_body.clbits, clbits)),
                            Condition(cond.clbits, 1 - cond.value))
                continue
            if name in ("measure", "reset", "barrier"):
                circuit.append(Instruction(name, qubits, (), clbits, condition))
                continue
            table = _qiskit_table_name(op, standard)
            if table is not None:
                params = tuple(_qiskit_float(p, name) for p in op.params)
                circuit.append(Instruction(table, qubits, params, (), condition))
                continue
            if getattr(op, "blocks", None):
                raise CircuitError(f"qiskit control flow '{name}' is not supported "
                                   "(only if_test)")
            definition = getattr(op, "definition", None)
            if definition is None:
                raise CircuitError(f"qiskit instruction '{name}' has no table gate and no "
                                   "definition to inline")
            convert(definition.data, dict(zip(definition.qubits, qubits)),
                    dict(zip(definition.clbits, clbits)), condition)

    sizes: dict[int, tuple[Any, int]] = {}  # id(definition) -> (definition, its size)

    def size(data: Iterable) -> int:
        """Instructions ``convert(data)`` appends, each definition counted once (memoised)."""
        total = 0
        for item in data:
            op = item.operation
            if op.name in _QISKIT_IGNORED:
                continue
            if op.name == "if_else":
                total += sum(size(block.data) for block in op.blocks)
            elif (op.name in ("measure", "reset", "barrier") or getattr(op, "blocks", None)
                  or _qiskit_table_name(op, standard) is not None):
                total += 1
            else:
                definition = getattr(op, "definition", None)
                if definition is None:
                    total += 1  # an error, reported by convert
                    continue
                hit = sizes.get(id(definition))
                if hit is None:
                    hit = sizes[id(definition)] = (definition, size(definition.data))
                total += hit[1]
            if total > max_instructions:
                break
        return total

    if size(qc.data) > max_instructions:
        raise CircuitError(f"the qiskit circuit expands to more than {max_instructions} "
                           "instructions (nested definitions); the limit is max_instructions")
    convert(qc.data, qubit_index, clbit_index, None)
    return circuit


def _qiskit_registers(regs: Sequence[Any], index: dict) -> list[Register]:
    """Registers whose bits are a contiguous run, in order, not overlapping an earlier one."""
    out, used = [], set()
    for reg in regs:
        bits = [index[b] for b in reg]
        if bits and bits == list(range(bits[0], bits[0] + len(bits))) and not used & set(bits):
            out.append(Register(reg.name, bits[0], len(bits)))
            used.update(bits)
    return out


def _qiskit_table_name(op: Any, standard: dict) -> str | None:
    """Our table name for a Qiskit standard gate (by class, not just by name), else None."""
    name = op.name
    if name == "mcx":
        controls = getattr(op, "num_ctrl_qubits", 0)
        all_on = (1 << controls) - 1
        table = with_controls("x", (), controls)  # cx, ccx, c3x, c4x
        if table is not None and op.num_qubits == controls + 1 and op.ctrl_state == all_on:
            return table[0]
        return None
    known = standard.get(name)
    if known is None or op.base_class is not known.base_class:
        return None
    return from_qiskit_name(name)


def _qiskit_float(value: Any, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CircuitError(f"qiskit gate '{name}' has an unbound parameter {value}; "
                           "bind it with qc.assign_parameters(...)") from None
    return check.finite(value, f"qiskit gate '{name}': parameter", CircuitError)


def _qiskit_condition(cond: Any, cmap: dict) -> Condition:
    from qiskit.circuit import Clbit, ClassicalRegister
    from qiskit.circuit.classical import expr

    if isinstance(cond, tuple):
        target, value = cond
        if isinstance(target, Clbit):
            return Condition((cmap[target],), int(value))
        if isinstance(target, ClassicalRegister):
            return Condition(tuple(cmap[b] for b in target), int(value))
    elif isinstance(cond, expr.Var) and isinstance(cond.var, Clbit):
        return Condition((cmap[cond.var],), 1)
    elif isinstance(cond, expr.Unary) and cond.op is expr.Unary.Op.LOGIC_NOT:
        inner = _qiskit_condition(cond.operand, cmap)
        if len(inner.clbits) == 1:
            return Condition(inner.clbits, 1 - inner.value)
    elif isinstance(cond, expr.Binary) and cond.op is expr.Binary.Op.LOGIC_AND:
        left, right = _qiskit_condition(cond.left, cmap), _qiskit_condition(cond.right, cmap)
        if not set(left.clbits) & set(right.clbits):
            return Condition(left.clbits + right.clbits,
                             left.value | (right.value << len(left.clbits)))
    elif (isinstance(cond, expr.Binary) and cond.op is expr.Binary.Op.EQUAL
          and isinstance(cond.left, expr.Var) and isinstance(cond.right, expr.Value)):
        return _qiskit_condition((cond.left.var, cond.right.value), cmap)
    raise CircuitError(f"unsupported qiskit condition {cond}: use a register or bit compared "
                       "with a value, a bit, its negation, or && of bits")


def to_qiskit(circuit: Circuit) -> Any:
    """Convert a :class:`Circuit` to a ``qiskit.QuantumCircuit`` (same qubit and clbit order).

    Registers become Qiskit registers when they tile the qubits (clbits) in order, else one
    register ``q`` (``c``). Conditions become ``if_test`` blocks: a whole register or one bit
    compared with the value, otherwise ``&&`` of bit tests. ``phase``/``cphase``/``U``/``CX``/``u0``
    become Qiskit's ``p``/``cp``/``u``/``cx``/``id``.

    Raises
    ------
    QsimDistError
        If Qiskit is not installed.
    """
    _require("qiskit")
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit.classical import expr
    from qiskit.circuit.library import C3XGate, C4XGate, get_standard_gate_name_mapping

    check.instance(circuit, Circuit, "to_qiskit: circuit", CircuitError)

    standard = get_standard_gate_name_mapping()
    mcx = {3: C3XGate, 4: C4XGate}  # Qiskit's 'mcx' classes by number of controls
    qregs = [QuantumRegister(r.size, r.name)
             for r in _tiling(circuit.qregs, circuit.num_qubits, "q")]
    cregs = [ClassicalRegister(r.size, r.name)
             for r in _tiling(circuit.cregs, circuit.num_clbits, "c")]
    qc = QuantumCircuit(*qregs, *cregs, name=circuit.name)
    by_bits = {tuple(qc.find_bit(b).index for b in reg): reg for reg in cregs}

    def target(cond: Condition):
        reg = by_bits.get(tuple(cond.clbits))
        if reg is not None:
            return reg, cond.value
        if len(cond.clbits) == 1:
            return qc.clbits[cond.clbits[0]], cond.value
        tests = [qc.clbits[c] if (cond.value >> j) & 1 else expr.logic_not(qc.clbits[c])
                 for j, c in enumerate(cond.clbits)]
        combined = tests[0]
        for test in tests[1:]:
            combined = expr.logic_and(combined, test)
        return combined

    for inst in circuit:
        qubits = [qc.qubits[q] for q in inst.qubits]
        clbits = [qc.clbits[c] for c in inst.clbits]
        if inst.name == "barrier":
            op = None
        elif inst.name in ("measure", "reset"):
            op = standard[inst.name]
        elif qiskit_name(inst.name) == "mcx":
            op = mcx[len(inst.qubits) - 1]()
        else:
            qname = qiskit_name(inst.name)
            # a Qiskit gate named like a table gate takes that gate's parameters (u0's idle time
            # is dropped: Qiskit's id takes none)
            params = inst.params[:GATES[qname].num_params] if qname in GATES else inst.params
            op = standard[qname].base_class(*params)

        def add() -> None:
            if op is None:
                qc.barrier(*qubits)
            else:
                qc.append(op, qubits, clbits)

        if inst.condition is None:
            add()
        else:
            with qc.if_test(target(inst.condition)):
                add()
    return qc


def _tiling(regs: Sequence[Register], size: int, default: str) -> list[Register]:
    ordered = sorted(regs, key=lambda r: r.start)
    ends = [0] + [r.start + r.size for r in ordered]
    if ordered and all(r.start == e for r, e in zip(ordered, ends)) and ends[-1] == size:
        return [r for r in ordered if r.size]
    return [Register(default, 0, size)] if size else []


# ---- Cirq ------------------------------------------------------------------------------------



def from_cirq(circuit: Any, qubit_order: Any = None, *,
              max_instructions: int = check.MAX_EXPANDED_INSTRUCTIONS) -> Circuit:
    """Convert a ``cirq.Circuit`` to a :class:`Circuit`.

    Parameters
    ----------
    circuit
        The Cirq circuit.
    qubit_order
        Anything ``cirq.QubitOrder.as_qubit_order`` accepts (a list of qubits, a QubitOrder);
        ``None`` sorts the qubits (LineQubit and GridQubit order). ``order[i]`` becomes qubit
        ``i``; see the module docstring for the bit order of state vectors.
    max_instructions
        Most instructions and decomposition steps the conversion may produce (decompositions
        can nest deeply).

    Notes
    -----
    Gates map exactly where the table has the same matrix (matched by matrix, so ``cirq.X``,
    ``cirq.CNOT``, ``cirq.ControlledGate(cirq.Y)``, ``cirq.CCZ``, ... all work), ``rx``/``ry``/
    ``rz``, ``ZPowGate`` as ``p``, ``CZPowGate`` as ``cp``, ``CXPowGate`` as ``crx`` and a ``p``
    on the control, ``ISwapPowGate`` as ``xx_plus_yy``, one-control ``ControlledGate`` of a
    one-qubit gate as ``cu``; ``XXPowGate``/``YYPowGate``/``ZZPowGate`` as ``rxx``/``ryy``/``rzz``
    and any other one-qubit unitary as ``u`` up to global phase; other operations are decomposed
    with ``cirq.decompose_once``. A measurement of ``k`` qubits under key ``m`` writes a
    classical register ``m`` of ``k`` bits (an ``invert_mask`` becomes ``x`` before and after).
    Classical controls on one-bit keys become conditions.

    Raises
    ------
    QsimDistError
        If Cirq is not installed.
    CircuitError
        For an operation that cannot be converted or decomposed, a classical control on a
        multi-bit key or a symbolic condition, a non-finite angle, or more than
        ``max_instructions`` instructions.
    """
    cirq = _require("cirq")
    check.instance(circuit, cirq.AbstractCircuit, "from_cirq: circuit", CircuitError)
    max_instructions = check.count(max_instructions, "max_instructions", CircuitError)
    budget = [max_instructions]

    def spend(n: int) -> None:
        budget[0] -= n
        if budget[0] < 0:
            raise CircuitError(f"the cirq circuit expands to more than {max_instructions} "
                               "instructions (nested decompositions); the limit is "
                               "max_instructions")
    order = cirq.QubitOrder.as_qubit_order(
        cirq.QubitOrder.DEFAULT if qubit_order is None else qubit_order)
    try:
        qubits = list(order.order_for(circuit.all_qubits()))
    except ValueError as exc:
        raise CircuitError(f"qubit_order does not fit the circuit: {exc}") from None
    index = {q: i for i, q in enumerate(qubits)}
    # Parameter-free table gates, recognised by their matrix (exactly, phase included); the
    # first match wins, so cx is preferred to its alias CX.
    fixed = {n: s.matrix() for n, s in GATES.items() if s.num_params == 0}
    out = Circuit(len(qubits), name="circuit")
    keys: dict[str, Register] = {}

    def key_register(key: str, size: int) -> Register:
        reg = keys.get(key)
        if reg is None:
            reg = Register(key, out.num_clbits, size)
            keys[key] = reg
            out.cregs.append(reg)
            out.num_clbits += size
        elif reg.size != size:
            raise CircuitError(f"cirq measurement key '{key}' is used with {reg.size} and "
                               f"{size} qubits")
        return reg

    def convert(op: Any, condition: Condition | None) -> None:
        spend(1)
        if isinstance(op, cirq.ClassicallyControlledOperation):
            if condition is not None:
                raise CircuitError("nested cirq classical controls are not supported")
            cond = _cirq_condition(cirq, op.classical_controls, keys)
            convert(op.without_classical_controls(), cond)
            return
        qs = tuple(index[q] for q in op.qubits)
        gate = op.gate
        if isinstance(gate, cirq.MeasurementGate):
            if gate.confusion_map:
                raise CircuitError("cirq measurements with a confusion map are not supported")
            reg = key_register(str(gate.key), len(qs))
            mask = tuple(gate.full_invert_mask())
            for j, q in enumerate(qs):
                flip = [Instruction("x", (q,), condition=condition)] if mask[j] else []
                for inst in flip + [Instruction("measure", (q,), (), (reg.start + j,),
                                                condition)] + flip:
                    out.append(inst)
            return
        if isinstance(gate, cirq.ResetChannel):
            out.append(Instruction("reset", qs, condition=condition))
            return
        if cirq.is_parameterized(op):
            raise CircuitError(f"cirq operation {op!r} has unresolved parameters "
                               "(use cirq.resolve_parameters first)")
        if not qs or (isinstance(gate, cirq.IdentityGate) and len(qs) > 1):
            return  # a global phase, or identity on several qubits
        ops = _cirq_gate(cirq, gate, len(qs), fixed) if gate is not None else None
        if ops is None:
            decomposed = cirq.decompose_once(op, default=None)
            if decomposed is None:
                raise CircuitError(f"cannot convert cirq operation {op!r}")
            for sub in decomposed:
                convert(sub, condition)
            return
        for name, local, params in ops:
            out.append(Instruction(name, tuple(qs[i] for i in local), params, (), condition))

    for op in circuit.all_operations():
        convert(op, None)
    return out


def _cirq_condition(cirq: Any, controls: Iterable, keys: dict[str, Register]) -> Condition:
    bits: list[int] = []
    for cond in controls:
        if not isinstance(cond, cirq.KeyCondition):
            raise CircuitError(f"cirq condition {cond} is not supported (only measurement keys)")
        reg = keys.get(str(cond.key))
        if reg is None:
            raise CircuitError(f"cirq condition on key '{cond.key}' before its measurement")
        if reg.size != 1:
            raise CircuitError(f"cirq condition on the {reg.size}-bit key '{cond.key}' "
                               "is not supported (only one-bit keys)")
        bits.append(reg.start)
    if len(set(bits)) != len(bits):
        raise CircuitError("cirq conditions repeat a key")
    return Condition(tuple(bits), (1 << len(bits)) - 1)


def _little_endian(matrix: np.ndarray) -> np.ndarray:
    """Cirq's big-endian matrix (first qubit most significant) in our bit order."""
    k = int(matrix.shape[0]).bit_length() - 1
    perm = [int(format(i, f"0{k}b")[::-1], 2) if k else 0 for i in range(1 << k)]
    return matrix[np.ix_(perm, perm)]


def _cirq_gate(cirq: Any, gate: Any, k: int,
               fixed: dict[str, np.ndarray]) -> list[tuple[str, tuple[int, ...], tuple]] | None:
    """Table ops on local qubits 0..k-1 for a Cirq gate, or None if it has no direct form."""
    if k > 5 or not cirq.has_unitary(gate):
        return None
    m = _little_endian(np.asarray(cirq.unitary(gate), dtype=np.complex128))
    for name, matrix in fixed.items():
        if matrix.shape == m.shape and np.allclose(matrix, m, atol=_ATOL):
            return [(name, tuple(range(k)), ())]
    shift = getattr(gate, "global_shift", None)
    exponent = getattr(gate, "exponent", None)
    if isinstance(exponent, (int, float)):
        angle = math.pi * exponent
        for spec in GATES.values():  # one table gate: its cirq_gate fact
            if spec.cirq_gate is None:
                continue
            cls, wanted_shift = getattr(cirq, spec.cirq_gate[0]), spec.cirq_gate[1]
            # with the phase dropped, the class itself only: a subclass (cirq.MSGate) may mean
            # more, and is decomposed instead
            if (type(gate) is cls if wanted_shift is None
                    else isinstance(gate, cls) and shift == wanted_shift):
                return [(spec.name, tuple(range(spec.num_qubits)), (angle,))]
        # Cirq gates that are two table gates, or one with other parameters
        compound: list[tuple[type, Callable]] = [
            (cirq.CXPowGate, lambda: [("crx", (0, 1), (angle,)), ("p", (0,), (angle / 2,))]),
            (cirq.ISwapPowGate, lambda: [("xx_plus_yy", (0, 1), (-angle, 0.0))]),
        ]
        for cls, build in compound:
            if isinstance(gate, cls) and shift == 0.0:
                return build()
    if k == 1:
        theta, phi, lam, _ = _zyz(m)
        return [("u", (0,), (theta, phi, lam))]  # global phase dropped
    if (isinstance(gate, cirq.ControlledGate) and gate.num_controls() == 1 and k == 2
            and list(gate.control_values) == [(1,)]):
        sub = np.asarray(cirq.unitary(gate.sub_gate), dtype=np.complex128)
        theta, phi, lam, gamma = _zyz(sub)
        return [("cu", (0, 1), (theta, phi, lam, gamma))]
    return None


def _zyz(u: np.ndarray) -> tuple[float, float, float, float]:
    """(theta, phi, lambda, gamma) with ``u == exp(i gamma) * u3(theta, phi, lambda)``."""
    a, b, c, d = u[0, 0], u[0, 1], u[1, 0], u[1, 1]
    theta = 2 * math.atan2(abs(c), abs(a))
    if abs(a) > 1e-9:
        gamma = cmath.phase(a)
        if abs(c) > 1e-9:
            phi = cmath.phase(c) - gamma
            lam = cmath.phase(-b) - gamma
        else:  # diagonal: only phi + lambda matters
            phi, lam = 0.0, cmath.phase(d) - gamma
    else:  # anti-diagonal: only phi - lambda matters
        gamma = cmath.phase(c)
        phi, lam = 0.0, cmath.phase(-b) - gamma
    return theta, phi, lam, gamma
