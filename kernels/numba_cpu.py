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


# Work is done in tiles of _TILE groups: a group is the 2^k amplitudes a k-qubit block mixes.
# Each tile is gathered into separate real and imaginary rows, so the inner loops over the tile
# are plain float loops that LLVM vectorises, whatever the qubits (gathers are cheap next to the
# 2^k x 2^k multiply). Above the lowest block qubit, consecutive groups are consecutive in memory.
_TILE = 32


_RUN = 256  # contiguous amplitude pairs per work item of the one-qubit kernel


@nb.njit(parallel=True, fastmath=True, **_OPTS)
def apply_1q(state, m, q):
    """2x2 matrix on qubit ``q``: plain complex loops over contiguous runs, which LLVM
    vectorises (twice as fast as the tiled kernel for the cheapest, most common block)."""
    stride = np.int64(1) << q
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    run = stride if stride < _RUN else _RUN
    items = (state.size >> 1) // run
    for it_ in nb.prange(items):
        g = np.int64(it_) * run
        i0 = ((g >> q) << (q + 1)) | (g & (stride - 1))
        for i in range(i0, i0 + run):
            a = state[i]
            b = state[i + stride]
            state[i] = m00 * a + m01 * b
            state[i + stride] = m10 * a + m11 * b


@nb.njit(parallel=True, fastmath=True, **_OPTS)
def apply_dense(state, m_re, m_im, qubits):
    """``2^k x 2^k`` matrix (given as real and imaginary parts) on sorted ``qubits``.

    ``state`` is the float view of the complex state: amplitude i is (state[2i], state[2i+1]).
    """
    k = qubits.size
    dim = 1 << k
    offs = 2 * _offsets(qubits)
    groups = (state.size >> 1) >> k
    tile = min(_TILE, groups)
    tiles = groups // tile
    contiguous = (np.int64(1) << qubits[0]) >= tile
    chunks = min(tiles, 256)
    for ch in nb.prange(chunks):
        base = np.empty(tile, dtype=np.int64)
        v_re = np.empty((dim, tile), dtype=state.dtype)
        v_im = np.empty((dim, tile), dtype=state.dtype)
        a_re = np.empty(tile, dtype=state.dtype)
        a_im = np.empty(tile, dtype=state.dtype)
        t_lo = tiles * np.int64(ch) // chunks
        t_hi = tiles * np.int64(ch + 1) // chunks
        for t in range(t_lo, t_hi):
            if contiguous:  # the tile's groups are consecutive amplitudes: plain strided loads
                b0 = 2 * _insert_zero_bits(t * tile, qubits)
                for l in range(tile):
                    base[l] = b0 + 2 * l
                for c in range(dim):
                    o = b0 + offs[c]
                    for l in range(tile):
                        v_re[c, l] = state[o + 2 * l]
                        v_im[c, l] = state[o + 2 * l + 1]
            else:
                for l in range(tile):
                    base[l] = 2 * _insert_zero_bits(t * tile + l, qubits)
                for c in range(dim):
                    for l in range(tile):
                        o = base[l] + offs[c]
                        v_re[c, l] = state[o]
                        v_im[c, l] = state[o + 1]
            for r in range(dim):
                for l in range(tile):
                    a_re[l] = 0
                    a_im[l] = 0
                for c in range(dim):
                    mr = m_re[r, c]
                    mi = m_im[r, c]
                    if mr == 0 and mi == 0:  # permutation and controlled blocks are sparse
                        continue
                    for l in range(tile):
                        a_re[l] += mr * v_re[c, l] - mi * v_im[c, l]
                        a_im[l] += mr * v_im[c, l] + mi * v_re[c, l]
                for l in range(tile):
                    o = base[l] + offs[r]
                    state[o] = a_re[l]
                    state[o + 1] = a_im[l]


@nb.njit(parallel=True, fastmath=True, **_OPTS)
def apply_diagonal(state, d_re, d_im, qubits):
    """Multiply amplitude i by ``d[bits of i at qubits]`` (bit j = qubits[j]); float view.

    Runs of _TILE consecutive amplitudes share the table bits above the tile; the bits inside
    it come from a small precomputed table, so the inner loop is a short gather and multiply.
    """
    k = qubits.size
    n_amp = state.size >> 1
    tile = min(_TILE, n_amp)
    low = np.zeros(tile, dtype=np.int64)  # table-index bits contributed by the low index bits
    for l in range(tile):
        for b in range(k):
            low[l] |= ((l >> qubits[b]) & 1) << b
    uniform = (np.int64(1) << qubits[0]) >= tile
    runs = n_amp // tile
    chunks = min(runs, 1024)
    for ch in nb.prange(chunks):
        r_lo = runs * np.int64(ch) // chunks
        r_hi = runs * np.int64(ch + 1) // chunks
        for r in range(r_lo, r_hi):
            i = r * tile
            high = 0
            for b in range(k):
                high |= ((i >> qubits[b]) & 1) << b
            o = 2 * i
            if uniform:  # no table bit inside the tile: one phase for the whole run
                dr = d_re[high]
                di = d_im[high]
                for l in range(tile):
                    x = state[o + 2 * l]
                    y = state[o + 2 * l + 1]
                    state[o + 2 * l] = dr * x - di * y
                    state[o + 2 * l + 1] = dr * y + di * x
                continue
            for l in range(tile):
                idx = high | low[l]
                dr = d_re[idx]
                di = d_im[idx]
                x = state[o + 2 * l]
                y = state[o + 2 * l + 1]
                state[o + 2 * l] = dr * x - di * y
                state[o + 2 * l + 1] = dr * y + di * x


