"""Gate fusion: turn a run of gates into few blocks, one memory pass each.

A :class:`Block` is either dense (a ``2^k x 2^k`` matrix on at most ``max_dense`` qubits) or
diagonal (a length ``2^m`` phase table on at most ``max_diagonal`` qubits: diagonal gates commute,
so QFT's controlled phases, CZ layers and RZ runs collapse into one elementwise pass).

The greedy rule moves a gate or a block only past blocks on disjoint qubits, so it never changes
the circuit's meaning:

- a gate whose qubits all end in one block joins it;
- when the last blocks on its qubits can all move forward to it and fit together with it, it
  opens a new block that takes them in;
- otherwise it may join any block created no earlier than the last block on each of its qubits
  (the gate moves back in time past blocks that do not touch its qubits), taking along those of
  its last blocks that can move forward: the one whose qubit set grows least (by at most one);
- failing all that, it opens a new block and pulls in every earlier block that touches its qubits
  and has no later block on any of its own qubits (those blocks move forward in time), while it
  fits.

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


def _join(b: _Open, mat, gq, diag, fits) -> bool:
    union = b.qubits | set(gq)
    if not fits(union, b.diagonal and diag):
        return False
    b.qubits, b.diagonal = union, b.diagonal and diag
    b.gates.append((mat, gq, diag))
    return True


def _absorb(into: _Open, b: _Open) -> None:
    """Move block ``b`` forward in time into ``into`` (valid: nothing after ``b`` touches its
    qubits), ahead of the gates ``into`` receives from now on."""
    into.qubits |= b.qubits
    into.diagonal = into.diagonal and b.diagonal
    into.gates.extend(b.gates)
    b.alive = False


_WINDOW = 16  # blocks looked at per gate: keeps fusion linear in circuit length
# A gate joins an older block only if that adds at most one qubit to it: filling blocks with
# unrelated qubits leaves no room for the gates that follow (block counts with 1 vs 2 vs
# unlimited, k = 4: QAOA-20 21/25/25, random 24x20 83/102/102, QFT-24 34/31/31).
_MAX_GROWTH = 1


# Diagonal runs are merged into tables of up to 2^12 entries (one gather per amplitude).
MAX_DIAGONAL = 12


def fuse(gates: Sequence[Instruction], max_dense: int = 4,
         max_diagonal: int = MAX_DIAGONAL) -> list[Block]:
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
        cands = list({id(last[q]): last[q] for q in gq if q in last}.values())
        gset = set(gq)
        # 1. the gate's qubits all end in one block: join it
        if len(cands) == 1 and gset <= cands[0].qubits and _join(cands[0], mat, gq, diag, fits):
            continue
        # 2. those last blocks can all move forward and fit together with the gate: a new block
        movers = [b for b in cands if all(last[q] is b for q in b.qubits)]
        pull = set().union(gset, *(b.qubits for b in movers))
        if not (len(movers) == len(cands)
                and fits(pull, diag and all(b.diagonal for b in cands))):
            # 3. join a block no older than the last block on any of the gate's qubits (the
            #    gate moves back past blocks on other qubits), taking along the last blocks
            #    that can move forward, so that none is left behind as a pass of its own;
            #    among those that fit and grow by at most _MAX_GROWTH, the one that grows least
            t0 = max((b.order for b in cands), default=-1)
            best, best_growth, looked = None, 0, 0
            for b in reversed(blocks):
                if b.order < t0 or looked == _WINDOW:
                    break
                if not b.alive:
                    continue
                looked += 1
                union = b.qubits | pull
                diagonal = b.diagonal and diag and all(m.diagonal for m in movers)
                if fits(union, diagonal) and len(union) - len(b.qubits) <= _MAX_GROWTH:
                    growth = len(union) - len(b.qubits)
                    if best is None or growth < best_growth:
                        best, best_growth = b, growth
                    if growth == 0:
                        break
            if best is not None:
                for m in movers:
                    if m is not best:
                        _absorb(best, m)
                _join(best, mat, gq, diag, fits)
                for q in pull:  # not all of best's qubits: a later block may hold some
                    last[q] = best
                continue
        # 4. open a block (at 2., or when nothing fits); pull in the last blocks that can move
        new = _Open(set(gq), diag, order=len(blocks))
        for b in sorted(movers, key=lambda b: b.order):
            if fits(new.qubits | b.qubits, new.diagonal and b.diagonal):
                _absorb(new, b)
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
