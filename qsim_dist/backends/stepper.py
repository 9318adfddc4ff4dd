"""The step-by-step API: a state driven one operation at a time, each outcome read at once.

:meth:`Backend.run <qsim_dist.backends.base.Backend.run>` simulates a whole circuit and branches
its shots; a node program that reads its outcomes (``yield node.read(bit)``) needs one shot
advanced operation by operation instead. :class:`Stepper` does that on the state contract with
the executor's own measurement code (:func:`.branching.branch_outcomes` and
:func:`.branching.apply_branch`, one shot), so a measurement, reset, readout error or noise
channel draws from its seeded stream exactly as one shot of a run does.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..circuit import Instruction
from ..errors import CircuitError
from ..noise import NoiseOp
from .branching import apply_branch, branch_outcomes
from .planning import Step, noise_step
from .state import State


class Stepper:
    """One shot of a circuit, advanced one operation at a time (make one with
    :meth:`Backend.stepper <qsim_dist.backends.base.Backend.stepper>`).

    ``state`` is the live :class:`~qsim_dist.backends.state.State` (read it between steps,
    change it only through the stepper); ``clbits`` the classical bits recorded so far; ``seed``
    the seed of the stream every outcome is drawn from.
    """

    def __init__(self, state: State, num_clbits: int, rng: np.random.Generator, seed: int):
        self.state = state
        self.seed = seed
        self._rng = rng
        self._num_clbits = num_clbits
        # as the executor keeps them: the clbits, then the last known value of every qubit
        self._bits = [0] * (num_clbits + state.num_qubits)

    def reserve_clbits(self, num_clbits: int) -> None:
        """Make room for at least ``num_clbits`` clbits (new ones 0): a run whose bits are
        made as it goes (node programs online)."""
        if num_clbits > self._num_clbits:
            grow = max(num_clbits, 2 * self._num_clbits) - self._num_clbits
            self._bits[self._num_clbits:self._num_clbits] = [0] * grow
            self._num_clbits += grow

    @property
    def clbits(self) -> list[int]:
        """The classical bits (clbit 0 first)."""
        return self._bits[:self._num_clbits]

    def apply(self, op: Instruction | NoiseOp, readout: np.ndarray | None = None) -> int | None:
        """Apply one operation: a gate, a ``measure`` (returns the recorded bit, also stored in
        its clbit; ``readout`` a 2x2 confusion matrix ``P(recorded | outcome)`` for a readout
        error), a ``reset``, a ``barrier`` (nothing) or a noise channel (a
        :class:`~qsim_dist.noise.NoiseOp`, one trajectory). A condition is read from the
        clbits recorded so far. Returns None for everything but a measurement (and a
        measurement whose condition does not hold)."""
        if op.condition is not None and not op.condition.holds(self._bits):
            return None
        ncl = self._num_clbits
        if isinstance(op, NoiseOp):
            self._branch(noise_step(self.state, op, op.qubits))
            return None
        if op.name == "barrier":
            return None
        if op.is_gate:
            self.state.apply(op)  # (its condition was read above)
            return None
        q = op.qubits[0]
        if op.name == "measure":
            clbit = op.clbits[0]
            if not 0 <= clbit < ncl:
                raise CircuitError(f"measure: clbit {clbit} outside the stepper's {ncl} clbit(s)")
            self._branch(Step("measure", (q, clbit, readout, q)))
            return self._bits[clbit]
        if op.name == "reset":
            self._branch(Step("reset", (q, q)))
            return None
        raise CircuitError(f"stepper: cannot apply '{op.name}'")

    def measure(self, qubits: Sequence[int]) -> list[int]:
        """Measure ``qubits`` (in order, no clbit written) and return their outcomes."""
        outcomes = self.state.measure(qubits, self._rng.random(len(qubits)))
        for q, o in zip(qubits, outcomes):
            self._bits[self._num_clbits + q] = o
        return outcomes

    def reset(self, qubits: Sequence[int]) -> None:
        """Put ``qubits`` in |0> (each as a ``reset`` instruction)."""
        for q in qubits:
            self.apply(Instruction("reset", (q,)))

    def _branch(self, step: Step) -> None:
        """The one branch of a one-shot split (the executor's draws and update)."""
        (outcome, _), = branch_outcomes(self.state, step, 1, self._rng, self._bits,
                                        self._num_clbits)
        apply_branch(self.state, step, outcome, self._bits, self._num_clbits)
