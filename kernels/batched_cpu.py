"""CPU kernels on a batch of trajectories held as one ``(rows, 2^n)`` array (numba, parallel
over rows): per-row Pauli operators and per-row sampling. Gates common to every row need no
kernel of their own: the batch is one flat array whose row index sits above the n qubit bits,
so the ordinary in-place gate kernels (kernels/numba_cpu.py) apply a gate to every row in one
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
    n = rows.shape[1]
    for r in nb.prange(rows.shape[0]):
        row = rows[r]
        total = 0.0
        for j in range(n):
            total += row[j].real * row[j].real + row[j].imag * row[j].imag
        acc = 0.0
        j = 0
        for s in range(starts[r], starts[r + 1]):
            target = draws[s] * total
            while j < n - 1:
                p = row[j].real * row[j].real + row[j].imag * row[j].imag
                if acc + p > target:
                    break
                acc += p
                j += 1
            out[s] = j
