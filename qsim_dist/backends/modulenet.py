"""modulenet: the state held as one tensor per QPU module, entanglement between modules as bonds.

Each module (a network node, or any group of qubits) owns one tensor with one axis per *live*
qubit of the module and one bond axis per module it is entangled with. A qubit that is not live
(never touched, or measured and not touched since) is a known basis value outside every tensor;
a gate on it brings it back. The bonds form a forest, one tree per group of entangled modules,
and each tree is kept in canonical form: every tensor but the tree's *centre* is an isometry
from its other axes onto the bond towards the centre (``parent``), as in MPS/TTN algorithms. So
the marginal of a qubit is read from its module's tensor alone once the centre is moved there
(an SVD per bond along the tree path), and a reduced density matrix or a Pauli expectation contracts only the
subtree that spans its qubits.

- A gate on the qubits of one module is one contraction with the module's tensor (the bond axes
  are spectators). A gate across modules is split into a matrix product operator, one factor per
  module (operator Schmidt decomposition: a CX has rank 2); the factor's virtual index is
  carried along the tree path between the modules (each bond on the path grows by it, the
  tensors in between pass it through), so the forest never closes a cycle; two trees are joined
  by a new bond.
- After a gate across modules, after every measurement and when a module is absorbed, the bonds
  concerned are compressed to their exact Schmidt rank (SVD, singular values below ``cutoff``
  times the norm dropped), and a bond of rank 1 is removed, splitting the tree: memory follows
  the real entanglement. ``max_bond`` truncates further (lossy); the weight it discards is
  summed in :attr:`ModuleNetState.discarded`, a bound on the fidelity lost.
- A measurement samples the exact marginal at the centre, projects, and removes the qubit's
  axis; a module left without live qubits is contracted into a neighbour.
- Copies share their (never modified in place) tensors, so shot branches that share a prefix
  share its memory.

The executor (shot branching, Pauli trajectories, noise, readout) is the shared one of
:mod:`qsim_dist.backends.base`: this module only holds and updates the state. The module of
each qubit comes from ``ModuleNetBackend(modules=...)`` (``qsim_dist.dqc`` passes the node of
every physical qubit of a lowered program); without it every qubit is its own module, which
makes the state a tree tensor network over qubits.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from .. import memory
from ..errors import BackendError
from .base import Backend
from .state import DTYPES, Capability, State

__all__ = ["ModuleNetBackend", "ModuleNetState", "DEFAULT_CUTOFF", "overlap_on", "Placement",
           "place_modules"]

DEFAULT_CUTOFF = 1e-12       # relative Schmidt-value tolerance of the exact compression
MAX_DEGREE = 3               # bonds of a module beyond which a new tree joins elsewhere
_GUARD_SIZE = 1 << 22        # tensors at least this large are checked against free memory

Leg = tuple  # ("q", qubit) or ("b", neighbour module)


def _bond(module: Hashable) -> Leg:
    return ("b", module)


def _qubit(q: int) -> Leg:
    return ("q", q)


class ModuleNetState(State):
    """A forest of module tensors over ``num_qubits`` qubits (see the module docstring).

    ``module_of[q]`` is the module of qubit q (any hashable labels).
    """

    capabilities = Capability(0)

    def __init__(self, num_qubits: int, module_of: Sequence[Hashable], dtype=np.complex128,
                 cutoff: float = DEFAULT_CUTOFF, max_bond: int | None = None,
                 place: "Placement | None" = None):
        self.num_qubits = num_qubits
        #: The MPI ranks that own the modules (None: this process holds every tensor).
        self.place = place
        self.module_of = tuple(module_of)
        self.dtype = np.dtype(dtype)
        self.cutoff = cutoff
        self.max_bond = max_bond
        self.tensors: dict[Hashable, np.ndarray] = {}   # module -> its tensor (never mutated)
        self.legs: dict[Hashable, tuple[Leg, ...]] = {}  # module -> the label of each axis
        self.parent: dict[Hashable, Hashable | None] = {}  # towards the centre; None: centre
        self.value = bytearray(num_qubits)     # the basis value of each qubit not in a tensor
        self.live = bytearray(num_qubits)      # 1 where the qubit is an axis of its module
        self.scalar = complex(1.0)             # what modules without axes left behind
        #: Weight discarded by lossy truncation (``max_bond``), summed over truncations: the
        #: fidelity lost is at most about twice it (1 - F <= 2 * discarded).
        self.discarded = 0.0
        self.largest_bond = 1

    # -- bookkeeping -------------------------------------------------------------------------
    def assign_modules(self, modules: Sequence[Hashable]) -> None:
        """Name the modules of qubits ``0 .. len(modules) - 1`` (a run that allocates qubits as
        it goes: node programs online); a live qubit keeps its module."""
        modules = tuple(modules)
        for q, m in enumerate(modules):
            if self.live[q] and self.module_of[q] != m:
                raise BackendError(f"modulenet: qubit {q} is live in module "
                                   f"{self.module_of[q]!r}, not {m!r}")
        self.module_of = modules + self.module_of[len(modules):]

    def copy(self) -> "ModuleNetState":
        other = ModuleNetState.__new__(ModuleNetState)
        other.__dict__.update(self.__dict__)
        other.tensors, other.legs, other.parent = dict(self.tensors), dict(self.legs), \
            dict(self.parent)
        other.value, other.live = bytearray(self.value), bytearray(self.live)
        return other

    def _set(self, m, tensor: np.ndarray, legs: Sequence[Leg]) -> None:
        if tensor.size >= _GUARD_SIZE:
            need = 3 * tensor.size * self.dtype.itemsize
            if self._on(m, lambda: need > memory.available_bytes()):
                raise BackendError(
                    f"modulenet: the tensor of module {m!r} needs {tensor.size} amplitudes "
                    f"(axes {tensor.shape}), more than the free memory allows: the modules are "
                    "too entangled for module tensors (pass max_bond= to truncate, lossy)")
        self.tensors[m] = tensor
        self.legs[m] = tuple(legs)

    def _drop(self, m) -> None:
        del self.tensors[m], self.legs[m], self.parent[m]

    def neighbours(self, m) -> list:
        """The modules bonded to module ``m``."""
        return [leg[1] for leg in self.legs.get(m, ()) if leg[0] == "b"]

    def bonds(self) -> dict[tuple, int]:
        """Every bond as (module, module) -> its dimension."""
        out = {}
        for m, legs in self.legs.items():
            for axis, leg in enumerate(legs):
                if leg[0] == "b" and (leg[1], m) not in out:
                    out[(m, leg[1])] = self.tensors[m].shape[axis]
        return out

    def nbytes(self) -> int:
        """Bytes of all the module tensors (over every rank: the same on each)."""
        return sum(t.size for t in self.tensors.values()) * self.dtype.itemsize

    def local_nbytes(self) -> int:
        """Bytes of the module tensors this process holds (its rank's modules)."""
        return sum(t.nbytes for t in self.tensors.values() if isinstance(t, np.ndarray))

    # -- modules on ranks: every rank takes the same steps; only the owner of a module computes
    # on its tensor (the others carry a _Ghost of its shape); what decides the next step is
    # broadcast from the owner, and a factor crosses a bond from one owner to the other.
    def _mine(self, m) -> bool:
        return self.place is None or self.place.owns(m)

    def _on(self, m, value: Callable[[], Any]) -> Any:
        """``value()`` computed by the owner of module ``m``, known to every rank."""
        if self.place is None:
            return value()
        return self.place.decide(m, value() if self.place.owns(m) else None)

    def _ship(self, x, src, dst):
        """The array ``x`` of module ``src``'s owner, handed to module ``dst``'s owner."""
        return x if self.place is None else self.place.ship(x, src, dst)

    def _svd(self, c, mat, drop: bool, lossy: bool):
        """SVD of module ``c``'s matrix ``mat`` and how many singular values to keep: all,
        or with ``drop`` those above the cutoff (and with ``lossy`` at most ``max_bond``, the
        discarded weight added to :attr:`discarded`)."""
        if self._mine(c):
            u, s, vh = np.linalg.svd(mat, full_matrices=False)
            keep, lost = len(s), 0.0
            if drop and keep > 1:
                norm = math.sqrt(float(s @ s))
                keep = max(1, int(np.count_nonzero(s > self.cutoff * norm)))
                if lossy and self.max_bond is not None and keep > self.max_bond:
                    lost = float(np.sum(s[self.max_bond:keep] ** 2) / norm ** 2)
                    keep = self.max_bond
        else:
            k = min(mat.shape)
            u, s, vh = _Ghost((mat.shape[0], k)), _Ghost((k,)), _Ghost((k, mat.shape[1]))
            keep = lost = None
        if self.place is not None:
            keep, lost = self.place.decide(c, (keep, lost))
        self.discarded += lost
        return u, s, vh, keep

    def _root(self, m):
        while self.parent[m] is not None:
            m = self.parent[m]
        return m

    def _path_up(self, m) -> list:
        """``m``, its parent, ... up to the centre of its tree."""
        path = [m]
        while self.parent[path[-1]] is not None:
            path.append(self.parent[path[-1]])
        return path

    def _attach(self, q: int) -> None:
        """Make qubit ``q`` an axis of its module's tensor (in its known basis value)."""
        m = self.module_of[q]
        e = np.zeros(2, dtype=self.dtype)
        e[self.value[q]] = 1
        if m in self.tensors:   # an outer product keeps an isometry an isometry
            self._set(m, _outer(self.tensors[m], e), self.legs[m] + (_qubit(q),))
        else:
            self._set(m, e, (_qubit(q),))
            self.parent[m] = None
        self.live[q] = 1

    # -- canonical form ------------------------------------------------------------------------
    def _orthogonalize(self, c, n) -> None:
        """Make ``c`` an isometry onto its bond to ``n``, the rest going into ``n``: an SVD
        (faster than numpy's QR on these small matrices), whose Schmidt values below the
        cutoff are dropped on the way when ``c`` is the centre (exact compression)."""
        t, legs = self.tensors[c], self.legs[c]
        a = legs.index(_bond(n))
        rest = t.shape[:a] + t.shape[a + 1:]
        u, s, vh, keep = self._svd(c, _to_end(t, a).reshape(-1, t.shape[a]),
                                   drop=self.parent[c] is None, lossy=False)
        self._set(c, _from_end(u[:, :keep].reshape(rest + (keep,)), a), legs)
        self._absorb_factor(n, c, s[:keep, None] * vh[:keep])

    def _step_centre(self, c, n) -> None:
        """Move the centre of a tree from ``c`` to its neighbour ``n`` (one SVD)."""
        self._orthogonalize(c, n)
        self.parent[c], self.parent[n] = n, None

    def _absorb_factor(self, n, c, r: np.ndarray) -> None:
        """Contract the matrix ``r`` (new bond x old bond) into ``n``'s bond axis to ``c``."""
        r = self._ship(r, c, n)
        t, legs = self.tensors[n], self.legs[n]
        b = legs.index(_bond(c))
        self._set(n, _from_start(_tdot(r, t, (1, b)), b), legs)

    def _move_centre(self, m) -> None:
        """Make ``m`` the centre of its tree (an SVD per bond of the path from the old centre)."""
        path = self._path_up(m)
        for k in range(len(path) - 1, 0, -1):
            self._step_centre(path[k], path[k - 1])

    def _compress_bond(self, c, n) -> tuple[int, int]:
        """SVD of the centre ``c`` across its bond to ``n``: keep the Schmidt rank (and at most
        ``max_bond``); a rank-1 bond is removed and ``n`` becomes the centre of its own tree.
        Returns (old dimension, new dimension; 0 when removed)."""
        t, legs = self.tensors[c], self.legs[c]
        a = legs.index(_bond(n))
        old = t.shape[a]
        rest = t.shape[:a] + t.shape[a + 1:]
        mat = _to_end(t, a).reshape(-1, old)
        if old == 1:
            u_s, vh, keep = mat, np.ones((1, 1), dtype=t.dtype), 1
        elif (self.max_bond is None or old <= self.max_bond) and \
                self._on(c, lambda: _clearly_full_rank(mat)):
            self.largest_bond = max(self.largest_bond, old)
            return old, old
        else:
            u, s, vh, keep = self._svd(c, mat, drop=True, lossy=True)
            if keep == old:
                self.largest_bond = max(self.largest_bond, old)
                return old, old
            u_s, vh = u[:, :keep] * s[:keep], vh[:keep]
        if keep > 1:
            self.largest_bond = max(self.largest_bond, keep)
            self._set(c, _from_end(u_s.reshape(rest + (keep,)), a), legs)
            self._absorb_factor(n, c, vh)
            return old, keep
        # rank 1: the tree splits between c and n
        self._set(c, u_s.reshape(rest), legs[:a] + legs[a + 1:])
        vh = self._ship(vh, c, n)
        tn, ln = self.tensors[n], self.legs[n]
        b = ln.index(_bond(c))
        self._set(n, _tdot(vh[0], tn, (0, b)), ln[:b] + ln[b + 1:])
        self.parent[n] = None
        return old, 0

    def _sweep(self, start, touched: dict | None) -> None:
        """Compress the bonds of the centre ``start`` and go on into the neighbours in
        ``touched`` and those whose bond lost rank (their own bonds may have too), depth first
        with the centre carried along; it ends back at ``start`` (a loop, not recursion: trees
        may be a thousand modules deep)."""
        # frames: [module, where the centre came from, neighbours still to look at]
        stack = [[start, None, self.neighbours(start)]]
        while stack:
            frame = stack[-1]
            c, came_from, todo = frame
            if not todo:
                stack.pop()
                if came_from is not None and stack and stack[-1][0] == came_from:
                    self._step_centre(c, came_from)
                continue
            n = todo.pop()
            if n == came_from:
                continue
            old, new = self._compress_bond(c, n)
            if new:
                self.largest_bond = max(self.largest_bond, new)
            # nothing to do beyond a leaf; go on where the gate passed or a rank fell
            bonds = len(self.legs[n]) - sum(leg[0] == "q" for leg in self.legs[n])
            if not (((touched is not None and n in touched) or new < old) and
                    bonds > (new > 0)):
                continue
            if new == 0:   # n is the centre of its own tree now: sweep it there
                stack.append([n, None, self.neighbours(n)])
            else:
                self._step_centre(c, n)
                stack.append([n, c, self.neighbours(n)])

    def _compress_move(self, c, n) -> int:
        """Compress the bond from the centre ``c`` to ``n`` (SVD: its Schmidt rank, at most
        ``max_bond``) and move the centre to ``n`` with it. Returns the new dimension, 0 when
        the bond had rank 1 and was removed (``n`` is then the centre of its own tree)."""
        t, legs = self.tensors[c], self.legs[c]
        a = legs.index(_bond(n))
        rest = t.shape[:a] + t.shape[a + 1:]
        u, s, vh, keep = self._svd(c, _to_end(t, a).reshape(-1, t.shape[a]), drop=True,
                                   lossy=True)
        if keep == 1:   # the tree splits: c keeps the norm's share s[0] u, n the direction
            self._set(c, (u[:, 0] * s[0]).reshape(rest), legs[:a] + legs[a + 1:])
            vh = self._ship(vh, c, n)
            tn, ln = self.tensors[n], self.legs[n]
            b = ln.index(_bond(c))
            self._set(n, _tdot(vh[0], tn, (0, b)), ln[:b] + ln[b + 1:])
            self.parent[n] = None
            return 0
        self._set(c, _from_end(u[:, :keep].reshape(rest + (keep,)), a), legs)
        self._absorb_factor(n, c, s[:keep, None] * vh[:keep])
        self.parent[c], self.parent[n] = n, None
        self.largest_bond = max(self.largest_bond, keep)
        return keep

    def _compress_touched(self, first, touched: dict) -> None:
        """After a unitary across modules: compress the bonds inside ``touched`` (a subtree
        holding the centre ``first``; a unitary on one side of any other bond leaves its
        Schmidt values as they were), depth first, the centre moving with the compression and
        going back only where a branch is left to do."""
        stack = [[first, None, [n for n in self.neighbours(first) if n in touched]]]
        while stack:
            c, back, todo = stack[-1]
            if not todo:
                stack.pop()
                if back is not None and any(frame[2] for frame in stack):
                    self._step_centre(c, back)
                continue
            n = todo.pop()
            beyond = [x for x in self.neighbours(n) if x in touched and x != c]
            if not beyond:   # a leaf of the subtree: compress in place (often a Gram check)
                self._compress_bond(c, n)
                continue
            kept = self._compress_move(c, n)
            stack.append([n, c if kept else None, beyond])

    def _absorb_empty(self, m) -> None:
        """Module ``m`` (the centre) has no qubit axis left: contract it into a neighbour (the
        smallest), or into the scalar when it has none."""
        nbrs = self.neighbours(m)
        t = self.tensors[m]
        if not nbrs:
            self.scalar *= self._on(m, lambda: complex(t))
            self._drop(m)
            return
        n = min(nbrs, key=lambda x: self.tensors[x].size)
        t = self._ship(t, m, n)   # m is dissolved into n, on n's rank
        tn, ln = self.tensors[n], self.legs[n]
        lm = self.legs[m]
        merged = _tdot(tn, t, (ln.index(_bond(m)), lm.index(_bond(n))))
        legs = [leg for leg in ln if leg != _bond(m)] + [leg for leg in lm if leg != _bond(n)]
        self._set(n, merged, legs)
        for o in nbrs:
            if o != n:   # o now bonds to n, and is an isometry towards it
                lo = self.legs[o]
                self.legs[o] = tuple(_bond(n) if leg == _bond(m) else leg for leg in lo)
                self.parent[o] = n
        self.parent[n] = None
        self._drop(m)

    # -- gates ---------------------------------------------------------------------------------
    def prepare(self, gates) -> list["_Gate"]:
        return [_Gate(np.asarray(inst.matrix(), dtype=self.dtype), tuple(inst.qubits))
                for inst in gates]

    def execute(self, program, progress=None) -> None:
        for gate in program:
            self._apply(gate.matrix, gate.qubits, True, gate)
            if progress:
                progress(1)

    def apply_gate(self, matrix: np.ndarray, qubits: Sequence[int]) -> None:
        matrix = np.asarray(matrix, dtype=self.dtype)
        self._apply(matrix, tuple(qubits), _is_unitary(matrix), None)

    def _apply(self, matrix: np.ndarray, qubits: tuple, unitary: bool, gate) -> None:
        """``matrix`` on ``qubits``; ``gate`` (a prepared :class:`_Gate`, or None) caches the
        operator's split over modules."""
        if len(qubits) == 1 and not self.live[qubits[0]] and self._basis_move(matrix, qubits[0]):
            return
        for q in qubits:
            if not self.live[q]:
                self._attach(q)
        module_of = self.module_of
        m = module_of[qubits[0]]
        if all(module_of[q] == m for q in qubits):
            if not unitary:   # a Kraus operator: only the centre may change the norm
                self._move_centre(m)
            t, legs = _apply_to_axes(self.tensors[m], self.legs[m], matrix, qubits, self.dtype)
            self._set(m, t, legs)
            return
        if gate is not None and gate.split is not None:
            modules, groups, factors = gate.split
        else:
            modules = list(dict.fromkeys(module_of[q] for q in qubits))
            groups = [[q for q in qubits if module_of[q] == x] for x in modules]
            factors = _mpo(matrix, list(qubits), groups)
            if gate is not None:
                gate.split = (modules, groups, factors)
        self._apply_across(modules, groups, factors)

    def _basis_move(self, matrix: np.ndarray, q: int) -> bool:
        """A one-qubit gate that maps the known basis value of ``q`` to a basis value (X, Z, a
        Pauli error, a phase): update the value and the scalar, no tensor needed."""
        column = matrix[:, self.value[q]]
        big = np.flatnonzero(np.abs(column) > 1e-12)
        if len(big) != 1 or abs(abs(column[big[0]]) - 1.0) > 1e-12:
            return False
        self.scalar *= complex(column[big[0]])
        self.value[q] = int(big[0])
        return True

    def _apply_across(self, modules: list, groups: list[list[int]], factors: list) -> None:
        """An operator on the qubits ``groups[i]`` of ``modules[i]``, as the matrix product
        operator ``factors`` whose virtual indices travel along the tree paths (see the module
        docstring)."""
        first = modules[0]
        for m in modules[1:]:   # one tree: join the others to it by a dimension-1 bond
            if self._root(m) != self._root(first):
                self._move_centre(m)
                at = self._join_point(first)
                self._set(m, self.tensors[m][..., None], self.legs[m] + (_bond(at),))
                self._set(at, self.tensors[at][..., None], self.legs[at] + (_bond(m),))
                self.parent[m] = at
        self._move_centre(first)
        touched = {first: None}   # ordered (a dict): every rank sorts it alike
        here = first
        for k, (m, group, w) in enumerate(zip(modules, groups, factors)):
            if k:   # carry the virtual index of the last factor from ``here`` to ``m``
                path = self._tree_path(here, m)
                for a, b in zip(path, path[1:]):
                    self._pass_index(a, b)
                    touched[b] = None
                here = m
            t, legs = self._apply_factor(m, w, group, has_left=k > 0)
            self._set(m, t, legs)
        # canonical again: every touched tensor an isometry towards ``first``, deepest first
        depth = {m: len(self._path_up(m)) for m in touched}
        for m in sorted(touched, key=depth.get, reverse=True):
            if m != first:
                self._orthogonalize(m, self.parent[m])
        self._compress_touched(first, touched)

    def _join_point(self, m):
        """Where a new tree joins the tree of ``m``: ``m`` itself, or while ``m`` has
        :data:`MAX_DEGREE` bonds the nearest module that has fewer. One bond per partner would
        make a hub's tensor exponential in its partners (a GHZ state made from the centre of a
        star: 2^K amplitudes at the centre); a bounded degree keeps every tensor small, and
        the gates' indices travel the few extra steps along the tree."""
        seen, queue = {m}, [m]
        for x in queue:
            nbrs = self.neighbours(x)
            if len(nbrs) < MAX_DEGREE:
                return x
            for y in nbrs:
                if y not in seen:
                    seen.add(y)
                    queue.append(y)
        return m

    def _tree_path(self, a, b) -> list:
        """The modules from ``a`` to ``b`` along the tree."""
        up_a, up_b = self._path_up(a), self._path_up(b)
        on_a = {m: i for i, m in enumerate(up_a)}
        j = next(j for j, m in enumerate(up_b) if m in on_a)
        return up_a[:on_a[up_b[j]] + 1] + up_b[:j][::-1]

    def _pass_index(self, a, b) -> None:
        """Carry the virtual index (the last axis of ``a``'s tensor) over the bond a-b into
        ``b``'s tensor (its new last axis): the bond's dimension grows by the index's."""
        ta, la = self.tensors[a], self.legs[a]
        r = ta.shape[-1]
        ia = la.index(_bond(b))
        ta = _move_axis(ta, ta.ndim - 1, ia + 1)   # (bond, virtual) adjacent: d * r + v
        shape = ta.shape[:ia] + (ta.shape[ia] * r,) + ta.shape[ia + 2:]
        self._set(a, ta.reshape(shape), la[:-1] if la[-1] == ("v",) else la)
        tb, lb = self.tensors[b], self.legs[b]
        ib = lb.index(_bond(a))
        tb = _outer(tb, np.eye(r, dtype=self.dtype))   # (..., v_in, v_out)
        tb = _move_axis(tb, tb.ndim - 2, ib + 1)
        shape = tb.shape[:ib] + (tb.shape[ib] * r,) + tb.shape[ib + 2:]
        self._set(b, tb.reshape(shape), lb + (("v",),))

    def _apply_factor(self, m, w: np.ndarray, group: list[int], has_left: bool):
        """Apply the MPO factor ``w`` (axes: [left], out bits, in bits, [right]) to module
        ``m``; its left index contracts the virtual axis (last) of the tensor, its right
        index becomes the tensor's new last axis."""
        t, legs = self.tensors[m], list(self.legs[m])
        k = len(group)
        axes_in = [legs.index(_qubit(q)) for q in reversed(group)]   # highest bit first
        w_in = list(range(int(has_left) + k, int(has_left) + 2 * k))
        t_axes = axes_in + ([len(legs) - 1] if has_left else [])
        w_axes = w_in + ([0] if has_left else [])
        out = _tdot(w, t, (w_axes, t_axes))
        # out axes: out bits, [right], then t's remaining axes in order
        has_right = w.ndim - int(has_left) - 2 * k == 1
        remaining = [i for i in range(len(legs)) if i not in t_axes]
        new_legs = [_qubit(q) for q in reversed(group)] + ([("v",)] if has_right else []) + \
            [legs[i] for i in remaining]
        # back to the tensor's own order: its qubits where they were, the virtual axis last
        target = [leg for leg in legs if leg != ("v",)] + ([("v",)] if has_right else [])
        perm = [new_legs.index(leg) for leg in target]
        return out.transpose(perm), target

    # -- measurement ---------------------------------------------------------------------------
    def probabilities(self, qubits: Sequence[int] | None = None) -> np.ndarray:
        if qubits is None:
            qubits = range(self.num_qubits)
        qubits = list(qubits)
        if len(qubits) == 1:
            return np.array([1.0 - (p1 := self._p1(qubits[0])), p1])
        return np.real(np.diagonal(self.reduced_density_matrix(qubits))).astype(np.float64)

    def _p1(self, q: int) -> float:
        if not self.live[q]:
            return float(self.value[q])
        m = self.module_of[q]
        self._move_centre(m)
        t = self.tensors[m]
        a = self.legs[m].index(_qubit(q))

        def p1() -> float:
            w = np.abs(_to_end(t, a).reshape(-1, 2)) ** 2
            total = float(w.sum())
            return float(w[:, 1].sum()) / total if total > 0 else 0.0
        return self._on(m, p1)

    def collapse(self, qubit: int, outcome: int, probability: float) -> None:
        if not self.live[qubit]:
            self.value[qubit] = outcome
            return
        m = self.module_of[qubit]
        self._move_centre(m)
        t, legs = self.tensors[m], self.legs[m]
        a = legs.index(_qubit(qubit))
        kept = t[(slice(None),) * a + (outcome,)] / np.sqrt(probability)
        self._set(m, kept.astype(self.dtype, copy=False), legs[:a] + legs[a + 1:])
        self.live[qubit], self.value[qubit] = 0, outcome
        if not any(leg[0] == "q" for leg in self.legs[m]):
            nbrs = self.neighbours(m)
            self._absorb_empty(m)
            if not nbrs:
                return
            m = next(n for n in nbrs if n in self.tensors and self.parent[n] is None)
        self._sweep(m, None)

    def flip(self, qubit: int) -> None:
        self.apply_gate(np.array([[0, 1], [1, 0]], dtype=self.dtype), (qubit,))

    def sample(self, qubits: Sequence[int], draws: np.ndarray) -> np.ndarray:
        """Joint outcomes by conditional sampling, highest qubit first (the order of the dense
        inverse transform): each qubit's exact marginal at its module, the draws split and
        rescaled at every qubit, a copy of the state per distinct prefix of outcomes."""
        order = sorted(qubits, reverse=True)
        wide = bool(order) and order[0] > 62
        u = np.array(draws, dtype=np.float64)
        out = np.zeros(len(u), dtype=object if wide else np.int64)
        stack = [(self.copy(), 0, 0, len(u), 0)]
        while stack:
            st, i, lo, hi, value = stack.pop()
            while i < len(order) and lo < hi:
                q = order[i]
                i += 1
                p1 = min(max(st._p1(q), 0.0), 1.0)
                p0 = 1.0 - p1
                cut = lo + int(np.searchsorted(u[lo:hi], p0, side="left"))
                if i == len(order):   # the last qubit: no state is needed after it
                    out[cut:hi] = value | (1 << q)
                    hi = cut
                    break
                if lo < cut < hi:
                    other = st.copy()
                    other.collapse(q, 1, p1)
                    u[cut:hi] = (u[cut:hi] - p0) / p1
                    stack.append((other, i, cut, hi, value | (1 << q)))
                    st.collapse(q, 0, p0)
                    u[lo:cut] /= p0
                    hi = cut
                elif cut == hi:
                    st.collapse(q, 0, p0)
                    u[lo:hi] /= p0
                else:
                    st.collapse(q, 1, p1)
                    u[lo:hi] = (u[lo:hi] - p0) / p1
                    value |= 1 << q
            out[lo:hi] = value
        return out

    # -- readout on the tensors ----------------------------------------------------------------
    def _spanning(self, modules: Sequence) -> tuple[Any, dict]:
        """The centre (moved into ``modules``) and the smallest subtree holding ``modules``
        (all in one tree). Ordered containers, not sets: a set of strings iterates in another
        order in every process, and the ranks must take the same steps."""
        first = modules[0]
        self._move_centre(first)
        span: dict = {}
        for m in modules:
            span.update(dict.fromkeys(self._path_up(m)))
        return first, span

    def _double_layer(self, ops: dict[int, np.ndarray], open_qubits: Sequence[int]
                      ) -> np.ndarray:
        """<psi| (prod of ops) |psi> over one tree, with ``open_qubits`` left open: a tensor
        with a ket and a bra axis per open qubit, in the order (kets..., bras...), open
        qubits in the given order. Every qubit named is live and in the same tree."""
        modules = list(dict.fromkeys(self.module_of[q] for q in list(ops) + list(open_qubits)))
        centre, span = self._spanning(modules)
        # post-order: children before parents; each contributes E with ket/bra bond pairs
        depth = {m: len(self._path_up(m)) for m in span}
        acc: dict = {}   # module -> (tensor, labels) of its contracted subtree
        for m in sorted(span, key=depth.get, reverse=True):
            t, legs = self.tensors[m], list(self.legs[m])
            ket = t
            for q, op in ops.items():
                if self.module_of[q] == m:
                    ket, legs_after = _apply_to_axes(ket, legs, op, [q], self.dtype)
                    assert legs_after == tuple(legs)
            # contract ket with conj(bra): physical axes not open, bonds outside span traced
            labels_ket, labels_bra = [], []
            sum_pairs = []
            for i, leg in enumerate(legs):
                if (leg[0] == "q" and leg[1] not in open_qubits) or \
                        (leg[0] == "b" and leg[1] not in span):
                    sum_pairs.append(i)
            e = _tdot(ket, t.conj(), (sum_pairs, sum_pairs))
            kept = [legs[i] for i in range(len(legs)) if i not in sum_pairs]
            labels = [("k",) + leg for leg in kept] + [("r",) + leg for leg in kept]
            for child in [leg[1] for leg in kept if leg[0] == "b"]:
                if child == self.parent[m] or child not in acc:
                    continue
                ct, cl = acc.pop(child)
                ct = self._ship(ct, child, m)
                # the child's pair of bonds to m meets m's pair of bonds to the child
                ax_e = [labels.index(("k", "b", child)), labels.index(("r", "b", child))]
                ax_c = [cl.index(("k", "b", m)), cl.index(("r", "b", m))]
                e = _tdot(e, ct, (ax_e, ax_c))
                labels = [lab for i, lab in enumerate(labels) if i not in ax_e] + \
                    [lab for i, lab in enumerate(cl) if i not in ax_c]
            acc[m] = (e, labels)
        e, labels = acc[centre]
        order = [("k", "q", q) for q in open_qubits] + [("r", "q", q) for q in open_qubits]
        e = e.transpose([labels.index(lab) for lab in order]) if order else e
        return self._on(centre, lambda: e)   # a few open qubits: small

    def _trees_of(self, qubits) -> dict:
        """Live ``qubits`` grouped by the centre of their tree."""
        out: dict = {}
        for q in qubits:
            out.setdefault(self._root(self.module_of[q]), []).append(q)
        return out

    def reduced_density_matrix(self, qubits: Sequence[int]) -> np.ndarray:
        qubits = list(qubits)
        k = len(qubits)
        rho = np.ones((), dtype=np.complex128)
        order: list[int] = []   # the qubit of each ket axis of rho so far
        for q in qubits:
            if not self.live[q]:
                p = np.zeros((2, 2), dtype=np.complex128)
                p[self.value[q], self.value[q]] = 1
                rho = _kron_axes(rho, p, 1)
                order.append(q)
        for group in self._trees_of([q for q in qubits if self.live[q]]).values():
            part = self._double_layer({}, group).astype(np.complex128)
            part = part / np.trace(part.reshape(1 << len(group), -1))
            rho = _kron_axes(rho, part, len(group))
            order += group
        # rho axes: kets in ``order`` then bras; rho's row bit j must be qubits[j]
        pos = [order.index(q) for q in reversed(qubits)]
        rho = np.transpose(rho, pos + [k + p for p in pos]) if k else rho
        return rho.reshape(1 << k, 1 << k)

    def pauli_expectation(self, x_mask: int, z_mask: int) -> complex:
        value = complex(1.0)
        live: dict[int, np.ndarray] = {}
        mask, q = x_mask | z_mask, 0
        while mask >> q:
            if (mask >> q) & 1:
                x, z = (x_mask >> q) & 1, (z_mask >> q) & 1
                op = _PAULIS[x + 2 * z]   # Y where both are set (qsim_dist.observables)
                if self.live[q]:
                    live[q] = op
                else:
                    value *= op[self.value[q], self.value[q]]
            q += 1
        if value == 0:
            return 0j
        for group in self._trees_of(live).values():
            ops = {q: live[q] for q in group}
            num = complex(self._double_layer(ops, []))
            root = self._root(self.module_of[group[0]])
            centre = self.tensors[root]
            value *= num / self._on(root, lambda: float(np.vdot(centre, centre).real))
        return value

    def statevector(self) -> np.ndarray:
        """The whole state, contracted (a check for small states; refused beyond 30 qubits)."""
        if self.num_qubits > 30:
            raise BackendError(f"modulenet: a {self.num_qubits}-qubit state is not expanded "
                               "into one statevector")
        return self.vector_of(range(self.num_qubits)).astype(self.dtype)

    def vector_of(self, qubits: Sequence[int]) -> np.ndarray | None:
        """The state of ``qubits`` as one vector (bit k = ``qubits[k]``, complex128) when
        every other qubit is a known basis value (so that their state is pure), else None.
        Contracts only the trees that hold them: 2^len(qubits) amplitudes."""
        qubits = list(qubits)
        wanted = set(qubits)
        if len(wanted) < self.num_qubits and \
                any(self.live[q] for q in range(self.num_qubits) if q not in wanted):
            return None
        psi = np.ones((), dtype=np.complex128) * self.scalar
        order: list[int] = []
        for q in qubits:
            if not self.live[q]:
                psi = np.multiply.outer(psi, np.eye(2)[self.value[q]])
                order.append(q)
        for centre in dict.fromkeys(self._root(m) for m in self.tensors):
            t, legs = _contract_tree(self, centre)
            psi = np.multiply.outer(psi, t)
            order += [leg[1] for leg in legs]
        k = len(qubits)
        # axis a of the result is bit k-1-a, i.e. qubits[k-1-a]
        perm = [order.index(qubits[k - 1 - a]) for a in range(k)]
        return np.transpose(psi, perm).reshape(-1)

    def overlap(self, other: "State") -> complex:
        if not isinstance(other, ModuleNetState):
            return super().overlap(other)
        qubits = list(range(self.num_qubits))
        return overlap_on(self, qubits, other, qubits)


class _Gate:
    """A prepared gate: its matrix, qubits, and (once computed) its split over modules."""

    __slots__ = ("matrix", "qubits", "split")

    def __init__(self, matrix: np.ndarray, qubits: tuple):
        self.matrix, self.qubits, self.split = matrix, qubits, None


def _contract_tree(state: ModuleNetState, centre) -> tuple[np.ndarray, list[Leg]]:
    """One tree contracted into one tensor over its live qubits (a check for small states;
    on MPI ranks the tree's tensors are sent to the centre's rank, and the result to all)."""
    t, legs = state.tensors[centre], list(state.legs[centre])
    todo = [(n, centre) for n in state.neighbours(centre)]
    while todo:
        n, via = todo.pop()
        tn, ln = state._ship(state.tensors[n], n, centre), list(state.legs[n])
        a, b = legs.index(_bond(n)), ln.index(_bond(via))
        t = _tdot(t, tn, (a, b))
        legs = legs[:a] + legs[a + 1:] + ln[:b] + ln[b + 1:]
        todo += [(o, n) for o in state.neighbours(n) if o != via]
    return state._on(centre, lambda: t), legs


def overlap_on(a: ModuleNetState, a_qubits: Sequence[int], b: ModuleNetState,
               b_qubits: Sequence[int]) -> complex:
    """<a|b> over the paired qubits ``a_qubits[k]`` <-> ``b_qubits[k]``, contracted as one
    network of both states' tensors (greedily, smallest result first): no state is expanded.
    Every qubit outside the pairs must be a known basis value in its state (not entangled with
    the paired ones); those are left out. A ValueError otherwise. On MPI ranks the tensors
    are gathered on rank 0, which contracts them, and the value is sent to every rank."""
    place = a.place or b.place
    tensors = {tag: st.place.gather(st.tensors) if st.place is not None else st.tensors
               for tag, st in (("a", a), ("b", b))}
    nodes: dict[Any, tuple[np.ndarray, list]] = {}
    for tag, st, qs in (("a", a, a_qubits), ("b", b, b_qubits)):
        pair_of = {q: k for k, q in enumerate(qs)}
        for m, t in tensors[tag].items():
            labels = []
            for leg in st.legs[m]:
                if leg[0] == "q":
                    if leg[1] not in pair_of:
                        raise ValueError(f"overlap: qubit {leg[1]} is live but not paired")
                    labels.append(("x", pair_of[leg[1]]))
                else:
                    labels.append((tag, frozenset((m, leg[1]))))
            nodes[(tag, m)] = (t.conj() if tag == "a" else t, labels)
        for q, k in pair_of.items():
            if not st.live[q]:
                e = np.zeros(2, dtype=np.complex128)
                e[st.value[q]] = 1
                nodes[(tag, "known", q)] = (e, [("x", k)])
    scalar = np.conj(a.scalar) * b.scalar
    if place is None:
        return complex(scalar * _contract_network(nodes))
    value = complex(scalar * _contract_network(nodes)) if place.comm.rank == 0 else None
    return place.comm.bcast(value, root=0)


def _contract_network(nodes: dict) -> complex:
    """The value of a closed tensor network (every label on exactly two tensors), contracted
    pair by pair, the pair with the smallest result first."""
    nodes = dict(nodes)
    where: dict = {}
    for key, (_, labels) in nodes.items():
        for lab in labels:
            where.setdefault(lab, []).append(key)
    value = complex(1.0)

    def size_after(u, v) -> int:
        tu, lu = nodes[u]
        tv, lv = nodes[v]
        shared = set(lu) & set(lv)
        s = 1
        for t, labels in ((tu, lu), (tv, lv)):
            for dim, lab in zip(t.shape, labels):
                if lab not in shared:
                    s *= dim
        return s

    heap = []
    tie = itertools.count()   # heap entries never compare their keys
    for lab, keys in where.items():
        if len(keys) == 2:
            u, v = keys
            heapq.heappush(heap, (size_after(u, v), next(tie), u, v))
    counter = 0
    while heap:
        _, _, u, v = heapq.heappop(heap)
        if u not in nodes or v not in nodes:
            continue
        tu, lu = nodes.pop(u)
        tv, lv = nodes.pop(v)
        shared = [lab for lab in lu if lab in lv]
        t = _tdot(tu, tv, ([lu.index(x) for x in shared],
                                       [lv.index(x) for x in shared]))
        labels = [x for x in lu if x not in shared] + [x for x in lv if x not in shared]
        counter += 1
        key = ("merged", counter)
        nodes[key] = (t, labels)
        for lab in labels:
            keys = [k for k in where[lab] if k not in (u, v)] + [key]
            where[lab] = keys
            if len(keys) == 2:
                other = keys[0]
                heapq.heappush(heap, (size_after(key, other), next(tie), key, other))
    for t, labels in nodes.values():   # disconnected parts: scalars
        if labels:
            raise ValueError("overlap: the network did not close (unpaired labels)")
        value *= complex(t)
    return value


_PAULIS = (np.eye(2), np.array([[0, 1], [1, 0]]), np.diag([1, -1]),
           np.array([[0, -1j], [1j, 0]]))


def _kron_axes(rho: np.ndarray, part: np.ndarray, k: int) -> np.ndarray:
    """``rho`` (kets..., bras...) tensored with ``part`` of ``k`` kets and ``k`` bras:
    (kets of both..., bras of both...)."""
    n = rho.ndim // 2
    part = part.reshape((2,) * (2 * k))
    out = np.multiply.outer(rho, part)   # rho kets, rho bras, part kets, part bras
    perm = list(range(n)) + list(range(2 * n, 2 * n + k)) + list(range(n, 2 * n)) + \
        list(range(2 * n + k, 2 * n + 2 * k))
    return np.transpose(out, perm)


def _is_unitary(matrix: np.ndarray) -> bool:
    m = matrix.conj().T @ matrix
    m[np.diag_indices_from(m)] -= 1
    return float(np.abs(m).max()) < 1e-10


def _tdot(a: np.ndarray, b: np.ndarray, axes) -> np.ndarray:
    """np.tensordot(a, b, axes=(axes_a, axes_b)) without its argument checks (the module's
    tensors are small, so the checks cost more than the product)."""
    axes_a, axes_b = axes
    if isinstance(axes_a, int):
        axes_a, axes_b = (axes_a,), (axes_b,)
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [i for i in range(b.ndim) if i not in axes_b]
    k = 1
    for i in axes_a:
        k *= a.shape[i]
    am = a.transpose(free_a + list(axes_a)).reshape(-1, k)
    bm = b.transpose(list(axes_b) + free_b).reshape(k, -1)
    return (am @ bm).reshape([a.shape[i] for i in free_a] + [b.shape[i] for i in free_b])


def _outer(a, b: np.ndarray):
    """The outer product of a tensor (or its ghost) with a small array."""
    if isinstance(a, _Ghost):
        return _Ghost(a.shape + b.shape)
    return np.multiply.outer(a, b)


def _move_axis(t, src: int, dst: int):
    """``t`` with axis ``src`` moved to position ``dst`` (np.moveaxis, ghosts included)."""
    order = [i for i in range(t.ndim) if i != src]
    order.insert(dst, src)
    return t.transpose(order)


class _Ghost:
    """The shape of a module tensor that another MPI rank holds: every rank takes the same
    steps on the tree, and a ghost follows the shape of each step (transposes, reshapes,
    products, slices) without amplitudes, so that the ranks agree on every dimension."""

    __slots__ = ("shape",)
    __array_ufunc__ = None   # ndarray @ ghost and ndarray * ghost come here, not to numpy
    nbytes = 0               # it holds nothing here

    def __init__(self, shape):
        self.shape = tuple(int(d) for d in shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def transpose(self, *order):
        order = order[0] if len(order) == 1 and not isinstance(order[0], int) else order
        return _Ghost([self.shape[i] for i in order] if order else self.shape[::-1])

    def reshape(self, *shape):
        shape = list(shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)
        if -1 in shape:
            known = math.prod(d for d in shape if d != -1)
            shape[shape.index(-1)] = self.size // known if known else 0
        return _Ghost(shape)

    def __getitem__(self, index):
        dummy = np.lib.stride_tricks.as_strided(np.zeros(1), self.shape, (0,) * self.ndim)
        return _Ghost(dummy[index].shape)

    def _broadcast(self, other):
        return _Ghost(np.broadcast_shapes(self.shape, np.shape(other) if not
                                          isinstance(other, _Ghost) else other.shape))

    __mul__ = __rmul__ = __truediv__ = _broadcast

    def __matmul__(self, other):
        return _Ghost(self.shape[:-1] + other.shape[1:])

    def __rmatmul__(self, other):
        return _Ghost(other.shape[:-1] + self.shape[1:])

    def conj(self):
        return self

    def astype(self, *args, **kwargs):
        return self


class Placement:
    """Which MPI rank owns each module, and the messages between owners (through a
    :class:`qsim_dist.comm.Comm`): a decision broadcast from a module's owner, an array sent
    from one module's owner to another's, the tensors gathered on rank 0 (overlaps)."""

    def __init__(self, comm, owner: dict):
        self.comm, self.owner, self.rank = comm, dict(owner), comm.rank

    def owns(self, m) -> bool:
        return self.owner[m] == self.rank

    def decide(self, m, value):
        return self.comm.bcast(value, root=self.owner[m])

    def ship(self, x, src, dst):
        a, b = self.owner[src], self.owner[dst]
        if a == b:
            return x
        if self.rank == a:
            self.comm.send(x, b)
            return _Ghost(x.shape)
        if self.rank == b:
            return self.comm.recv(a)
        return x

    def gather(self, tensors: dict) -> dict:
        """Every module's tensor on rank 0 (ghosts elsewhere), in ``tensors``' order."""
        parts = self.comm.gather({m: t for m, t in tensors.items() if self.owns(m)})
        if parts is None:
            return tensors
        held = {m: t for part in parts for m, t in part.items()}
        return {m: held[m] for m in tensors}


def place_modules(module_of: Sequence[Hashable], ranks: int,
                  order: Sequence[Hashable] = ()) -> dict:
    """Modules dealt to ``ranks`` ranks in contiguous runs of ``order`` (then of first
    appearance in ``module_of``), balanced by their numbers of qubits: neighbours in the
    order share a rank, so that a chain or a tree cut into runs crosses few rank boundaries."""
    weight: dict = {}
    for m in list(order) + list(module_of):
        weight.setdefault(m, 0)
    for m in module_of:
        weight[m] += 1
    total = sum(weight.values()) or 1
    owner, done = {}, 0
    for m, w in weight.items():
        owner[m] = min(ranks - 1, (done * ranks) // total)
        done += w
    return owner


def _clearly_full_rank(mat: np.ndarray) -> bool:
    """Whether the columns of ``mat`` are far from dependent (the smallest singular value
    above 1e-6 of the largest), read from the Gram matrix without an SVD: the common case after
    a measurement, where the exact compression has nothing to drop. A False is decided by the
    SVD itself."""
    cols = mat.shape[1]
    if mat.shape[0] < cols:
        return False
    g = mat.conj().T @ mat
    if cols == 2:   # the eigenvalues of a 2x2 Hermitian matrix, stably: l_min = det / l_max
        a, d, b = g[0, 0].real, g[1, 1].real, g[0, 1]
        det = a * d - (b.real * b.real + b.imag * b.imag)
        l_max = 0.5 * (a + d + math.sqrt(max((a - d) ** 2 + 4 * abs(b) ** 2, 0.0)))
        return l_max > 0 and det / l_max > 1e-12 * l_max
    values = np.linalg.eigvalsh(g)
    return values[-1] > 0 and values[0] > 1e-12 * values[-1]


def _to_end(t: np.ndarray, a: int) -> np.ndarray:
    """``t`` with axis ``a`` moved last (np.moveaxis without its argument checks)."""
    if a == t.ndim - 1:
        return t
    return t.transpose([i for i in range(t.ndim) if i != a] + [a])


def _from_end(t: np.ndarray, a: int) -> np.ndarray:
    """``t`` with its last axis moved to position ``a``."""
    n = t.ndim - 1
    if a == n:
        return t
    return t.transpose(list(range(a)) + [n] + list(range(a, n)))


def _from_start(t: np.ndarray, a: int) -> np.ndarray:
    """``t`` with its first axis moved to position ``a``."""
    if a == 0:
        return t
    return t.transpose(list(range(1, a + 1)) + [0] + list(range(a + 1, t.ndim)))


def _apply_to_axes(t: np.ndarray, legs: Sequence[Leg], matrix: np.ndarray, qubits: Sequence[int],
                   dtype) -> tuple[np.ndarray, tuple[Leg, ...]]:
    """``matrix`` (little-endian in ``qubits``) applied to the qubit axes of tensor ``t``."""
    k = len(qubits)
    u = np.asarray(matrix, dtype=dtype).reshape((2,) * (2 * k))
    axes = [list(legs).index(_qubit(q)) for q in reversed(qubits)]   # highest bit first
    out = _tdot(u, t, (list(range(k, 2 * k)), axes))
    # out: the k new qubit axes, then t's other axes in order; put each back where it was
    perm, rest = [], k
    where = {a: j for j, a in enumerate(axes)}
    for p in range(t.ndim):
        if p in where:
            perm.append(where[p])
        else:
            perm.append(rest)
            rest += 1
    return out.transpose(perm), tuple(legs)


def _mpo(matrix: np.ndarray, qubits: list[int], groups: list[list[int]]) -> list[np.ndarray]:
    """``matrix`` (little-endian in ``qubits``) as a matrix product operator over ``groups``:
    factor i has axes ([left], out bits of group i highest first, in bits likewise, [right]),
    exact (singular values below 1e-14 of the largest dropped)."""
    k = len(qubits)
    g = np.asarray(matrix, dtype=np.complex128).reshape((2,) * (2 * k))
    axis_out = {q: k - 1 - j for j, q in enumerate(qubits)}   # tensor axis of each out bit
    order = []
    for group in groups:
        rev = list(reversed(group))
        order += [axis_out[q] for q in rev] + [k + axis_out[q] for q in rev]
    g = np.transpose(g, order)
    factors = []
    left = 1
    rest = g.reshape((1,) + g.shape)
    for i, group in enumerate(groups):
        size = 4 ** len(group)
        if i == len(groups) - 1:
            w = rest.reshape((left,) + (2,) * (2 * len(group)))
            factors.append(w if i else w[0])
            break
        mat = rest.reshape(left * size, -1)
        u, s, vh = np.linalg.svd(mat, full_matrices=False)
        r = max(1, int(np.count_nonzero(s > 1e-14 * s[0])))
        w = u[:, :r].reshape((left,) + (2,) * (2 * len(group)) + (r,))
        factors.append(w if i else w[0])
        rest = (s[:r, None] * vh[:r]).reshape((r,) + rest.shape[1 + 2 * len(group):])
        left = r
    return factors


class ModuleNetBackend(Backend):
    """The state as a forest of module tensors (see the module docstring).

    ``modules``: the module of each qubit (a sequence indexed by qubit; qubits beyond it are
    each their own module); ``cutoff``: relative Schmidt-value tolerance of the exact
    compression; ``max_bond``: lossy truncation of every bond (None: exact)."""

    name = "modulenet"
    default_precision = "double"
    compaction = False   # a measured qubit leaves its tensor anyway
    state_capabilities = ModuleNetState.capabilities

    def __init__(self, modules: Sequence[Hashable] | None = None,
                 cutoff: float = DEFAULT_CUTOFF, max_bond: int | None = None,
                 comm=None, placement: dict | None = None):
        from .. import validation as check

        self.modules = tuple(modules) if modules is not None else ()
        #: MPI ranks (a :class:`qsim_dist.comm.Comm`) that own the modules, each one tensor's
        #: work and memory; ``placement`` maps a module to its rank (by default
        #: :func:`place_modules`: contiguous runs of modules, balanced by qubits).
        self.comm = comm if comm is not None and comm.size > 1 else None
        if placement is not None and comm is not None and any(
                not (isinstance(r, int) and 0 <= r < comm.size) for r in placement.values()):
            raise BackendError(f"modulenet: placement must map modules to ranks 0..."
                               f"{comm.size - 1}")
        self.placement = dict(placement or {})
        if not (isinstance(cutoff, (int, float)) and 0 <= cutoff < 1):
            raise BackendError(f"modulenet: cutoff must be in [0, 1), got {cutoff!r}")
        if max_bond is not None:
            max_bond = check.count(max_bond, "modulenet: max_bond")
            if max_bond < 1:
                raise BackendError("modulenet: max_bond must be at least 1")
        self.cutoff, self.max_bond = float(cutoff), max_bond

    def module_of(self, num_qubits: int) -> tuple:
        return tuple(self.modules[q] if q < len(self.modules) else ("qubit", q)
                     for q in range(num_qubits))

    def state_bytes(self, num_qubits: int, precision: str) -> int:
        """A lower bound, two amplitudes per qubit (a product state): the module tensors follow
        the entanglement, which is not known before the run; a tensor that outgrows the free
        memory is refused when it is made (:class:`~qsim_dist.errors.BackendError`)."""
        return 2 * np.dtype(DTYPES[precision]).itemsize * num_qubits

    def new_state(self, num_qubits: int, precision: str) -> ModuleNetState:
        module_of = self.module_of(num_qubits)
        place = None
        if self.comm is not None:
            owner = place_modules(module_of, self.comm.size, order=list(self.placement))
            owner.update({m: r for m, r in self.placement.items() if m in owner})
            place = Placement(self.comm, owner)
        return ModuleNetState(num_qubits, module_of, DTYPES[precision], self.cutoff,
                              self.max_bond, place)
