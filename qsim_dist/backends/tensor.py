"""The ``tensor`` backend: a circuit held as a tensor network and contracted only when something
is asked of it (an amplitude, a marginal, an expectation value, a sample).

A :class:`TensorState` is the list of operations applied to |0...0>, never a vector, so its
width is bounded by what each question costs to contract, not by 2^n: wide and shallow circuits
(QAOA on hundreds of qubits, GHZ states, shallow grids) are answered exactly. It implements the
state contract (:mod:`.state`) with no capability flag, so the shared executor runs static,
dynamic and noisy circuits on it unchanged: a measurement or reset appends its normalised
projector, a Kraus operator its matrix.

How a question becomes a contraction:

- **amplitudes** ``<x|psi>``: the gate tensors with every output leg closed by a basis vector;
- **marginals, reduced density matrices, Pauli expectations** ``<psi|T|psi>``: the network and
  its conjugate joined at the output legs of the qubits that are traced out, open (or closed by
  a Pauli matrix) at the qubits asked for; only the gates in the *past light cone* of those
  qubits enter (a unitary gate after which nothing asked for depends on it meets its own
  conjugate and cancels, ``U^dagger U = 1``); a non-unitary operation (a projector) always
  enters;
- **samples**: exact, by the chain rule, qubit after qubit from the highest measured qubit down,
  each shot's uniform rescaled into the chosen outcome's interval, which is exactly the inverse
  transform of the dense backends (the same seed gives the same counts when every qubit is
  measured); shots whose outcomes agree so far share one contraction, and a few measured qubits
  are sampled from their joint marginal, one contraction.

Diagonal gates (``cz``, ``rz``, ``rzz``, ``cp``, ...) enter as hyperedges: a tensor of their
diagonal on the qubit's current index, no new index, which keeps QAOA's cost phases cheap.
Contraction paths are found by opt-einsum (``optimize``: ``auto``, ``greedy``, ``optimal``,
``auto-hq``, ``random-greedy``) or by cotengra's hyper-optimiser (``optimize="cotengra"``, when
installed, with a ``path_time`` budget); a path is found once per network shape and kept. Every
contraction is priced before it runs: its largest intermediate over ``max_memory`` is a
:class:`~qsim_dist.errors.BackendError` that names the predicted size and flops.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import opt_einsum as oe

from .. import memory
from ..errors import BackendError, OptionError
from .base import Backend
from .state import DTYPES, Capability, State

__all__ = ["ContractionStats", "TensorBackend", "TensorState"]

OPTIMIZERS = ("auto", "greedy", "optimal", "auto-hq", "random-greedy", "cotengra")
#: At most this many measured qubits are sampled from their joint marginal in one contraction.
JOINT_SAMPLE_QUBITS = 12
#: A batch of amplitudes that varies in at most this many qubits is one contraction with their
#: legs open.
OPEN_LEGS = 20
_PAULI = {"X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
          "Z": np.array([[1, 0], [0, -1]])}


@dataclass
class _Op:
    """One operation of the network: ``tensor`` on ``qubits`` (little-endian), the diagonal
    (shape (2,)*k) of a diagonal operation or the (2,)*2k matrix of another one."""

    tensor: np.ndarray
    qubits: tuple[int, ...]
    diagonal: bool
    unitary: bool


@dataclass
class ContractionStats:
    """What the contractions of a backend cost so far (``qsim-dist run --stats``)."""

    contractions: int = 0
    flops: float = 0.0              # all slices together (all ranks)
    whole_flops: float = 0.0        # the same contractions not sliced
    largest_intermediate: int = 0   # elements, of one slice
    slices: int = 0
    paths_found: int = 0
    path_seconds: float = 0.0
    contract_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def _as_op(matrix: np.ndarray, qubits: Sequence[int], dtype) -> _Op:
    m = np.asarray(matrix, dtype=np.complex128)
    k = len(qubits)
    unitary = bool(np.allclose(m @ m.conj().T, np.eye(1 << k), atol=1e-12))
    d = np.diag(m)
    if np.count_nonzero(m - np.diag(d)) == 0:
        return _Op(d.astype(dtype).reshape((2,) * k), tuple(qubits), True, unitary)
    return _Op(m.astype(dtype).reshape((2,) * (2 * k)), tuple(qubits), False, unitary)


def light_cone(ops: Sequence[_Op], qubits: Sequence[int]) -> list[_Op]:
    """The operations that can change what ``qubits`` read: walking back from the end, every
    operation touching a qubit already in the cone (which then takes all its qubits), and every
    non-unitary one (it does not cancel against its conjugate)."""
    cone, kept = set(qubits), []
    for op in reversed(ops):
        if not op.unitary or cone.intersection(op.qubits):
            cone.update(op.qubits)
            kept.append(op)
    return kept[::-1]


def _pair(a: np.ndarray, la: Sequence[int], b: np.ndarray, lb: Sequence[int],
          out: Sequence[int]) -> np.ndarray:
    """Two small tensors contracted by numpy's einsum (local letters for the labels)."""
    letter = {i: chr(97 + j) for j, i in enumerate(dict.fromkeys([*la, *lb]))}
    word = lambda labels: "".join(letter[i] for i in labels)  # noqa: E731
    return np.einsum(f"{word(la)},{word(lb)}->{word(out)}", a, b)


