"""Gate decomposition: the one expander of the gate table's definitions, and the *controlled
form* the distribution compilers need.

:func:`expand` rewrites instructions through the ``definition`` of each gate in the table
(:func:`qsim_dist.gates.decomposition`), recursively, until every piece satisfies a predicate:
the distribution compiler (:func:`controlled_form`) and the naive distributor
(:mod:`qsim_dist.network.naive`) both call it.

A two-qubit gate can run across two nodes as one TeleGate when it is block-diagonal in one of its
qubits (controlled-U, CZ, CP, RZZ, RZX, ...): that qubit is shared by a cat-entangler and the
gate runs on the other node. Other gates (SWAP, iSWAP, RXX, RYY, ECR, XX±YY, and every gate on
three or more qubits) are rewritten into one-qubit gates and CX, exactly up to a global phase.
:func:`controlled_form` expands until every piece is a one-qubit gate or a two-qubit gate
block-diagonal in at least one of its qubits.
"""

from __future__ import annotations

from typing import Callable, Iterable

from .. import validation as check
from ..circuit import Instruction
from ..errors import CircuitError
from ..gates import GATES, decomposition, never_flips_at, usual_name
from ..linalg import never_flips

#: Deepest nesting of definitions :func:`expand` follows (the table's is 3): deeper means a
#: definition that refers back to itself.
MAX_DEPTH = 16


def expand_once(inst: Instruction) -> list[Instruction]:
    """One level of the gate's definition, on the instruction's qubits (global phase dropped;
    gates with two names under their usual one, ``u3`` for ``U``)."""
    check.instance(inst, Instruction, "expand_once: inst", CircuitError)
    if inst.name not in GATES:
        raise CircuitError(f"gate '{inst.name}' has no decomposition")
    return [Instruction(usual_name(name), tuple(inst.qubits[i] for i in positions), params)
            for name, positions, params in decomposition(inst.name,
                                                         [float(p) for p in inst.params])]


def expand(instructions: Iterable[Instruction], keep: Callable[[Instruction], bool], *,
           max_instructions: int = check.MAX_EXPANDED_INSTRUCTIONS) -> list[Instruction]:
    """``instructions`` with every gate for which ``keep`` is false replaced by its definition,
    recursively (depth first, in order); non-gates are kept as they are.

    Raises
    ------
    CircuitError
        For a gate to expand that has no definition, definitions nesting deeper than
        :data:`MAX_DEPTH`, or more than ``max_instructions`` pieces (the last two only possible
        for a gate table edited by hand).
    """
    out: list[Instruction] = []
    budget = [max_instructions]

    def visit(root: Instruction, piece: Instruction, depth: int) -> None:
        if not piece.is_gate or keep(piece):
            out.append(piece)
            return
        if depth >= MAX_DEPTH:
            raise CircuitError(f"gate '{root.name}': definitions nest more than {MAX_DEPTH} deep "
                               f"(does '{piece.name}' refer to itself?)")
        pieces = expand_once(piece)
        budget[0] -= len(pieces)
        if budget[0] < 0:
            raise CircuitError(f"gate '{root.name}' expands to more than {max_instructions} "
                               "instructions")
        for sub in pieces:
            visit(root, sub, depth + 1)

    for inst in instructions:
        visit(inst, inst, 0)
    return out


def block_diagonal_in(inst: Instruction, qubit: int) -> bool:
    """True when gate ``inst`` is |0><0| (x) U0 + |1><1| (x) U1 in ``qubit`` (it never flips it),
    so that a cat-entangled copy of ``qubit`` can stand in for it: decided from the matrix for
    these very parameters."""
    if qubit not in inst.qubits:
        return True
    if GATES[inst.name].diagonal:
        return True
    return never_flips(inst.matrix(), inst.qubits.index(qubit))


def diagonal_in(inst: Instruction, qubit: int) -> bool:
    """``inst`` never flips ``qubit`` (block-diagonal in it), as the compiler plans with it: a
    gate's ``controls`` are taken from the table whatever its parameters
    (:func:`qsim_dist.gates.never_flips_at`); False for non-gates."""
    if not inst.is_gate or qubit not in inst.qubits:
        return inst.is_gate and qubit not in inst.qubits
    return never_flips_at(inst.name, inst.params, inst.qubits.index(qubit))


def is_controlled_form(inst: Instruction) -> bool:
    """A gate that can run across two nodes as one TeleGate (or a one-qubit gate)."""
    if len(inst.qubits) <= 1:
        return True
    if len(inst.qubits) > 2:
        return False
    return any(diagonal_in(inst, q) for q in inst.qubits)


def controlled_form(inst: Instruction, *,
                    max_instructions: int = check.MAX_EXPANDED_INSTRUCTIONS) -> list[Instruction]:
    """``inst`` as a list of one-qubit gates and two-qubit controlled-form gates (itself when it
    already is one): :func:`expand` with :func:`is_controlled_form` kept.

    Raises
    ------
    CircuitError
        If the definitions nest deeper than :data:`MAX_DEPTH` or expand to more than
        ``max_instructions`` pieces (both only possible for a gate table edited by hand).
    """
    check.instance(inst, Instruction, "controlled_form: inst", CircuitError)
    return expand([inst], is_controlled_form, max_instructions=max_instructions)
