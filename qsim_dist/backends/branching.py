"""Shot branching: the executor of static and dynamic runs on the state contract.

A circuit whose measurements are all terminal is simulated once and its shots are sampled from
the final state (:func:`run_static`). A dynamic circuit (mid-circuit measurement, reset,
feed-forward, noise channels) is simulated once up to its first random step; from there the shots
branch (:func:`run_dynamic`): a group of shots shares one state until a random step
(measurement, reset, noise) splits it by outcome (:func:`branch_outcomes`), each part continuing
on its own state (a copy, or the original for the last part, :func:`apply_branch`), and each
branch samples its terminal measurements from its final state at once (:func:`record_counts`).
The counts are those of independent per-shot trajectories; the work is one state update per
distinct branch, not per shot.

A Pauli channel splits its shots over the Paulis by their fixed probabilities; a general channel
splits them by ``||K_i psi||^2``, all read from the reduced density matrix of the channel's qubits,
then applies ``K_i / ||K_i psi||``. Readout errors change the recorded bit, not the state. Every
split draws one uniform per shot from the run's seeded stream, in a fixed order, so one seed gives
one result, and rounding-level differences between backends do not change it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Protocol, Sequence

import numpy as np

from .checkpointing import apply_gates
from .planning import (Step, dynamic_split, plan_steps, prepare_steps,
                       split_terminal_measurements)
from .state import State


class BranchObserver(Protocol):
    """What :meth:`~qsim_dist.backends.base.Backend.run` calls with ``observer=``: a reader of
    every trajectory branch's final state (the network layer's fidelity)."""

    def on_branch_end(self, state: State, shots: int, qubits: Sequence[int],
                      known: dict[int, int]) -> None:
        """Called when a branch ends (a static run: once, at its end), before its terminal
        measurements are sampled: its ``state`` (read it, do not change it), the ``shots`` of
        the branch, the logical qubit of each state bit (``qubits[j]`` is bit j; fewer than the
        circuit's after compaction) and the known basis value of every other qubit. A run of
        batched Pauli trajectories (:mod:`.trajectories`) has no branch states and does not
        call it."""


def split_over(weights: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``shots`` independent draws land on each outcome of ``weights`` (need not sum
    to 1). One uniform per shot, so a rounding-level change of a weight (another backend or
    precision) almost never changes the result, unlike numpy's binomial/multinomial."""
    cdf = np.cumsum(weights)
    picks = np.searchsorted(cdf, rng.random(shots) * cdf[-1], side="right")
    return np.bincount(np.minimum(picks, cdf.size - 1), minlength=cdf.size)


def branch_outcomes(state: State, step: Step, shots: int, rng: np.random.Generator,
                    bits: list[int], num_clbits: int) -> list[tuple[Any, int]]:
    """Split ``shots`` trajectories in ``state`` over the outcomes of a random step: a list of
    (outcome, number of shots), numbers > 0 (a multinomial draw: the shots are independent).
    A qubit outside the state reads its known value, with the same draws as from a state."""
    if step.kind == "pauli":
        probs = step.payload[0]
        return [(a, int(c)) for a, c in enumerate(split_over(probs, shots, rng)) if c]
    if step.kind == "kraus":
        qubits, _, povm = step.payload
        # ||K_i psi||^2 = Tr(K_i^dagger K_i rho_qubits), all i from one reduced density matrix
        rho = state.reduced_density_matrix(qubits)
        weights = np.clip(np.real(np.einsum("kij,ji->k", povm, rho)), 0.0, None)
        counts = split_over(weights, shots, rng)
        return [((i, weights[i]), int(c)) for i, c in enumerate(counts) if c]
    slot, qubit = step.payload[0], step.payload[-1]
    if slot is None:
        p1 = float(bits[num_clbits + qubit])
    else:
        p1 = min(max(float(state.probabilities([slot])[1]), 0.0), 1.0)
    ones = int(split_over(np.array([1.0 - p1, p1]), shots, rng)[1])
    groups = [((o, p), c) for o, p, c in ((0, 1.0 - p1, shots - ones), (1, p1, ones)) if c]
    confusion = step.payload[2] if step.kind == "measure" else None
    if step.kind == "reset" or confusion is None:
        return [((o, p, o), c) for (o, p), c in groups]
    out = []
    for (o, p), c in groups:  # readout error: recorded bit != outcome with P(flip | outcome)
        flips = int(split_over(confusion[o], c, rng)[1 - o])
        out += [((o, p, r), n) for r, n in ((o, c - flips), (1 - o, flips)) if n]
    return out


def apply_branch(state: State, step: Step, outcome: Any, bits: list[int],
                  num_clbits: int) -> None:
    """Put ``state`` (and ``bits``: clbits, then the known value of each qubit) on the branch
    ``outcome`` of :func:`branch_outcomes`."""
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


def record_counts(indices: np.ndarray, measures: Sequence[tuple], bits: Sequence[int],
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
    return {bitstring(row): int(t) for row, t in zip(rows, totals)}


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


def expand_state(psi: np.ndarray, live: Sequence[int], bits: Sequence[int], num_clbits: int,
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


def bitstring(bits: Sequence[int]) -> str:
    """The counts key of ``bits`` (bit 0 rightmost)."""
    return "".join("1" if b else "0" for b in reversed(bits))


def run_static(circuit, state: State, shots: int, rng: np.random.Generator, save_state: bool,
               bar, noisy=None, checkpoints=None,
               observer: BranchObserver | None = None) -> tuple[dict[str, int], Any]:
    """A circuit whose measurements are all terminal: its gates once (checkpointed in chunks
    with ``checkpoints``), then ``shots`` samples of its measurements from the final state.
    Returns the counts and, with ``save_state``, the state before the measurements."""
    gates, measures = split_terminal_measurements(circuit)
    apply_gates(state, gates, bar, checkpoints)
    sv = state.statevector() if save_state else None
    counts: dict[str, int] = {}
    readout = noisy.readout if noisy is not None else {}
    if observer is not None:
        observer.on_branch_end(state, shots, range(circuit.num_qubits), {})
    if shots and measures:
        qubits = sorted({m.qubits[0] for m in measures})
        indices = state.sample(qubits, np.sort(rng.random(shots)))
        counts = record_counts(indices, [(m.qubits[0], m.clbits[0], readout.get(m.qubits[0]),
                                          m.qubits[0]) for m in measures],
                               [0] * circuit.num_clbits, circuit.num_clbits, rng)
    elif shots and circuit.num_clbits:
        counts = {bitstring([0] * circuit.num_clbits): shots}
    return counts, sv


def run_dynamic(circuit, state: State, shots: int, rng: np.random.Generator, save_state: bool,
                bar, noisy=None, checkpoints=None, live: Sequence[int] | None = None,
                plan=None, observer: BranchObserver | None = None
                ) -> tuple[dict[str, int], Any]:
    """A dynamic or noisy circuit by shot branching (see the module docstring). ``live``: the
    sorted qubits ``state`` holds (compaction), or None for all of them; ``plan``: what
    :func:`plan_steps` planned without a state for ``live`` (made when None). Returns the counts
    and, with ``save_state``, the first branch's final state expanded to every qubit."""
    instructions, readout, first = dynamic_split(circuit, noisy, hoist=live is None)
    n, ncl = circuit.num_qubits, circuit.num_clbits
    if plan is None:
        plan = plan_steps(None, instructions[first:], readout, live, n)
    steps, live_end = prepare_steps(state, plan[0]), plan[1]
    state_qubits = set(live_end)
    # terminal measurements: sampled together from each branch's final state
    body = len(steps)
    while body and steps[body - 1].kind == "measure" and steps[body - 1].condition is None:
        body -= 1
    final = [s.payload for s in steps[body:]]
    final_slots = sorted({m[0] for m in final if m[0] is not None})
    trajectories = max(shots, 1)
    bar.add_total(trajectories)
    prefix = instructions[:first]
    if live is not None:
        slot = {q: j for j, q in enumerate(live)}
        prefix = [dataclasses.replace(i, qubits=tuple(slot[q] for q in i.qubits))
                  for i in prefix]
    apply_gates(state, prefix, bar, checkpoints)
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
            branches = branch_outcomes(st, step, group, rng, bits, ncl)
            if len(branches) > 1:
                stack.append([k, st, step, branches, bits])
                return
            apply_branch(st, step, branches[0][0], bits, ncl)
        if observer is not None:
            observer.on_branch_end(st, group, live_end, {q: bits[ncl + q] for q in
                                                         range(n) if q not in state_qubits})
        if save_state and not saved:
            saved.append(expand_state(st.statevector(), live_end, bits, ncl, n))
        if shots and final:
            indices = st.sample(final_slots, np.sort(rng.random(group)))
            counts.update(record_counts(indices, final, bits, ncl, rng))
        elif shots:
            counts[bitstring(bits[:ncl])] += group
        bar.update(group)

    advance(0, state, trajectories, [0] * (ncl + n))
    while stack:
        k, st, step, branches, bits = stack[-1]
        outcome, group = branches.pop()
        if branches:
            st, bits = st.copy(), list(bits)
        else:
            stack.pop()
        apply_branch(st, step, outcome, bits, ncl)
        advance(k, st, group, bits)
    return dict(counts), (saved[0] if saved else None)
