"""CPU kernels on a batch of trajectories held as one ``(rows, 2^n)`` array (numba, parallel
over rows): per-row Pauli operators and per-row sampling. Gates common to every row need no
kernel of their own: the batch is one flat array whose row index sits above the n qubit bits,
so the ordinary in-place gate kernels (kernels/cpu.py) apply a gate to every row in one
pass.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_OPTS = dict(nogil=True, cache=True)


@nb.njit(inline="always", **_OPTS)
def _parity(v):
    v ^= v >> 32
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    v ^= v >> 2
    v ^= v >> 1
    return v & 1


@nb.njit(parallel=True, **_OPTS)
def apply_paulis(rows, which, xmask, zmask, phase):
    """Row ``which[i]`` becomes ``P_i row``: ``(P psi)[j] = phase[i] (-1)^|j & zmask[i]|
    psi[j ^ xmask[i]]`` (a Pauli string with X on xmask, Z on zmask, Y on both,
    ``phase = (-i)^#Y``)."""
    n = rows.shape[1]
    for i in nb.prange(which.size):
        x, z, ph = xmask[i], zmask[i], phase[i]
        row = rows[which[i]]
        if x == 0:
            for j in range(n):
                row[j] = -ph * row[j] if _parity(j & z) else ph * row[j]
            continue
        top = np.int64(1) << (63 - 1)
        while top > x:  # the highest set bit of x: j below it with that bit 0 pairs with j ^ x
            top >>= 1
        for j in range(n):
            if j & top:
                continue
            k = j ^ x
            a = row[j]
            b = row[k]
            row[j] = -ph * b if _parity(j & z) else ph * b
            row[k] = -ph * a if _parity(k & z) else ph * a


@nb.njit(parallel=True, **_OPTS)
def sample_rows(rows, starts, draws, out):
    """Inverse-transform sampling per row: shots ``starts[r] .. starts[r+1]-1`` (``draws``
    sorted within each row's range, in [0, 1)) read basis indices of row r into ``out``;
    the row's probabilities are renormalised by their sum."""
    for r in nb.prange(rows.shape[0]):
        _sample_row(rows[r], starts[r], starts[r + 1], draws, out)


# ---- whole trajectories per row, depth first, while the row stays in cache ------------------
#
# A run of Pauli-noise trajectories is a tree: the shots, sorted by their sequence of drawn
# Paulis (columns of ``draws``, one row per noise event), share one state per distinct prefix.
# :func:`run_trajectories` walks that tree depth first on one small row (2^n amplitudes that
# stay in L1/L2): it applies the whole gate sequence to the row, copies the row (a stack frame)
# where a group splits, and samples each leaf's shots at its end. The column range is cut
# into pieces walked in parallel, each from the start state: a group cut at a piece edge is
# simulated twice, identically (the same operations in the same order on the same row).
#
# Operations (``meta[o] = kind, k, qoff, moff, aoff, xoff``): qubits[qoff:qoff+k] (bit j of a
# matrix index is qubit qubits[qoff+j]), then the same sorted; aux[xoff:xoff+2^k] the index
# offset of each matrix index; kinds:
OP_DENSE = 0     # mats[moff:moff+4^k] a row-major 2^k x 2^k matrix
OP_DIAGONAL = 1  # mats[moff:moff+2^k] the diagonal
OP_MONOMIAL = 2  # one non-zero per row r: mats[moff+r] * psi[column aux[aoff+r]]
OP_REAL1 = 3     # one qubit, a real matrix: rmats[moff:moff+4]
OP_PAULI = 4     # noise event aux[aoff]; Pauli a: X mask aux[aoff+1+a], Z mask
#                  aux[aoff+1+k+a], phase mats[moff+a] (k = number of Paulis); a = 0 identity


@nb.njit(inline="always", **_OPTS)
def _insert_zeros(g, sorted_qubits):
    for q in sorted_qubits:
        low = g & ((np.int64(1) << q) - 1)
        g = ((g >> q) << (q + 1)) | low
    return g


@nb.njit(fastmath=True, **_OPTS)
def _row_op(row, o, meta, qubits, mats, rmats, aux, v, scratch):
    kind, k, qoff, moff, aoff, xoff = (meta[o, 0], meta[o, 1], meta[o, 2], meta[o, 3],
                                       meta[o, 4], meta[o, 5])
    n = row.size
    dim = np.int64(1) << k
    if kind == OP_REAL1:  # on the float view: the same real 2x2 on real and imaginary parts
        f = row.view(rmats.dtype)
        m00, m01, m10, m11 = rmats[moff], rmats[moff + 1], rmats[moff + 2], rmats[moff + 3]
        q = qubits[qoff]
        if q == 0:  # (re, im) of amplitude 2g, then of 2g + 1
            t = f.reshape(-1, 4)
            for g in range(t.shape[0]):
                r = t[g]
                x0 = r[0]
                x1 = r[1]
                y0 = r[2]
                y1 = r[3]
                r[0] = m00 * x0 + m01 * y0
                r[1] = m00 * x1 + m01 * y1
                r[2] = m10 * x0 + m11 * y0
                r[3] = m10 * x1 + m11 * y1
            return
        s = np.int64(2) << q
        for hi in range(0, 2 * n, 2 * s):  # two slices: LLVM vectorises the loop
            a = f[hi:hi + s]
            b = f[hi + s:hi + 2 * s]
            for j in range(s):
                x = a[j]
                y = b[j]
                a[j] = m00 * x + m01 * y
                b[j] = m10 * x + m11 * y
        return
    if kind == OP_DENSE and k == 1:
        stride = np.int64(1) << qubits[qoff]
        m00, m01, m10, m11 = mats[moff], mats[moff + 1], mats[moff + 2], mats[moff + 3]
        for hi in range(0, n, 2 * stride):
            a = row[hi:hi + stride]
            b = row[hi + stride:hi + 2 * stride]
            for i in range(stride):
                x = a[i]
                y = b[i]
                a[i] = m00 * x + m01 * y
                b[i] = m10 * x + m11 * y
        return
    offs = aux[xoff:xoff + dim]
    if kind == OP_MONOMIAL and k == 2:  # two loops of contiguous runs below the low qubit
        q0 = qubits[qoff + k]
        q1 = qubits[qoff + k + 1]
        o1, o2, o3 = offs[1], offs[2], offs[3]
        c0, c1, c2, c3 = aux[aoff], aux[aoff + 1], aux[aoff + 2], aux[aoff + 3]
        p0, p1, p2, p3 = mats[moff], mats[moff + 1], mats[moff + 2], mats[moff + 3]
        run = np.int64(1) << q0
        if run >= 4:  # runs of amplitudes moved as slices through a scratch copy
            for a in range(0, n, np.int64(2) << q1):
                for b in range(a, a + (np.int64(1) << q1), np.int64(2) << q0):
                    for r in range(4):
                        src = row[b + offs[r]:b + offs[r] + run]
                        for i in range(run):
                            scratch[r, i] = src[i]
                    for r in range(4):
                        dst = row[b + offs[r]:b + offs[r] + run]
                        c = aux[aoff + r]
                        p = mats[moff + r]
                        if p == 1:
                            for i in range(run):
                                dst[i] = scratch[c, i]
                        else:
                            for i in range(run):
                                dst[i] = p * scratch[c, i]
            return
        for a in range(0, n, np.int64(2) << q1):
            for b in range(a, a + (np.int64(1) << q1), np.int64(2) << q0):
                for i in range(b, b + run):
                    v[0] = row[i]
                    v[1] = row[i + o1]
                    v[2] = row[i + o2]
                    v[3] = row[i + o3]
                    row[i] = p0 * v[c0]
                    row[i + o1] = p1 * v[c1]
                    row[i + o2] = p2 * v[c2]
                    row[i + o3] = p3 * v[c3]
        return
    srt = qubits[qoff + k:qoff + 2 * k]
    if kind == OP_DIAGONAL:
        for g in range(n >> k):
            base = _insert_zeros(g, srt)
            for r in range(dim):
                row[base + offs[r]] *= mats[moff + r]
        return
    if kind == OP_MONOMIAL:
        for g in range(n >> k):
            base = _insert_zeros(g, srt)
            for r in range(dim):
                v[r] = row[base + offs[r]]
            for r in range(dim):
                row[base + offs[r]] = mats[moff + r] * v[aux[aoff + r]]
        return
    for g in range(n >> k):  # OP_DENSE
        base = _insert_zeros(g, srt)
        for r in range(dim):
            v[r] = row[base + offs[r]]
        for r in range(dim):
            acc = row[0] * 0
            for c in range(dim):
                acc += mats[moff + r * dim + c] * v[c]
            row[base + offs[r]] = acc


@nb.njit(fastmath=True, **_OPTS)
def _row_pauli(row, x, z, ph):
    """``row[j] <- ph (-1)^|j & z| row[j ^ x]``: the swaps, then the signs by runs of 32
    amplitudes (the run's sign times a table of the low five bits' signs)."""
    n = row.size
    if x:
        top = np.int64(1) << (63 - 1)
        while top > x:  # the highest set bit of x: j below it with that bit 0 pairs with j ^ x
            top >>= 1
        for j in range(n):
            if j & top == 0:
                k = j ^ x
                a = row[j]
                row[j] = row[k]
                row[k] = a
    width = min(n, 32)
    table = np.empty(width, dtype=row.dtype)
    for l in range(width):
        table[l] = -ph if _parity(l & z) else ph
    for base in range(0, n, width):
        run = row[base:base + width]
        if _parity(base & z):
            for l in range(width):
                run[l] = -(table[l] * run[l])
        else:
            for l in range(width):
                run[l] = table[l] * run[l]


@nb.njit(**_OPTS)
def _apply_pick(row, o, pick, meta, mats, aux):
    if pick == 0:
        return
    k, moff, aoff = meta[o, 1], meta[o, 3], meta[o, 4]
    _row_pauli(row, aux[aoff + 1 + pick], aux[aoff + 1 + k + pick], mats[moff + pick])


@nb.njit(**_OPTS)
def _sample_row(row, lo, hi, uniforms, out):
    n = row.size
    total = 0.0
    for j in range(n):
        total += row[j].real * row[j].real + row[j].imag * row[j].imag
    acc = 0.0
    j = 0
    for s in range(lo, hi):
        target = uniforms[s] * total
        while j < n - 1:
            p = row[j].real * row[j].real + row[j].imag * row[j].imag
            if acc + p > target:
                break
            acc += p
            j += 1
        out[s] = j


@nb.njit(**_OPTS)
def _run_end(draws, e, a, hi):
    """End of the run of equal draws[e, a:] within [a, hi)."""
    value = draws[e, a]
    b = a + 1
    while b < hi and draws[e, b] == value:
        b += 1
    return b


@nb.njit(**_OPTS)
def _walk(start, lo, hi, meta, qubits, mats, rmats, aux, draws, uniforms, out, saved):
    nops = meta.shape[0]
    n = start.size
    w = start.copy()
    kmax = 0
    for o in range(nops):
        if meta[o, 0] == OP_DENSE or meta[o, 0] == OP_MONOMIAL:
            kmax = max(kmax, meta[o, 1])
    v = np.empty(np.int64(1) << kmax, dtype=start.dtype)
    scratch = np.empty((4, max(1, n >> 2)), dtype=start.dtype)
    cap = 4
    frames = np.empty((cap, n), dtype=start.dtype)
    f_op = np.empty(cap, dtype=np.int64)
    f_pos = np.empty(cap, dtype=np.int64)
    f_hi = np.empty(cap, dtype=np.int64)
    depth = 0
    o = 0
    while True:
        while o < nops:
            if meta[o, 0] != OP_PAULI:
                _row_op(w, o, meta, qubits, mats, rmats, aux, v, scratch)
                o += 1
                continue
            e = aux[meta[o, 4]]
            b = _run_end(draws, e, lo, hi)
            if b < hi:  # the group splits: keep the state before the Pauli for the others
                if depth == cap:
                    cap *= 2
                    bigger = np.empty((cap, n), dtype=start.dtype)
                    bigger[:depth] = frames[:depth]
                    frames = bigger
                    f_op = np.concatenate((f_op, np.empty(cap - depth, dtype=np.int64)))
                    f_pos = np.concatenate((f_pos, np.empty(cap - depth, dtype=np.int64)))
                    f_hi = np.concatenate((f_hi, np.empty(cap - depth, dtype=np.int64)))
                frames[depth] = w
                f_op[depth] = o
                f_pos[depth] = b
                f_hi[depth] = hi
                depth += 1
                hi = b
            _apply_pick(w, o, draws[e, lo], meta, mats, aux)
            o += 1
        if lo == 0 and saved.size:
            saved[:] = w
        _sample_row(w, lo, hi, uniforms, out)
        if depth == 0:
            return
        d = depth - 1
        o = f_op[d]
        e = aux[meta[o, 4]]
        lo = f_pos[d]
        hi = _run_end(draws, e, lo, f_hi[d])
        w[:] = frames[d]
        if hi >= f_hi[d]:
            depth -= 1
        else:
            f_pos[d] = hi
        _apply_pick(w, o, draws[e, lo], meta, mats, aux)
        o += 1


@nb.njit(parallel=True, **_OPTS)
def run_trajectories(start, cuts, meta, qubits, mats, rmats, aux, draws, uniforms, out,
                     saved):
    """Every trajectory of a Pauli-noise run (see above): shots ``cuts[p] .. cuts[p+1]-1``
    are walked as one piece from ``start``; shot s samples with ``uniforms[s]`` (sorted
    within each group of equal draws) the basis index ``out[s]``; ``saved`` (empty, or one
    row) receives shot 0's final state."""
    for p in nb.prange(cuts.size - 1):
        if cuts[p + 1] > cuts[p]:
            _walk(start, cuts[p], cuts[p + 1], meta, qubits, mats, rmats, aux, draws,
                  uniforms, out, saved)