@nb.njit(parallel=True, **_OPTS)
def probabilities(state):
    out = np.empty(state.size, dtype=np.float64)
    for i_ in nb.prange(state.size):
        i = np.int64(i_)
        a = state[i]
        out[i] = a.real * a.real + a.imag * a.imag
    return out


@nb.njit(parallel=True, **_OPTS)
def _chunk_norms(state, chunks):
    out = np.zeros(chunks, dtype=np.float64)
    n = state.size
    for c in nb.prange(chunks):
        acc = 0.0
        for i in range(n * np.int64(c) // chunks, n * np.int64(c + 1) // chunks):
            a = state[i]
            acc += a.real * a.real + a.imag * a.imag
        out[c] = acc
    return out


@nb.njit(parallel=True, **_OPTS)
def sample_sorted(state, draws):
    """Basis indices for sorted uniform ``draws`` in [0, 1), by inverse transform over |psi|^2,
    in one parallel pass and without an N-sized cumulative array."""
    chunks = min(state.size, 256)
    norms = _chunk_norms(state, chunks)
    ends = np.cumsum(norms)
    total = ends[-1]
    out = np.empty(draws.size, dtype=np.int64)
    n = state.size
    for c in nb.prange(chunks):
        start = ends[c] - norms[c]
        lo = np.searchsorted(draws * total, start, side="left") if c else 0
        hi = np.searchsorted(draws * total, ends[c], side="left") if c < chunks - 1 else draws.size
        i = n * np.int64(c) // chunks
        stop = n * np.int64(c + 1) // chunks
        acc = start
        for d in range(lo, hi):
            target = draws[d] * total
            while i < stop - 1:
                a = state[i]
                p = a.real * a.real + a.imag * a.imag
                if acc + p > target:
                    break
                acc += p
                i += 1
            out[d] = i
    return out


@nb.njit(parallel=True, **_OPTS)
def marginal(state, qubits):
    """Probabilities of the outcomes of ``qubits`` (bit j = qubits[j])."""
    k = qubits.size
    chunks = min(state.size, 64)
    hist = np.zeros((chunks, 1 << k), dtype=np.float64)
    n = state.size
    for c in nb.prange(chunks):
        for i in range(n * np.int64(c) // chunks, n * np.int64(c + 1) // chunks):
            idx = 0
            for b in range(k):
                idx |= ((i >> qubits[b]) & 1) << b
            a = state[i]
            hist[c, idx] += a.real * a.real + a.imag * a.imag
    return hist.sum(axis=0)


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
        sign = 1 - 2 * parity
        re += sign * a.real
        im += sign * a.imag
    return complex(re, im)


def _floats(state: np.ndarray) -> np.ndarray:
    return state.view(np.float32 if state.dtype == np.complex64 else np.float64)


class NumbaKernels:
    """The CPU set behind the common kernel interface (see kernels/__init__.py)."""

    name = "numba"

    @staticmethod
    def zero_state(num_qubits: int, dtype) -> np.ndarray:
        state = np.zeros(1 << num_qubits, dtype=dtype)
        state[0] = 1
        return state

    @staticmethod
    def prepare_matrix(m: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The complex matrix (for the one-qubit kernel) and its real and imaginary parts."""
        real = np.float32 if np.dtype(dtype) == np.complex64 else np.float64
        return (np.ascontiguousarray(m, dtype=dtype), np.ascontiguousarray(m.real, dtype=real),
                np.ascontiguousarray(m.imag, dtype=real))

    @staticmethod
    def apply_dense(state, m, qubits):
        if len(qubits) == 1:
            apply_1q(state, m[0], qubits[0])
        else:
            apply_dense(_floats(state), m[1], m[2], np.asarray(qubits, dtype=np.int64))
        return state

    @staticmethod
    def apply_diagonal(state, diag, qubits):
        apply_diagonal(_floats(state), diag[1], diag[2], np.asarray(qubits, dtype=np.int64))
        return state

    @staticmethod
    def probabilities(state) -> np.ndarray:
        return probabilities(state)

    @staticmethod
    def qubit_one_probability(state, q: int) -> float:
        return float(qubit_one_probability(state, q))

    @staticmethod
    def marginal(state, qubits) -> np.ndarray:
        return marginal(state, np.asarray(qubits, dtype=np.int64))

    @staticmethod
    def sample_sorted(state, draws: np.ndarray) -> np.ndarray:
        return sample_sorted(state, draws)

    @staticmethod
    def warm_up(dtype) -> None:
        """Load every compiled kernel for ``dtype`` (from numba's disk cache, or compile it)."""
        s = NumbaKernels.zero_state(3, dtype)
        for qs in ((0,), (0, 2)):
            m = NumbaKernels.prepare_matrix(np.eye(1 << len(qs)), dtype)
            NumbaKernels.apply_dense(s, m, qs)
            NumbaKernels.apply_diagonal(s, tuple(a[0] for a in m), qs)
        NumbaKernels.marginal(s, (0, 1))
        NumbaKernels.sample_sorted(s, np.array([0.5]))
        NumbaKernels.qubit_one_probability(s, 1)
        NumbaKernels.collapse(s, 1, 0, 1.0)
        NumbaKernels.pauli_expectation(s, 1, 2)

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
