"""The distribution compiler: an ordinary circuit + a network -> a :class:`DistributedProgram`.

Three steps, each cheap enough for 64 qubits x 2,000 gates in well under a second per candidate:

1. **Rewrite** every gate that is not in *controlled form* (SWAP, iSWAP, RXX, ECR, gates on three
   or more qubits, ...) into one-qubit gates and two-qubit gates block-diagonal in one qubit
   (:mod:`qsim_dist.passes.decompose`). A rewritten gate whose qubits all end up on one node is
   emitted whole.
2. **Place** logical qubits on compute nodes within their data-qubit capacity: recursive
   Kernighan–Lin bisection (networkx) of the interaction graph (edge weight = number of two-qubit
   pieces between two qubits), co-bisecting the network's compute nodes by distance so that parts
   that talk much land on nearby nodes, then a swap/move refinement of
   ``sum(weight * distance)``. Several placements are tried (the in-order one of the baseline
   too); the compiled program with the fewest EPR pairs wins.
3. **Schedule communication** in one pass over the gates. A cross-node gate joins an open
   cat-entangler burst when that is valid, else opens a new one (TeleGate) or teleports one of
   its qubits (TeleData) when a look-ahead says it is cheaper and the target node has a free data
   qubit. A burst of control ``c`` into node ``N`` stays open while ``c`` sees only gates that are
   diagonal in it (phases, the control side of CX, CZ/CP/RZZ, ...); a later gate joins it by
   commuting backwards to the burst's place in the program, which is checked exactly per qubit
   (it may pass an op on a shared qubit only when both are block-diagonal in that qubit). Local
   gates on ``N`` that touch the burst's qubits are absorbed into its body so that it can keep
   growing. Each protocol holds one communication qubit per path end (two at a swapping node)
   while it runs; with ``comm_limit="live"`` at most ``comm_qubits`` bursts also stay open for
   joining at a node at once (least recently used closed first).

   More general packings (``embed``): a burst may share its qubit ``t`` in the X basis — ``H_t``,
   a burst whose body holds ``H_t G H_t`` for each gate ``G``, ``H_t`` — so that a run of CX (CRX,
   CSX, RZX) gates on a common *target* ``t`` with controls on one node costs one EPR pair (the
   H-embedding of AutoComm); such a burst stays open while ``t`` sees only gates that commute
   with X (X, RX, SX, CX targets, ...). Commutation is checked in the X basis too (a gate
   block-diagonal in the X basis of a qubit passes others that are). A gate on three or more
   qubits (CCX, C3X, CSWAP, ...) or an RXX whose qubits all sit on one node but one, ``q``, and
   that is block-diagonal in ``q`` (Z basis, or X basis for a CCX target) runs whole in one
   burst of ``q`` instead of its controlled-form pieces. Every placement is compiled with and
   without these packings (a greedy pass can do worse with more choices), so the result is
   never worse than the plain compilation.

Finally the *baseline* (qubits placed in order, one EPR pair per hop for every cross-node
two-qubit gate in controlled form) is built too, and :func:`distribute` never returns a program
that costs more EPR pairs than it.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..circuit import Circuit, Instruction
from ..errors import QsimDistError
from ..gates import commutes_with_x_at, x_embedding
from .program import Cost, DistributedProgram, LocalGate, Op, RemoteGate, Teleport
from .topology import Network
from ..passes.decompose import controlled_form, diagonal_in


class DistributeError(QsimDistError):
    """A circuit cannot be distributed over a network (too few data qubits, unsupported op)."""


# ---- distances -------------------------------------------------------------------------------

class _Distances:
    """All-pairs hop distances between nodes (``Network.distance`` runs a BFS per call)."""

    def __init__(self, network: Network):
        self.network = network
        self.names = list(network.nodes)
        self.index = {name: i for i, name in enumerate(self.names)}
        k = len(self.names)
        self.matrix = np.zeros((k, k), dtype=np.int64)
        for i, a in enumerate(self.names):
            for j, b in enumerate(self.names):
                if j > i:
                    self.matrix[i, j] = self.matrix[j, i] = network.distance(a, b)

    def __call__(self, a: str, b: str) -> int:
        return int(self.matrix[self.index[a], self.index[b]])


# ---- the gate list ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Unit:
    """One source instruction and its controlled-form pieces (itself when already in form)."""

    inst: Instruction
    pieces: tuple[Instruction, ...]


def _units(circuit: Circuit) -> list[_Unit]:
    units = []
    for inst in circuit:
        if inst.is_gate and inst.condition is None and len(inst.qubits) > 1:
            units.append(_Unit(inst, tuple(controlled_form(inst))))
        else:
            units.append(_Unit(inst, (inst,)))
    return units


def interaction_weights(units: Sequence[_Unit], n: int) -> np.ndarray:
    """Symmetric ``n x n`` matrix: number of two-qubit pieces between each pair of qubits."""
    w = np.zeros((n, n))
    for unit in units:
        if unit.inst.name == "barrier":
            continue
        for piece in unit.pieces:
            qs = piece.qubits
            if len(qs) == 2:
                w[qs[0], qs[1]] += 1
                w[qs[1], qs[0]] += 1
            elif len(qs) > 2:  # conditioned multi-qubit gate: a clique
                for i, a in enumerate(qs):
                    for b in qs[i + 1:]:
                        w[a, b] += 1
                        w[b, a] += 1
    return w


# ---- placement -------------------------------------------------------------------------------

def in_order_placement(n: int, network: Network) -> tuple[str, ...]:
    """The baseline's placement: qubits 0, 1, ... fill the compute nodes in file order."""
    out: list[str] = []
    for node in network.compute_nodes:
        out.extend([node.name] * min(node.data_qubits, n - len(out)))
    if len(out) < n:
        raise DistributeError(f"the circuit has {n} qubits but the network's compute nodes hold "
                              f"{network.data_capacity} data qubits")
    return tuple(out)


