"""Rewrite gates into *controlled form* for the distribution compiler.

A two-qubit gate can run across two nodes as one TeleGate when it is block-diagonal in one of its
qubits (controlled-U, CZ, CP, RZZ, RZX, ...): that qubit is shared by a cat-entangler and the
gate runs on the other node. Other gates (SWAP, iSWAP, RXX, RYY, ECR, XX±YY, and every gate on
three or more qubits) are rewritten here into one-qubit gates and CX, exactly up to a global
phase, by the gate table's ``definition`` (or a textbook decomposition for the ``qelib1.inc``
gates that have none: SWAP, CCX, CSWAP).

:func:`controlled_form` expands recursively until every piece is a one-qubit gate or a
two-qubit gate block-diagonal in at least one of its qubits.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from functools import lru_cache

from .. import validation as check
from ..circuit import Instruction
from ..errors import CircuitError
from ..gates import GATES
from ..network.program import block_diagonal_in

_BUILTIN = {
    "swap": "cx {q0},{q1}; cx {q1},{q0}; cx {q0},{q1};",
    "ccx": "h {q2}; cx {q1},{q2}; tdg {q2}; cx {q0},{q2}; t {q2}; cx {q1},{q2}; tdg {q2}; "
           "cx {q0},{q2}; t {q1}; t {q2}; h {q2}; cx {q0},{q1}; t {q0}; tdg {q1}; cx {q0},{q1};",
    "cswap": "cx {q2},{q1}; ccx {q0},{q1},{q2}; cx {q2},{q1};",
}
_ALIASES = {"U": "u3", "CX": "cx"}
_STATEMENT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*([^()]*)$")

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}


def _eval(expr: str) -> float:
    """Evaluate a parameter expression of a definition (numbers, pi, + - * / **, parentheses)."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id == "pi":
            return math.pi
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        raise CircuitError(f"cannot evaluate gate-definition expression {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def _split_args(text: str) -> list[str]:
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i])
            start = i + 1
    args.append(text[start:])
    return [a.strip() for a in args if a.strip()]


def expand_once(inst: Instruction) -> list[Instruction]:
    """One level of the gate's definition, on the instruction's qubits (global phase dropped)."""
    check.instance(inst, Instruction, "expand_once: inst", CircuitError)
    spec = GATES.get(inst.name)
    body = _BUILTIN.get(inst.name) or (spec.definition if spec is not None else None)
    if body is None:
        raise CircuitError(f"gate '{inst.name}' has no decomposition")
    params = [f"({float(p)!r})" for p in inst.params]
    text = body.format(*params, **{f"q{i}": f"q{i}" for i in range(len(inst.qubits))})
    out: list[Instruction] = []
    for statement in text.split(";"):
        if not statement.strip():
            continue
        match = _STATEMENT.match(statement)
        if match is None:
            raise CircuitError(f"cannot read gate-definition statement {statement!r}")
        name, args, operands = match.groups()
        name = _ALIASES.get(name, name)
        values = tuple(_eval(a) for a in _split_args(args)) if args else ()
        qubits = tuple(inst.qubits[int(o.strip()[1:])] for o in operands.split(","))
        out.append(Instruction(name, qubits, values))
    return out


# Positions in which these gates are block-diagonal for every parameter value (the controls);
# they are never block-diagonal in general in their other positions (the targets). Diagonal gates
# are block-diagonal everywhere. Anything else is decided from the matrix, once per
# (name, parameters, position). tests/test_distribute.py checks this table against the matrices.
CONTROLS = {
    "cx": (0,), "CX": (0,), "cy": (0,), "ch": (0,), "cu": (0,), "cu3": (0,), "crx": (0,),
    "cry": (0,), "csx": (0,), "rzx": (0,), "ccx": (0, 1), "cswap": (0,), "rccx": (0, 1),
    "c3x": (0, 1, 2), "c3sqrtx": (0, 1, 2), "rc3x": (0, 1, 2), "c4x": (0, 1, 2, 3),
}


@lru_cache(maxsize=65536)
def _diagonal_at(name: str, params: tuple[float, ...], position: int) -> bool:
    spec = GATES[name]
    if spec.diagonal:
        return True
    if name in CONTROLS:
        return position in CONTROLS[name]
    inst = Instruction(name, tuple(range(spec.num_qubits)), params)
    return block_diagonal_in(inst, position)


def diagonal_in(inst: Instruction, qubit: int) -> bool:
    """``inst`` never flips ``qubit`` (block-diagonal in it); False for non-gates."""
    if not inst.is_gate or qubit not in inst.qubits:
        return inst.is_gate and qubit not in inst.qubits
    return _diagonal_at(inst.name, inst.params, inst.qubits.index(qubit))


def is_controlled_form(inst: Instruction) -> bool:
    """A gate that can run across two nodes as one TeleGate (or a one-qubit gate)."""
    if len(inst.qubits) <= 1:
        return True
    if len(inst.qubits) > 2:
        return False
    return any(diagonal_in(inst, q) for q in inst.qubits)


#: Deepest nesting of definitions :func:`controlled_form` follows (the table's is 3): deeper
#: means a definition that refers back to itself.
MAX_DEPTH = 16


def controlled_form(inst: Instruction, *,
                    max_instructions: int = check.MAX_EXPANDED_INSTRUCTIONS) -> list[Instruction]:
    """``inst`` as a list of one-qubit gates and two-qubit controlled-form gates (itself when it
    already is one).

    Raises
    ------
    CircuitError
        If the definitions nest deeper than :data:`MAX_DEPTH` or expand to more than
        ``max_instructions`` pieces (both only possible for a gate table edited by hand).
    """
    out: list[Instruction] = []
    budget = [max_instructions]

    def expand(piece: Instruction, depth: int) -> None:
        if not piece.is_gate or is_controlled_form(piece):
            out.append(piece)
            return
        if depth >= MAX_DEPTH:
            raise CircuitError(f"gate '{inst.name}': definitions nest more than {MAX_DEPTH} deep "
                               f"(does '{piece.name}' refer to itself?)")
        pieces = expand_once(piece)
        budget[0] -= len(pieces)
        if budget[0] < 0:
            raise CircuitError(f"gate '{inst.name}' expands to more than {max_instructions} "
                               "instructions")
        for sub in pieces:
            expand(sub, depth + 1)

    expand(check.instance(inst, Instruction, "controlled_form: inst", CircuitError), 0)
    return out
