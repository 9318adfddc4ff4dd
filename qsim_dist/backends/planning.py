"""The executor's plan: a circuit (and its lowered noise) split into steps.

:func:`plan_steps` turns the instructions after a run's deterministic prefix into
:class:`Step` records (gate runs, measurements, resets, noise, the growing and shrinking of the
live state) that :mod:`.branching` and :mod:`.trajectories` execute; it can plan before any state
is allocated, so that a run knows the most qubits it will hold (compaction) and allocates only
those. No randomness is drawn here.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..circuit import Circuit, Condition, Instruction
from ..noise import PAULI_GATES, NoiseOp, pauli_digits
from .state import State

@dataclass
class Step:
    """One step of a plan: a gate run, a random step (measure, reset, pauli, kraus) or a change
    of the live state (grow, shrink, flip), under an optional condition; payloads as
    :func:`plan_steps` lists them."""

    kind: str  # "gates" | "measure" | "reset" | "pauli" | "kraus" | "grow" | "shrink" | "flip"
    payload: Any = None  # see plan_steps
    condition: Condition | None = None


def split_terminal_measurements(circuit: Circuit) -> tuple[list[Instruction], list[Instruction]]:
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


def plan_steps(state: State | None, instructions: Sequence[Instruction | NoiseOp],
               readout: dict[int, np.ndarray] | None = None, live: Sequence[int] | None = None,
               num_qubits: int | None = None,
               pauli_programs: bool = True) -> tuple[list[Step], list[int], int]:
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
    (a plan only; :func:`prepare_steps` prepares it for a state)."""
    readout = readout or {}
    compact = live is not None
    live = sorted(live) if compact else list(range(num_qubits if num_qubits is not None
                                                   else state.num_qubits))
    widest = len(live)
    prepare = state.prepare if state is not None else list
    steps: list[Step] = []
    run: list[Instruction] = []
    run_condition: Condition | None = None
    flips: list[Step] = []  # flips of known values, emitted after the current run
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
            steps.append(Step("gates", prepare(run), run_condition))
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
                steps.append(Step("grow", (slot, q)))
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
            steps.append(noise_step(state, inst, qs, pauli_programs))
            continue
        if inst.name == "barrier":
            continue
        if compact and _known_value_op(inst) and slot_of(inst.qubits[0]) is None:
            flips.append(Step("flip", inst.qubits[0], inst.condition))
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
            steps.append(Step("measure", (slot, inst.clbits[0], readout.get(q), q),
                               inst.condition))
        else:  # reset
            steps.append(Step("reset", (slot, q), inst.condition))
        if slot is not None and inst.condition is None and drop_after(i, q):
            live.pop(slot)
            steps.append(Step("shrink", (slot, q)))
    flush()
    return steps, live, widest


def prepare_steps(state: State, steps: Sequence[Step]) -> list[Step]:
    """A plan of :func:`plan_steps` (made without a state) with its programs prepared for
    ``state``."""
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


def noise_step(state: State | None, op: NoiseOp, slots: Sequence[int],
               pauli_programs: bool = True) -> Step:
    """The step of a noise channel on state ``slots``: "pauli" (its probabilities, a prepared
    program per Pauli, None for the identity or for all without ``pauli_programs``) or
    "kraus" (its operators and their ``K^dagger K``)."""
    ch = op.channel
    if ch.is_pauli and not pauli_programs:
        return Step("pauli", (ch.pauli_probabilities, [None] * ch.pauli_probabilities.size,
                               tuple(slots)), op.condition)
    if ch.is_pauli:
        programs = []
        for a in range(ch.pauli_probabilities.size):
            gates = [Instruction(PAULI_GATES[d], (q,))
                     for d, q in zip(pauli_digits(a, ch.num_qubits), slots) if d]
            # (a plan without a state keeps the gates: see prepare_steps)
            programs.append((gates if state is None else state.prepare(gates)) if gates else None)
        return Step("pauli", (ch.pauli_probabilities, programs, tuple(slots)), op.condition)
    kraus = [np.asarray(k) for k in ch.kraus]
    povm = np.array([k.conj().T @ k for k in kraus])
    return Step("kraus", (tuple(slots), kraus, povm), op.condition)