def _target_sizes(n: int, capacities: list[int], packed: bool) -> list[int]:
    if packed:
        sizes, left = [], n
        for c in capacities:
            sizes.append(min(c, left))
            left -= sizes[-1]
        return sizes
    total = sum(capacities)
    sizes = [min(c, int(math.floor(n * c / total))) for c in capacities]
    i = 0
    while sum(sizes) < n:  # hand out the remainder, first to nodes with room
        j = i % len(sizes)
        if sizes[j] < capacities[j]:
            sizes[j] += 1
        i += 1
    return sizes


def _bisect_nodes(nodes: list[str], dist: _Distances, seed: int) -> tuple[list[str], list[str]]:
    """Split compute nodes into two halves of nearby nodes (Kernighan–Lin on closeness)."""
    import networkx as nx
    from networkx.algorithms.community import kernighan_lin_bisection

    half = len(nodes) // 2
    if len(nodes) <= 3:
        return nodes[:half], nodes[half:]
    g = nx.Graph()
    g.add_nodes_from(nodes)
    far = max(dist(a, b) for a in nodes for b in nodes)
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            g.add_edge(a, b, weight=float(far + 1 - dist(a, b)) ** 2)
    a_part, b_part = kernighan_lin_bisection(g, partition=(set(nodes[:half]), set(nodes[half:])),
                                             weight="weight", seed=seed)
    return ([x for x in nodes if x in a_part], [x for x in nodes if x in b_part])


def _bisect_qubits(qubits: list[int], size_a: int, w: np.ndarray, seed: int
                   ) -> tuple[list[int], list[int]]:
    import networkx as nx
    from networkx.algorithms.community import kernighan_lin_bisection

    if size_a == 0 or size_a == len(qubits):
        return (qubits, []) if size_a else ([], qubits)
    g = nx.Graph()
    g.add_nodes_from(qubits)
    sub = w[np.ix_(qubits, qubits)]
    rows, cols = np.nonzero(np.triu(sub, 1))
    g.add_weighted_edges_from((qubits[r], qubits[c], float(sub[r, c])) for r, c in zip(rows, cols))
    if len(rows) == 0:
        return qubits[:size_a], qubits[size_a:]
    try:
        a_part, b_part = kernighan_lin_bisection(
            g, partition=(set(qubits[:size_a]), set(qubits[size_a:])), weight="weight",
            seed=seed)
    except ValueError:  # networkx 3.x fails on some tiny/odd splits: keep the initial one
        return qubits[:size_a], qubits[size_a:]
    if len(a_part) != size_a:  # networkx may hand the two sides back in either order
        a_part, b_part = b_part, a_part
    return sorted(a_part), sorted(b_part)


def _refine(assign: np.ndarray, w: np.ndarray, d: np.ndarray, capacity: np.ndarray,
            max_steps: int) -> np.ndarray:
    """Greedy swaps (and moves into free data qubits) while ``sum(w * d[assign, assign])`` drops."""
    assign = assign.copy()
    n = len(assign)
    idx = np.arange(n)
    for _ in range(max_steps):
        c = w @ d[assign].astype(float)              # c[a, X]: cost of qubit a sitting on X
        here = c[idx, assign]
        # swap gain of (a, b): both move, their mutual edge keeps its length
        cab = c[:, assign]                            # cab[a, b] = cost of a sitting on b's node
        gain = here[:, None] + here[None, :] - cab - cab.T + 2 * w * d[assign][:, assign]
        a, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
        best_swap = gain[a, b]
        load = np.bincount(assign, minlength=len(capacity))
        free = capacity - load
        move_gain = here[:, None] - c
        move_gain[:, free <= 0] = -np.inf
        ma, mx = np.unravel_index(int(np.argmax(move_gain)), move_gain.shape)
        best_move = move_gain[ma, mx]
        if max(best_swap, best_move) <= 1e-9:
            break
        if best_move >= best_swap:
            assign[ma] = mx
        else:
            assign[a], assign[b] = assign[b], assign[a]
    return assign


def partition_placement(n: int, network: Network, w: np.ndarray, dist: _Distances, *,
                        packed: bool = False, seed: int = 0, refine: bool = True
                        ) -> tuple[str, ...]:
    """Recursive Kernighan–Lin co-bisection of qubits and nodes, then refinement."""
    compute = network.compute_nodes
    names = [node.name for node in compute]
    caps = {node.name: node.data_qubits for node in compute}
    if sum(caps.values()) < n:
        raise DistributeError(f"the circuit has {n} qubits but the network's compute nodes hold "
                              f"{sum(caps.values())} data qubits")
    sizes = dict(zip(names, _target_sizes(n, [caps[x] for x in names], packed)))
    result: dict[int, str] = {}

    def split(qubits: list[int], nodes: list[str], depth: int) -> None:
        if len(nodes) == 1:
            for q in qubits:
                result[q] = nodes[0]
            return
        left, right = _bisect_nodes(nodes, dist, seed + depth)
        size_left = sum(sizes[x] for x in left)
        qa, qb = _bisect_qubits(qubits, size_left, w, seed + depth)
        split(qa, left, depth + 1)
        split(qb, right, depth + 1)

    split(list(range(n)), names, 0)
    assign = np.array([dist.index[result[q]] for q in range(n)])
    if refine:
        capacity = np.zeros(len(dist.names), dtype=np.int64)
        for name in names:
            capacity[dist.index[name]] = caps[name]
        assign = _refine(assign, w, dist.matrix, capacity, max_steps=4 * n)
    return tuple(dist.names[i] for i in assign)


