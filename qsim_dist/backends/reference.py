"""Reference backend: dense numpy statevector and density matrix, short and obviously correct.

The dense reference of the kernels and fast backends (no fusion, no tricks: each gate is one
tensordot). It runs on the shared executor, so dynamic and noisy runs are checked against the
independent :mod:`qsim_dist.yardstick` instead.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import memory
from ..circuit import Circuit
from ..linalg import apply_operator_dm, apply_unitary, marginal_probabilities, operator_of
from ..noise import NoiseModel, NoiseOp
from .base import Backend
from .state import DTYPES, Capability, State


def unitary(circuit) -> np.ndarray:
    """The ``2^n x 2^n`` matrix of a circuit of gates (barriers skipped): column j is the final
    state from basis state j."""
    from ..errors import CircuitError

    def ops():
        for inst in circuit:
            if inst.name == "barrier":
                continue
            if not inst.is_gate or inst.condition is not None:
                raise CircuitError(f"unitary: '{inst.name}' is not a gate")
            yield inst.matrix(), inst.qubits

    return operator_of(circuit.num_qubits, ops())


class ReferenceState(State):
    """A dense numpy statevector."""

    # (compaction and checkpoints through the contract's dense defaults)
    capabilities = Capability.STATEVECTOR | Capability.RESIZE | Capability.CHECKPOINT

    def __init__(self, num_qubits: int, dtype=np.complex128):
        self.num_qubits = num_qubits
        self.vec = np.zeros(1 << num_qubits, dtype=dtype)
        self.vec[0] = 1

    def apply_gate(self, matrix: np.ndarray, qubits: Sequence[int]) -> None:
        self.vec = apply_unitary(self.vec, matrix, qubits)

    def probabilities(self, qubits: Sequence[int] | None = None) -> np.ndarray:
        p = np.abs(self.vec) ** 2
        return p if qubits is None else marginal_probabilities(p, qubits)

    def collapse(self, qubit: int, outcome: int, probability: float) -> None:
        idx = np.arange(self.vec.size)
        self.vec = np.where(((idx >> qubit) & 1) == outcome, self.vec, 0) / np.sqrt(probability)

    def flip(self, qubit: int) -> None:
        self.apply_gate(np.array([[0, 1], [1, 0]]), (qubit,))

    def statevector(self) -> np.ndarray:
        return self.vec

    def load_statevector(self, psi: np.ndarray) -> None:
        self.vec = np.array(psi, dtype=self.vec.dtype)

    def copy(self) -> "ReferenceState":
        other = ReferenceState.__new__(ReferenceState)
        other.num_qubits, other.vec = self.num_qubits, self.vec.copy()
        return other


class ReferenceBackend(Backend):
    """Dense numpy statevector (complex128 by default): the dense reference for the others."""

    name = "reference"
    default_precision = "double"
    compaction = False  # the reference carries every qubit; set True to test the generic path
    state_capabilities = ReferenceState.capabilities
    # a gate builds its result in new arrays (tensordot, then a reordered copy); a collapse
    # holds index arrays and two new states
    work_states = 3.0

    def new_state(self, num_qubits: int, precision: str) -> ReferenceState:
        self.check_state_fits(num_qubits, precision)
        return ReferenceState(num_qubits, DTYPES[precision])


def density_matrix(circuit: Circuit, noise: NoiseModel | None = None) -> np.ndarray:
    """Final density matrix of ``circuit`` with every measurement and reset applied as a channel
    (outcomes averaged, not sampled) and, with ``noise``, every channel the model inserts applied
    exactly (``rho -> sum_i K_i rho K_i^dagger``). Readout errors act on recorded bits, not on
    the state, so they are not part of the result. Conditions on classical bits are not supported
    here."""
    from ..errors import CircuitError

    n = circuit.num_qubits
    # rho, a channel's sum and its terms, the stacked columns of U rho: four matrices at once;
    # always complex128 (no precision to choose, so no hint)
    memory.check_fits(4 * (16 << (2 * n)), f"a {n}-qubit density matrix (2^{2 * n} entries, "
                      "complex128) with its temporaries")
    rho = np.zeros((1 << n, 1 << n), dtype=np.complex128)
    rho[0, 0] = 1
    idx = np.arange(1 << n)
    for inst in noise.lower(circuit).ops if noise is not None else circuit:
        if inst.condition is not None:
            raise CircuitError("density_matrix: classically conditioned gates are not supported")
        if isinstance(inst, NoiseOp):
            rho = sum(apply_operator_dm(rho, k, inst.qubits) for k in inst.channel.kraus)
            continue
        if inst.name == "barrier":
            continue
        if inst.name in ("measure", "reset"):
            bit = (idx >> inst.qubits[0]) & 1
            same = bit[:, None] == bit[None, :]
            rho = np.where(same, rho, 0)  # dephase: the measurement channel
            if inst.name == "reset":  # move the |1> population onto |0>
                flipped = idx ^ (1 << inst.qubits[0])
                ones = bit == 1
                moved = np.zeros_like(rho)
                sel = np.ix_(flipped[ones], flipped[ones])
                moved[sel] = rho[np.ix_(idx[ones], idx[ones])]
                zeros = ~ones
                rho = np.where(np.outer(zeros, zeros), rho, 0) + moved
            continue
        rho = apply_operator_dm(rho, inst.matrix(), inst.qubits)
    return rho
