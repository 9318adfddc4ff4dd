"""CPU kernels that trajectories of noisy circuits need beyond the gate kernels (numba, parallel).

A general Kraus channel picks operator i with probability ``Tr(K_i^dagger K_i rho_q)``, where
``rho_q`` is the reduced density matrix of the channel's few qubits: one read-only pass over the
state serves every operator, and no ``K_i psi`` is materialised.
"""

from __future__ import annotations

from typing import Sequence

import numba as nb
import numpy as np


@nb.njit(nogil=True, cache=True)
def _insert_zero_bits(i, qubits):
    # Spread the bits of i around the (sorted, ascending) qubit positions, which read 0.
    i = np.int64(i)
    for q in qubits:
        low = i & ((1 << q) - 1)
        i = ((i >> q) << (q + 1)) | low
    return i

_CHUNKS = 64  # parallel partial sums, added at the end
SERIAL_BELOW = 1 << 16  # amplitudes: below this a parallel launch costs more than the pass


def _rdm(state, sorted_qubits, offsets, chunks):
    dim = offsets.size
    groups = state.size >> sorted_qubits.size
    chunks = min(groups, chunks)
    acc = np.zeros((chunks, dim, dim), dtype=np.complex128)
    for ch in nb.prange(chunks):
        v = np.empty(dim, dtype=np.complex128)
        for g in range(groups * np.int64(ch) // chunks, groups * np.int64(ch + 1) // chunks):
            base = _insert_zero_bits(g, sorted_qubits)
            for r in range(dim):
                v[r] = state[base + offsets[r]]
            for r in range(dim):
                for c in range(dim):
                    acc[ch, r, c] += v[r] * np.conj(v[c])
    return acc.sum(axis=0)


_rdm_serial = nb.njit(nogil=True, cache=True)(_rdm)
_rdm_parallel = nb.njit(parallel=True, nogil=True, cache=True)(_rdm)


def reduced_density_matrix(state: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """``2^k x 2^k`` reduced density matrix of ``qubits`` (any order; bit j = qubits[j])."""
    offsets = np.zeros(1 << len(qubits), dtype=np.int64)
    for j, q in enumerate(qubits):  # index bit j of the matrix is state bit qubits[j]
        offsets[np.arange(offsets.size) >> j & 1 == 1] |= np.int64(1) << q
    sorted_qubits = np.array(sorted(qubits), dtype=np.int64)
    if state.size < SERIAL_BELOW:
        return _rdm_serial(state, sorted_qubits, offsets, 1)
    return _rdm_parallel(state, sorted_qubits, offsets, _CHUNKS)


# ---- live-qubit compaction: a qubit in a known basis state enters or leaves the state --------

def _insert(src, dst, slot, value):
    # dst (zeroed, twice src's length) gets src's amplitudes with bit `slot` reading `value`
    low = (np.int64(1) << slot) - 1
    high = np.int64(value) << slot
    for i in nb.prange(src.size):
        dst[((i >> slot) << (slot + 1)) | high | (i & low)] = src[i]


def _extract(src, dst, slot, value):
    # dst (half src's length) gets the amplitudes of src whose bit `slot` reads `value`
    low = (np.int64(1) << slot) - 1
    high = np.int64(value) << slot
    for i in nb.prange(dst.size):
        dst[i] = src[((i >> slot) << (slot + 1)) | high | (i & low)]


_insert_serial = nb.njit(nogil=True, cache=True)(_insert)
_insert_parallel = nb.njit(parallel=True, nogil=True, cache=True)(_insert)
_extract_serial = nb.njit(nogil=True, cache=True)(_extract)
_extract_parallel = nb.njit(parallel=True, nogil=True, cache=True)(_extract)


def insert_qubit(state: np.ndarray, slot: int, value: int) -> np.ndarray:
    """The state with a new qubit in basis state ``value`` at bit position ``slot`` (the bits at
    ``slot`` and above move up by one): ``state (x) |value>`` in that order, a new array."""
    out = np.zeros(2 * state.size, dtype=state.dtype)
    (_insert_serial if state.size < SERIAL_BELOW else _insert_parallel)(state, out, slot, value)
    return out


def extract_qubit(state: np.ndarray, slot: int, value: int) -> np.ndarray:
    """The state without the qubit at bit position ``slot``, which must be in basis state
    ``value`` (its other half is dropped; bits above ``slot`` move down by one), a new array."""
    out = np.empty(state.size // 2, dtype=state.dtype)
    (_extract_serial if out.size < SERIAL_BELOW else _extract_parallel)(state, out, slot, value)
    return out