# ---- the X basis: H-embedded bursts -------------------------------------------------------------

# A gate whose X-basis image is a table gate (H_t CX(c, t) H_t = CZ(c, t), H_t CCX(a, b, t) H_t =
# CCZ(a, b, t), H_t RXX(x, t) H_t = RZX(t, x): the gate table's x_embed facts) is block-diagonal
# in the X basis of t. A run of such gates on t whose other qubits sit on one node is H_t, one
# burst sharing t (its body holds the images, block-diagonal in t), H_t: the "H ... H embedding"
# of AutoComm (Wu et al. 2022).


def xdiagonal_in(inst: Instruction, qubit: int) -> bool:
    """``inst`` commutes with X on ``qubit`` (block-diagonal in its X basis); False for
    non-gates and conditioned gates on it, True when it does not touch it."""
    if qubit not in inst.qubits:
        return inst.is_gate
    if not inst.is_gate or inst.condition is not None:
        return False
    return commutes_with_x_at(inst.name, inst.params, inst.qubits.index(qubit))


def x_embedded(inst: Instruction, qubit: int) -> Instruction | None:
    """``H_qubit inst H_qubit`` as one table gate (:func:`qsim_dist.gates.x_embedding`), else
    None."""
    if inst.condition is not None or qubit not in inst.qubits:
        return None
    image = x_embedding(inst.name, inst.qubits.index(qubit))
    if image is None:
        return None
    name, order = image
    return Instruction(name, tuple(inst.qubits[i] for i in order), inst.params)


# ---- communication scheduling ----------------------------------------------------------------

def _lookahead_data(units: Sequence[_Unit], n: int) -> tuple[list, list[list[int]]]:
    """Per piece (unit, piece, segs, xsegs): the "diagonal segment" of each of its qubits in the
    Z and in the X basis (a segment ends at a piece not block-diagonal in the qubit in that
    basis); and per qubit the indices of its two-qubit pieces. Independent of the placement."""
    segment = [0] * n
    xsegment = [0] * n
    flat: list[tuple[int, Instruction, tuple[int, ...], tuple[int, ...]]] = []
    by_qubit: list[list[int]] = [[] for _ in range(n)]
    for u, unit in enumerate(units):
        for piece in unit.pieces:
            segs, xsegs = [], []
            for q in piece.qubits:
                if not (piece.is_gate and piece.condition is None and diagonal_in(piece, q)):
                    segment[q] += 1
                if not xdiagonal_in(piece, q):
                    xsegment[q] += 1
                segs.append(segment[q])
                xsegs.append(xsegment[q])
            k = len(flat)
            flat.append((u, piece, tuple(segs), tuple(xsegs)))
            if len(piece.qubits) == 2 and piece.is_gate:
                for q in piece.qubits:
                    by_qubit[q].append(k)
    return flat, by_qubit


@dataclass
class _Burst:
    control: int
    node: str
    body: list[Instruction]
    basis: str = "z"          # "x": the op is H_control, the burst, H_control (x_embedded)


