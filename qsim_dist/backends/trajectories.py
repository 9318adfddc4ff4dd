"""Pauli trajectories: a run whose only randomness is Pauli noise and terminal measurement.

Every shot's Paulis are drawn up front, one event at a time; the shots, sorted by their Pauli
sequence, share one state per distinct prefix. Three strategies, chosen by the state's declared
capabilities (:class:`~qsim_dist.backends.state.Capability`): a tree walked with state copies (any
state); with :attr:`~Capability.TRAJECTORY_WALK`, walked depth first on one cache-resident row
per piece of the shots, pieces in parallel (states up to :data:`WALK_QUBITS` qubits); with
:attr:`~Capability.BATCHED_TRAJECTORIES`, level by level on a batch of rows (vectorised over the
batch).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..circuit import Instruction
from ..noise import NoiseOp, pauli_digits
from .branching import bitstring, record_counts
from .checkpointing import apply_gates
from .planning import Step, plan_steps
from .state import Capability

WALK_QUBITS = 14  # rows up to 2^14 amplitudes (128 KiB in complex64) stay in cache per walk
BATCH_AMPLITUDES = 1 << 24  # rows x 2^n of one batch (128 MiB in complex64)


def run_pauli(circuit, state, shots: int, rng: np.random.Generator, save_state: bool, bar,
              noisy, checkpoints=None, observer=None) -> tuple[dict[str, int], np.ndarray | None]:
    """Trajectories of a circuit whose only randomness is Pauli noise and terminal
    measurement (see the module docstring). Returns the counts and, with ``save_state``, the
    first trajectory's final state. An ``observer`` (:class:`.branching.BranchObserver`) reads
    each group of trajectories that share their Paulis, on the tree strategy (the walk and
    the rows hold no per-branch state)."""
    ops = [op for op in noisy.ops if not (isinstance(op, Instruction)
                                          and op.name == "measure")]
    final = [(op.qubits[0], op.clbits[0], noisy.readout.get(op.qubits[0]), op.qubits[0])
             for op in noisy.ops if isinstance(op, Instruction) and op.name == "measure"]
    ncl = circuit.num_clbits
    first = next(k for k, op in enumerate(ops) if isinstance(op, NoiseOp))
    walk = Capability.TRAJECTORY_WALK in state.capabilities and \
        state.num_qubits <= WALK_QUBITS and observer is None
    batch = Capability.BATCHED_TRAJECTORIES in state.capabilities and observer is None
    # the walk and the rows take a Pauli as masks, the tree as a prepared program
    steps = plan_steps(state, ops[first:], None, None, circuit.num_qubits,
                       pauli_programs=not (batch or walk))[0]
    trajectories = max(shots, 1)
    bar.add_total(trajectories)
    apply_gates(state, ops[:first], bar, checkpoints)
    events = [k for k, step in enumerate(steps) if step.kind == "pauli"]
    event_of = {k: e for e, k in enumerate(events)}
    draws = np.zeros((len(events), trajectories), dtype=np.int16)
    for e, k in enumerate(events):
        cdf = np.cumsum(steps[k].payload[0])
        targets = rng.random(trajectories) * cdf[-1]
        hit = np.flatnonzero(targets >= cdf[0])  # the rest pick the first Pauli
        picks = np.searchsorted(cdf, targets[hit], side="right")
        draws[e, hit] = np.minimum(picks, cdf.size - 1)
    draws = draws[:, np.lexsort(draws[::-1])]  # shots sorted by their Pauli sequence
    # terminal sampling: one uniform per shot, sorted within each group of one sequence
    uniforms = rng.random(trajectories)
    ends = np.flatnonzero((draws[:, 1:] != draws[:, :-1]).any(axis=0)) + 1
    group = np.zeros(trajectories, dtype=np.int64)
    group[ends] = 1
    uniforms = uniforms[np.lexsort((uniforms, np.cumsum(group)))]
    indices = np.empty(trajectories, dtype=np.int64)
    saved: list[np.ndarray] = []
    if walk:
        _pauli_walk(state, steps, events, draws, uniforms, indices, save_state, saved)
    elif batch:
        _pauli_rows(state, steps, events, draws, uniforms, indices, save_state, saved)
    else:
        slots = sorted({m[0] for m in final})
        _pauli_tree(state, steps, event_of, draws, uniforms, indices, save_state, saved, slots,
                    observer)
    bar.update(trajectories)
    counts: dict[str, int] = {}
    if shots and final:
        counts = record_counts(indices, final, [0] * ncl, ncl, rng)
    elif shots:
        counts = {bitstring([0] * ncl): shots}
    return counts, (saved[0] if saved else None)


def _pauli_tree(state, steps, event_of, draws, uniforms, indices, save_state, saved, slots,
                observer=None):
    """The shots as a tree of shared prefixes, walked depth first with a state copy where
    their Paulis differ (any state); each leaf samples the qubits ``slots`` (and is shown to
    ``observer``)."""
    stack = [(0, state, 0, draws.shape[1])]
    while stack:
        k, st, lo, hi = stack.pop()
        while k < len(steps):
            step = steps[k]
            k += 1
            if step.kind == "gates":
                st.execute(step.payload)
                continue
            row = draws[event_of[k - 1], lo:hi]
            cuts = [lo, *(lo + np.flatnonzero(row[1:] != row[:-1]) + 1), hi]
            for a, b in reversed(list(zip(cuts[1:-1], cuts[2:]))):
                other = st.copy()
                program = step.payload[1][draws[event_of[k - 1], a]]
                if program is not None:
                    other.execute(program)
                stack.append((k, other, a, b))
            program = step.payload[1][row[0]]
            if program is not None:
                st.execute(program)
            hi = cuts[1]
        if save_state and lo == 0:
            saved.append(np.array(st.statevector()))
        if observer is not None:
            observer.on_branch_end(st, hi - lo, range(st.num_qubits), {})
        indices[lo:hi] = np.asarray(st.sample(slots, uniforms[lo:hi]))


def _pauli_walk(state, steps, events, draws, uniforms, indices, save_state, saved):
    """Every trajectory walked depth first on one cache-resident row, pieces of the
    sorted shots in parallel (kernels/batched_cpu.run_trajectories)."""
    import numba

    from qsim_dist.kernels.batched_cpu import run_trajectories

    start = np.array(state.statevector())
    meta, qubits, mats, rmats, aux, event_op = _flatten_steps(steps, start.dtype)
    total = draws.shape[1]
    # the work a shot adds to its piece: the operations after the first event where its
    # Paulis differ from the previous shot's (none when they are equal)
    cost = np.ones(total, dtype=np.float64)
    if total > 1 and draws.shape[0]:
        differ = draws[:, 1:] != draws[:, :-1]
        first = differ.argmax(axis=0)
        fresh = differ[first, np.arange(total - 1)]
        cost[1:] += np.where(fresh, meta.shape[0] - event_op[first], 0)
    cost[0] += meta.shape[0]
    pieces = 8 * numba.get_num_threads()
    cum = np.cumsum(cost)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, pieces) / pieces, side="left")
    longest = max(1, BATCH_AMPLITUDES // start.size)  # shots per piece at most
    cuts = np.unique(np.concatenate(([0, total], cuts, np.arange(0, total, longest))))
    out = np.empty(total, dtype=np.int64)
    row = np.empty(start.size if save_state else 0, dtype=start.dtype)
    run_trajectories(start, cuts.astype(np.int64), meta, qubits, mats, rmats, aux, draws,
                     uniforms, out, row)
    indices[:] = out
    if save_state:
        saved.append(row)


def _pauli_rows(state, steps, events, draws, uniforms, indices, save_state, saved):
    """Level by level on a batch of rows (the state's row methods: CPU set in place, JAX
    vectorised on the device): shots that share their Pauli prefix share a row; a row is
    copied when its shots' Paulis first differ; every gate run is one pass over the batch,
    every noise event one per-row Pauli pass; at the end each shot samples its row."""
    masks = {k: pauli_masks(steps[k].payload[0], steps[k].payload[2],
                             np.dtype(state.dtype)) for k in events}
    event_of = {k: e for e, k in enumerate(events)}
    total = draws.shape[1]
    chunk = max(1, BATCH_AMPLITUDES >> state.num_qubits)
    for c0 in range(0, total, chunk):  # groups cut at a chunk edge: simulated twice, same
        c1 = min(total, c0 + chunk)
        # rows are appended as groups split (a child that keeps its parent's place keeps
        # its row)
        rows = state.rows(1)
        used = 1
        starts = np.array([0], dtype=np.int64)
        row_of = np.array([0], dtype=np.int64)
        for k, step in enumerate(steps):
            if step.kind == "gates":
                rows = state.execute_rows(step.payload, rows, used)
                continue
            row = draws[event_of[k], c0:c1]
            change = np.flatnonzero(row[1:] != row[:-1]) + 1
            if change.size:
                grown = np.union1d(starts, change)
                if grown.size > starts.size:
                    parent = np.searchsorted(starts, grown, side="right") - 1
                    fresh = grown != starts[parent]
                    count = int(fresh.sum())
                    new_rows = np.arange(used, used + count)
                    rows = state.copy_rows(rows, new_rows, row_of[parent[fresh]])
                    row_of = row_of[parent]
                    row_of[fresh] = new_rows
                    used += count
                    starts = grown
            picks = row[starts]
            hit = np.flatnonzero(picks)
            if hit.size:
                x, z, phase = masks[k]
                p = picks[hit]
                rows = state.apply_paulis_rows(rows, row_of[hit], x[p], z[p], phase[p])
        row_of_shot = np.repeat(row_of, np.diff(np.append(starts, c1 - c0)))
        indices[c0:c1] = state.sample_rows(rows, row_of_shot, uniforms[c0:c1])
        if save_state and c0 == 0:
            saved.append(np.array(rows[0]))


def pauli_masks(probs: np.ndarray, slots: Sequence[int], dtype) -> tuple[np.ndarray, ...]:
    """Per Pauli index of a channel on ``slots``: X mask, Z mask (Y in both) and phase
    ``(-i)^#Y``, so that ``(P psi)[j] = phase (-1)^|j & z| psi[j ^ x]``."""
    size = probs.size
    x = np.zeros(size, dtype=np.int64)
    z = np.zeros(size, dtype=np.int64)
    phase = np.ones(size, dtype=dtype)
    for a in range(size):
        for d, q in zip(pauli_digits(a, len(slots)), slots):
            if d in (1, 2):
                x[a] |= 1 << q
            if d in (2, 3):
                z[a] |= 1 << q
            if d == 2:
                phase[a] *= -1j
    return x, z, phase


