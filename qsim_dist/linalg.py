"""Dense linear algebra on small numpy arrays: the lowest layer above :mod:`qsim_dist.errors`.

Everything here is plain algebra on statevectors, density matrices and ``2^k x 2^k`` operators,
with no notion of gates, circuits or backends, so that the gate table, the OpenQASM reader, the
passes and the reference backend can all share it without importing each other. (The kernels
import nothing of the package but :mod:`qsim_dist.errors`, so they do not use it.)

Bit order, as everywhere in the package: qubit ``q`` is bit ``q`` of a basis-state index (little
endian), and an operator on qubits ``(q0, q1, ...)`` holds ``q0`` in bit 0 of its row and column
indices, ``q1`` in bit 1, and so on.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

__all__ = ["apply_unitary", "apply_operator_dm", "operator_of", "marginal_probabilities",
           "never_flips", "commutes_with_x"]


def _num_qubits(size: int) -> int:
    return int(size).bit_length() - 1


def apply_unitary(psi: np.ndarray, matrix: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """Return ``matrix`` applied to ``qubits`` of the statevector ``psi`` (a new array).

    ``matrix`` need not be unitary (a Kraus operator works the same way).
    """
    n = _num_qubits(psi.size)
    k = len(qubits)
    # Axis a of the state tensor is qubit n-1-a (numpy is row-major, qubit 0 is the last axis);
    # the matrix as a (2,)*2k tensor has axis 0 = its highest bit = qubits[k-1].
    u = np.asarray(matrix, dtype=psi.dtype).reshape((2,) * (2 * k))
    axes = [n - 1 - q for q in reversed(qubits)]
    t = np.tensordot(u, psi.reshape((2,) * n), axes=(list(range(k, 2 * k)), axes))
    return np.moveaxis(t, list(range(k)), axes).reshape(-1)


def apply_operator_dm(rho: np.ndarray, matrix: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """Return ``M rho M^dagger`` for ``matrix`` M on ``qubits`` of the density matrix ``rho``
    (any M: a unitary or a Kraus operator)."""
    dim = rho.shape[0]
    rho = np.stack([apply_unitary(col, matrix, qubits) for col in rho.T], axis=1)  # M rho
    rho = np.stack([apply_unitary(row, matrix.conj(), qubits) for row in rho], axis=0)  # (.)M^dag
    return rho.reshape(dim, dim)


def operator_of(num_qubits: int,
                ops: Iterable[tuple[np.ndarray, Sequence[int]]]) -> np.ndarray:
    """The ``2^n x 2^n`` matrix of ``(matrix, qubits)`` pairs applied in order on ``num_qubits``
    qubits: column ``j`` is the image of basis state ``j``."""
    dim = 1 << num_qubits
    # All columns at once: the identity read as a state of 2n qubits whose low n bits are the row
    # index, so that each operator acts on the row bits of every column together.
    flat = np.eye(dim, dtype=np.complex128).reshape(-1)
    for matrix, qubits in ops:
        flat = apply_unitary(flat, matrix, qubits)
    return flat.reshape(dim, dim).T


def marginal_probabilities(probs: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """Probabilities of the outcomes of ``qubits`` (outcome bit j = qubits[j]) from the
    probabilities ``probs`` of all ``2^n`` basis states."""
    n = _num_qubits(probs.size)
    t = probs.reshape((2,) * n)
    keep = [n - 1 - q for q in reversed(qubits)]
    other = tuple(a for a in range(n) if a not in keep)
    t = t.sum(axis=other) if other else t
    # remaining axes are in increasing tensor-axis order; sort them into `keep` order
    order = sorted(keep)
    t = np.transpose(t, [order.index(a) for a in keep])
    return t.reshape(-1)


def never_flips(matrix: np.ndarray, bit: int, atol: float = 1e-12) -> bool:
    """True when ``matrix`` is block-diagonal in index bit ``bit``: ``|0><0| (x) U0 + |1><1| (x)
    U1`` in that qubit, which it therefore never flips."""
    m = np.asarray(matrix)
    mask = 1 << bit
    idx = np.arange(m.shape[0])
    flips = (idx[:, None] & mask) != (idx[None, :] & mask)
    return bool(np.all(np.abs(m[flips]) < atol))


def commutes_with_x(matrix: np.ndarray, bit: int, atol: float = 1e-12) -> bool:
    """True when ``matrix`` commutes with X on index bit ``bit`` (block-diagonal in the X basis
    of that qubit)."""
    m = np.asarray(matrix)
    idx = np.arange(m.shape[0]) ^ (1 << bit)
    return bool(np.allclose(m[np.ix_(idx, idx)], m, rtol=0.0, atol=atol))
