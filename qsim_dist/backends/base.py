"""What every statevector backend shares: the State interface and the one circuit executor.

A backend only says how to hold and update a state (:class:`State`); how a circuit becomes gate
runs, measurements, resets, conditions and shots is decided here, once, for all backends.

Shots: a circuit whose measurements are all terminal is simulated once and its shots are sampled
from the final probabilities. A dynamic circuit (mid-circuit measurement, reset, feed-forward) is
simulated once up to its first non-unitary step; each shot then continues from a copy of that state.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..circuit import Circuit, Condition, Instruction
from ..errors import OptionError
from ..observables import PauliSum, as_pauli_sum
from ..results import Result

PRECISIONS = ("single", "double")


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

    def pauli_expectation(self, x_mask: int, z_mask: int) -> complex:
        """<psi| P |psi> for the Pauli string with X on ``x_mask`` bits and Z on ``z_mask`` bits
        (Y where both are set). See :mod:`qsim_dist.observables` for the sign convention."""
        from ..observables import apply_pauli_to_vector

        psi = self.statevector()
        return complex(np.vdot(psi, apply_pauli_to_vector(psi, x_mask, z_mask)))


# ---- the plan: a circuit split into steps ---------------------------------------------------

@dataclass
class _Step:
    kind: str  # "gates" | "measure" | "reset"
    payload: Any = None  # prepared program, or (qubit, clbit), or qubit
    condition: Condition | None = None


def _split_terminal_measurements(circuit: Circuit) -> tuple[list[Instruction], list[Instruction]]:
    """Gates (barriers dropped) and the terminal measurements of a non-dynamic circuit."""
    gates = [i for i in circuit if i.is_gate]
    measures = [i for i in circuit if i.name == "measure"]
    return gates, measures


def _steps(state: State, instructions: Sequence[Instruction]) -> list[_Step]:
    steps: list[_Step] = []
    run: list[Instruction] = []
    run_condition: Condition | None = None

    def flush():
        nonlocal run
        if run:
            steps.append(_Step("gates", state.prepare(run), run_condition))
            run = []

    for inst in instructions:
        if inst.name == "barrier":
            continue
        if inst.is_gate:
            if run and inst.condition != run_condition:
                flush()
            run_condition = inst.condition
            run.append(inst)
            continue
        flush()
        if inst.name == "measure":
            steps.append(_Step("measure", (inst.qubits[0], inst.clbits[0]), inst.condition))
        else:  # reset
            steps.append(_Step("reset", inst.qubits[0], inst.condition))
    flush()
    return steps


def _measure(state: State, qubit: int, rng: np.random.Generator) -> int:
    p1 = float(state.probabilities([qubit])[1])
    outcome = int(rng.random() < p1)
    state.collapse(qubit, outcome, p1 if outcome else 1.0 - p1)
    return outcome


def _bitstring(bits: Sequence[int]) -> str:
    return "".join("1" if b else "0" for b in reversed(bits))


class Backend(ABC):
    """A simulator. Subclasses provide :meth:`new_state`; everything else is shared."""

    name = "base"
    default_precision = "single"

    @abstractmethod
    def new_state(self, num_qubits: int, precision: str) -> State:
        """|0...0> on ``num_qubits`` qubits."""

    # -- public API ------------------------------------------------------------------------
    def run(self, circuit: Circuit, shots: int = 1024, seed: int | None = None,
            precision: str | None = None, save_state: bool = False,
            progress: bool | None = None) -> Result:
        """Simulate ``circuit``; sample ``shots`` outcomes of its measurements.

        ``save_state`` keeps the final statevector: for a circuit whose measurements are all
        terminal, the state just before them (they are sampled, not applied); for a dynamic
        circuit, the state at the end of the first shot.
        """
        precision = self._check_precision(precision)
        if not isinstance(shots, (int, np.integer)) or isinstance(shots, bool) or shots < 0:
            raise OptionError(f"shots must be a non-negative integer, got {shots!r}")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise OptionError(f"seed must be a non-negative integer, got {seed!r}")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (1 << 63))
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        state = self.new_state(circuit.num_qubits, precision)
        with _Progress(progress) as bar:
            if circuit.is_dynamic():
                counts, sv = self._run_dynamic(circuit, state, shots, rng, save_state, bar)
            else:
                counts, sv = self._run_static(circuit, state, shots, rng, save_state, bar)
        return Result(
            num_qubits=circuit.num_qubits, num_clbits=circuit.num_clbits, shots=shots, seed=seed,
            precision=precision, backend=self.name, counts=counts, statevector=sv,
            wall_time=time.perf_counter() - t0, compile_time=state.compile_time,
            circuit_name=circuit.name)

    def final_state(self, circuit: Circuit, precision: str | None = None) -> State:
        """The state after the gates of a circuit without measurement, reset or conditions."""
        precision = self._check_precision(precision)
        from ..errors import CircuitError

        if any(not i.is_gate and i.name != "barrier" for i in circuit) or any(
                i.condition for i in circuit):
            raise CircuitError("final_state needs a circuit of gates only (no measure/reset/if)")
        state = self.new_state(circuit.num_qubits, precision)
        state.execute(state.prepare([i for i in circuit if i.is_gate]))
        return state

    def statevector(self, circuit: Circuit, precision: str | None = None) -> np.ndarray:
        """Final statevector (complex128) of a circuit of gates; measurements are ignored."""
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).statevector()

    def probabilities(self, circuit: Circuit, qubits: Sequence[int] | None = None,
                      precision: str | None = None) -> np.ndarray:
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).probabilities(qubits)

    def amplitudes(self, circuit: Circuit, indices: Sequence[int],
                   precision: str | None = None) -> np.ndarray:
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).amplitudes(indices)

    def expectation(self, circuit: Circuit, observable: PauliSum | str | Sequence,
                    precision: str | None = None) -> float:
        """<psi|H|psi> for a Hermitian Pauli sum H (see :func:`qsim_dist.observables.as_pauli_sum`)."""
        h = as_pauli_sum(observable, circuit.num_qubits)
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        state = self.final_state(gates, precision)
        total = sum(c * state.pauli_expectation(x, z) for c, x, z in h.terms)
        return float(np.real(total))

    # -- the executor ----------------------------------------------------------------------
    def _check_precision(self, precision: str | None) -> str:
        precision = precision or self.default_precision
        if precision not in PRECISIONS:
            raise OptionError(f"unknown precision '{precision}' (choose single or double)")
        return precision

    def _run_static(self, circuit, state, shots, rng, save_state, bar):
        gates, measures = _split_terminal_measurements(circuit)
        program = state.prepare(gates)
        bar.add_total(state.program_size(program))
        state.execute(program, bar.update)
        sv = state.statevector() if save_state else None
        counts: dict[str, int] = {}
        if shots and measures:
            indices = state.sample_indices(np.sort(rng.random(shots)))
            for index, count in zip(*np.unique(indices, return_counts=True)):
                bits = [0] * circuit.num_clbits
                for m in measures:  # later measures into one clbit win, as in program order
                    bits[m.clbits[0]] = (int(index) >> m.qubits[0]) & 1
                key = _bitstring(bits)
                counts[key] = counts.get(key, 0) + int(count)
        elif shots and circuit.num_clbits:
            counts = {_bitstring([0] * circuit.num_clbits): shots}
        return counts, sv

    def _run_dynamic(self, circuit, state, shots, rng, save_state, bar):
        instructions = [i for i in circuit if i.name != "barrier"]
        first = next(k for k, i in enumerate(instructions)
                     if not i.is_gate or i.condition is not None)
        prefix = state.prepare(instructions[:first])
        steps = _steps(state, instructions[first:])
        per_shot = sum(state.program_size(s.payload) if s.kind == "gates" else 1 for s in steps)
        trajectories = max(shots, 1)
        bar.add_total(state.program_size(prefix) + per_shot * trajectories)
        state.execute(prefix, bar.update)
        counts: Counter[str] = Counter()
        sv = None
        for shot in range(trajectories):
            st = state.copy() if shot < trajectories - 1 else state
            bits = [0] * circuit.num_clbits
            for step in steps:
                if step.condition is not None and not step.condition.holds(bits):
                    bar.update(state.program_size(step.payload) if step.kind == "gates" else 1)
                    continue
                if step.kind == "gates":
                    st.execute(step.payload, bar.update)
                    continue
                if step.kind == "measure":
                    qubit, clbit = step.payload
                    bits[clbit] = _measure(st, qubit, rng)
                else:
                    if _measure(st, step.payload, rng):
                        st.flip(step.payload)
                bar.update(1)
            if shots:
                counts[_bitstring(bits)] += 1
            if shot == 0 and save_state:
                sv = st.statevector()
        return dict(counts), sv


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