def simplify(arrays: Sequence[np.ndarray], indices: Sequence[Sequence[int]],
             output: Sequence[int]) -> tuple[list[np.ndarray], list[list[int]], complex]:
    """The same network with fewer, smaller tensors, and a scalar factor; contracting it gives
    the original network's value. Four reductions, repeated until none applies (those of
    quimb's circuit simplification, on integer labels):

    - a basis vector on an index that is not an output (a |0> of the start, a fixed outcome):
      removed, every tensor on that index sliced at its value;
    - a tensor of all ones: removed (an index it alone held is summed: a factor of its size);
    - a tensor diagonal in two of its indices (``U U^dagger`` of a gate outside what is read
      becomes the identity): replaced by its diagonal, the two indices made one;
    - a tensor of rank <= 2: merged into a neighbour when that adds no index (a single-qubit
      gate into the next gate).
    """
    return _Simplifier(arrays, indices, output).run()


class _Simplifier:
    """The bookkeeping of :func:`simplify`: live tensors, and the tensors on each index."""

    def __init__(self, arrays, indices, output) -> None:
        self.arrays = [np.asarray(a) for a in arrays]
        self.indices = [list(labels) for labels in indices]
        self.keep = set(output)
        self.factor = 1.0 + 0j
        self.alive = [True] * len(self.arrays)
        self.where: dict[int, set[int]] = {}
        for t, labels in enumerate(self.indices):
            for i in labels:
                self.where.setdefault(i, set()).add(t)

    def run(self):
        changed = True
        while changed:
            changed = False
            for t in range(len(self.arrays)):
                if self.alive[t] and (self._basis_vector(t) or self._ones(t) or
                                      self._diagonal(t) or self._merge(t)):
                    changed = True
        kept = [t for t in range(len(self.arrays)) if self.alive[t]]
        return [self.arrays[t] for t in kept], [self.indices[t] for t in kept], self.factor

    def _drop(self, t: int) -> None:
        self.alive[t] = False
        for i in self.indices[t]:
            self.where[i].discard(t)

    def _scalar(self, t: int) -> bool:
        """A tensor left with no index becomes a factor."""
        if self.indices[t]:
            return False
        self.factor *= complex(self.arrays[t])
        self._drop(t)
        return True

    def _basis_vector(self, t: int) -> bool:
        labels, a = self.indices[t], self.arrays[t]
        if len(labels) != 1 or labels[0] in self.keep:
            return False
        nonzero = np.flatnonzero(a)
        if nonzero.size != 1 or a[nonzero[0]] != 1:
            return False
        i, value = labels[0], int(nonzero[0])
        others = self.where[i] - {t}
        if any(self.indices[o].count(i) > 1 for o in others):
            return False
        self._drop(t)
        for o in others:
            axis = self.indices[o].index(i)
            self.arrays[o] = np.take(self.arrays[o], value, axis=axis)
            del self.indices[o][axis]
            self.where[i].discard(o)
            self._scalar(o)
        return True

    def _ones(self, t: int) -> bool:
        a = self.arrays[t]
        if not self.indices[t] or float(np.abs(a - 1.0).max()) > 1e-13:
            return False
        alone = [axis for axis, i in enumerate(self.indices[t]) if self.where[i] == {t}]
        if any(self.indices[t][axis] in self.keep for axis in alone):
            return False   # an output held by this tensor alone: keep it
        for axis in alone:
            self.factor *= a.shape[axis]   # summed over an index it alone held
        self._drop(t)
        return True

    def _diagonal(self, t: int) -> bool:
        labels, a = self.indices[t], self.arrays[t]
        for x in range(len(labels)):
            for y in range(x + 1, len(labels)):
                i, j = labels[x], labels[y]
                if a.shape[x] != a.shape[y] or (i in self.keep and j in self.keep):
                    continue
                eye = np.eye(a.shape[x], dtype=bool)
                shape = [1] * a.ndim
                shape[x], shape[y] = a.shape[x], a.shape[y]
                if np.any(np.abs(np.where(eye.reshape(shape), 0, a)) > 1e-13):
                    continue
                # keep the output label (if any); the other is renamed to it everywhere
                keep, gone = (j, i) if j in self.keep else (i, j)
                first, second = (x, y) if keep == i else (y, x)
                d = np.diagonal(a, axis1=first, axis2=second)   # the joined axis goes last
                rest = [k for n, k in enumerate(labels) if n not in (x, y)]
                self.arrays[t], self.indices[t] = d, rest + [keep]
                self.where[gone].discard(t)
                for o in self.where.pop(gone):
                    self.indices[o] = [keep if k == gone else k for k in self.indices[o]]
                    self.where[keep].add(o)
                    if self.indices[o].count(keep) > 1:   # both on one tensor: its diagonal
                        self._fold(o, keep)
                return True
        return False

    def _fold(self, o: int, i: int) -> None:
        """Tensor ``o`` carries index ``i`` twice (after a rename): its diagonal there."""
        labels = self.indices[o]
        x, y = [n for n, k in enumerate(labels) if k == i][:2]
        self.arrays[o] = np.diagonal(self.arrays[o], axis1=x, axis2=y)
        self.indices[o] = [k for n, k in enumerate(labels) if n not in (x, y)] + [i]
        if self.indices[o].count(i) > 1:
            self._fold(o, i)

    def _merge(self, t: int) -> bool:
        if len(self.indices[t]) > 2:
            return False
        labels = self.indices[t]
        for o in sorted(set().union(*(self.where[i] for i in labels)) - {t}):
            if not self.alive[o]:
                continue
            inner = {i for i in set(labels) & set(self.indices[o])
                     if i not in self.keep and self.where[i] <= {t, o}}
            merged = [i for i in self.indices[o] if i not in inner] + \
                [i for i in labels if i not in inner and i not in self.indices[o]]
            if len(merged) > len(self.indices[o]):
                continue
            self.arrays[o] = _pair(self.arrays[t], labels, self.arrays[o], self.indices[o],
                                   merged)
            for i in labels:
                self.where[i].discard(t)
                self.where[i].add(o)
            for i in inner:
                self.where[i].discard(o)
            self.indices[o] = merged
            self.alive[t] = False
            self._scalar(o)
            return True
        return False


