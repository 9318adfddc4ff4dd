"""Layout of a distributed statevector: which physical index bit holds which logical qubit.

With ``P = 2^g`` ranks and ``n`` qubits, physical bits ``0 .. n-g-1`` are *local* (inside a
rank's shard) and bits ``n-g .. n-1`` are *global*: bit ``n-g+j`` of an amplitude's physical index
is bit ``j`` of the rank that holds it. A :class:`Layout` maps logical qubits to physical bits.

Only a block that *mixes* a qubit (moves amplitude between its 0 and 1 halves: H, X, RY, the target
of a CX ...) needs that qubit local. Diagonal blocks and controls mix nothing, so on a global bit
they are applied by each rank to its slice and cost no traffic. :func:`plan_swaps` decides, before
each block that mixes a global qubit, which global qubits to trade for which local ones:

- every global qubit the block mixes is swapped in, each with the local qubit whose next use as a
  mixed qubit lies furthest ahead (Belady's rule; a qubit never mixed again is the ideal victim);
- in the same exchange, further global qubits are brought in early while some local qubit is needed
  later than they are (one exchange of ``m`` bit swaps moves ``1 - 2^-m`` of every shard, against
  ``1/2`` per separate swap, so batching halves traffic or better);
- a SWAP gate moves no amplitude at all: :func:`relabel_swaps` drops it and renames the qubits
  of the gates after it, and the layout absorbs the renaming;
- the layout is kept afterwards; nothing is swapped back until the state is read out (sampling
  restores the identity layout; a gathered statevector is reordered instead).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from ..circuit import Instruction
from ..errors import BackendError

# A matrix entry below this magnitude counts as zero when deciding whether a block mixes a qubit:
# far below single- and double-precision rounding of the state itself.
_ZERO = 1e-14


def mixing_qubits(matrix: np.ndarray, qubits: Sequence[int], diagonal: bool = False
                  ) -> frozenset[int]:
    """The qubits on which ``matrix`` (bit j of its index = ``qubits[j]``) mixes 0 and 1.

    A qubit is not mixed when the matrix is block-diagonal in its value (a control, a phase):
    then every fixed value of that qubit sees its own sub-matrix on the other qubits.
    """
    if diagonal:
        return frozenset()
    m = np.abs(np.asarray(matrix))
    idx = np.arange(m.shape[0])
    flips = idx[:, None] ^ idx[None, :]
    return frozenset(q for j, q in enumerate(qubits)
                     if np.any(m[((flips >> j) & 1) == 1] > _ZERO))


def restrict(matrix: np.ndarray, bits: Sequence[int], diagonal: bool,
             fixed: dict[int, int]) -> tuple[np.ndarray, tuple[int, ...]]:
    """The part of a matrix (or diagonal table) that acts when some of its bits have fixed values.

    ``bits[j]`` is the bit that index bit ``j`` of ``matrix`` stands for (any order); ``fixed``
    maps bits to their values (they must not be mixed). Returns the sub-matrix (or sub-table) on
    the remaining bits in ascending order, and those bits.
    """
    k = len(bits)
    rest = sorted(b for b in bits if b not in fixed)
    # Tensor axis k-1-j holds index bit j (row-major reshape); columns follow rows for a matrix.
    axis_of = {b: k - 1 - j for j, b in enumerate(bits)}
    take = [slice(None)] * k
    for b, v in fixed.items():
        take[axis_of[b]] = v
    keep = [axis_of[b] for b in reversed(rest)]  # highest remaining bit first
    # Integer indices drop their axes; renumber the surviving axes in their old order.
    survivors = [a for a in range(k) if not isinstance(take[a], int)]
    order = [survivors.index(a) for a in keep]
    dim = 1 << len(rest)
    if diagonal:
        t = np.asarray(matrix).reshape((2,) * k)[tuple(take)]
        return np.transpose(t, order).reshape(dim), tuple(rest)
    t = np.asarray(matrix).reshape((2,) * (2 * k))[tuple(take + take)]
    r = len(rest)
    return np.transpose(t, order + [r + o for o in order]).reshape(dim, dim), tuple(rest)


class Layout:
    """Logical qubit -> physical bit, for ``num_qubits`` qubits of which ``num_global`` are global.

    Immutable; :meth:`swapped` returns a new layout. ``phys[q]`` is the physical bit of logical
    qubit ``q``; ``logical[p]`` the logical qubit at physical bit ``p``.
    """

    __slots__ = ("num_qubits", "num_global", "phys", "logical")

    def __init__(self, num_qubits: int, num_global: int, phys: Sequence[int] | None = None):
        self.num_qubits = num_qubits
        self.num_global = num_global
        self.phys = tuple(range(num_qubits)) if phys is None else tuple(int(p) for p in phys)
        logical = [0] * num_qubits
        for q, p in enumerate(self.phys):
            logical[p] = q
        self.logical = tuple(logical)

    @property
    def num_local(self) -> int:
        return self.num_qubits - self.num_global

    def is_global(self, qubit: int) -> bool:
        """Whether logical ``qubit`` sits on a global bit."""
        return self.phys[qubit] >= self.num_local

    def global_values(self, rank: int, qubits: Sequence[int]) -> dict[int, int]:
        """Physical bit -> value on ``rank`` for the global ones among logical ``qubits``."""
        nl = self.num_local
        return {self.phys[q]: (rank >> (self.phys[q] - nl)) & 1
                for q in qubits if self.phys[q] >= nl}

    def swapped(self, pairs: Sequence[tuple[int, int]]) -> "Layout":
        """The layout after exchanging the contents of physical bits ``(global, local)``."""
        logical = list(self.logical)
        for a, b in pairs:
            logical[a], logical[b] = logical[b], logical[a]
        phys = [0] * self.num_qubits
        for p, q in enumerate(logical):
            phys[q] = p
        return Layout(self.num_qubits, self.num_global, phys)

    def _move_bits(self, indices: np.ndarray, src: Sequence[int]) -> np.ndarray:
        # Bit src[b] of each input index becomes bit b of the output.
        indices = np.asarray(indices, dtype=np.int64)
        out = np.zeros_like(indices)
        for b, s in enumerate(src):
            out |= ((indices >> s) & 1) << b
        return out

    def to_logical(self, indices: np.ndarray) -> np.ndarray:
        """Physical basis indices -> logical ones."""
        return self._move_bits(indices, self.phys)

    def to_physical(self, indices: np.ndarray) -> np.ndarray:
        """Logical basis indices -> physical ones."""
        return self._move_bits(indices, self.logical)

    def to_logical_order(self, state: np.ndarray) -> np.ndarray:
        """A full state held in physical bit order, rearranged into logical order (a copy)."""
        n = self.num_qubits
        # Tensor axis a is bit n-1-a: output axis for logical q takes input axis of phys[q].
        t = np.asarray(state).reshape((2,) * n)
        return np.ascontiguousarray(
            t.transpose([n - 1 - self.phys[n - 1 - a] for a in range(n)])).reshape(-1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and (self.num_global, self.phys) == (
            other.num_global, other.phys)

    def __hash__(self) -> int:
        return hash((self.num_global, self.phys))

    def __repr__(self) -> str:
        return f"Layout(global={list(self.logical[self.num_local:])}, phys={list(self.phys)})"


def relabel_swaps(gates: Sequence[Instruction], num_qubits: int
                  ) -> tuple[list[Instruction], tuple[int, ...]]:
    """Drop the SWAP gates of a gate run by renaming qubits instead.

    Returns the other gates, each on the qubits that hold its operands' data at its time (qubit
    names of the start of the run), and ``where``: after the run, logical qubit ``q`` is held by
    the start-of-run qubit ``where[q]``.
    """
    where = list(range(num_qubits))
    out = []
    for inst in gates:
        if inst.name == "swap":
            a, b = inst.qubits
            where[a], where[b] = where[b], where[a]
        else:
            out.append(dataclasses.replace(inst, qubits=tuple(where[q] for q in inst.qubits)))
    return out, tuple(where)


def plan_swaps(layout: Layout, needs: Sequence[frozenset[int]]
               ) -> tuple[list[tuple[tuple[int, int], ...]], Layout]:
    """Swaps to do before each block so that every qubit a block mixes is local.

    ``needs[i]`` holds the logical qubits block ``i`` mixes. Returns, per block, the physical bit
    pairs ``(global, local)`` to exchange before it (one all-to-all; empty when none), and the
    layout after the last block. The rule is in the module docstring.
    """
    nl = layout.num_local
    # next_use[q] at block i: first block >= i that mixes q (len(needs) = never).
    never = len(needs)
    upcoming: dict[int, list[int]] = {}
    for i in reversed(range(len(needs))):
        for q in needs[i]:
            upcoming.setdefault(q, []).append(i)  # descending block numbers; pop from the end

    def next_use(q: int, i: int) -> int:
        uses = upcoming.get(q)
        while uses and uses[-1] < i:
            uses.pop()
        return uses[-1] if uses else never

    plan: list[tuple[tuple[int, int], ...]] = []
    for i, need in enumerate(needs):
        missing = sorted(q for q in need if layout.is_global(q))
        if not missing:
            plan.append(())
            continue
        if len(need) > nl:
            raise BackendError(f"a block mixes {len(need)} qubits but only {nl} are local to a "
                               f"rank: use fewer ranks")
        # Victims: local qubits not mixed here, the one needed latest first (ties: lower bit).
        victims = sorted((q for q in range(layout.num_qubits)
                          if not layout.is_global(q) and q not in need),
                         key=lambda q: (-next_use(q, i), layout.phys[q]))
        incoming = list(missing)
        # Bring further global qubits in early while a victim is needed later than they are.
        early = sorted((q for q in range(layout.num_qubits)
                        if layout.is_global(q) and q not in need and next_use(q, i) < never),
                       key=lambda q: (next_use(q, i), layout.phys[q]))
        for q in early:
            if len(incoming) == len(victims) or \
                    next_use(q, i) >= next_use(victims[len(incoming)], i):
                break
            incoming.append(q)
        pairs = tuple((layout.phys[g], layout.phys[v]) for g, v in zip(incoming, victims))
        layout = layout.swapped(pairs)
        plan.append(pairs)
    return plan, layout


def renamed(layout: Layout, where: Sequence[int]) -> Layout:
    """``layout`` (on start-of-run qubit names) after the renaming of :func:`relabel_swaps`."""
    return Layout(layout.num_qubits, layout.num_global, [layout.phys[w] for w in where])


def exchange_bytes(num_swaps: int, shard_bytes: int, num_ranks: int) -> int:
    """Payload bytes all ranks send together in one exchange of ``num_swaps`` bit swaps: an
    amplitude stays on its rank only when the swapped local bits equal the rank's global ones."""
    return num_ranks * (shard_bytes - (shard_bytes >> num_swaps)) if num_swaps else 0
