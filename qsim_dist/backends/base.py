"""What every statevector backend shares: the State interface and the one circuit executor.

A backend only says how to hold and update a state (:class:`State`); how a circuit becomes gate
runs, measurements, resets, conditions, noise and shots is decided here, once, for all backends.

Shots: a circuit whose measurements are all terminal is simulated once and its shots are sampled
from the final probabilities. A dynamic circuit (mid-circuit measurement, reset, feed-forward) is
simulated once up to its first non-unitary step; from there the shots branch: a group of shots
shares one state until a random step (measurement, reset, noise) splits it by outcome, each part
continuing on its own state (a copy, or the original for the last part), and each branch samples
its terminal measurements from its final state at once. The counts are those of independent
per-shot trajectories; the work is one state update per distinct branch, not per shot.

Noise (:mod:`qsim_dist.noise`): a circuit run with a noise model that inserts channels is dynamic,
each shot one trajectory. A Pauli channel splits its shots over the Paulis by their fixed
probabilities and applies each as a gate, without computing a norm; a general channel splits them
by ``||K_i psi||^2``, all read from the reduced density matrix of the channel's qubits (one pass,
no ``K_i psi`` materialised), then applies ``K_i / ||K_i psi||``. Readout errors change the
recorded bit, not the state; with readout errors only, shots are still sampled from one final
state. Every split draws one uniform per shot from the run's seeded stream, in a fixed order, so
one seed gives one result, and rounding-level differences between backends do not change it.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import memory
from .. import validation as check
from ..circuit import Circuit, Condition, Instruction
from ..errors import CircuitError, OptionError
from ..io.checkpoint import Checkpointing, Header, check_resumable, fingerprint, read_header
from ..noise import PAULI_GATES, NoiseModel, NoiseOp, pauli_digits
from ..observables import PauliSum, as_pauli_sum
from ..options import RunOptions, check_precision
from ..results import Result

DTYPES = {"single": np.complex64, "double": np.complex128}  # amplitude type per precision


class State(ABC):
    """A quantum state of ``num_qubits`` qubits, updated in place."""

    num_qubits: int
    compile_time: float = 0.0  # seconds spent planning/compiling, reported in Result

    @abstractmethod
    def apply_gate(self, matrix: np.ndarray, qubits: Sequence[int]) -> None:
        """Apply a ``2^k x 2^k`` unitary (little-endian in ``qubits``)."""

    @abstractmethod
    def probabilities(self, qubits: Sequence[int] | None = None) -> np.ndarray:
        """Outcome probabilities of ``qubits`` (all qubits when None), float64, bit j = qubits[j]."""

    @abstractmethod
    def collapse(self, qubit: int, outcome: int, probability: float) -> None:
        """Project ``qubit`` onto ``outcome`` and renormalise by ``probability`` of that outcome."""

    @abstractmethod
    def flip(self, qubit: int) -> None:
        """Apply X to ``qubit`` (used by reset)."""

    @abstractmethod
    def statevector(self) -> np.ndarray:
        """The full state as a numpy array in the state's precision (qubit 0 = least significant
        index bit); it may share memory with the state, so copy it before changing the state."""

    @abstractmethod
    def copy(self) -> "State":
        """An independent copy."""

    def end_of_branch(self, shots: int, qubits: Sequence[int], known: dict[int, int]) -> None:
        """Called by the executor when a trajectory branch (static run: the run) ends, before
        its terminal measurements are sampled: ``shots`` of the branch, the logical qubit of
        each state bit (``qubits[j]`` is bit j; fewer than the circuit's after compaction) and
        the known basis value of every other qubit. Nothing by default; a wrapper that reads
        every branch's final state (the network layer's fidelity) overrides it."""

    # -- gate runs: fast backends override these two to fuse and compile once --------------
    def prepare(self, gates: Sequence[Instruction]) -> Any:
        """Turn a run of unconditioned gates into something :meth:`execute` applies quickly."""
        return [(inst.matrix(), inst.qubits) for inst in gates]

    def execute(self, program: Any, progress: Callable[[int], None] | None = None) -> None:
        for matrix, qubits in program:
            self.apply_gate(matrix, qubits)
            if progress:
                progress(1)

    def program_size(self, program: Any) -> int:
        """Number of progress units :meth:`execute` reports for ``program``."""
        return len(program)

    # -- readout ---------------------------------------------------------------------------
    def sample_indices(self, draws: np.ndarray) -> np.ndarray:
        """Basis indices for sorted uniform ``draws`` in [0, 1) (inverse transform over the
        probabilities, renormalised so that rounding of the total does not bias the last one)."""
        cdf = np.cumsum(self.probabilities(), dtype=np.float64)
        idx = np.searchsorted(cdf, draws * cdf[-1], side="right")
        return np.minimum(idx, cdf.size - 1)

    def amplitudes(self, indices: Sequence[int]) -> np.ndarray:
        return self.statevector()[np.asarray(indices, dtype=np.int64)]

    def reduced_density_matrix(self, qubits: Sequence[int]) -> np.ndarray:
        """The ``2^k x 2^k`` reduced density matrix of ``qubits`` (bit j = qubits[j]),
        complex128; kernel sets override it with one pass that allocates nothing state-sized."""
        n, k = self.num_qubits, len(qubits)
        t = self.statevector().astype(np.complex128).reshape((2,) * n)
        # tensor axis a is qubit n-1-a; put qubits[k-1] .. qubits[0] first (row-major bit order)
        t = np.moveaxis(t, [n - 1 - q for q in reversed(qubits)], range(k)).reshape(1 << k, -1)
        return t @ t.conj().T

    def pauli_expectation(self, x_mask: int, z_mask: int) -> complex:
        """<psi| P |psi> for the Pauli string with X on ``x_mask`` bits and Z on ``z_mask`` bits
        (Y where both are set). See :mod:`qsim_dist.observables` for the sign convention."""
        from ..observables import apply_pauli_to_vector

        psi = self.statevector()
        return complex(np.vdot(psi, apply_pauli_to_vector(psi, x_mask, z_mask)))

    # -- checkpoints (see qsim_dist.io.checkpoint) ------------------------------------------
    def agree(self, flag: bool) -> bool:
        """One decision for all the processes that hold this state (rank 0's, when sharded)."""
        return flag

    def write_checkpoint(self, path: Path, header: Any) -> None:
        """Write ``header`` and the state to the checkpoint ``path``, atomically
        (:func:`qsim_dist.io.files.atomic_write`: a full disk is a CheckpointError, the
        previous checkpoint kept)."""
        import h5py

        from ..io.checkpoint import CheckpointError, create_state_dataset, write_header
        from ..io.files import atomic_write

        psi = self.statevector()
        with atomic_write(path, "a checkpoint", CheckpointError, size=psi.nbytes) as out:
            with h5py.File(out, "w") as f:
                write_header(f, header)
                create_state_dataset(f, self.num_qubits, psi.dtype)[...] = psi

    def load_checkpoint(self, path: Path, header: Any) -> None:
        """Replace the state by the one stored in checkpoint ``path`` (finite and normalised,
        else a CheckpointError)."""
        from ..io.checkpoint import check_norm, read_state

        psi = self.statevector()
        data = read_state(path, 0, 1 << self.num_qubits, psi.dtype)
        check_norm(path, np.vdot(data, data).real, header)
        self.load_statevector(data)

    def load_statevector(self, psi: np.ndarray) -> None:
        """Replace the state by ``psi`` (logical order, this state's precision)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be loaded from a checkpoint")

    # -- live-qubit compaction (see the module docstring) -----------------------------------
    supports_resize: bool = False  # True where add_qubit/remove_qubit work (and are worth it)

    def add_qubit(self, slot: int, value: int) -> None:
        """Tensor a qubit in basis state ``value`` into bit position ``slot`` (bits at ``slot``
        and above move up by one). Generic version through :meth:`statevector`."""
        psi = self.statevector()
        t = np.zeros((psi.size >> slot, 2, 1 << slot), dtype=psi.dtype)
        t[:, value, :] = psi.reshape(psi.size >> slot, 1 << slot)
        self.num_qubits += 1
        self.load_statevector(t.reshape(-1))

    def remove_qubit(self, slot: int, value: int) -> None:
        """Drop the qubit at bit position ``slot``, which is in basis state ``value`` (bits above
        ``slot`` move down by one). Generic version through :meth:`statevector`."""
        psi = self.statevector()
        t = psi.reshape(psi.size >> (slot + 1), 2, 1 << slot)[:, value, :]
        self.num_qubits -= 1
        self.load_statevector(np.ascontiguousarray(t).reshape(-1))


# ---- the plan: a circuit split into steps ---------------------------------------------------

@dataclass
class _Step:
    kind: str  # "gates" | "measure" | "reset" | "pauli" | "kraus"
    payload: Any = None  # see _steps
    condition: Condition | None = None


def _split_terminal_measurements(circuit: Circuit) -> tuple[list[Instruction], list[Instruction]]:
    """Gates (barriers dropped) and the terminal measurements of a non-dynamic circuit."""
    gates = [i for i in circuit if i.is_gate]
    measures = [i for i in circuit if i.name == "measure"]
    return gates, measures


_DROP_GAP = 8  # a measured/reset qubit idle for more instructions than this leaves the state


def _known_value_op(op: Instruction | NoiseOp) -> bool:
    """An operation that maps a qubit in a known basis value to a known basis value (X,
    conditioned or not): applied to a qubit outside the state, it flips the value it is known
    to have, so it does not bring the qubit back (nor keep it) in the state."""
    return isinstance(op, Instruction) and op.name == "x"


def _steps(state: State | None, instructions: Sequence[Instruction | NoiseOp],
           readout: dict[int, np.ndarray] | None = None, live: Sequence[int] | None = None,
           num_qubits: int | None = None,
           pauli_programs: bool = True) -> tuple[list[_Step], list[int], int]:
    """Plan the instructions after the deterministic prefix; ``live`` (sorted logical qubits) are
    the qubits the state holds at the start, bit j of the state being ``live[j]`` (all qubits
    when None: no compaction). Returns the steps, the live qubits at the end, and the most live
    at any point (the width a state of the run needs, known before any state is allocated).

    Payloads: "gates" a prepared program; "measure" (slot or None, clbit, readout matrix or None,
    qubit); "reset" (slot or None, qubit); "pauli" (probabilities, prepared program per Pauli or
    None for the identity, all None without ``pauli_programs``, slots); "kraus" (slots,
    operators, K_i^dagger K_i stacked); "grow" and "shrink" (slot, qubit); "flip" (qubit): an X
    on a qubit that is not in the state flips its known value. Slots are state bit positions at
    that point; a measure or reset with slot None acts on a qubit that is not in the state (its
    basis value is known). With ``state`` None, programs are left as lists of instructions
    (a plan only; :func:`_prepare_steps` prepares it for a state)."""
    readout = readout or {}
    compact = live is not None
    live = sorted(live) if compact else list(range(num_qubits if num_qubits is not None
                                                   else state.num_qubits))
    widest = len(live)
    prepare = state.prepare if state is not None else list
    steps: list[_Step] = []
    run: list[Instruction] = []
    run_condition: Condition | None = None
    flips: list[_Step] = []  # flips of known values, emitted after the current run
    uses: dict[int, list[int]] = {}
    for i, op in enumerate(instructions):
        for q in op.qubits:
            uses.setdefault(q, []).append(i)
    tail = len(instructions)  # the terminal measurements: sampled, never dropped after
    while tail and isinstance(instructions[tail - 1], Instruction) and \
            instructions[tail - 1].name == "measure" and instructions[tail - 1].condition is None:
        tail -= 1

    def flush():
        nonlocal run
        if run:
            steps.append(_Step("gates", prepare(run), run_condition))
            run = []
        # (a flip changes a known value, read only by later grow/measure/reset steps, which
        # come after a flush: it commutes with the run)
        steps.extend(flips)
        flips.clear()

    def slots(qubits):
        nonlocal widest
        missing = [q for q in qubits if bisect.bisect_left(live, q) == len(live)
                   or live[bisect.bisect_left(live, q)] != q]
        if missing:
            flush()
            for q in missing:  # a qubit becomes live: tensor in its known basis value
                slot = bisect.bisect_left(live, q)
                live.insert(slot, q)
                steps.append(_Step("grow", (slot, q)))
            widest = max(widest, len(live))
        return tuple(bisect.bisect_left(live, q) for q in qubits)

    def slot_of(q):
        j = bisect.bisect_left(live, q)
        return j if j < len(live) and live[j] == q else None

    def drop_after(i, q):
        """Whether qubit q, in a known basis state after instruction i, leaves the state: its
        next use that needs it in the state (X only flips its known value) is a reset or a
        measure, or comes after a gap, or there is none."""
        if not compact or i >= tail:
            return False
        later = uses[q]
        j = bisect.bisect_right(later, i)
        while j < len(later) and _known_value_op(instructions[later[j]]):
            j += 1
        if j == len(later):
            return True
        nxt = instructions[later[j]]
        return (isinstance(nxt, Instruction) and nxt.name in ("reset", "measure")) or \
            later[j] - i > _DROP_GAP

    for i, inst in enumerate(instructions):
        if isinstance(inst, NoiseOp):
            qs = slots(inst.qubits)
            flush()
            steps.append(_noise_step(state, inst, qs, pauli_programs))
            continue
        if inst.name == "barrier":
            continue
        if compact and _known_value_op(inst) and slot_of(inst.qubits[0]) is None:
            flips.append(_Step("flip", inst.qubits[0], inst.condition))
            continue
        if inst.is_gate:
            qs = slots(inst.qubits)
            if run and inst.condition != run_condition:
                flush()
            run_condition = inst.condition
            run.append(dataclasses.replace(inst, qubits=qs) if compact else inst)
            continue
        flush()
        q = inst.qubits[0]
        slot = slot_of(q)
        if inst.name == "measure":
            steps.append(_Step("measure", (slot, inst.clbits[0], readout.get(q), q),
                               inst.condition))
        else:  # reset
            steps.append(_Step("reset", (slot, q), inst.condition))
        if slot is not None and inst.condition is None and drop_after(i, q):
            live.pop(slot)
            steps.append(_Step("shrink", (slot, q)))
    flush()
    return steps, live, widest


def _prepare_steps(state: State, steps: Sequence[_Step]) -> list[_Step]:
    """A plan of :func:`_steps` (made without a state) with its programs prepared for ``state``."""
    out = []
    for step in steps:
        if step.kind == "gates":
            step = dataclasses.replace(step, payload=state.prepare(step.payload))
        elif step.kind == "pauli":
            probs, programs, slots = step.payload
            programs = [state.prepare(p) if p else None for p in programs]
            step = dataclasses.replace(step, payload=(probs, programs, slots))
        out.append(step)
    return out


def _noise_step(state: State | None, op: NoiseOp, slots: Sequence[int],
                pauli_programs: bool = True) -> _Step:
    ch = op.channel
    if ch.is_pauli and not pauli_programs:
        return _Step("pauli", (ch.pauli_probabilities, [None] * ch.pauli_probabilities.size,
                               tuple(slots)), op.condition)
    if ch.is_pauli:
        programs = []
        for a in range(ch.pauli_probabilities.size):
            gates = [Instruction(PAULI_GATES[d], (q,))
                     for d, q in zip(pauli_digits(a, ch.num_qubits), slots) if d]
            # (a plan without a state keeps the gates: see _prepare_steps)
            programs.append((gates if state is None else state.prepare(gates)) if gates else None)
        return _Step("pauli", (ch.pauli_probabilities, programs, tuple(slots)), op.condition)
    kraus = [np.asarray(k) for k in ch.kraus]
    povm = np.array([k.conj().T @ k for k in kraus])
    return _Step("kraus", (tuple(slots), kraus, povm), op.condition)


def _split(weights: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``shots`` independent draws land on each outcome of ``weights`` (need not sum
    to 1). One uniform per shot, so a rounding-level change of a weight (another backend or
    precision) almost never changes the result, unlike numpy's binomial/multinomial."""
    cdf = np.cumsum(weights)
    picks = np.searchsorted(cdf, rng.random(shots) * cdf[-1], side="right")
    return np.bincount(np.minimum(picks, cdf.size - 1), minlength=cdf.size)


def _branches(state: State, step: _Step, shots: int, rng: np.random.Generator,
              bits: list[int], num_clbits: int) -> list[tuple[Any, int]]:
    """Split ``shots`` trajectories in ``state`` over the outcomes of a random step: a list of
    (outcome, number of shots), numbers > 0 (a multinomial draw: the shots are independent).
    A qubit outside the state reads its known value, with the same draws as from a state."""
    if step.kind == "pauli":
        probs = step.payload[0]
        return [(a, int(c)) for a, c in enumerate(_split(probs, shots, rng)) if c]
    if step.kind == "kraus":
        qubits, _, povm = step.payload
        # ||K_i psi||^2 = Tr(K_i^dagger K_i rho_qubits), all i from one reduced density matrix
        rho = state.reduced_density_matrix(qubits)
        weights = np.clip(np.real(np.einsum("kij,ji->k", povm, rho)), 0.0, None)
        counts = _split(weights, shots, rng)
        return [((i, weights[i]), int(c)) for i, c in enumerate(counts) if c]
    slot, qubit = step.payload[0], step.payload[-1]
    if slot is None:
        p1 = float(bits[num_clbits + qubit])
    else:
        p1 = min(max(float(state.probabilities([slot])[1]), 0.0), 1.0)
    ones = int(_split(np.array([1.0 - p1, p1]), shots, rng)[1])
    groups = [((o, p), c) for o, p, c in ((0, 1.0 - p1, shots - ones), (1, p1, ones)) if c]
    confusion = step.payload[2] if step.kind == "measure" else None
    if step.kind == "reset" or confusion is None:
        return [((o, p, o), c) for (o, p), c in groups]
    out = []
    for (o, p), c in groups:  # readout error: recorded bit != outcome with P(flip | outcome)
        flips = int(_split(confusion[o], c, rng)[1 - o])
        out += [((o, p, r), n) for r, n in ((o, c - flips), (1 - o, flips)) if n]
    return out


def _apply_branch(state: State, step: _Step, outcome: Any, bits: list[int],
                  num_clbits: int) -> None:
    """Put ``state`` (and ``bits``: clbits, then the known value of each qubit) on the branch
    ``outcome`` of :func:`_branches`."""
    if step.kind == "pauli":
        program = step.payload[1][outcome]
        if program is not None:
            state.execute(program)
    elif step.kind == "kraus":
        qubits, kraus, _ = step.payload
        i, weight = outcome
        state.apply_gate(kraus[i] / np.sqrt(weight), qubits)
    elif step.kind == "measure":
        slot, clbit, _, qubit = step.payload
        o, p, recorded = outcome
        if slot is not None:
            state.collapse(slot, o, p)
        bits[clbit] = recorded
        bits[num_clbits + qubit] = o
    else:  # reset
        slot, qubit = step.payload
        o, p, _ = outcome
        if slot is not None:
            state.collapse(slot, o, p)
            if o:
                state.flip(slot)
        bits[num_clbits + qubit] = 0


def _record(indices: np.ndarray, measures: Sequence[tuple], bits: Sequence[int],
            num_clbits: int, rng: np.random.Generator) -> dict[str, int]:
    """Counts of shots that sampled basis ``indices`` and then measured (slot or None, clbit,
    readout confusion or None, qubit) in program order (a later measure into a clbit wins);
    ``bits`` holds the clbits recorded before, then each qubit's known value (read by a measure
    whose slot is None). Readout errors draw once per shot and confused measurement."""
    indices = np.asarray(indices)  # a kernel set may return its own array type
    if all(m[2] is None for m in measures):
        indices, weights = np.unique(indices, return_counts=True)  # bits follow from the index
    else:
        weights = np.ones(len(indices), dtype=np.int64)
    if num_clbits <= 62:  # each shot's clbits as one integer
        keys = np.full(len(indices), sum(int(b) << c for c, b in enumerate(bits[:num_clbits])),
                       dtype=np.int64)
        for measure in measures:
            clbit, value = _recorded(measure, indices, bits, num_clbits, rng)
            keys = (keys & ~np.int64(1 << clbit)) | (value.astype(np.int64) << clbit)
        keys, inverse = np.unique(keys, return_inverse=True)
        totals = np.bincount(inverse.ravel(), weights=weights, minlength=len(keys))
        return {format(int(key), f"0{num_clbits}b") if num_clbits else "": int(t)
                for key, t in zip(keys, totals)}
    table = np.tile(np.asarray(bits[:num_clbits], dtype=np.uint8), (len(indices), 1))
    for measure in measures:
        clbit, value = _recorded(measure, indices, bits, num_clbits, rng)
        table[:, clbit] = value
    rows, inverse = np.unique(table, axis=0, return_inverse=True)
    totals = np.bincount(inverse.ravel(), weights=weights, minlength=len(rows))
    return {_bitstring(row): int(t) for row, t in zip(rows, totals)}


def _recorded(measure: tuple, indices: np.ndarray, bits: Sequence[int], num_clbits: int,
              rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """The clbit of a terminal measurement (slot, clbit, confusion, qubit) and the value it
    records for each sampled basis index (a readout error drawn per shot)."""
    slot, clbit, confusion, qubit = measure
    if slot is None:  # a qubit not in the state: its known value
        value = np.full(len(indices), bits[num_clbits + qubit], dtype=np.int64)
    else:
        value = (indices >> slot) & 1
    if confusion is not None:
        value = value ^ (rng.random(len(indices)) < confusion[value, 1 - value])
    return clbit, value


def _expand(psi: np.ndarray, live: Sequence[int], bits: Sequence[int], num_clbits: int,
            num_qubits: int) -> np.ndarray:
    """The full statevector from a compacted one (bit j = qubit ``live[j]``; every other qubit
    in its known basis value)."""
    if len(live) == num_qubits:
        return psi
    j = np.arange(psi.size, dtype=np.int64)
    index = np.zeros(psi.size, dtype=np.int64)
    for b, q in enumerate(live):
        index |= ((j >> b) & 1) << q
    for q in set(range(num_qubits)) - set(live):
        index |= np.int64(bits[num_clbits + q]) << q
    full = np.zeros(1 << num_qubits, dtype=psi.dtype)
    full[index] = psi
    return full


def _bitstring(bits: Sequence[int]) -> str:
    return "".join("1" if b else "0" for b in reversed(bits))


def _check_circuit(circuit: Any, where: str) -> None:
    """The public methods take a :class:`Circuit`, nothing else (a clear error, not an
    AttributeError deep in the executor)."""
    check.instance(circuit, Circuit, f"{where}: circuit", CircuitError)


def _basis_indices(indices: Any, num_qubits: int) -> Any:
    """``indices`` checked to be basis-state indices in ``[0, 2^num_qubits)``: a sequence of
    integers or an integer numpy array (checked at once, it may be long)."""
    size = 1 << num_qubits
    if isinstance(indices, np.ndarray) and indices.dtype.kind in "iu" and indices.ndim == 1:
        if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= size):
            bad = indices[(indices < 0) | (indices >= size)][0]
            raise OptionError(f"amplitudes: indices must be integers in [0, {size - 1}], "
                              f"got {int(bad)}")
        return indices
    return list(check.indices(indices, size, "amplitudes: indices", distinct=False))


class Backend(ABC):
    """A simulator. Subclasses provide :meth:`new_state`; everything else is shared."""

    name = "base"
    default_precision = "single"
    #: Live-qubit compaction in dynamic and noisy runs (where the state supports it, see
    #: :attr:`State.supports_resize`, and no checkpoint is written or resumed).
    compaction: bool = True

    #: Whether the states of :meth:`new_state` support compaction (:attr:`State.supports_resize`),
    #: known before one is allocated, so that a run allocates only its live qubits.
    resizable_states: bool = False
    #: Temporaries of one state update, in states (a gate that builds its result in new arrays).
    work_states: float = 0.0

    @abstractmethod
    def new_state(self, num_qubits: int, precision: str) -> State:
        """|0...0> on ``num_qubits`` qubits (after :meth:`check_state_fits`)."""

    # -- memory (see qsim_dist.memory) --------------------------------------------------------
    def state_bytes(self, num_qubits: int, precision: str) -> int:
        """Bytes this process holds for one state of ``num_qubits`` (its shard, if sharded)."""
        return np.dtype(DTYPES[precision]).itemsize << num_qubits  # a Python int: no overflow

    def work_bytes(self, num_qubits: int, precision: str) -> int:
        """Bytes of the temporaries of one update of such a state (buffers, new arrays)."""
        return int(self.work_states * self.state_bytes(num_qubits, precision))

    def _available_memory(self) -> int:
        """Bytes this process may still allocate (:func:`qsim_dist.memory.available_bytes`)."""
        return memory.available_bytes()

    def _check_fits(self, needed: Callable[[str], int], what: str, precision: str) -> None:
        """Refuse ``needed(precision)`` bytes where they do not fit, one decision for all the
        processes of the backend (the poorest decides, so that every MPI rank refuses
        together); the hint to use single precision only where the caller can choose it and
        it would fit."""
        available = self._available_memory()
        comm = getattr(self, "comm", None)
        if comm is not None and getattr(comm, "size", 1) > 1:
            available = comm.allreduce_min(available)
        bytes_needed = needed(precision)
        if bytes_needed <= available:
            return
        hint = memory.precision_hint_for(precision)
        if hint and needed("single") > available:
            hint = None
        memory.check_fits(bytes_needed, what, hint, available)

    def check_state_fits(self, num_qubits: int, precision: str) -> None:
        """Refuse (:class:`~qsim_dist.errors.BackendError`) a state that does not fit, before
        it is allocated: :meth:`new_state` of every backend calls it."""
        self._check_fits(lambda p: self.state_bytes(num_qubits, p) + self.work_bytes(num_qubits, p),
                         _state_words(num_qubits, precision), precision)

    def _check_run_memory(self, circuit: Circuit, noisy, width: int, precision: str,
                          shots: int, dynamic: bool, pauli: bool, save_state: bool) -> None:
        """Refuse a run whose peak does not fit, before anything is allocated: its state of
        ``width`` qubits (the most live at once), one copy where shots branch (a dynamic or
        noisy run), the update temporaries, the saved full state of a branching run, the
        per-shot sampling arrays, the Pauli draws and trajectory rows of a Pauli-noise run."""
        n = circuit.num_qubits
        trajectories = max(shots, 1) if dynamic else shots
        events = sum(isinstance(op, NoiseOp) for op in noisy.ops) if pauli else 0
        rows = min(max(1, _BATCH_AMPLITUDES >> n), trajectories)

        def needed(p: str) -> int:
            total = (2 if dynamic else 1) * self.state_bytes(width, p) + self.work_bytes(width, p)
            if dynamic and save_state:  # the first branch's state, expanded to every qubit
                total += np.dtype(DTYPES[p]).itemsize << n
            if pauli:  # the draws (and their sorted copy), the batch of trajectory rows
                total += 4 * events * trajectories + 2 * rows * self.state_bytes(n, p)
            return total + _SHOT_BYTES * trajectories

        what = _state_words(width, precision)
        extra = (["a copy"] if dynamic else []) + (["the saved state"] if dynamic and save_state
                                                    else [])
        if _SHOT_BYTES * trajectories >= 1 << 26:
            extra.append(f"{trajectories} shots")
        if extra:
            what += " with " + ", ".join(extra[:-1]) + (" and " if len(extra) > 1 else "") + \
                extra[-1]
        self._check_fits(needed, what, precision)

    # -- public API ------------------------------------------------------------------------
    def run(self, circuit: Circuit, shots: int = 1024, seed: int | None = None,
            precision: str | None = None, save_state: bool = False,
            progress: bool | None = None, noise: NoiseModel | None = None,
            checkpoint: Checkpointing | None = None) -> Result:
        """Simulate ``circuit``; sample ``shots`` outcomes of its measurements.

        ``save_state`` keeps the final statevector: for a circuit whose measurements are all
        terminal, the state just before them (they are sampled, not applied); for a dynamic or
        noisy circuit, the state of the first branch (one trajectory) at its end, before its
        terminal measurements.
        ``noise`` inserts a noise model's channels and readout errors (see the module docstring).
        ``checkpoint`` writes checkpoints of the run and/or resumes one (see
        :mod:`qsim_dist.io.checkpoint`); a resumed run takes the checkpoint's seed when ``seed``
        is None.
        """
        options = RunOptions.resolve(
            shots, seed, precision, default_precision=self.default_precision,
            resume=checkpoint is not None and checkpoint.resume is not None)
        return self._run(circuit, options, save_state=save_state, progress=progress,
                         noise=noise, checkpoint=checkpoint)

    def _run(self, circuit: Circuit, options: RunOptions, save_state: bool = False,
             progress: bool | None = None, noise: NoiseModel | None = None,
             checkpoint: Checkpointing | None = None) -> Result:
        """:meth:`run` with its options resolved."""
        shots, seed, precision = options.shots, options.seed, options.precision
        t0 = time.perf_counter()
        noisy = noise.lower(circuit) if noise is not None else None
        checkpoints = None
        if checkpoint is not None:
            ops = noisy.ops if noisy is not None else [i for i in circuit if i.name != "barrier"]
            checkpoints = _Checkpoints(checkpoint, Header(
                fingerprint=fingerprint(circuit.num_qubits, circuit.num_clbits, ops),
                circuit=circuit.name, num_qubits=circuit.num_qubits, precision=precision,
                seed=-1 if seed is None else int(seed), shots=int(shots), position=0, total=0,
                clbits=(0,) * circuit.num_clbits))
            seed = checkpoints.header.seed if checkpoints.resumed else seed
        if checkpoints is not None:
            checkpoints.header = dataclasses.replace(checkpoints.header, seed=seed)
        rng = np.random.default_rng(seed)
        dynamic = circuit.is_dynamic() or (noisy is not None and noisy.has_channels)
        pauli = dynamic and _pauli_only(circuit, noisy)
        n = circuit.num_qubits
        live = plan = None
        width = start = n
        if dynamic and not pauli:
            # the plan first, so that only the live qubits are allocated (compaction: the state
            # starts with the qubits the deterministic prefix touches, grows to ``width``)
            instructions, readout, first = _dynamic_split(circuit, noisy)
            if self.compaction and checkpoints is None and self.resizable_states:
                live = sorted({q for inst in instructions[:first] for q in inst.qubits})
                start = len(live)
            plan = _steps(None, instructions[first:], readout, live, n)
            width = plan[2]
        self._check_run_memory(circuit, noisy, width, precision, shots, dynamic, pauli,
                               save_state)
        state = self.new_state(start, precision)
        with _Progress(progress) as bar:
            if pauli:
                counts, sv = self._run_pauli(circuit, state, shots, rng, save_state, bar, noisy,
                                             checkpoints)
            elif dynamic:
                counts, sv = self._run_dynamic(circuit, state, shots, rng, save_state, bar, noisy,
                                               checkpoints, live, plan)
            else:
                counts, sv = self._run_static(circuit, state, shots, rng, save_state, bar, noisy,
                                              checkpoints)
        metadata = checkpoints.metadata() if checkpoints is not None else {}
        return Result(
            num_qubits=circuit.num_qubits, num_clbits=circuit.num_clbits, shots=shots, seed=seed,
            precision=precision, backend=self.name, counts=counts, statevector=sv,
            wall_time=time.perf_counter() - t0, compile_time=state.compile_time,
            circuit_name=circuit.name, metadata=metadata)

    def final_state(self, circuit: Circuit, precision: str | None = None) -> State:
        """The state after the gates of a circuit without measurement, reset or conditions."""
        _check_circuit(circuit, "final_state")
        precision = self._check_precision(precision)
        if any(not i.is_gate and i.name != "barrier" for i in circuit) or any(
                i.condition for i in circuit):
            raise CircuitError("final_state needs a circuit of gates only (no measure/reset/if)")
        state = self.new_state(circuit.num_qubits, precision)
        state.execute(state.prepare([i for i in circuit if i.is_gate]))
        return state

    def statevector(self, circuit: Circuit, precision: str | None = None) -> np.ndarray:
        """Final statevector (complex128) of a circuit of gates; measurements are ignored."""
        _check_circuit(circuit, "statevector")
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).statevector()

    def probabilities(self, circuit: Circuit, qubits: Sequence[int] | None = None,
                      precision: str | None = None) -> np.ndarray:
        """Probabilities of the basis states of ``qubits`` (distinct qubit indices, qubits[0]
        least significant; every qubit when None) after the gates of ``circuit``."""
        _check_circuit(circuit, "probabilities")
        if qubits is not None:
            qubits = list(check.indices(qubits, circuit.num_qubits, "probabilities: qubits"))
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).probabilities(qubits)

    def amplitudes(self, circuit: Circuit, indices: Sequence[int],
                   precision: str | None = None) -> np.ndarray:
        """Amplitudes of the basis states ``indices`` (each in ``[0, 2^n)``; negative indices do
        not wrap) after the gates of ``circuit``."""
        _check_circuit(circuit, "amplitudes")
        indices = _basis_indices(indices, circuit.num_qubits)
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).amplitudes(indices)

    def expectation(self, circuit: Circuit, observable: PauliSum | str | Sequence,
                    precision: str | None = None) -> float:
        """<psi|H|psi> for a Hermitian Pauli sum H (see :func:`qsim_dist.observables.as_pauli_sum`)."""
        _check_circuit(circuit, "expectation")
        h = as_pauli_sum(observable, circuit.num_qubits)
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        state = self.final_state(gates, precision)
        total = sum(c * state.pauli_expectation(x, z) for c, x, z in h.terms)
        return float(np.real(total))

    # -- the executor ----------------------------------------------------------------------
    def _check_precision(self, precision: str | None) -> str:
        return check_precision(precision, self.default_precision)

    def _run_static(self, circuit, state, shots, rng, save_state, bar, noisy=None,
                    checkpoints=None):
        gates, measures = _split_terminal_measurements(circuit)
        _apply_gates(state, gates, bar, checkpoints)
        sv = state.statevector() if save_state else None
        counts: dict[str, int] = {}
        readout = noisy.readout if noisy is not None else {}
        state.end_of_branch(shots, range(circuit.num_qubits), {})
        if shots and measures:
            indices = state.sample_indices(np.sort(rng.random(shots)))
            counts = _record(indices, [(m.qubits[0], m.clbits[0], readout.get(m.qubits[0]),
                                        m.qubits[0]) for m in measures],
                             [0] * circuit.num_clbits, circuit.num_clbits, rng)
        elif shots and circuit.num_clbits:
            counts = {_bitstring([0] * circuit.num_clbits): shots}
        return counts, sv

    def _run_dynamic(self, circuit, state, shots, rng, save_state, bar, noisy=None,
                     checkpoints=None, live=None, plan=None):
        """``live``: the sorted qubits ``state`` holds (compaction), or None for all of them;
        ``plan``: what :func:`_steps` planned without a state for ``live`` (made when None)."""
        instructions, readout, first = _dynamic_split(circuit, noisy)
        n, ncl = circuit.num_qubits, circuit.num_clbits
        if plan is None:
            plan = _steps(None, instructions[first:], readout, live, n)
        steps, live_end = _prepare_steps(state, plan[0]), plan[1]
        state_qubits = set(live_end)
        # terminal measurements: sampled together from each branch's final state
        body = len(steps)
        while body and steps[body - 1].kind == "measure" and steps[body - 1].condition is None:
            body -= 1
        final = [s.payload for s in steps[body:]]
        trajectories = max(shots, 1)
        bar.add_total(trajectories)
        prefix = instructions[:first]
        if live is not None:
            slot = {q: j for j, q in enumerate(live)}
            prefix = [dataclasses.replace(i, qubits=tuple(slot[q] for q in i.qubits))
                      for i in prefix]
        _apply_gates(state, prefix, bar, checkpoints)
        counts: Counter[str] = Counter()
        saved: list[np.ndarray] = []
        # Shot branching: a group of trajectories shares one state until a random step splits it;
        # a frame [step index, state before the split, step, outcomes left, bits] waits on the
        # stack, and its last outcome reuses the state instead of a copy. ``bits`` holds the
        # clbits, then the basis value of every qubit that is known (measured or reset).
        stack: list[list] = []

        def advance(k: int, st: State, group: int, bits: list[int]) -> None:
            while k < body:
                step = steps[k]
                k += 1
                if step.condition is not None and not step.condition.holds(bits):
                    continue
                kind = step.kind
                if kind == "gates":
                    st.execute(step.payload)
                    continue
                if kind == "grow":
                    st.add_qubit(step.payload[0], bits[ncl + step.payload[1]])
                    continue
                if kind == "shrink":
                    st.remove_qubit(step.payload[0], bits[ncl + step.payload[1]])
                    continue
                if kind == "flip":  # X on a qubit outside the state: its known value flips
                    bits[ncl + step.payload] ^= 1
                    continue
                branches = _branches(st, step, group, rng, bits, ncl)
                if len(branches) > 1:
                    stack.append([k, st, step, branches, bits])
                    return
                _apply_branch(st, step, branches[0][0], bits, ncl)
            st.end_of_branch(group, live_end, {q: bits[ncl + q] for q in
                                               range(n) if q not in state_qubits})
            if save_state and not saved:
                saved.append(_expand(st.statevector(), live_end, bits, ncl, n))
            if shots and final:
                indices = st.sample_indices(np.sort(rng.random(group)))
                counts.update(_record(indices, final, bits, ncl, rng))
            elif shots:
                counts[_bitstring(bits[:ncl])] += group
            bar.update(group)

        advance(0, state, trajectories, [0] * (ncl + n))
        while stack:
            k, st, step, branches, bits = stack[-1]
            outcome, group = branches.pop()
            if branches:
                st, bits = st.copy(), list(bits)
            else:
                stack.pop()
            _apply_branch(st, step, outcome, bits, ncl)
            advance(k, st, group, bits)
        return dict(counts), (saved[0] if saved else None)

    def _run_pauli(self, circuit, state, shots, rng, save_state, bar, noisy, checkpoints=None):
        """Trajectories of a circuit whose only randomness is Pauli noise and terminal
        measurement (see the module docstring): every shot's Paulis are drawn up front, one
        event at a time; the shots, sorted by their Pauli sequence, share one state per distinct
        prefix: a tree walked with state copies (any state); with the CPU kernels, walked
        depth first on one cache-resident row per piece of the shots, pieces in parallel
        (states up to ``_WALK_QUBITS`` qubits), or level by level on a batch of rows (wider
        states, and every state with the JAX kernels: vectorised over the batch)."""
        ops = [op for op in noisy.ops if not (isinstance(op, Instruction)
                                              and op.name == "measure")]
        final = [(op.qubits[0], op.clbits[0], noisy.readout.get(op.qubits[0]), op.qubits[0])
                 for op in noisy.ops if isinstance(op, Instruction) and op.name == "measure"]
        ncl = circuit.num_clbits
        first = next(k for k, op in enumerate(ops) if isinstance(op, NoiseOp))
        kernels = getattr(state, "batch_kernels", None)  # rows of trajectories, if any
        batch = kernels is not None  # Paulis as masks, not programs
        steps = _steps(state, ops[first:], None, None, circuit.num_qubits,
                       pauli_programs=not batch)[0]
        trajectories = max(shots, 1)
        bar.add_total(trajectories)
        _apply_gates(state, ops[:first], bar, checkpoints)
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
        if kernels == "cpu" and state.num_qubits <= _WALK_QUBITS:
            self._pauli_walk(state, steps, events, draws, uniforms, indices, save_state, saved)
        elif batch:
            self._pauli_rows(state, steps, events, draws, uniforms, indices, save_state, saved)
        else:
            self._pauli_tree(state, steps, event_of, draws, uniforms, indices, save_state, saved)
        bar.update(trajectories)
        counts: dict[str, int] = {}
        if shots and final:
            counts = _record(indices, final, [0] * ncl, ncl, rng)
        elif shots:
            counts = {_bitstring([0] * ncl): shots}
        return counts, (saved[0] if saved else None)

    @staticmethod
    def _pauli_tree(state, steps, event_of, draws, uniforms, indices, save_state, saved):
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
            indices[lo:hi] = np.asarray(st.sample_indices(uniforms[lo:hi]))

    @staticmethod
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
        longest = max(1, _BATCH_AMPLITUDES // start.size)  # shots per piece at most
        cuts = np.unique(np.concatenate(([0, total], cuts, np.arange(0, total, longest))))
        out = np.empty(total, dtype=np.int64)
        row = np.empty(start.size if save_state else 0, dtype=start.dtype)
        run_trajectories(start, cuts.astype(np.int64), meta, qubits, mats, rmats, aux, draws,
                         uniforms, out, row)
        indices[:] = out
        if save_state:
            saved.append(row)

    @staticmethod
    def _pauli_rows(state, steps, events, draws, uniforms, indices, save_state, saved):
        """Level by level on a batch of rows (the state's row methods: CPU set in place, JAX
        vectorised on the device): shots that share their Pauli prefix share a row; a row is
        copied when its shots' Paulis first differ; every gate run is one pass over the batch,
        every noise event one per-row Pauli pass; at the end each shot samples its row."""
        masks = {k: _pauli_masks(steps[k].payload[0], steps[k].payload[2],
                                 np.dtype(state.dtype)) for k in events}
        event_of = {k: e for e, k in enumerate(events)}
        total = draws.shape[1]
        chunk = max(1, _BATCH_AMPLITUDES >> state.num_qubits)
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


def _pauli_only(circuit: Circuit, noisy) -> bool:
    """A circuit whose only randomness is unconditioned Pauli noise and terminal measurement."""
    return noisy is not None and not circuit.is_dynamic() and all(
        op.channel.is_pauli and op.condition is None
        for op in noisy.ops if isinstance(op, NoiseOp))


def _pauli_masks(probs: np.ndarray, slots: Sequence[int], dtype) -> tuple[np.ndarray, ...]:
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


def _flatten_steps(steps: Sequence[_Step], dtype) -> tuple[np.ndarray, ...]:
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
            x, z, phase = _pauli_masks(probs, slots, dtype)
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


_SHOT_BYTES = 64  # a shot's share of the sampling arrays (draws, sorted draws, indices, keys)


def _state_words(num_qubits: int, precision: str) -> str:
    """``a 30-qubit state (2^30 amplitudes, complex64)``, for memory messages."""
    return f"a {num_qubits}-qubit state (2^{num_qubits} amplitudes, " \
        f"{np.dtype(DTYPES[precision]).name})"


_WALK_QUBITS = 14  # rows up to 2^14 amplitudes (128 KiB in complex64) stay in cache per walk
_BATCH_AMPLITUDES = 1 << 24  # rows x 2^n of one batch (128 MiB in complex64)


def _dynamic_split(circuit: Circuit, noisy) -> tuple[list, dict, int]:
    """A dynamic run's instructions (noise inserted, barriers dropped), readout matrices, and
    the length of its deterministic prefix (unconditioned gates before any random step)."""
    if noisy is not None:
        instructions, readout = noisy.ops, noisy.readout
    else:
        instructions, readout = [i for i in circuit if i.name != "barrier"], {}
    first = next((k for k, i in enumerate(instructions) if isinstance(i, NoiseOp)
                  or not i.is_gate or i.condition is not None), len(instructions))
    return instructions, readout, first


def _apply_gates(state: State, gates: Sequence[Instruction], bar: "_Progress",
                 checkpoints: "_Checkpoints | None") -> None:
    """Apply a run of unconditioned gates: in one program, or in checkpointed chunks."""
    if checkpoints is None:
        program = state.prepare(gates)
        bar.add_total(state.program_size(program))
        state.execute(program, bar.update)
    else:
        checkpoints.apply(state, gates, bar)


class _Checkpoints:
    """Checkpointing of one run (:mod:`qsim_dist.io.checkpoint`): reads the checkpoint to resume
    at construction, so that a refused one costs nothing; applies the deterministic part in
    chunks, writing a checkpoint after a chunk when the interval has passed."""

    def __init__(self, options: Checkpointing, header: Header):
        self.options = options
        self.header = header
        self.written = 0
        self.resumed = options.resume is not None
        if options.path is not None:
            from ..io.checkpoint import check_writable

            check_writable(options.path)
        if self.resumed:
            saved = read_header(options.resume)
            check_resumable(saved, options.resume, header.fingerprint, header.num_qubits,
                            header.precision, header.shots, None if header.seed < 0
                            else header.seed)
            self.header = dataclasses.replace(header, seed=saved.seed, position=saved.position,
                                              total=saved.total)
        self.resumed_at = self.header.position

    def apply(self, state: State, gates: Sequence[Instruction], bar: "_Progress") -> None:
        if self.resumed:
            state.load_checkpoint(Path(self.options.resume), self.header)
        start, step = self.header.position, self.options.gates
        chunks = [gates[i:i + step] for i in range(start, len(gates), step)]
        programs = [state.prepare(chunk) for chunk in chunks]
        bar.add_total(sum(state.program_size(p) for p in programs))
        last, position = time.monotonic(), start
        for chunk, program in zip(chunks, programs):
            state.execute(program, bar.update)
            position += len(chunk)
            due = self.options.path is not None and \
                time.monotonic() - last >= self.options.every
            if state.agree(due):
                self.header = dataclasses.replace(self.header, position=position,
                                                  total=len(gates))
                state.write_checkpoint(Path(self.options.path), self.header)
                self.written += 1
                last = time.monotonic()

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"checkpoints_written": self.written}
        if self.resumed:
            out["resumed_at_gate"] = self.resumed_at
        return out


class _Progress:
    """A tqdm bar on a terminal, shown only once a run has taken a couple of seconds."""

    def __init__(self, enabled: bool | None):
        self.enabled = enabled
        self.bar = None
        self.total = 0

    def __enter__(self):
        import sys

        show = self.enabled if self.enabled is not None else sys.stderr.isatty()
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=0, delay=2.0, unit="op", desc="simulating", leave=False,
                            file=sys.stderr)
        return self

    def add_total(self, n: int) -> None:
        if self.bar is not None:
            self.total += n
            self.bar.total = self.total
            self.bar.refresh()

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