class _Scheduler:
    """One pass over the units: emits local gates, bursts and teleports (see module docstring)."""

    def __init__(self, circuit: Circuit, units: list[_Unit], network: Network, dist: _Distances,
                 placement: Sequence[str], *, merge: bool, teledata: bool, lookahead: int = 12,
                 comm_limit: str = "op", embed: bool = True,
                 lookahead_data: tuple | None = None):
        self.circuit = circuit
        self.embed = embed          # X-basis commutation, H-embedded bursts, whole gates
        self.embedded = False       # ... and whether they changed anything
        self.units = units
        self.network = network
        self.dist = dist
        self.merge = merge
        self.teledata = teledata
        self.lookahead = lookahead
        n = circuit.num_qubits
        self.placement = tuple(placement)
        self.where = list(placement)
        self.capacity = {node.name: node.data_qubits for node in network.compute_nodes}
        if comm_limit not in ("op", "live"):
            raise DistributeError(f"comm_limit must be 'op' or 'live', got {comm_limit!r}")
        self.comm = {name: (max(1, node.comm_qubits) if comm_limit == "live" else math.inf)
                     for name, node in network.nodes.items()}
        self.load: dict[str, int] = {}
        for node in self.where:
            self.load[node] = self.load.get(node, 0) + 1
        self.out: list = []                       # LocalGate | _Burst | Teleport
        self.last_any = [-1] * n                  # last output position touching the qubit
        self.last_flip = [-1] * n                 # ... touching it non-diagonally
        self.last_xflip = [-1] * n                # ... not block-diagonal in its X basis
        self.open: dict[tuple[int, str, str], int] = {}   # (control, node, basis) -> position
        self.open_at: dict[str, OrderedDict] = {name: OrderedDict() for name in network.nodes}
        self._prepare(lookahead_data)

    # -- look-ahead data: for each piece, the "diagonal segment" of each of its qubits ----------
    def _prepare(self, lookahead_data: tuple | None) -> None:
        n = self.circuit.num_qubits
        if lookahead_data is None:
            lookahead_data = _lookahead_data(self.units, n)
        # flat[k] = (unit, piece, segs, xsegs); by_qubit[q] = indices of q's two-qubit pieces
        self.flat, self.by_qubit = lookahead_data
        self.next_of = [0] * n   # position in by_qubit[q] of the next unprocessed piece
        self.seg_now = [0] * n   # segment of each qubit before the next unprocessed piece

    # -- bookkeeping --------------------------------------------------------------------------
    def _touch(self, inst: Instruction, position: int, hard: bool = False) -> None:
        for q in inst.qubits:
            if position > self.last_any[q]:
                self.last_any[q] = position
            if hard or not diagonal_in(inst, q):
                if position > self.last_flip[q]:
                    self.last_flip[q] = position
                self._close_control(q, "z")
            if hard or not xdiagonal_in(inst, q):
                if position > self.last_xflip[q]:
                    self.last_xflip[q] = position
                self._close_control(q, "x")

    def _bound(self, inst: Instruction) -> tuple[int, int]:
        """The earliest output position ``inst`` may be moved back to (exclusive of ops after):
        past ops that, on every qubit they share with it, are block-diagonal in the same basis
        (Z or X) as it is (then they commute). Also the bound of the plain pass (Z basis only),
        to tell when the X basis changed a decision."""
        bound = plain = -1
        for q in inst.qubits:
            if diagonal_in(inst, q):
                b = p = self.last_flip[q]
            else:
                p = self.last_any[q]
                b = self.last_xflip[q] if self.embed and xdiagonal_in(inst, q) else p
            if b > bound:
                bound = b
            if p > plain:
                plain = p
        return bound, plain

    def _absorber(self, inst: Instruction, position: int) -> _Burst | None:
        """The open burst at ``position`` whose body can take local gate ``inst``, if any."""
        if position < 0:
            return None
        op = self.out[position]
        if (isinstance(op, _Burst) and self.open.get((op.control, op.node, op.basis)) == position
                and op.control not in inst.qubits
                and all(self.where[q] == op.node for q in inst.qubits)):
            return op
        return None

    def _close(self, key: tuple[int, str, str]) -> None:
        position = self.open.pop(key, None)
        if position is None:
            return
        burst = self.out[position]
        for end in (self.where_at_open[key], burst.node):
            self.open_at[end].pop(key, None)

    def _close_control(self, q: int, basis: str | None = None) -> None:
        """Close the bursts sharing ``q`` (only those in ``basis`` when given)."""
        keys = self.controls.get(q)
        if keys:
            for key in [k for k in keys if basis is None or k[2] == basis]:
                self._close(key)
                keys.discard(key)

    def _emit_local(self, inst: Instruction, hard: bool = False) -> None:
        self.out.append(LocalGate(inst))
        self._touch(inst, len(self.out) - 1, hard)

    def _open_burst(self, control: int, node: str, inst: Instruction, basis: str = "z") -> None:
        home = self.where[control]
        key = (control, node, basis)
        self._close(key)
        for end in (home, node):
            while len(self.open_at[end]) >= self.comm[end]:
                oldest = next(iter(self.open_at[end]))
                self._close(oldest)
                self.controls.get(oldest[0], set()).discard(oldest)
        position = len(self.out)
        self.out.append(_Burst(control, node, [self._image(inst, control, basis)], basis))
        if basis != "z":
            self.embedded = True
        if self.merge:
            self.open[key] = position
            self.where_at_open[key] = home
            self.open_at[home][key] = True
            self.open_at[node][key] = True
            self.controls.setdefault(control, set()).add(key)
        self._touch(inst, position)

    @staticmethod
    def _image(inst: Instruction, control: int, basis: str) -> Instruction:
        """The body gate that stands for ``inst`` in a burst sharing ``control`` in ``basis``."""
        return inst if basis == "z" else x_embedded(inst, control)

    def _join(self, key: tuple[int, str, str], inst: Instruction) -> None:
        position = self.open[key]
        self.out[position].body.append(self._image(inst, key[0], key[2]))
        for end in (self.where_at_open[key], key[1]):
            self.open_at[end].move_to_end(key)
        self._touch(inst, position)

    def _teleport(self, q: int, node: str) -> None:
        self._close_control(q)
        self.load[self.where[q]] -= 1
        self.load[node] = self.load.get(node, 0) + 1
        self.where[q] = node
        self.out.append(Teleport(q, node))
        position = len(self.out) - 1
        self.last_any[q] = self.last_flip[q] = self.last_xflip[q] = position

    def _free(self, node: str) -> bool:
        return self.load.get(node, 0) < self.capacity.get(node, 0)

    # -- look-ahead cost of keeping qubit q on node `at` for its next few interactions ---------
    def _window_cost(self, q: int, at: str, start: int) -> int:
        seen: set = set()
        cost = 0
        lst = self.by_qubit[q]
        for k in lst[self.next_of[q]: self.next_of[q] + self.lookahead]:
            if k < start:
                continue
            _, piece, segs, _ = self.flat[k]
            j = piece.qubits.index(q)
            other = piece.qubits[1 - j]
            there = self.where[other]
            if there == at:
                continue
            if diagonal_in(piece, q):
                key = ("q", segs[j], there)
            else:
                key = ("o", other, segs[1 - j], at)
            if key not in seen:
                seen.add(key)
                cost += self.dist(at, there)
        return cost

    def _advance(self, piece_index: int, piece: Instruction) -> None:
        segs = self.flat[piece_index][2]
        for j, q in enumerate(piece.qubits):
            self.seg_now[q] = segs[j]
        if len(piece.qubits) == 2 and piece.is_gate:
            for q in piece.qubits:
                self.next_of[q] += 1

    def _potential(self, q: int, node: str, piece_index: int, basis: str = "z") -> int:
        """How many of q's coming two-qubit pieces could share one burst of q into ``node`` in
        ``basis``: those in q's current diagonal segment (of that basis) that the burst can
        hold, whose partner sits on ``node`` and has not been flipped in between (a flipped
        partner cannot commute back into the body)."""
        current = self.flat[piece_index]
        piece, segs = current[1], current[2]
        own = 2 if basis == "z" else 3          # index of q's segments in a self.flat entry
        seg = current[own][piece.qubits.index(q)]
        count = 0
        lst = self.by_qubit[q]
        for k in lst[self.next_of[q]: self.next_of[q] + 4 * self.lookahead]:
            entry = self.flat[k]
            other_piece, other_segs = entry[1], entry[2]
            j = other_piece.qubits.index(q)
            if entry[own][j] != seg:
                break
            o = other_piece.qubits[1 - j]
            if self.where[o] != node:
                continue
            if basis == "z" and not diagonal_in(other_piece, q):
                continue
            if basis == "x" and x_embedded(other_piece, q) is None:
                continue
            now = segs[1 - piece.qubits.index(q)] if o in piece.qubits else self.seg_now[o]
            flips = 0 if diagonal_in(other_piece, o) else 1
            if other_segs[1 - j] - flips == now or (o in piece.qubits and k == piece_index):
                count += 1
        return count

    # -- the pass -----------------------------------------------------------------------------
    def run(self) -> DistributedProgram:
        self.where_at_open: dict[tuple[int, str, str], str] = {}
        self.controls: dict[int, set] = {}
        piece_index = 0
        for unit in self.units:
            inst = unit.inst
            nodes = {self.where[q] for q in inst.qubits}
            if inst.name == "barrier":
                for node in sorted(nodes):
                    sub = tuple(q for q in inst.qubits if self.where[q] == node)
                    self._emit_local(Instruction("barrier", sub), hard=True)
                piece_index += 1
                continue
            if len(nodes) <= 1 and (len(unit.pieces) > 1 or not inst.is_gate
                                    or inst.condition is not None):
                # whole instruction on one node (a non-gate, a conditioned gate, a rewritten gate)
                if inst.is_gate and inst.condition is None:
                    self._local_gate(inst)
                else:
                    self._emit_local(inst, hard=True)
                for piece in unit.pieces:
                    self._advance(piece_index, piece)
                    piece_index += 1
                continue
            if not inst.is_gate or inst.condition is not None:
                self._remote_conditioned(inst)
                piece_index += 1
                continue
            if len(unit.pieces) > 1 and self.merge and self.embed:
                # a gate not in controlled form (CCX, C3X, CSWAP, RXX, ...) with all its qubits
                # but one, q, on one node, and block-diagonal in q (Z or X basis): one burst of q
                options = self._options(inst)
                if options:
                    self.embedded = True
                    self._place(inst, piece_index, options)
                    for piece in unit.pieces:
                        self._advance(piece_index, piece)
                        piece_index += 1
                    continue
            for piece in unit.pieces:
                self._gate(piece, piece_index)
                self._advance(piece_index, piece)
                piece_index += 1
        return self._program()

    def _local_gate(self, inst: Instruction) -> None:
        """A gate on one node: absorb it into the burst whose body it must follow, if any."""
        if self.merge:
            bound, plain = self._bound(inst)
            op = self._absorber(inst, bound)
            if bound != plain and (op is not None or self._absorber(inst, plain) is not None):
                self.embedded = True     # the plain pass decides otherwise
            if op is not None:
                op.body.append(inst)
                self._touch(inst, bound)
                return
        self._emit_local(inst)

    def _gate(self, piece: Instruction, piece_index: int) -> None:
        qubits = piece.qubits
        nodes = {self.where[q] for q in qubits}
        if len(nodes) == 1:
            self._local_gate(piece)
            return
        self._place(piece, piece_index, self._options(piece))

    def _options(self, inst: Instruction) -> list[tuple[int, str, str]]:
        """(shared qubit q, node it is shared into, basis) for each burst that can run ``inst``:
        every other qubit sits on that node, and ``inst`` is block-diagonal in q ("z"), or (with
        merging and embedding) H-embeddable in q ("x", :func:`x_embedded`). Z options first."""
        options, embedded = [], []
        for q in inst.qubits:
            nodes = {self.where[o] for o in inst.qubits if o != q}
            if len(nodes) != 1 or self.where[q] in nodes:
                continue
            node = next(iter(nodes))
            if diagonal_in(inst, q):
                options.append((q, node, "z"))
            elif self.merge and self.embed and x_embedded(inst, q) is not None:
                embedded.append((q, node, "x"))
        return options + embedded

    def _place(self, piece: Instruction, piece_index: int,
               options: list[tuple[int, str, str]]) -> None:
        """Run a cross-node gate: join an open burst, teleport, or open a burst."""
        if self.merge:
            bound, plain = self._bound(piece)
            for key in options:
                position = self.open.get(key)
                if position is not None and position >= bound:
                    if position < plain:
                        self.embedded = True     # the plain pass could not join here
                    self._join(key, piece)
                    return
        if self.teledata and self._try_teleport(piece, piece_index, options):
            return
        # a new burst: the orientation with the most gates left to share its EPR pair (ties:
        # the first, so a plain burst unless the embedded one serves strictly more)
        if len(options) > 1 and len(piece.qubits) == 2 and piece is self.flat[piece_index][1]:
            control, node, basis = max(
                options, key=lambda o: self._potential(o[0], o[1], piece_index, o[2]))
        else:
            control, node, basis = options[0]
        self._open_burst(control, node, piece, basis)

    def _try_teleport(self, piece: Instruction, piece_index: int, options) -> bool:
        best = None
        if len(piece.qubits) == 2:
            moves = [(q, self.where[piece.qubits[1 - j]]) for j, q in enumerate(piece.qubits)]
        else:   # a whole gate: its lone qubit joins the others
            moves = [(q, node) for q, node, _ in options]
        for q, there in moves:
            home = self.where[q]
            if not self._free(there):
                continue
            stay = self._window_cost(q, home, piece_index)
            move = self.dist(home, there) + self._window_cost(q, there, piece_index)
            if move < stay and (best is None or stay - move > best[0]):
                best = (stay - move, q, there)
        if best is None:
            return False
        _, q, there = best
        self._teleport(q, there)
        self._local_gate(piece)
        return True

    def _remote_conditioned(self, inst: Instruction) -> None:
        """A classically conditioned gate across nodes: gather its qubits on one node by
        teleporting, run it there (bursts hold unconditioned gates only)."""
        target = max({self.where[q] for q in inst.qubits},
                     key=lambda x: sum(self.where[q] == x for q in inst.qubits))
        for q in inst.qubits:
            if self.where[q] != target:
                if not self._free(target):
                    raise DistributeError(
                        f"'{inst.name}' on qubits {list(inst.qubits)} is classically conditioned "
                        f"and spans nodes; teleporting it together needs a free data qubit on "
                        f"{target!r}")
                self._teleport(q, target)
        self._emit_local(inst, hard=True)

    def _program(self) -> DistributedProgram:
        ops: list[Op] = []
        for op in self.out:
            if isinstance(op, _Burst):
                if op.basis == "x":
                    ops.append(LocalGate(Instruction("h", (op.control,))))
                ops.append(RemoteGate(op.control, op.node, tuple(op.body)))
                if op.basis == "x":
                    ops.append(LocalGate(Instruction("h", (op.control,))))
            else:
                ops.append(op)
        return DistributedProgram(self.circuit.num_qubits, self.circuit.num_clbits,
                                  self.placement, ops, name=self.circuit.name)


