"""The numba CPU kernels against a dense numpy reference, qubit pattern by qubit pattern.

The dense kernel has several paths: one-qubit runs, the tiled kernel for 2-4 qubits (groups
consecutive in memory above the lowest target, gathered amplitude by amplitude below it, tiles
smaller than the buffers for small states) and the generic kernel for wider blocks.
"""

import itertools

import numpy as np
import pytest

from qsim_dist.kernels.numba_cpu import NumbaKernels as K

TOL = {np.complex64: 2e-5, np.complex128: 1e-12}


def reference_apply(state, u, qubits):
    """``u`` (index bit j = qubits[j]) on ``state`` (qubit q = index bit q), by tensordot."""
    n, k = state.size.bit_length() - 1, len(qubits)
    t = state.astype(np.complex128).reshape((2,) * n)
    axes = [n - 1 - q for q in reversed(qubits)]
    out = np.tensordot(u.reshape((2,) * (2 * k)), t, axes=(list(range(k, 2 * k)), axes))
    return np.moveaxis(out, list(range(k)), axes).reshape(-1)


def patterns(n, k, rng, count=10):
    combos = list(itertools.combinations(range(n), k))
    picks = [combos[0], combos[-1]]  # all low, all high
    picks += [combos[i] for i in rng.choice(len(combos), min(count, len(combos)), replace=False)]
    return list(dict.fromkeys(picks))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [1, 2, 4, 7, 11])
def test_dense_kernel_every_pattern(n, dtype):
    rng = np.random.default_rng(n)
    state = (rng.standard_normal(1 << n) + 1j * rng.standard_normal(1 << n)) / 2 ** (n / 2)
    for k in range(1, min(n, 6) + 1):
        a = rng.standard_normal((1 << k, 1 << k)) + 1j * rng.standard_normal((1 << k, 1 << k))
        u = np.linalg.qr(a)[0]
        for qubits in patterns(n, k, rng):
            got = K.apply_dense(state.astype(dtype), K.prepare_matrix(u, dtype), qubits)
            want = reference_apply(state, u, qubits)
            np.testing.assert_allclose(got, want, atol=TOL[dtype], err_msg=f"{qubits}")


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_sparse_and_diagonal_blocks(dtype):
    n = 9
    rng = np.random.default_rng(3)
    state = (rng.standard_normal(1 << n) + 1j * rng.standard_normal(1 << n)) / 2 ** (n / 2)
    perm = np.eye(16)[[3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14]]
    for qubits in [(0, 1, 2, 3), (1, 4, 6, 8), (5, 6, 7, 8)]:
        got = K.apply_dense(state.astype(dtype), K.prepare_matrix(perm, dtype), qubits)
        np.testing.assert_allclose(got, reference_apply(state, perm, qubits), atol=TOL[dtype])
        d = np.exp(1j * rng.uniform(0, 2 * np.pi, 16))
        got = K.apply_diagonal(state.astype(dtype), K.prepare_matrix(d, dtype), qubits)
        want = reference_apply(state, np.diag(d), qubits)
        np.testing.assert_allclose(got, want, atol=TOL[dtype])


def test_warm_up_loads_without_error():
    for dtype in (np.complex64, np.complex128):
        K.warm_up(dtype)
