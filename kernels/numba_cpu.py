"""The CPU kernel set: numba, parallel over amplitude groups, updating the state in place.

On the CPU, XLA allocates a fresh output per gate and runs a one-qubit gate at ~12 GB/s (see
DESIGN.md); these loops update the buffer in place near memory bandwidth. Compiled functions are
cached on disk (``cache=True``), so only the first run on a machine pays numba's compile time.

Every kernel takes the flat state (complex64 or complex128, length 2^n) and sorted qubit positions.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

_OPTS = dict(nogil=True, cache=True)


@nb.njit(**_OPTS)
def _insert_zero_bits(i, qubits):
    # Spread the bits of i around the (sorted, ascending) qubit positions, which read 0.
    i = np.int64(i)
    for q in qubits:
        low = i & ((1 << q) - 1)
        i = ((i >> q) << (q + 1)) | low
    return i


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Ask for the cache line holding ``arr[idx]`` ahead of a write (x86 ``prefetchw``); no
    bounds check, and an address outside the array is harmless."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
        builder.call(fn, [ptr, i32(1), i32(3), i32(1)])  # write, keep in all levels, data
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@nb.njit(**_OPTS)
def _prefetch_tile(state, t0, offs, span):
    """Prefetch the ``span`` floats from ``t0 + offs[c]`` for every column c."""
    step = 64 // state.itemsize
    for c in range(offs.size):
        for j in range(0, span, step):
            _prefetch(state, t0 + offs[c] + j)


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


# The dense kernels work in tiles of groups: a group is the 2^k amplitudes a k-qubit block mixes.
# Each tile is gathered into separate real and imaginary rows (structure of arrays), so the
# multiply runs as plain float loops over the tile that LLVM vectorises whatever the qubits.
# Above the lowest block qubit, consecutive groups are consecutive in memory and the gather is a
# vectorised de-interleave; otherwise it goes amplitude by amplitude.
_TILE = 32  # groups per tile of the generic kernel (and of the diagonal kernel's runs)


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
def apply_dense_any(state, m_re, m_im, qubits):
    """``2^k x 2^k`` matrix (given as real and imaginary parts) on sorted ``qubits``, any k.

    ``state`` is the float view of the complex state: amplitude i is (state[2i], state[2i+1]).
    Blocks of up to 4 qubits go to the faster :func:`apply_dense`.
    """
    k = qubits.size
    dim = 1 << k
    offs = 2 * _offsets(qubits)
    groups = (state.size >> 1) >> k
    tile = min(_TILE, groups)
    tiles = groups // tile
    contiguous = (np.int64(1) << qubits[0]) >= tile
    chunks = min(tiles, 256)
    lanes = _lane_offsets(qubits, tile)
    for ch in nb.prange(chunks):
        v = np.empty((dim, 2, tile), dtype=state.dtype)
        a = np.empty((2, tile), dtype=state.dtype)
        t_lo = tiles * np.int64(ch) // chunks
        t_hi = tiles * np.int64(ch + 1) // chunks
        for t in range(t_lo, t_hi):
            b = 2 * _insert_zero_bits(t * tile, qubits)
            _gather(state, v, b, offs, lanes, tile, contiguous)
            for r in range(dim):
                for l in range(tile):
                    a[0, l] = 0
                    a[1, l] = 0
                for c in range(dim):
                    mr = m_re[r, c]
                    mi = m_im[r, c]
                    if mr == 0 and mi == 0:  # permutation and controlled blocks are sparse
                        continue
                    for l in range(tile):
                        a[0, l] += mr * v[c, 0, l] - mi * v[c, 1, l]
                        a[1, l] += mr * v[c, 1, l] + mi * v[c, 0, l]
                _scatter_row(state, a, b + offs[r], lanes, tile, contiguous)


@nb.njit(**_OPTS)
def _lane_offsets(qubits, tile):
    """Float offsets of the first amplitudes of groups 0 .. tile-1 (tile a power of two): the
    groups of tile t start at 2 * _insert_zero_bits(t * tile) plus these."""
    lanes = np.empty(tile, dtype=np.int64)
    for l in range(tile):
        lanes[l] = 2 * _insert_zero_bits(l, qubits)
    return lanes


def _complex_view(floats):
    """The complex amplitudes of a float view (even length, contiguous); jitted code only."""
    raise NotImplementedError


@overload(_complex_view)
def _complex_view_impl(floats):
    complex_type = np.complex64 if floats.dtype == types.float32 else np.complex128
    return lambda floats: floats.view(complex_type)


@nb.njit(fastmath=True, **_OPTS)
def _gather(state, v, b, offs, lanes, tile, contiguous):
    """The tile of groups starting at float offset ``b`` into ``v[c, 0/1, l]`` (column c of
    group l, real/imaginary parts)."""
    for c in range(offs.size):
        if contiguous:  # the groups are consecutive amplitudes: a vectorised de-interleave
            src = state[b + offs[c]:b + offs[c] + 2 * tile]  # a view: indices below are >= 0
            for l in range(tile):
                v[c, 0, l] = src[2 * l]
                v[c, 1, l] = src[2 * l + 1]
        else:  # one 8- or 16-byte load per amplitude
            src = _complex_view(state[b + offs[c]:])
            for l in range(tile):
                a = src[lanes[l] >> 1]
                v[c, 0, l] = a.real
                v[c, 1, l] = a.imag


@nb.njit(fastmath=True, **_OPTS)
def _scatter_row(state, a, b, lanes, tile, contiguous):
    """Row ``a[0/1, l]`` back to the groups' amplitudes; ``b``: float offset of the first."""
    if contiguous:
        dst = state[b:b + 2 * tile]
        for l in range(tile):
            dst[2 * l] = a[0, l]
            dst[2 * l + 1] = a[1, l]
    else:
        dst = _complex_view(state[b:])
        for l in range(tile):
            dst[lanes[l] >> 1] = complex(a[0, l], a[1, l])