# ---- makespan ----------------------------------------------------------------------------------

class Timeline:
    """The as-soon-as-possible schedule of :func:`estimate_makespan` as it grows: when each
    logical qubit and clbit is next ready, where each qubit is, and when each link delivers its
    next EPR pair. Each op advances it in :meth:`Op.estimate
    <qsim_dist.network.program.Op.estimate>`, reading the node and link timing facts the runtime
    reads (``gate_time``, ``measure_time``, ``mean_generation_time``, ``latency``)."""

    def __init__(self, program: DistributedProgram, network: Network):
        self.network = network
        self.nodes = network.nodes
        self.ready = [0.0] * program.num_qubits
        self.clbit_ready = [0.0] * program.num_clbits
        self.where = list(program.placement)
        self._link_free: dict[tuple[str, str], float] = {}
        self._paths: dict[tuple[str, str], list[str]] = {}

    def epr(self, a: str, b: str) -> tuple[float, float]:
        """Take the next end-to-end pair between nodes ``a`` and ``b``: (time it is ready,
        one-way classical latency of the path). Each link delivers pairs one after another from
        time 0; a swapped path adds a Bell measurement at each intermediate node and the
        path's latency."""
        if (a, b) not in self._paths:
            self._paths[(a, b)] = self.network.path(a, b)
        hops = self._paths[(a, b)]
        t, latency = 0.0, 0.0
        for x, y in zip(hops, hops[1:]):
            link = self.network.link(x, y)
            key = (link.a, link.b)
            done = self._link_free.get(key, 0.0) + link.mean_generation_time
            self._link_free[key] = done
            t = max(t, done)
            latency += link.latency
        swaps = sum(self.nodes[x].gate_time + self.nodes[x].measure_time for x in hops[1:-1])
        if len(hops) > 2:
            t += swaps + latency
        return t, latency