class _Builder:
    """Tensors and integer index labels of one network."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.indices: list[list[int]] = []
        self.count = 0

    def new(self) -> int:
        self.count += 1
        return self.count - 1

    def add(self, array: np.ndarray, labels: Sequence[int]) -> None:
        self.arrays.append(array)
        self.indices.append(list(labels))

    def layer(self, ops: Sequence[_Op], qubits: Sequence[int], dtype, conj: bool) -> dict[int, int]:
        """|0> on each of ``qubits``, then ``ops`` (conjugated for a bra); returns each qubit's
        final index."""
        zero = np.array([1, 0], dtype=dtype)
        cur = {}
        for q in qubits:
            cur[q] = self.new()
            self.add(zero, [cur[q]])
        for op in ops:
            t = op.tensor.conj() if conj else op.tensor
            legs = [cur[q] for q in reversed(op.qubits)]
            if op.diagonal:
                self.add(t, legs)
                continue
            for q in op.qubits:
                cur[q] = self.new()
            self.add(t, [cur[q] for q in reversed(op.qubits)] + legs)
        return cur

    def relabel(self, start: int, mapping: dict[int, int]) -> None:
        """Rename indices in the tensors from ``start`` on (a bra's final legs joined to the
        ket's)."""
        for labels in self.indices[start:]:
            labels[:] = [mapping.get(i, i) for i in labels]


@dataclass
class _Shared:
    """What a backend's states share: options, the path cache, the cost so far."""

    optimize: str
    path_time: float
    max_memory: int | None
    array_backend: str
    joint_qubits: int
    comm: Any = None                # qsim_dist.comm.Comm: slices shared among the ranks
    comm_min_memory: int = 0        # the poorest rank's free memory (a third of it)
    spread_flops: float = 1e8       # SPREAD_FLOPS unless the backend says otherwise
    paths: dict = field(default_factory=dict)
    stats: ContractionStats = field(default_factory=ContractionStats)

    def optimizer(self):
        if self.optimize == "cotengra":
            try:
                import cotengra as ctg
            except ImportError as exc:
                raise BackendError("optimize='cotengra' needs cotengra (pip install "
                                   "cotengra)") from exc
            return _hyper_optimizer(ctg, self.path_time)
        if self.optimize == "random-greedy":
            return oe.RandomGreedy(max_time=self.path_time)
        return self.optimize

    def contract(self, b: _Builder, output: Sequence[int], what: str, dtype) -> np.ndarray:
        """Contract the network of ``b`` to the open ``output`` indices: simplified
        (:func:`simplify`), its path found (or taken from the cache), sliced to fit
        ``max_memory`` (and, under several ranks, to share a large one among them), priced,
        then each slice contracted and the slices summed (over the ranks: one reduction)."""
        arrays, indices, factor = simplify(b.arrays, b.indices, output)
        if not arrays:
            return np.asarray(factor, dtype=dtype).reshape(())
        used = {i for labels in indices for i in labels} | set(output)
        symbol = {i: oe.get_symbol(j) for j, i in enumerate(sorted(used))}
        inputs = ["".join(symbol[i] for i in labels) for labels in indices]
        eq = ",".join(inputs) + "->" + "".join(symbol[i] for i in output)
        itemsize = np.dtype(dtype).itemsize
        key = (eq, tuple(a.shape for a in arrays), itemsize)
        if key not in self.paths:
            self.paths[key] = self._plan(eq, arrays, itemsize)
        plan = self.paths[key]
        if plan.refused:
            raise BackendError(
                f"{what}: the contraction's largest intermediate needs "
                f"{memory.format_bytes(plan.largest * itemsize)} (2^{np.log2(plan.largest):.1f} "
                f"elements, {plan.flops:.3g} flops) even cut in {plan.slices} slices, over "
                f"max_memory {memory.format_bytes(plan.limit)}" if plan.sliced else
                f"{what}: the contraction's largest intermediate needs "
                f"{memory.format_bytes(plan.largest * itemsize)} (2^{np.log2(plan.largest):.1f} "
                f"elements, {plan.flops:.3g} flops), over max_memory "
                f"{memory.format_bytes(plan.limit)}")
        t0 = time.perf_counter()
        rank, size = (self.comm.rank, self.comm.size) if self.comm is not None else (0, 1)
        share = plan.slices > 1 and size > 1 and plan.spread
        out = None
        if plan.expression is None:   # built once per shape: slices reuse its parsed path
            plan.expression = oe.contract_expression(
                eq, *[a.shape for a in _slice(arrays, inputs, plan.sliced, plan.dims, 0)],
                optimize=plan.path)
        with self._precision(itemsize):
            for s in range(rank if share else 0, plan.slices, size if share else 1):
                part = np.asarray(plan.expression(
                    *_slice(arrays, inputs, plan.sliced, plan.dims, s),
                    backend=self.array_backend))
                out = part if out is None else out + part
        if out is None:   # more ranks than slices
            out = np.zeros(tuple(np.shape(_empty_output(eq, arrays))), dtype=dtype)
        if share:
            shape = np.shape(out)   # ascontiguousarray makes a scalar 1-d
            out = np.asarray(self.comm.allreduce_sum(np.ascontiguousarray(out))).reshape(shape)
        if factor != 1.0:
            out = out * factor
        self.stats.contract_seconds += time.perf_counter() - t0
        plan.uses += 1
        self.stats.contractions += 1
        self.stats.flops += plan.flops * plan.slices
        self.stats.whole_flops += plan.whole_flops
        self.stats.slices += plan.slices
        self.stats.largest_intermediate = max(self.stats.largest_intermediate, plan.largest)
        return np.asarray(out)

    def _precision(self, itemsize: int):
        """JAX contracts in complex128 only with 64-bit types on: switched on here, for the
        contraction alone (as the JAX kernel set does), never for the whole process."""
        if self.array_backend == "jax" and itemsize == 16:
            import jax

            return jax.enable_x64(True)
        return contextlib.nullcontext()

    def _plan(self, eq: str, arrays: Sequence[np.ndarray], itemsize: int) -> "_Plan":
        """Path, slices and price of one network shape, found on rank 0 and broadcast so that
        every rank contracts the same slices the same way (and refuses together)."""
        def find() -> _Plan:
            t0 = time.perf_counter()
            shapes = [a.shape for a in arrays]
            path, info = oe.contract_path(eq, *shapes, optimize=self.optimizer(), shapes=True)
            if self.optimize == "auto" and float(info.opt_cost) >= SEARCH_FLOPS:
                path, info = self._search(eq, shapes, path, info)
            limit = self.max_memory if self.max_memory is not None else \
                memory.available_bytes() // 3
            if self.comm is not None and self.comm.size > 1:
                limit = min(limit, self.comm_min_memory)
            want = self.comm.size if self.comm is not None and self.comm.size > 1 and \
                float(info.opt_cost) >= self.spread_flops else 1
            plan = _slicing(eq, shapes, path, info, limit // itemsize, want)
            plan.limit = limit
            plan.seconds = time.perf_counter() - t0
            return plan

        if self.comm is None or self.comm.size == 1:
            plan = find()
        else:
            plan = self.comm.bcast(find() if self.comm.rank == 0 else None)
        self.stats.paths_found += 1
        self.stats.path_seconds += plan.seconds
        return plan


    def _search(self, eq: str, shapes: Sequence[tuple], path: list, info):
        """A costly contraction under ``optimize="auto"``: ``path_time`` seconds of search
        (cotengra's hyper-optimiser when installed, opt-einsum's random greedy otherwise), its
        path kept when it is cheaper than the quick one."""
        try:
            import cotengra as ctg

            finder = _hyper_optimizer(ctg, self.path_time)
        except ImportError:
            finder = oe.RandomGreedy(max_time=self.path_time)
        other, other_info = oe.contract_path(eq, *shapes, optimize=finder, shapes=True)
        if float(other_info.opt_cost) < float(info.opt_cost):
            return other, other_info
        return path, info


def _hyper_optimizer(ctg, seconds: float) -> "_HyperPath":
    """cotengra's path search for ``seconds`` (:class:`_HyperPath`), an opt-einsum path
    optimiser."""
    return _HyperPath(ctg, seconds)


class _HyperPath(oe.paths.PathOptimizer):
    """A path of ``seconds`` of cotengra search, never costlier (in flops) than the greedy one.

    cotengra's ``HyperOptimizer`` as it comes runs a subtree reconfiguration inside every trial;
    on a circuit network of a few hundred tensors joined by hyperedges (every diagonal gate
    shares its qubits' indices) that is about a second a trial, so a budget of a few seconds
    held two or three trials of random hyper-parameters, often worse than plain greedy. Here
    the budget is spent as three stages, each kept only when it lowers the flops:

    1. opt-einsum's greedy path (milliseconds), refined by subtree reconfiguration with
       subtrees of 6 tensors (objective flops; passes until one gains nothing);
    2. half the time left of cotengra's hyper-optimiser without reconfiguration (many cheap
       trials; its partitioners without KaHyPar where that is not installed, named so that
       cotengra does not warn), objective ``flops``, its best tree refined as in 1;
    3. the rest: the better tree reconfigured with subtrees of 8 (the cost grows steeply with
       the size), passes until one gains nothing, then passes from randomly chosen subtrees
       until the budget is spent; a pass after the first starts only when the last one's time
       says it fits in what is left.

    Slicing stays :func:`_slicing`'s, on the path found for the whole network.
    """

    def __init__(self, ctg, seconds: float) -> None:
        self.ctg, self.seconds = ctg, float(seconds)
        self._last = 0.0

    def __call__(self, inputs, output, size_dict, memory_limit=None):
        import importlib.util

        ctg, t0 = self.ctg, time.perf_counter()
        inputs = [tuple(sorted(i)) for i in inputs]
        output = tuple(sorted(output))
        if len(inputs) <= 2:
            return [tuple(range(len(inputs)))]
        end = t0 + self.seconds
        greedy = ctg.ContractionTree.from_path(inputs, output, size_dict,
                                               path=oe.paths.greedy(inputs, output, size_dict))
        greedy = self._refine(greedy, 6, end, passes=4)
        methods = None if importlib.util.find_spec("kahypar") else ["greedy", "labels"]
        hyper = ctg.HyperOptimizer(
            methods=methods, max_time=max(end - time.perf_counter(), 0.0) / 2,
            max_repeats=10 ** 6, minimize="flops", reconf_opts=None, progbar=False,
            parallel=False)
        found = hyper.search(inputs, output, size_dict)
        trees = [greedy, self._refine(found, 6, end, passes=4)]
        best = min(trees, key=lambda tree: tree.contraction_cost())
        best = self._refine(best, 8, end, passes=4, last=6 * max(self._last, 1e-3))
        seed = 0
        while time.perf_counter() + self._last < end:   # the rest: random subtrees
            seed += 1
            best = self._refine(best, 8, end, passes=1, select="random", seed=seed)
        return best.get_path()

    def _refine(self, tree, size: int, end: float, passes: int, last: float = 0.0, **how):
        """Up to ``passes`` subtree reconfigurations of ``tree`` (subtrees of ``size`` tensors,
        objective flops) while the last pass's time fits before ``end``; stops at the first
        pass that gains nothing. The time of the last pass is kept in ``self._last``."""
        self._last = last
        for n in range(passes):
            if (n or last) and time.perf_counter() + self._last > end:
                break
            t1 = time.perf_counter()
            new = tree.subtree_reconfigure(subtree_size=size, minimize="flops", **how)
            self._last = time.perf_counter() - t1
            if new.contraction_cost() >= tree.contraction_cost():
                break
            tree = new
        return tree


def _empty_output(eq: str, arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A zero array of the output's shape (a rank with no slice to contract)."""
    dims = {}
    for labels, a in zip(eq.split("->")[0].split(","), arrays):
        dims.update(zip(labels, a.shape))
    return np.zeros([dims[c] for c in eq.split("->")[1]])


@dataclass
class _Plan:
    """How one network shape is contracted: its path, the indices cut into slices (each slice
    one value of each), the cost of one slice and whether it fits."""

    path: list
    flops: float          # of one slice
    largest: int          # elements of the largest array of one slice
    whole_flops: float = 0.0   # of the network not sliced
    sliced: tuple[str, ...] = ()
    dims: tuple[int, ...] = ()
    refused: bool = False
    spread: bool = False  # the slices are shared out among the ranks
    limit: int = 0
    seconds: float = 0.0
    expression: Any = field(default=None, repr=False, compare=False)   # not broadcast
    uses: int = 0         # contractions of this shape so far (this rank)

    @property
    def slices(self) -> int:
        return int(np.prod(self.dims)) if self.dims else 1


#: A contraction of at least this many flops is sliced into at least one slice per rank under
#: mpiexec; a smaller one is contracted whole by every rank (no communication).
SPREAD_FLOPS = 1e8
#: Under ``optimize="auto"``, a contraction whose quick path costs at least this many flops
#: (about a second) is worth ``path_time`` seconds of path search.
SEARCH_FLOPS = 1e9
#: Slicing stops at this many sliced indices (2^16 slices of a binary network); a contraction
#: that does not fit then is refused.
MAX_SLICED = 16


def _slicing(eq: str, shapes: Sequence[tuple], path: list, info, limit: int, want: int) -> _Plan:
    """Cut indices (greedily, the one that shrinks the largest intermediate most, at the least
    extra work) until one slice fits in ``limit`` elements and there are at least ``want``
    slices; the path stays the one found for the whole network, as cotengra slices a tree."""
    inputs, output = eq.split("->")
    dims: dict[str, int] = {}
    for labels, shape in zip(inputs.split(","), shapes):
        dims.update(zip(labels, shape))

    def price(cut: dict[str, int]):
        sub = [tuple(1 if c in cut else d for c, d in zip(labels, shape))
               for labels, shape in zip(inputs.split(","), shapes)]
        _, i = oe.contract_path(eq, *sub, optimize=path, shapes=True)
        return max(int(i.largest_intermediate), max(int(np.prod(s)) for s in sub)), \
            float(i.opt_cost), i

    cut: dict[str, int] = {}
    largest, flops, current = price(cut)
    whole = flops
    while largest > limit or int(np.prod(list(cut.values()) or [1])) < want:
        if len(cut) >= MAX_SLICED:
            break
        steps = [(int(np.prod([1 if c in cut else dims[c] for c in step[2].split("->")[1]])),
                  step[2].split("->")[1]) for step in current.contraction_list]
        big = max(steps)[1] if steps else ""
        candidates = [c for c in dict.fromkeys(big + "".join(inputs.split(",")))
                      if c not in cut and c not in output and c in dims and dims[c] > 1]
        candidates = candidates[:64]
        best = None
        for c in candidates:
            got = price({**cut, c: dims[c]})
            score = (got[0], got[1] * dims[c])
            if best is None or score < best[0]:
                best = (score, c, got)
        if best is None:
            break
        cut[best[1]] = dims[best[1]]
        largest, flops, current = best[2]
    sliced = tuple(cut)
    return _Plan(path=path, flops=flops, largest=largest, whole_flops=whole, sliced=sliced,
                 dims=tuple(cut[c] for c in sliced), refused=largest > limit,
                 spread=want > 1)


def _slice(arrays: Sequence[np.ndarray], inputs: Sequence[str], sliced: tuple[str, ...],
           dims: tuple[int, ...], s: int) -> list[np.ndarray]:
    """The arrays of slice ``s``: each sliced index fixed to its value in slice ``s`` (the
    last sliced index fastest), kept as an axis of length 1."""
    if not sliced:
        return list(arrays)
    value = {}
    for c, dim in zip(reversed(sliced), reversed(dims)):
        value[c], s = s % dim, s // dim
    out = []
    for a, labels in zip(arrays, inputs):
        index = tuple(slice(value[c], value[c] + 1) if c in value else slice(None)
                      for c in labels)
        out.append(a[index])
    return out


class TensorState(State):
    """|0...0> of ``num_qubits`` qubits followed by the operations applied to it (see the
    module docstring): nothing is contracted until something is read."""

    capabilities = Capability(0)

    def __init__(self, num_qubits: int, dtype, shared: _Shared) -> None:
        self.num_qubits = num_qubits
        self.dtype = np.dtype(dtype)
        self.ops: list[_Op] = []
        self._shared = shared

    # -- the contract's core ---------------------------------------------------------------
    def apply_gate(self, matrix: np.ndarray, qubits: Sequence[int]) -> None:
        self.ops.append(_as_op(matrix, qubits, self.dtype))

    def collapse(self, qubit: int, outcome: int, probability: float) -> None:
        d = np.zeros(2, dtype=self.dtype)
        d[outcome] = 1.0 / np.sqrt(probability)
        self.ops.append(_Op(d, (qubit,), True, False))

    def flip(self, qubit: int) -> None:
        self.apply_gate(_PAULI["X"], (qubit,))

    def copy(self) -> "TensorState":
        other = TensorState(self.num_qubits, self.dtype, self._shared)
        other.ops = list(self.ops)   # operations are never changed in place: share them
        return other

    # -- <psi| T |psi> ---------------------------------------------------------------------
    def _sandwich(self, ends: dict[int, Any], output: Sequence[tuple[int, str]], what: str
                  ) -> np.ndarray:
        """<psi| T |psi> with T given per qubit by ``ends`` (qubit -> "diag": ket and bra joined
        and left open; "rho": both open; a 2x2 matrix M: closed by M[bra, ket]; an int b:
        joined and fixed to bit b); every other qubit traced out. ``output``: (qubit, "ket" |
        "bra") of the open legs, most significant first."""
        ops = light_cone(self.ops, list(ends))
        qubits = sorted(set(ends).union(*(op.qubits for op in ops)))
        b = _Builder()
        ket = b.layer(ops, qubits, self.dtype, conj=False)
        start = len(b.arrays)
        bra = b.layer(ops, qubits, self.dtype, conj=True)
        join = {}
        for q in qubits:
            end = ends.get(q)
            if isinstance(end, np.ndarray):
                b.add(end.astype(self.dtype), [bra[q], ket[q]])
            elif not (isinstance(end, str) and end == "rho"):
                join[bra[q]] = ket[q]
                if isinstance(end, int):
                    b.add(np.eye(2, dtype=self.dtype)[end], [ket[q]])
        b.relabel(start, join)
        legs = [ket[q] if side == "ket" else bra[q] for q, side in output]
        return self._shared.contract(b, legs, what, self.dtype)

    def probabilities(self, qubits: Sequence[int] | None = None) -> np.ndarray:
        qubits = list(range(self.num_qubits)) if qubits is None else list(qubits)
        p = self._sandwich({q: "diag" for q in qubits},
                           [(q, "ket") for q in reversed(qubits)], "probabilities")
        return np.clip(np.real(p).reshape(-1).astype(np.float64), 0.0, None)

    def reduced_density_matrix(self, qubits: Sequence[int]) -> np.ndarray:
        k = len(qubits)
        rho = self._sandwich({q: "rho" for q in qubits},
                             [(q, "ket") for q in reversed(qubits)] +
                             [(q, "bra") for q in reversed(qubits)], "reduced_density_matrix")
        return np.asarray(rho, dtype=np.complex128).reshape(1 << k, 1 << k)

    def pauli_expectation(self, x_mask: int, z_mask: int) -> complex:
        ends = {}
        for q in range(self.num_qubits):
            x, z = x_mask >> q & 1, z_mask >> q & 1
            if x or z:   # observables' convention: the string of standard X, Y, Z matrices
                ends[q] = _PAULI["Y" if x and z else "X" if x else "Z"]
        if not ends:
            return complex(1.0)
        return complex(self._sandwich(ends, [], "expectation"))

    # -- samples ---------------------------------------------------------------------------
    def sample(self, qubits: Sequence[int], draws: np.ndarray) -> np.ndarray:
        order = sorted(qubits, reverse=True)   # the dense inverse transform's order
        u = np.array(draws, dtype=np.float64)
        # bit q of each outcome is qubit q: Python integers beyond 62 qubits
        wide = bool(order) and order[0] >= 62
        result = np.zeros(u.size, dtype=object if wide else np.int64)
        if not order or not u.size:
            return result
        if len(order) <= self._shared.joint_qubits:
            p = self.probabilities(order[::-1])   # bit j = ascending qubit j
            cdf = np.cumsum(p)
            keys = np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), cdf.size - 1)
            for j, q in enumerate(order[::-1]):
                result |= ((keys >> j) & 1).astype(result.dtype) << q
            return result
        # the chain rule; groups of shots with equal outcomes so far stay contiguous, since
        # each step maps the sorted uniforms monotonically
        groups = [({}, 0, u.size)]
        for q in order:
            split = []
            for fixed, lo, hi in groups:
                p = self._sandwich({**fixed, q: "diag"}, [(q, "ket")], "sample").real
                p0 = min(max(float(p[0] / max(p[0] + p[1], 1e-300)), 0.0), 1.0)
                mid = lo + int(np.searchsorted(u[lo:hi], p0, side="left"))
                if mid > lo:
                    u[lo:mid] /= max(p0, 1e-300)
                    split.append(({**fixed, q: 0}, lo, mid))
                if hi > mid:
                    u[mid:hi] = (u[mid:hi] - p0) / max(1.0 - p0, 1e-300)
                    result[mid:hi] |= 1 << q
                    split.append(({**fixed, q: 1}, mid, hi))
            groups = split
        return result

    def sample_indices(self, draws: np.ndarray) -> np.ndarray:
        return self.sample(range(self.num_qubits), draws)

    # -- amplitudes and overlaps -----------------------------------------------------------
    def _ket(self, b: _Builder, ops: Sequence[_Op], conj: bool = False) -> dict[int, int]:
        return b.layer(ops, range(self.num_qubits), self.dtype, conj)

    def amplitudes(self, indices: Sequence[int]) -> np.ndarray:
        """Amplitudes of the basis states ``indices``. A batch that varies in few qubits is one
        contraction with those qubits' legs left open (at most :data:`OPEN_LEGS` of them, and
        no more outputs than four per amplitude asked); otherwise one contraction per index,
        all of one path."""
        indices = [int(i) for i in indices]
        out = np.zeros(len(indices), dtype=self.dtype)
        touched = sorted(set().union(*(op.qubits for op in self.ops)))
        untouched = sum(1 << q for q in range(self.num_qubits)) - sum(1 << q for q in touched)
        live = [n for n, index in enumerate(indices) if not index & untouched]  # others: 0
        if not live:
            return out
        first = indices[live[0]]
        varying = [q for q in touched if any((indices[n] ^ first) >> q & 1 for n in live)]
        if len(live) > 1 and varying and len(varying) <= OPEN_LEGS and \
                1 << len(varying) <= 4 * len(live):
            block = self._amplitude_block(first, varying)
            for n in live:
                key = sum((indices[n] >> q & 1) << j for j, q in enumerate(varying))
                out[n] = block[key]
            return out
        for n in live:
            out[n] = self._amplitude_block(indices[n], [])[0]
        return out

    def _amplitude_block(self, index: int, open_qubits: Sequence[int]) -> np.ndarray:
        """Amplitudes of every value of ``open_qubits`` (bit j = open_qubits[j]), the other
        qubits at their bit of ``index`` (qubits no operation touches must read 0)."""
        basis = np.eye(2, dtype=self.dtype)
        touched = sorted(set().union(*(op.qubits for op in self.ops)))
        if not touched:
            return np.ones(1 << len(open_qubits), dtype=self.dtype)
        b = _Builder()
        ket = b.layer(self.ops, touched, self.dtype, conj=False)
        for q in touched:
            if q not in open_qubits:
                b.add(basis[index >> q & 1], [ket[q]])
        block = self._shared.contract(b, [ket[q] for q in reversed(open_qubits)],
                                      "amplitudes", self.dtype)
        return np.asarray(block).reshape(-1)

    def statevector(self) -> np.ndarray:
        b = _Builder()
        ket = self._ket(b, self.ops)
        psi = self._shared.contract(b, [ket[q] for q in reversed(range(self.num_qubits))],
                                    "statevector", self.dtype)
        return np.asarray(psi, dtype=self.dtype).reshape(-1)

    def overlap(self, other: "State") -> complex:
        if not isinstance(other, TensorState):
            return super().overlap(other)
        b = _Builder()
        bra = self._ket(b, self.ops, conj=True)
        start = len(b.arrays)
        ket = other._ket(b, other.ops)
        b.relabel(start, {ket[q]: bra[q] for q in range(self.num_qubits)})
        return complex(self._shared.contract(b, [], "overlap", self.dtype))


class TensorBackend(Backend):
    """Circuits as tensor networks, contracted on request (see the module docstring).

    ``optimize``: the path finder (:data:`OPTIMIZERS`; ``"auto"``: opt-einsum's choice by
    network size); ``path_time``: seconds of search for ``"cotengra"`` and ``"random-greedy"``;
    ``max_memory``: bytes the largest intermediate of one contraction may take (default a third
    of the memory available); ``array``: ``"numpy"`` or ``"jax"`` (the contraction's arrays; JAX
    runs on a GPU when it sees one); ``joint_sample_qubits``: up to this many measured qubits
    are sampled from their joint marginal (one contraction of 2^k outputs), more by the chain
    rule (default :data:`JOINT_SAMPLE_QUBITS`); ``comm``: an MPI communicator (mpi4py's or a
    :class:`qsim_dist.comm.Comm`) whose ranks share out the slices of every contraction of at
    least ``spread_flops`` flops (default :data:`SPREAD_FLOPS`; each rank contracts its slices,
    one reduction sums them; every rank gets the whole answer); every rank must then make the
    same calls.
    """

    name = "tensor"
    default_precision = "double"
    state_capabilities = Capability(0)
    compaction = False

    def __init__(self, optimize: str = "auto", path_time: float = 1.0,
                 max_memory: int | None = None, array: str = "numpy",
                 joint_sample_qubits: int | None = None, comm: Any = None,
                 spread_flops: float = None) -> None:
        if optimize not in OPTIMIZERS:
            raise OptionError(f"optimize must be one of {', '.join(OPTIMIZERS)}, "
                              f"got {optimize!r}")
        if not isinstance(path_time, (int, float)) or isinstance(path_time, bool) or \
                not np.isfinite(path_time) or path_time <= 0:
            raise OptionError(f"path_time must be a positive number of seconds, got "
                              f"{path_time!r}")
        if max_memory is not None and (not isinstance(max_memory, int) or
                                       isinstance(max_memory, bool) or max_memory < 1):
            raise OptionError(f"max_memory must be a positive number of bytes, got "
                              f"{max_memory!r}")
        if array not in ("numpy", "jax"):
            raise OptionError(f"array must be 'numpy' or 'jax', got {array!r}")
        if joint_sample_qubits is None:
            joint_sample_qubits = JOINT_SAMPLE_QUBITS
        if not isinstance(joint_sample_qubits, int) or isinstance(joint_sample_qubits, bool) \
                or not 0 <= joint_sample_qubits <= 30:
            raise OptionError(f"joint_sample_qubits must be an integer in [0, 30], got "
                              f"{joint_sample_qubits!r}")
        if spread_flops is None:
            spread_flops = SPREAD_FLOPS
        if not isinstance(spread_flops, (int, float)) or isinstance(spread_flops, bool) or \
                not np.isfinite(spread_flops) or spread_flops < 0:
            raise OptionError(f"spread_flops must be a finite number >= 0, got "
                              f"{spread_flops!r}")
        self._shared = _Shared(optimize, float(path_time), max_memory, array,
                               joint_sample_qubits, spread_flops=float(spread_flops))
        if comm is not None:
            from ..comm import Comm

            comm = comm if isinstance(comm, Comm) else Comm(comm)
            if comm.size > 1:   # collective: one memory limit for every rank
                self._shared.comm = comm
                self._shared.comm_min_memory = comm.allreduce_min(
                    memory.available_bytes() // 3)
        self.comm = self._shared.comm

    @property
    def stats(self) -> ContractionStats:
        """The cost of every contraction this backend ran so far."""
        return self._shared.stats

    def state_bytes(self, num_qubits: int, precision: str) -> int:
        # a state is its list of operations; each contraction is priced when it is asked for
        return 0

    def new_state(self, num_qubits: int, precision: str) -> TensorState:
        return TensorState(num_qubits, DTYPES[precision], self._shared)
