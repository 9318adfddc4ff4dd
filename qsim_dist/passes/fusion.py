"""Gate fusion: turn a run of gates into few blocks, one memory pass each.

A :class:`Block` is either dense (a ``2^k x 2^k`` matrix on at most ``max_dense`` qubits) or
diagonal (a length ``2^m`` phase table on at most ``max_diagonal`` qubits: diagonal gates commute,
so QFT's controlled phases, CZ layers and RZ runs collapse into one elementwise pass).

The greedy rule moves a gate or a block only past blocks on disjoint qubits, so it never changes
the circuit's meaning:

- a gate joins the block that was last to touch *all* of its qubits, if the union still fits
  (the gate moves back in time past blocks that do not touch its qubits);
- otherwise it opens a new block and pulls in every earlier block that touches its qubits and has
  no later block on any of its own qubits (those blocks move forward in time), while it fits.

Matrices are built once per block at the end, little-endian in the block's sorted qubits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..circuit import Instruction
from ..gates import gate_spec


@dataclass
class Block:
    qubits: tuple[int, ...]  # sorted ascending
    diagonal: bool
    matrix: np.ndarray  # dense: (2^k, 2^k); diagonal: (2^k,) — bit j of the index is qubits[j]
    num_gates: int = 1


@dataclass
class _Open:
    qubits: set[int]
    diagonal: bool
    gates: list[tuple[np.ndarray, tuple[int, ...], bool]] = field(default_factory=list)
    order: int = 0  # position in time; blocks are emitted in this order
    alive: bool = True


def _block_matrix(gates, qubits: tuple[int, ...], diagonal: bool) -> np.ndarray:
    pos = {q: j for j, q in enumerate(qubits)}
    m = len(qubits)
    if diagonal:
        idx = np.arange(1 << m)
        diag = np.ones(1 << m, dtype=np.complex128)
        for mat, gq, _ in gates:
            sub = np.zeros(1 << m, dtype=np.int64)
            for b, q in enumerate(gq):
                sub |= ((idx >> pos[q]) & 1) << b
            diag *= np.diagonal(mat)[sub]
        return diag
    # Dense: apply each gate to the identity; tensor axis a is block bit m-1-a.
    u = np.eye(1 << m, dtype=np.complex128).reshape((2,) * m + (1 << m,))
    for mat, gq, _ in gates:
        k = len(gq)
        g = mat.reshape((2,) * (2 * k))
        axes = [m - 1 - pos[q] for q in reversed(gq)]
        u = np.tensordot(g, u, axes=(list(range(k, 2 * k)), axes))
        u = np.moveaxis(u, list(range(k)), axes)
    return u.reshape(1 << m, 1 << m)


def fuse(gates: Sequence[Instruction], max_dense: int = 4, max_diagonal: int = 12) -> list[Block]:
    """Fuse unconditioned gates into blocks (see the module docstring)."""
    last: dict[int, _Open] = {}
    blocks: list[_Open] = []

    def fits(qubits: set[int], diagonal: bool) -> bool:
        return len(qubits) <= (max_diagonal if diagonal else max_dense)

    for inst in gates:
        spec = gate_spec(inst.name)
        mat = spec.matrix(inst.params)
        gq = inst.qubits
        diag = spec.diagonal
        if spec.name == "id":
            continue
        touching = {id(last[q]): last[q] for q in gq if q in last}
        cands = list(touching.values())
        # 1. join the block last to touch all of the gate's qubits
        if len(cands) == 1 and all(q in last for q in gq):
            b = cands[0]
            union = b.qubits | set(gq)
            d = b.diagonal and diag
            if fits(union, d):
                b.qubits, b.diagonal = union, d
                b.gates.append((mat, gq, diag))
                for q in gq:
                    last[q] = b
                continue
        # 2. open a block; pull in earlier blocks that may move forward to here
        new = _Open(set(gq), diag, order=len(blocks))
        for b in sorted(cands, key=lambda b: b.order):
            movable = all(last[q] is b for q in b.qubits)
            union = new.qubits | b.qubits
            d = new.diagonal and b.diagonal
            if movable and fits(union, d):
                new.qubits, new.diagonal = union, d
                new.gates.extend(b.gates)
                b.alive = False
        new.gates.append((mat, gq, diag))
        blocks.append(new)
        for q in new.qubits:
            last[q] = new

    out = []
    for b in blocks:
        if b.alive:
            qubits = tuple(sorted(b.qubits))
            out.append(Block(qubits, b.diagonal, _block_matrix(b.gates, qubits, b.diagonal),
                             len(b.gates)))
    return out