def estimate_makespan(program: DistributedProgram, network: Network) -> float:
    """As-soon-as-possible estimate of the program's running time in seconds: each op advances a
    :class:`Timeline` by its :meth:`~qsim_dist.network.program.Op.estimate`.

    Each link delivers EPR pairs one after another from time 0, one per
    ``mean_generation_time`` (pairs may wait in communication qubits); a protocol starts when its
    qubits and pairs are ready. A swapped path adds a Bell measurement at each intermediate node
    and the classical latency of the path. Cat-entangle: CX + measurement at the control's node,
    latency, X correction; the body's gates one after another; cat-disentangle: H + measurement,
    latency back, Z correction. Teleport: CX, H, two measurements, latency, two corrections.
    Local gates take the node's ``gate_time`` (``measure_time`` for measure and reset).
    """
    timeline = Timeline(program, network)
    for op in program.ops:
        op.estimate(timeline)
        for q, node in op.moves().items():
            timeline.where[q] = node
    return max(timeline.ready + timeline.clbit_ready, default=0.0)


# ---- the entry points --------------------------------------------------------------------------

@dataclass
class Distribution:
    """What :func:`compile_distribution` found: the chosen program, its cost, and the baseline's."""

    program: DistributedProgram
    cost: Cost
    makespan: float
    baseline: DistributedProgram | None      # None when the baseline cannot run the circuit
    baseline_cost: Cost | None               # (a conditioned cross-node gate, no free qubit)
    baseline_makespan: float | None
    strategy: str                      # which candidate won
    compile_time: float                # seconds
    candidates: dict[str, int] = field(default_factory=dict)   # candidate -> EPR pairs

    @property
    def epr_ratio(self) -> float:
        """EPR pairs of the program over the baseline's (1.0 when the baseline needs none)."""
        base = self.baseline_cost.epr_pairs if self.baseline_cost is not None else 0
        return self.cost.epr_pairs / base if base else 1.0

    def summary(self) -> dict:
        return {"strategy": self.strategy, "compile_time_s": self.compile_time,
                "makespan_s": self.makespan, "baseline_makespan_s": self.baseline_makespan,
                "epr_ratio": self.epr_ratio, **self.cost.as_dict(),
                "baseline": (self.baseline_cost.as_dict() if self.baseline_cost is not None
                             else None),
                "candidates": dict(self.candidates)}