# The fast dense kernel, for blocks of up to 4 qubits. Its tile buffers have constant shapes, so
# LLVM knows how far apart their rows are: the tile loops vectorise without run-time overlap
# checks (with tile-sized shapes known only at run time it needs one check per pair of rows, gives
# up above 128 and runs scalar, 5-10x slower). Output rows are made four at a time, reading
# each input row once per four rows: about one AVX2 multiply-add per load, near the FMA peak.
_DMAX = 16  # largest block (4 qubits)
_FAST_TILE = 64  # groups per tile: x and y are 2 x 8 KiB (complex64) and stay in L1


@nb.njit(parallel=True, **_OPTS)
def apply_dense(state, m_re, m_im, qubits):
    """``2^k x 2^k`` matrix (real and imaginary parts) on sorted ``qubits``, k <= 4.

    ``state`` is the float view of the complex state: amplitude i is (state[2i], state[2i+1]).
    """
    k = qubits.size
    offs = 2 * _offsets(qubits)
    groups = (state.size >> 1) >> k
    tile = min(_FAST_TILE, groups)
    tiles = groups // tile
    chunks = min(tiles, 256)
    lanes = _lane_offsets(qubits, tile)
    for ch in nb.prange(chunks):
        _dense_tiles(state, m_re, m_im, qubits, offs, lanes, tile,
                     tiles * np.int64(ch) // chunks, tiles * np.int64(ch + 1) // chunks)


@nb.njit(fastmath=True, **_OPTS)
def _dense_tiles(state, m_re, m_im, qubits, offs, lanes, tile, t_lo, t_hi):
    # A function of its own, not the body of the prange loop: there numba passes the buffers in
    # with shapes known only at run time, and the loops below stop vectorising.
    dim = offs.size
    contiguous = (np.int64(1) << qubits[0]) >= tile
    x = np.empty((_DMAX, 2, _FAST_TILE), dtype=state.dtype)
    y = np.empty((_DMAX, 2, _FAST_TILE), dtype=state.dtype)
    mr = np.zeros((_DMAX, _DMAX), dtype=state.dtype)  # rows past dim stay 0
    mi = np.zeros((_DMAX, _DMAX), dtype=state.dtype)
    for r in range(dim):
        for c in range(dim):
            mr[r, c] = m_re[r, c]
            mi[r, c] = m_im[r, c]
    span = lanes[tile - 1] + 2  # floats from a tile's first amplitude to its last, per column
    for t in range(t_lo, t_hi):
        t0 = 2 * _insert_zero_bits(t * tile, qubits)
        if t + 1 < t_hi:  # memory fetches the next tile while this one computes
            _prefetch_tile(state, 2 * _insert_zero_bits((t + 1) * tile, qubits), offs, span)
        _gather(state, x, t0, offs, lanes, tile, contiguous)
        for r in range(0, dim, 4):
            p0 = mr[r, 0]
            q0 = mi[r, 0]
            p1 = mr[r + 1, 0]
            q1 = mi[r + 1, 0]
            p2 = mr[r + 2, 0]
            q2 = mi[r + 2, 0]
            p3 = mr[r + 3, 0]
            q3 = mi[r + 3, 0]
            for l in range(tile):
                xr = x[0, 0, l]
                xi = x[0, 1, l]
                y[r, 0, l] = p0 * xr - q0 * xi
                y[r, 1, l] = p0 * xi + q0 * xr
                y[r + 1, 0, l] = p1 * xr - q1 * xi
                y[r + 1, 1, l] = p1 * xi + q1 * xr
                y[r + 2, 0, l] = p2 * xr - q2 * xi
                y[r + 2, 1, l] = p2 * xi + q2 * xr
                y[r + 3, 0, l] = p3 * xr - q3 * xi
                y[r + 3, 1, l] = p3 * xi + q3 * xr
            for c in range(1, dim):
                p0 = mr[r, c]
                q0 = mi[r, c]
                p1 = mr[r + 1, c]
                q1 = mi[r + 1, c]
                p2 = mr[r + 2, c]
                q2 = mi[r + 2, c]
                p3 = mr[r + 3, c]
                q3 = mi[r + 3, c]
                for l in range(tile):
                    xr = x[c, 0, l]
                    xi = x[c, 1, l]
                    y[r, 0, l] += p0 * xr - q0 * xi
                    y[r, 1, l] += p0 * xi + q0 * xr
                    y[r + 1, 0, l] += p1 * xr - q1 * xi
                    y[r + 1, 1, l] += p1 * xi + q1 * xr
                    y[r + 2, 0, l] += p2 * xr - q2 * xi
                    y[r + 2, 1, l] += p2 * xi + q2 * xr
                    y[r + 3, 0, l] += p3 * xr - q3 * xi
                    y[r + 3, 1, l] += p3 * xi + q3 * xr
        for r in range(dim):
            _scatter_row(state, y[r], t0 + offs[r], lanes, tile, contiguous)


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


def _whole_tiles(rows: int) -> int:
    """``rows`` rounded up to whole tiles of 64 rows (what the gate kernels pass over)."""
    return -(-rows // 64) * 64


class NumbaKernels:
    """The CPU set behind the common kernel interface (see kernels/__init__.py)."""

    name = "numba"
    max_dense = 4  # the largest dense block that stays memory-bound (benchmarks/)

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
            kernel = apply_dense if len(qubits) <= 4 else apply_dense_any
            kernel(_floats(state), m[1], m[2], np.asarray(qubits, dtype=np.int64))
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
        """Load the gate kernels for ``dtype`` (from numba's disk cache, or compile them). The
        measurement kernels and the wide-block kernel load on first use only: a run that does not
        need them pays neither their loading time nor their memory."""
        s = NumbaKernels.zero_state(3, dtype)
        for qs in ((0,), (0, 2)):
            m = NumbaKernels.prepare_matrix(np.eye(1 << len(qs)), dtype)
            NumbaKernels.apply_dense(s, m, qs)
            NumbaKernels.apply_diagonal(s, tuple(a[0] for a in m), qs)

    @staticmethod
    def collapse(state, q: int, outcome: int, scale: float):
        collapse(state, q, outcome, state.real.dtype.type(scale))
        return state

    @staticmethod
    def pauli_expectation(state, x_mask: int, z_mask: int) -> complex:
        return complex(pauli_expectation(state, x_mask, z_mask))

    # rows of trajectories: whole tiles of 64 rows for the gate kernels; a batch grows by
    # doubling and the gate kernels pass over the used rows only (rounded up to a tile)
    @staticmethod
    def rows(state, count: int) -> np.ndarray:
        """A batch of rows whose first ``count`` are copies of ``state``, the rest zero."""
        rows = np.zeros((_whole_tiles(count), state.size), dtype=state.dtype)
        rows[:count] = state
        return rows

    @staticmethod
    def active_rows(rows, used: int):
        return rows[:_whole_tiles(used)]

    @staticmethod
    def copy_rows(rows, dst: np.ndarray, src: np.ndarray) -> np.ndarray:
        need = int(dst.max()) + 1
        if need > rows.shape[0]:
            bigger = np.zeros((_whole_tiles(max(2 * rows.shape[0], need)), rows.shape[1]),
                              dtype=rows.dtype)
            bigger[:rows.shape[0]] = rows
            rows = bigger
        rows[dst] = rows[src]
        return rows

    @staticmethod
    def apply_paulis_rows(rows, which: np.ndarray, x: np.ndarray, z: np.ndarray,
                          phase: np.ndarray) -> np.ndarray:
        from .batched_cpu import apply_paulis

        apply_paulis(rows, which, x, z, phase)
        return rows

    @staticmethod
    def sample_rows(rows, row_of_shot: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """As the JAX kernel; here each row's shots are contiguous and their draws sorted."""
        from .batched_cpu import sample_rows

        cuts = np.flatnonzero(row_of_shot[1:] != row_of_shot[:-1]) + 1
        starts = np.concatenate(([0], cuts, [row_of_shot.size])).astype(np.int64)
        out = np.empty(draws.size, dtype=np.int64)
        sample_rows(rows[row_of_shot[starts[:-1]]], starts, draws, out)
        return out

    @staticmethod
    def copy(state):
        return state.copy()

    @staticmethod
    def to_numpy(state) -> np.ndarray:
        return state