def hoist_gates(instructions: Sequence[Instruction | NoiseOp]) -> list[Instruction | NoiseOp]:
    """The instructions with every unconditioned gate moved ahead of the noise channels on
    other qubits before it (a stable sort; nothing passes a measurement, reset or conditioned
    gate, which keep their places). A unitary on other qubits leaves a channel's outcome
    probabilities as they were, so the draws and results are unchanged; what changes is how
    much of the run comes before a split, where all shots share it (after a split, shot
    branching repeats the work once per branch: a repeater chain's link preparations otherwise
    interleave with the noise of the links made before them). Gates do not pass measurements,
    which are what keeps an entanglement-limited state (``modulenet``) small."""
    keys, floor, fixed = [], 0, 0
    after: dict[int, int] = {}   # qubit -> fixed instructions a later gate on it must follow
    for idx, op in enumerate(instructions):
        if isinstance(op, Instruction) and op.is_gate and op.condition is None:
            rank = max([floor, *(after.get(q, 0) for q in op.qubits)])
            keys.append((rank, 0, idx))
            for q in op.qubits:
                after[q] = rank
            continue
        keys.append((fixed, 1, idx))
        fixed += 1
        if isinstance(op, NoiseOp):
            for q in op.qubits:
                after[q] = fixed
        else:
            floor = fixed
    return [instructions[k[2]] for k in sorted(keys)]


def dynamic_split(circuit: Circuit, noisy, hoist: bool = False) -> tuple[list, dict, int]:
    """A dynamic run's instructions (noise inserted, barriers dropped; with ``hoist``, gates
    moved ahead of noise by :func:`hoist_gates`: for a state that holds every qubit from the
    start, not a compacting one, whose width it would grow), readout matrices, and the length
    of its deterministic prefix (unconditioned gates before any random step)."""
    if noisy is not None:
        instructions, readout = noisy.ops, noisy.readout
    else:
        instructions, readout = [i for i in circuit if i.name != "barrier"], {}
    if hoist:
        instructions = hoist_gates(instructions)
    first = next((k for k, i in enumerate(instructions) if isinstance(i, NoiseOp)
                  or not i.is_gate or i.condition is not None), len(instructions))
    return instructions, readout, first


def pauli_only(circuit: Circuit, noisy) -> bool:
    """A circuit whose only randomness is unconditioned Pauli noise and terminal measurement."""
    return noisy is not None and not circuit.is_dynamic() and all(
        op.channel.is_pauli and op.condition is None
        for op in noisy.ops if isinstance(op, NoiseOp))


@dataclass(frozen=True)
class RunPlan:
    """How a run will go, decided before a state exists: ``dynamic`` (shots branch on
    measurements or noise), ``pauli`` (its only randomness is Pauli noise: batched
    trajectories), ``live`` (the sorted qubits a compacting state starts with, None for all),
    ``plan`` (:func:`plan_steps` of a dynamic, non-Pauli run) and ``width`` (the most qubits
    live at once: what a dense state of the run holds)."""

    dynamic: bool
    pauli: bool
    live: list[int] | None
    plan: tuple | None
    width: int


def plan_run(circuit: Circuit, noisy, compact: bool) -> RunPlan:
    """The :class:`RunPlan` of ``circuit`` with its lowered noise ``noisy`` (or None); with
    ``compact``, a state holds only the live qubits of a dynamic run (compaction)."""
    dynamic = circuit.is_dynamic() or (noisy is not None and noisy.has_channels)
    pauli = dynamic and pauli_only(circuit, noisy)
    n = circuit.num_qubits
    if not dynamic or pauli:
        return RunPlan(dynamic, pauli, None, None, n)
    # the plan first, so that only the live qubits are allocated (compaction: the state
    # starts with the qubits the deterministic prefix touches, grows to ``width``)
    instructions, readout, first = dynamic_split(circuit, noisy, hoist=not compact)
    live = sorted({q for inst in instructions[:first] for q in inst.qubits}) if compact else None
    plan = plan_steps(None, instructions[first:], readout, live, n)
    return RunPlan(dynamic, pauli, live, plan, plan[2])