def _flatten_steps(steps: Sequence[Step], dtype) -> tuple[np.ndarray, ...]:
    """The gate and Pauli steps of a Pauli-noise run as the operation table of
    kernels/batched_cpu.run_trajectories (prepared programs of the CPU kernel set: entries
    ``(diagonal, (real, imag), qubits)``); also the operation index of each event."""
    from qsim_dist.kernels import batched_cpu as B

    meta, qubits, mats, rmats, aux, event_op = [], [], [], [], [], []

    def add(kind, k, qs, m=(), rm=(), ax=()):
        offsets = [] if kind == B.OP_PAULI else \
            [sum(1 << q for j, q in enumerate(qs) if r >> j & 1) for r in range(1 << k)]
        meta.append((kind, k, len(qubits), len(rmats if kind == B.OP_REAL1 else mats), len(aux),
                     len(aux) + len(ax)))
        qubits.extend([*map(int, qs), *sorted(map(int, qs))])
        mats.extend(m)
        rmats.extend(rm)
        aux.extend([*map(int, ax), *offsets])

    for step in steps:
        if step.kind == "pauli":
            probs, _, slots = step.payload
            x, z, phase = pauli_masks(probs, slots, dtype)
            event_op.append(len(meta))
            add(B.OP_PAULI, probs.size, (), phase, (), [len(event_op) - 1, *x, *z])
            continue
        for diagonal, m, qs in step.payload:
            matrix = np.asarray(m[0]) + 1j * np.asarray(m[1])
            if diagonal:
                add(B.OP_DIAGONAL, len(qs), qs, matrix.reshape(-1))
                continue
            nonzero = matrix != 0
            if len(qs) == 1 and not matrix.imag.any():
                add(B.OP_REAL1, 1, qs, (), matrix.real.reshape(-1))
            elif (nonzero.sum(axis=1) == 1).all():
                columns = nonzero.argmax(axis=1)
                add(B.OP_MONOMIAL, len(qs), qs, matrix[np.arange(matrix.shape[0]),
                                                       columns], (), columns)
            else:
                add(B.OP_DENSE, len(qs), qs, matrix.reshape(-1))
    real = np.float32 if np.dtype(dtype) == np.complex64 else np.float64
    return (np.array(meta, dtype=np.int64).reshape(-1, 6), np.array(qubits, dtype=np.int64),
            np.array(mats, dtype=dtype), np.array(rmats, dtype=real),
            np.array(aux, dtype=np.int64), np.array(event_op, dtype=np.int64))
