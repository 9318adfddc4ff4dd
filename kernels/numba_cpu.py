"""The CPU kernel set: numba, parallel over amplitude groups, updating the state in place.

On the CPU, XLA allocates a fresh output per gate and runs a one-qubit gate at ~12 GB/s (see
DESIGN.md); these loops update the buffer in place near memory bandwidth. Compiled functions are
cached on disk (``cache=True``), so only the first run on a machine pays numba's compile time.

Every kernel takes the flat state (complex64 or complex128, length 2^n) and sorted qubit positions.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_OPTS = dict(nogil=True, cache=True)


@nb.njit(**_OPTS)
def _insert_zero_bits(i, qubits):
    # Spread the bits of i around the (sorted, ascending) qubit positions, which read 0.
    i = np.int64(i)
    for q in qubits:
        low = i & ((1 << q) - 1)
        i = ((i >> q) << (q + 1)) | low
    return i


@nb.njit(**_OPTS)
def _offsets(qubits):
    k = qubits.size
    offs = np.zeros(1 << k, dtype=np.int64)
    for j in range(1 << k):
        o = 0
        for b in range(k):
            if (j >> b) & 1:
                o |= 1 << qubits[b]
        offs[j] = o
    return offs


@nb.njit(parallel=True, **_OPTS)
def apply_1q(state, m, q):
    """2x2 matrix ``m`` on qubit ``q``."""
    half = state.size >> 1
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    stride = 1 << q
    for g_ in nb.prange(half):
        g = np.int64(g_)
        i0 = ((g >> q) << (q + 1)) | (g & (stride - 1))
        i1 = i0 | stride
        a, b = state[i0], state[i1]
        state[i0] = m00 * a + m01 * b
        state[i1] = m10 * a + m11 * b


@nb.njit(parallel=True, **_OPTS)
def apply_2q(state, m, q0, q1):
    """4x4 matrix ``m`` on qubits ``q0 < q1`` (matrix bit 0 = q0)."""
    quarter = state.size >> 2
    s0, s1 = 1 << q0, 1 << q1
    for g_ in nb.prange(quarter):
        g = np.int64(g_)
        i = ((g >> q0) << (q0 + 1)) | (g & (s0 - 1))
        i = ((i >> q1) << (q1 + 1)) | (i & (s1 - 1))
        a0, a1, a2, a3 = state[i], state[i | s0], state[i | s1], state[i | s0 | s1]
        state[i] = m[0, 0] * a0 + m[0, 1] * a1 + m[0, 2] * a2 + m[0, 3] * a3
        state[i | s0] = m[1, 0] * a0 + m[1, 1] * a1 + m[1, 2] * a2 + m[1, 3] * a3
        state[i | s1] = m[2, 0] * a0 + m[2, 1] * a1 + m[2, 2] * a2 + m[2, 3] * a3
        state[i | s0 | s1] = m[3, 0] * a0 + m[3, 1] * a1 + m[3, 2] * a2 + m[3, 3] * a3


@nb.njit(parallel=True, **_OPTS)
def apply_dense(state, m, qubits):
    """``2^k x 2^k`` matrix ``m`` on sorted ``qubits`` (matrix bit j = qubits[j])."""
    k = qubits.size
    dim = 1 << k
    offs = _offsets(qubits)
    groups = state.size >> k
    for g_ in nb.prange(groups):
        g = np.int64(g_)
        base = _insert_zero_bits(g, qubits)
        v = np.empty(dim, dtype=state.dtype)
        for j in range(dim):
            v[j] = state[base + offs[j]]
        for r in range(dim):
            acc = state.dtype.type(0)
            for c in range(dim):
                acc += m[r, c] * v[c]
            state[base + offs[r]] = acc


@nb.njit(parallel=True, **_OPTS)
def apply_diagonal(state, diag, qubits):
    """Multiply each amplitude by ``diag[bits of its index at qubits]`` (bit j = qubits[j])."""
    k = qubits.size
    for i_ in nb.prange(state.size):
        i = np.int64(i_)
        idx = 0
        for b in range(k):
            idx |= ((i >> qubits[b]) & 1) << b
        state[i] *= diag[idx]


@nb.njit(parallel=True, **_OPTS)
def probabilities(state):
    out = np.empty(state.size, dtype=np.float64)
    for i_ in nb.prange(state.size):
        i = np.int64(i_)
        a = state[i]
        out[i] = a.real * a.real + a.imag * a.imag
    return out


@nb.njit(parallel=True, **_OPTS)
def qubit_one_probability(state, q):
    """Probability that qubit ``q`` reads 1."""
    half = state.size >> 1
    stride = 1 << q
    total = 0.0
    for g_ in nb.prange(half):
        g = np.int64(g_)
        i1 = ((g >> q) << (q + 1)) | (g & (stride - 1)) | stride
        a = state[i1]
        total += a.real * a.real + a.imag * a.imag
    return total


@nb.njit(parallel=True, **_OPTS)
def collapse(state, q, outcome, scale):
    """Zero the amplitudes where qubit ``q`` differs from ``outcome``; scale the others."""
    half = state.size >> 1
    stride = 1 << q
    for g_ in nb.prange(half):
        g = np.int64(g_)
        i0 = ((g >> q) << (q + 1)) | (g & (stride - 1))
        if outcome:
            state[i0] = 0
            state[i0 | stride] *= scale
        else:
            state[i0] *= scale
            state[i0 | stride] = 0


@nb.njit(parallel=True, **_OPTS)
def pauli_expectation(state, x_mask, z_mask):
    """sum_j conj(psi[j]) * (-1)^popcount(j & z_mask) * psi[j ^ x_mask] (phase (-i)^#Y outside)."""
    re = 0.0
    im = 0.0
    for j_ in nb.prange(state.size):
        j = np.int64(j_)
        a = np.conj(state[j]) * state[j ^ x_mask]
        z = j & z_mask
        parity = 0
        while z:
            parity ^= 1
            z &= z - 1
        if parity:
            re -= a.real
            im -= a.imag
        else:
            re += a.real
            im += a.imag
    return complex(re, im)


class NumbaKernels:
    """The CPU set behind the common kernel interface (see kernels/__init__.py)."""

    name = "numba"

    @staticmethod
    def zero_state(num_qubits: int, dtype) -> np.ndarray:
        state = np.zeros(1 << num_qubits, dtype=dtype)
        state[0] = 1
        return state

    @staticmethod
    def prepare_matrix(m: np.ndarray, dtype) -> np.ndarray:
        return np.ascontiguousarray(m, dtype=dtype)

    @staticmethod
    def apply_dense(state, m, qubits):
        if len(qubits) == 1:
            apply_1q(state, m, qubits[0])
        elif len(qubits) == 2:
            apply_2q(state, m, qubits[0], qubits[1])
        else:
            apply_dense(state, m, np.asarray(qubits, dtype=np.int64))
        return state

    @staticmethod
    def apply_diagonal(state, diag, qubits):
        apply_diagonal(state, diag, np.asarray(qubits, dtype=np.int64))
        return state

    @staticmethod
    def probabilities(state) -> np.ndarray:
        return probabilities(state)

    @staticmethod
    def qubit_one_probability(state, q: int) -> float:
        return float(qubit_one_probability(state, q))

    @staticmethod
    def collapse(state, q: int, outcome: int, scale: float):
        collapse(state, q, outcome, state.real.dtype.type(scale))
        return state

    @staticmethod
    def pauli_expectation(state, x_mask: int, z_mask: int) -> complex:
        return complex(pauli_expectation(state, x_mask, z_mask))

    @staticmethod
    def copy(state):
        return state.copy()

    @staticmethod
    def to_numpy(state) -> np.ndarray:
        return state
