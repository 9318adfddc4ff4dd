"""The fast single-device statevector backend: fused blocks applied by a kernel set.

On a GPU the kernels are JAX/XLA; on a CPU they are compiled loops updating the state in place
(``kernels="auto"`` picks; ``"jax"`` or ``"cpu"`` forces one). Gate runs are fused once per run
(:mod:`qsim_dist.passes.fusion`); the kernels are compiled once per kernel shape and cached.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from qsim_dist.kernels import warm_up
from qsim_dist.kernels.shard import from_host, precision_context

from .. import memory
from ..circuit import Instruction
from ..observables import pauli_phase
from ..passes.fusion import MAX_DIAGONAL, fuse
from .base import Backend
from .state import DTYPES, Capability, State


def fused_capabilities(kernels) -> Capability:
    """What a :class:`FusedState` on the kernel set ``kernels`` declares: the dense contract,
    compaction, checkpoints and batched trajectory rows everywhere; the depth-first trajectory
    walk with the CPU set (its programs and rows are host arrays)."""
    caps = Capability.STATEVECTOR | Capability.RESIZE | Capability.CHECKPOINT | \
        Capability.BATCHED_TRAJECTORIES
    return (caps | Capability.TRAJECTORY_WALK) if kernels.name == "cpu" else caps


class FusedState(State):
    """A dense statevector on one device, updated by fused blocks of a kernel set."""

    def __init__(self, kernels, num_qubits: int, precision: str, max_dense: int,
                 max_diagonal: int):
        self.K = kernels
        self.capabilities = fused_capabilities(kernels)
        self.num_qubits = num_qubits
        self.dtype = DTYPES[precision]
        self.max_dense = max_dense
        self.max_diagonal = max_diagonal
        self.compile_time = 0.0
        with self._x64():
            self.vec = kernels.zero_state(num_qubits, self.dtype)

    def _x64(self):
        return precision_context(self.K, self.dtype)

    # -- gate runs -------------------------------------------------------------------------
    def prepare(self, gates: Sequence[Instruction]) -> list[tuple[bool, Any, tuple[int, ...]]]:
        t0 = time.perf_counter()
        blocks = fuse(gates, self.max_dense, self.max_diagonal)
        with self._x64():
            program = [(b.diagonal, self.K.prepare_matrix(b.matrix, self.dtype), b.qubits)
                       for b in blocks]
        self.compile_time += time.perf_counter() - t0
        return program

    def execute(self, program, progress: Callable[[int], None] | None = None) -> None:
        K = self.K
        with self._x64():
            for diagonal, m, qubits in program:
                if diagonal:
                    self.vec = K.apply_diagonal(self.vec, m, qubits)
                else:
                    self.vec = K.apply_dense(self.vec, m, qubits)
                if progress:
                    progress(1)

    def apply_gate(self, matrix: np.ndarray, qubits: Sequence[int]) -> None:
        order = np.argsort(qubits)
        qs = tuple(int(qubits[i]) for i in order)
        k = len(qs)
        if list(order) != list(range(k)):  # permute the matrix to the sorted qubit order
            t = np.asarray(matrix).reshape((2,) * (2 * k))
            perm = [k - 1 - int(order[k - 1 - a]) for a in range(k)]
            t = t.transpose(perm + [k + p for p in perm])
            matrix = t.reshape(1 << k, 1 << k)
        with self._x64():
            self.vec = self.K.apply_dense(self.vec, self.K.prepare_matrix(matrix, self.dtype), qs)

    # -- measurement -----------------------------------------------------------------------
    def probabilities(self, qubits: Sequence[int] | None = None) -> np.ndarray:
        if qubits is not None and len(qubits) == 1:
            with self._x64():
                p1 = min(max(self.K.qubit_one_probability(self.vec, qubits[0]), 0.0), 1.0)
            return np.array([1.0 - p1, p1])
        with self._x64():
            if qubits is None:
                return self.K.probabilities(self.vec)
            return self.K.marginal(self.vec, qubits)

    def sample_indices(self, draws: np.ndarray) -> np.ndarray:
        with self._x64():
            return self.K.sample_sorted(self.vec, draws)

    def collapse(self, qubit: int, outcome: int, probability: float) -> None:
        with self._x64():
            self.vec = self.K.collapse(self.vec, qubit, outcome, 1.0 / np.sqrt(probability))

    def flip(self, qubit: int) -> None:
        self.apply_gate(np.array([[0, 1], [1, 0]]), (qubit,))

    def statevector(self) -> np.ndarray:
        return self.K.to_numpy(self.vec)

    def amplitudes(self, indices: Sequence[int]) -> np.ndarray:
        return self.K.to_numpy(self.vec)[np.asarray(indices, dtype=np.int64)]

    def reduced_density_matrix(self, qubits: Sequence[int]) -> np.ndarray:
        if hasattr(self.K, "reduced_density_matrix"):  # one read-only pass; else numpy
            return self.K.reduced_density_matrix(self.vec, qubits)
        return super().reduced_density_matrix(qubits)

    def pauli_expectation(self, x_mask: int, z_mask: int) -> complex:
        with self._x64():
            return pauli_phase(x_mask, z_mask) * self.K.pauli_expectation(self.vec, x_mask, z_mask)

    def copy(self) -> "FusedState":
        other = object.__new__(FusedState)
        other.__dict__.update(self.__dict__)
        with self._x64():
            other.vec = self.K.copy(self.vec)
        return other

    def load_statevector(self, psi: np.ndarray) -> None:
        with self._x64():
            self.vec = from_host(self.K, np.ascontiguousarray(psi, dtype=self.dtype), self.vec)

    # -- live-qubit compaction (Capability.RESIZE) -----------------------------------------
    # (kernel sets with compaction kernels use them; the others go through numpy)
    def add_qubit(self, slot: int, value: int) -> None:
        if not hasattr(self.K, "insert_qubit"):
            return super().add_qubit(slot, value)
        self.vec = self.K.insert_qubit(self.vec, slot, value)
        self.num_qubits += 1

    def remove_qubit(self, slot: int, value: int) -> None:
        if not hasattr(self.K, "extract_qubit"):
            return super().remove_qubit(slot, value)
        self.vec = self.K.extract_qubit(self.vec, slot, value)
        self.num_qubits -= 1

    # -- a batch of trajectories as rows (Capability.BATCHED_TRAJECTORIES; kernels/__init__.py)
    # (with the CPU set rows are numpy arrays updated in place; with JAX device arrays, each
    # call returning the new batch)
    def rows(self, count: int):
        """A batch of rows whose first ``count`` are copies of the current state."""
        with self._x64():
            return self.K.rows(self.vec, count)

    def execute_rows(self, program, rows, used: int):
        """Apply a prepared program to the first ``used`` rows of a batch (and maybe more):
        the flat batch is a state whose row index sits above the qubit bits."""
        vec = self.vec
        active = self.K.active_rows(rows, used)
        try:
            self.vec = active.reshape(-1)
            self.execute(program)
            result = self.vec.reshape(active.shape)
        finally:
            self.vec = vec
        if active is rows:  # the kernels made a new batch (JAX)
            return result
        return rows  # updated in place through a view (CPU set)

    def copy_rows(self, rows, dst: np.ndarray, src: np.ndarray):
        with self._x64():
            return self.K.copy_rows(rows, dst, src)

    def apply_paulis_rows(self, rows, which: np.ndarray, x: np.ndarray, z: np.ndarray,
                          phase: np.ndarray):
        with self._x64():
            return self.K.apply_paulis_rows(rows, which, x, z, phase)

    def sample_rows(self, rows, row_of_shot: np.ndarray, draws: np.ndarray) -> np.ndarray:
        with self._x64():
            return self.K.sample_rows(rows, row_of_shot, draws)


class StatevectorBackend(Backend):
    """Fused statevector simulation on one device (GPU through JAX, else compiled CPU loops)."""

    name = "statevector"
    default_precision = "single"

    def __init__(self, kernels: str = "auto", max_dense: int | None = None,
                 max_diagonal: int = MAX_DIAGONAL):
        from qsim_dist.kernels import get_kernels

        self.kernels = get_kernels(kernels)
        self.state_capabilities = fused_capabilities(self.kernels)
        self.max_dense = max_dense or self.kernels.max_dense
        self.max_diagonal = max_diagonal
        # the CPU kernels update in place; XLA may need a second buffer when it cannot reuse
        # the donated one
        self.work_states = 1.0 if self.kernels.name == "jax" else 0.0

    def _available_memory(self) -> int:
        return memory.available_for(self.kernels)  # the accelerator's memory for JAX on a GPU

    def new_state(self, num_qubits: int, precision: str) -> FusedState:
        self.check_state_fits(num_qubits, precision)
        # inside the run's clock, counted once per process and precision
        warm_up_time = warm_up(self.kernels, DTYPES[precision])
        state = FusedState(self.kernels, num_qubits, precision, self.max_dense, self.max_diagonal)
        state.compile_time = warm_up_time
        return state
