"""The state contract: what the executor asks of a quantum state, whatever holds it.

A backend says how to hold and update a state by implementing :class:`State`; how a circuit
becomes gate runs, measurements, resets, conditions, noise and shots is decided once, by the
executor (:mod:`.planning`, :mod:`.branching`, :mod:`.trajectories`, :mod:`.checkpointing`,
driven by :meth:`qsim_dist.backends.base.Backend.run`), for every backend.

The contract does not assume one dense vector. Every state implements the abstract members
(apply a gate, probabilities of given qubits, collapse, flip, copy); everything else has a
default written for a dense statevector (through :meth:`State.statevector`), which a state that
is not one vector (a module tensor network, a tensor network) overrides. What a state offers
beyond the contract it declares in :attr:`State.capabilities` (a :class:`Capability` flag set);
the executor reads the flags, never probes for methods.

Qubit order everywhere: bit j of an outcome or of a basis index is ``qubits[j]`` (little-endian),
qubit 0 of the state being the least significant index bit.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from ..circuit import Instruction
    from ..observables import PauliSum

__all__ = ["DTYPES", "Capability", "State", "measurement_outcome"]

DTYPES = {"single": np.complex64, "double": np.complex128}  # amplitude type per precision


class Capability(enum.Flag):
    """What a :class:`State` offers beyond the contract (see :attr:`State.capabilities`)."""

    #: :meth:`State.statevector`, :meth:`State.amplitudes` and :meth:`State.load_statevector`
    #: work: the whole vector can be had (a saved state, the dense defaults of the contract).
    STATEVECTOR = enum.auto()
    #: :meth:`State.add_qubit` and :meth:`State.remove_qubit` work and are worth calling: the
    #: executor holds only the live qubits of a dynamic or noisy run (compaction).
    RESIZE = enum.auto()
    #: The row methods of a batch of Pauli trajectories (``rows``, ``execute_rows``,
    #: ``copy_rows``, ``apply_paulis_rows``, ``sample_rows``; see ``kernels/__init__.py``): the
    #: level-by-level Pauli-trajectory strategy of :mod:`.trajectories`.
    BATCHED_TRAJECTORIES = enum.auto()
    #: Prepared programs in the CPU kernel set's form ``(diagonal, (real, imag), qubits)`` and a
    #: host statevector: the depth-first walk of ``kernels/batched_cpu.run_trajectories``.
    TRAJECTORY_WALK = enum.auto()
    #: :meth:`State.write_checkpoint` and :meth:`State.load_checkpoint` work.
    CHECKPOINT = enum.auto()
    #: Held by several processes (MPI ranks): every member is collective, :meth:`State.agree`
    #: decides for all of them, :meth:`State.statevector` gathers.
    SHARDED = enum.auto()


def measurement_outcome(p1: float, uniform: float) -> int:
    """The outcome of a qubit with probability ``p1`` of reading 1, for a ``uniform`` draw in
    [0, 1): 1 when ``uniform >= 1 - p1`` (the executor's inverse transform for one shot)."""
    return int(uniform >= 1.0 - p1)


class State(ABC):
    """A quantum state of ``num_qubits`` qubits, updated in place.

    The executor calls the members below; each docstring says when, and what the default does.
    """

    num_qubits: int
    #: Seconds spent planning and compiling (prepare, kernel warm-up), reported in the Result.
    compile_time: float = 0.0
    #: What this state offers beyond the contract (see :class:`Capability`).
    capabilities: Capability = Capability.STATEVECTOR

    # -- the abstract core -----------------------------------------------------------------
    @abstractmethod
    def apply_gate(self, matrix: np.ndarray, qubits: Sequence[int]) -> None:
        """Apply a ``2^k x 2^k`` matrix (little-endian in ``qubits``). The executor calls it for
        single operators (a Kraus operator, normalised); gate runs go through :meth:`execute`."""

    @abstractmethod
    def probabilities(self, qubits: Sequence[int] | None = None) -> np.ndarray:
        """Outcome probabilities of ``qubits`` (``2^len(qubits)`` values, float64, bit j =
        ``qubits[j]``). The executor asks only for the qubits it measures (one at a time for a
        mid-circuit measurement); None asks for every qubit (2^n values: a dense state only,
        :attr:`Capability.STATEVECTOR`)."""

    @abstractmethod
    def collapse(self, qubit: int, outcome: int, probability: float) -> None:
        """Project ``qubit`` onto ``outcome`` and renormalise by ``probability``, the probability
        of that outcome (a measurement or reset branch of the executor)."""

    @abstractmethod
    def flip(self, qubit: int) -> None:
        """Apply X to ``qubit`` (a reset that read 1)."""

    @abstractmethod
    def copy(self) -> "State":
        """An independent copy: the executor branches shots onto it (a split by outcome keeps
        the original for the last part), so a change to either must not reach the other."""

    # -- gate runs: fast backends override these to fuse and compile once -------------------
    def prepare(self, gates: Sequence["Instruction"]) -> Any:
        """Turn a run of unconditioned gates into a program :meth:`execute` applies quickly
        (called once per run of the plan, before any shot). Default: each gate's matrix."""
        return [(inst.matrix(), inst.qubits) for inst in gates]

    def execute(self, program: Any, progress: Callable[[int], None] | None = None) -> None:
        """Apply a program of :meth:`prepare` (a fused block, or a run of them), calling
        ``progress(units)`` as it goes. Default: :meth:`apply_gate` per gate."""
        for matrix, qubits in program:
            self.apply_gate(matrix, qubits)
            if progress:
                progress(1)

    def program_size(self, program: Any) -> int:
        """Number of progress units :meth:`execute` reports for ``program``."""
        return len(program)

    def apply(self, instruction: "Instruction") -> None:
        """Apply one unconditioned gate instruction (the step-by-step API,
        :class:`~qsim_dist.backends.stepper.Stepper`). Default: prepared and executed alone."""
        self.execute(self.prepare([instruction]))

    # -- measurement and reset -------------------------------------------------------------
    def measure(self, qubits: Sequence[int], uniforms: Sequence[float]) -> list[int]:
        """Measure ``qubits`` one after the other, the outcome of ``qubits[j]`` drawn by
        ``uniforms[j]`` (:func:`measurement_outcome`), collapse the state and return the
        outcomes. Default: :meth:`probabilities` of each qubit, then :meth:`collapse`."""
        outcomes = []
        for q, u in zip(qubits, uniforms):
            p1 = min(max(float(self.probabilities([q])[1]), 0.0), 1.0)
            o = measurement_outcome(p1, float(u))
            self.collapse(q, o, p1 if o else 1.0 - p1)
            outcomes.append(o)
        return outcomes

    def reset(self, qubits: Sequence[int], uniforms: Sequence[float]) -> None:
        """Put ``qubits`` in |0>: measured (``uniforms`` draw the outcomes, as
        :meth:`measure`), then flipped where they read 1."""
        for q, o in zip(qubits, self.measure(qubits, uniforms)):
            if o:
                self.flip(q)

    def sample(self, qubits: Sequence[int], draws: np.ndarray) -> np.ndarray:
        """Joint outcomes of ``qubits`` for sorted uniform ``draws`` in [0, 1), one per shot,
        as integers whose bit ``s`` is the outcome of state qubit ``s`` for each ``s`` in
        ``qubits`` (other bits unspecified); the state is not changed. The executor samples a
        branch's terminal measurements with it. Default: whole basis indices
        (:meth:`sample_indices`), the dense fast path."""
        return self.sample_indices(draws)

    def sample_indices(self, draws: np.ndarray) -> np.ndarray:
        """Basis indices for sorted uniform ``draws`` in [0, 1) (inverse transform over the
        probabilities, renormalised so that rounding of the total does not bias the last one).
        Default: over :meth:`probabilities` of every qubit (:attr:`Capability.STATEVECTOR`)."""
        cdf = np.cumsum(self.probabilities(), dtype=np.float64)
        idx = np.searchsorted(cdf, draws * cdf[-1], side="right")
        return np.minimum(idx, cdf.size - 1)

    # -- readout ---------------------------------------------------------------------------
    def statevector(self) -> np.ndarray:
        """The whole state as a numpy array in the state's precision (qubit 0 = least
        significant index bit); it may share memory with the state, so copy it before changing
        the state. Only with :attr:`Capability.STATEVECTOR` (a saved state, the defaults)."""
        raise NotImplementedError(f"{type(self).__name__} is not held as one statevector")

    def amplitudes(self, indices: Sequence[int]) -> np.ndarray:
        """Amplitudes of the basis states ``indices``. Default: through :meth:`statevector`."""
        return self.statevector()[np.asarray(indices, dtype=np.int64)]

    def reduced_density_matrix(self, qubits: Sequence[int]) -> np.ndarray:
        """The ``2^k x 2^k`` reduced density matrix of ``qubits`` (bit j = qubits[j]),
        complex128: the executor reads a general channel's branch weights from it. Default:
        through :meth:`statevector`; kernel sets override it with one pass that allocates
        nothing state-sized."""
        n, k = self.num_qubits, len(qubits)
        t = self.statevector().astype(np.complex128).reshape((2,) * n)
        # tensor axis a is qubit n-1-a; put qubits[k-1] .. qubits[0] first (row-major bit order)
        t = np.moveaxis(t, [n - 1 - q for q in reversed(qubits)], range(k)).reshape(1 << k, -1)
        return t @ t.conj().T

    def pauli_expectation(self, x_mask: int, z_mask: int) -> complex:
        """<psi| P |psi> for the Pauli string with X on ``x_mask`` bits and Z on ``z_mask`` bits
        (Y where both are set). See :mod:`qsim_dist.observables` for the sign convention.
        Default: through :meth:`statevector`."""
        from ..observables import apply_pauli_to_vector

        psi = self.statevector()
        return complex(np.vdot(psi, apply_pauli_to_vector(psi, x_mask, z_mask)))

    def expectation(self, observable: "PauliSum") -> float:
        """<psi| H |psi> for a Hermitian Pauli sum (``Backend.expectation``). Default: the sum of
        :meth:`pauli_expectation` over its terms."""
        total = sum(c * self.pauli_expectation(x, z) for c, x, z in observable.terms)
        return float(np.real(total))

    def overlap(self, other: "State") -> complex:
        """<self|other> for a state of the same kind and width. Default: through
        :meth:`statevector` of both."""
        return complex(np.vdot(self.statevector(), other.statevector()))

    def fidelity(self, other: "State") -> float:
        """|<self|other>|^2 (pure states), through :meth:`overlap`."""
        return float(abs(self.overlap(other)) ** 2)

    # -- checkpoints (see qsim_dist.io.checkpoint and .checkpointing) ------------------------
    def agree(self, flag: bool) -> bool:
        """One decision for all the processes that hold this state (rank 0's, when
        :attr:`Capability.SHARDED`): whether a checkpoint is due. Default: ``flag``."""
        return flag

    def write_checkpoint(self, path: Path, header: Any) -> None:
        """Write ``header`` and the state to the checkpoint ``path``, atomically (a full disk is
        a CheckpointError, the previous checkpoint kept). :attr:`Capability.CHECKPOINT`;
        default: the dense statevector (:func:`qsim_dist.io.checkpoint.write_dense_state`)."""
        from ..io.checkpoint import write_dense_state

        write_dense_state(self, path, header)

    def load_checkpoint(self, path: Path, header: Any) -> None:
        """Replace the state by the one stored in checkpoint ``path`` (finite and normalised,
        else a CheckpointError). Default: :func:`qsim_dist.io.checkpoint.load_dense_state`."""
        from ..io.checkpoint import load_dense_state

        load_dense_state(self, path, header)

    def load_statevector(self, psi: np.ndarray) -> None:
        """Replace the state by ``psi`` (logical order, this state's precision); used by the
        dense defaults of checkpoint loading and compaction."""
        raise NotImplementedError(f"{type(self).__name__} cannot be loaded from a statevector")

    # -- live-qubit compaction (Capability.RESIZE) ------------------------------------------
    def add_qubit(self, slot: int, value: int) -> None:
        """Tensor a qubit in basis state ``value`` into bit position ``slot`` (bits at ``slot``
        and above move up by one): a qubit enters the live state. Default: through
        :meth:`statevector` and :meth:`load_statevector`."""
        psi = self.statevector()
        t = np.zeros((psi.size >> slot, 2, 1 << slot), dtype=psi.dtype)
        t[:, value, :] = psi.reshape(psi.size >> slot, 1 << slot)
        self.num_qubits += 1
        self.load_statevector(t.reshape(-1))

    def remove_qubit(self, slot: int, value: int) -> None:
        """Drop the qubit at bit position ``slot``, which is in basis state ``value`` (bits above
        ``slot`` move down by one): a measured or reset qubit leaves. Default: through
        :meth:`statevector` and :meth:`load_statevector`."""
        psi = self.statevector()
        t = psi.reshape(psi.size >> (slot + 1), 2, 1 << slot)[:, value, :]
        self.num_qubits -= 1
        self.load_statevector(np.ascontiguousarray(t).reshape(-1))