def baseline_program(circuit: Circuit, network: Network) -> DistributedProgram:
    """Qubits placed in order; every cross-node two-qubit gate (in controlled form) is its own
    TeleGate: one EPR pair per hop. Classically conditioned cross-node gates are teleported."""
    dist = _Distances(network)
    placement = in_order_placement(circuit.num_qubits, network)
    return _Scheduler(circuit, _units(circuit), network, dist, placement,
                      merge=False, teledata=False).run()


def compile_distribution(circuit: Circuit, network: Network, *,
                         placement: Sequence[str] | None = None, teledata: bool = True,
                         seed: int = 0, refine: bool = True, comm_limit: str = "op",
                         embed: bool = True) -> Distribution:
    """Compile ``circuit`` for ``network``, trying several placements (or only ``placement``
    when given) with and without TeleData, with and without the H-embedding and whole-gate
    bursts (only without when ``embed`` is False), and keep the program with the fewest EPR
    pairs (then the smallest depth); never more EPR pairs than :func:`baseline_program`."""
    start = time.perf_counter()
    n = circuit.num_qubits
    if n == 0:
        raise DistributeError("the circuit has no qubits")
    dist = _Distances(network)
    check_comm_qubits(network)
    units = _units(circuit)
    lookahead_data = _lookahead_data(units, n)
    if placement is not None:
        placement = tuple(placement)
        if len(placement) != n:
            raise DistributeError(f"placement names {len(placement)} nodes for {n} qubits")
        placements = {"given": placement}
    else:
        w = interaction_weights(units, n)
        placements = {"in-order": in_order_placement(n, network)}
        if len(network.compute_nodes) > 1:
            for packed in (False, True):
                name = "kl-packed" if packed else "kl-balanced"
                p = partition_placement(n, network, w, dist, packed=packed, seed=seed,
                                        refine=refine)
                if p not in placements.values():
                    placements[name] = p

    try:
        baseline: DistributedProgram | None = baseline_program(circuit, network)
    except DistributeError:  # e.g. a conditioned cross-node gate and no free data qubit
        baseline = None
    base_cost = baseline.cost(network) if baseline is not None else None
    best: tuple | None = None
    tried: dict[str, int] = {}
    errors: list[DistributeError] = []
    for name, p in placements.items():
        for tele in ((False, True) if teledata else (False,)):
            # with the H-embedding and whole-gate bursts, and without (the greedy pass may do
            # worse with more choices; a pass that never used them is not run again)
            for embedding in ((True, False) if embed else (False,)):
                plain = "" if embedding else "+noembed"
                label = name + ("+teledata" if tele else "") + plain
                scheduler = _Scheduler(circuit, units, network, dist, p, merge=True,
                                       teledata=tele, comm_limit=comm_limit, embed=embedding,
                                       lookahead_data=lookahead_data)
                try:
                    program = scheduler.run()
                except DistributeError as exc:
                    errors.append(exc)
                    continue
                cost = program.cost(network)
                tried[label] = cost.epr_pairs
                if cost.teleports == 0 and tele and tried.get(name + plain) == cost.epr_pairs:
                    del tried[label]
                elif best is None or (cost.epr_pairs, cost.depth) < best[0]:
                    best = ((cost.epr_pairs, cost.depth), label, program, cost)
                if not scheduler.embedded:
                    break
    if best is None:
        raise errors[0]
    _, label, program, cost = best
    if placement is None and base_cost is not None and cost.epr_pairs > base_cost.epr_pairs:
        label, program, cost = "baseline", baseline, base_cost
    return Distribution(program=program, cost=cost, makespan=estimate_makespan(program, network),
                        baseline=baseline, baseline_cost=base_cost,
                        baseline_makespan=(estimate_makespan(baseline, network)
                                           if baseline is not None else None),
                        strategy=label, compile_time=time.perf_counter() - start,
                        candidates=tried)


def check_comm_qubits(network: Network) -> None:
    """Every protocol holds one communication qubit at each end of its path and two at every
    node that swaps entanglement in between; raise :class:`DistributeError` when some shortest
    path between compute nodes needs more than a node has."""
    names = [node.name for node in network.compute_nodes]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            hops = network.path(a, b)
            for j, x in enumerate(hops):
                need = 1 if j in (0, len(hops) - 1) else 2
                if network.nodes[x].comm_qubits < need:
                    raise DistributeError(
                        f"node {x!r} has {network.nodes[x].comm_qubits} communication qubit(s) "
                        f"but the path {'-'.join(hops)} needs {need} there")


def distribute(circuit: Circuit, network: Network, *, placement: Sequence[str] | None = None,
               teledata: bool = True, seed: int = 0, comm_limit: str = "op", embed: bool = True
               ) -> DistributedProgram:
    """Place ``circuit`` on ``network`` and implement its cross-node gates with as few EPR pairs
    as this compiler finds (never more than the in-order, one-pair-per-gate baseline).

    Parameters
    ----------
    circuit:
        Any circuit of the IR: gates (rewritten into controlled form where they cross nodes),
        measurements, resets, barriers and classically conditioned gates.
    network:
        The machine; its compute nodes must hold ``circuit.num_qubits`` data qubits in all.
    placement:
        Optional fixed initial node per qubit (skips partitioning).
    teledata:
        Allow teleporting data qubits (TeleData) where a look-ahead finds it cheaper than
        TeleGate bursts; needs a free data qubit on the destination.
    seed:
        Seed of the partitioner's tie-breaking (results are deterministic for one seed).
    comm_limit:
        ``"op"`` (default): every protocol op holds one communication qubit per path end (two
        at swapping nodes) while it runs, as the runtime executes ops; gates of a burst may be
        moved backwards into it from far later in the circuit when they commute there.
        ``"live"``: also keep at most ``comm_qubits`` bursts *open for joining* at a node at
        once (least recently used closed first), as hardware would that runs each burst's body
        interleaved with the rest of the circuit instead of moving gates.
    embed:
        Also try the more general packings (default): a burst shared in the X basis between two
        H gates for runs of CX / CRX / CSX / RZX on a common target (and a CCX, RXX), gates
        moved back past ops they commute with in the X basis, and a gate on three or more
        qubits run whole in one burst when all its qubits but one sit on one node. The plain
        compilation is tried too; False keeps only the plain one.

    Returns
    -------
    DistributedProgram
        Valid for ``network`` (``program.validate(network)`` holds); ``program.cost(network)``
        gives EPR pairs, classical bits, remote gates and depth. :func:`compile_distribution`
        returns the same program with its cost, estimated makespan and the baseline's figures.
    """
    return compile_distribution(circuit, network, placement=placement, teledata=teledata,
                                seed=seed, comm_limit=comm_limit, embed=embed).program


def simple_network(kind: str, nodes: int, data_qubits: int, *, comm_qubits: int = 2,
                   fidelity: float = 1.0, attempt_time: float = 1e-6,
                   success_probability: float = 0.1, latency: float = 5e-6,
                   gate_time: float = 1e-7, measure_time: float = 1e-6) -> Network:
    """A network of ``nodes`` equal compute nodes ``N0, N1, ...`` joined as a ``"line"``, a
    ``"ring"`` or ``"all"``-to-all (for tests, benchmarks and examples)."""
    from .topology import network_from_dict

    names = [f"N{i}" for i in range(nodes)]
    if kind == "line":
        pairs = list(zip(names, names[1:]))
    elif kind == "ring":
        pairs = list(zip(names, names[1:])) + ([(names[-1], names[0])] if nodes > 2 else [])
    elif kind in ("all", "all-to-all"):
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    else:
        raise DistributeError(f"network kind must be line, ring or all, got {kind!r}")
    link = {"fidelity": fidelity, "attempt_time": attempt_time,
            "success_probability": success_probability, "latency": latency}
    data = {"nodes": {x: {"data_qubits": data_qubits, "comm_qubits": comm_qubits,
                          "gate_time": gate_time, "measure_time": measure_time} for x in names},
            "links": [{"between": [a, b], **link} for a, b in pairs]}
    return network_from_dict(data, name=f"{kind}{nodes}x{data_qubits}")


def to_qasm3(program: DistributedProgram, network: Network) -> str:
    """OpenQASM 3 text of the program lowered over ideal links by the network runtime
    (:func:`qsim_dist.network.lowering.lower_ideal`): every protocol step (EPR preparation,
    entanglement swaps, cat-entangle / cat-disentangle, teleports with their measurements and
    classically conditioned corrections) is an instruction. Logical qubit q starts on qubit q;
    communication qubits and teleport destinations follow; protocol clbits follow the source's."""
    from ..io.qasm import dumps
    from .lowering import lower_ideal

    return dumps(lower_ideal(program, network).circuit, version=3)
