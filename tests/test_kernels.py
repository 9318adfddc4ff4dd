"""Every kernel set (the ``kernel_set`` fixture of conftest.py: cpu, jax) against a dense numpy
reference, pattern by pattern; then what the CPU set alone promises.

The CPU set's dense kernel has several paths: one-qubit runs (strided loops below qubit 3), the
tiled kernel for 2-4 qubits (groups consecutive in memory above the lowest target, gathered
amplitude by amplitude below it, tiles smaller than the buffers for small states) and the generic
kernel for wider blocks; the patterns below reach each of them.
"""

import itertools

import numpy as np
import pytest

from qsim_dist.kernels.cpu import CpuKernels
from qsim_dist.kernels.shard import precision_context

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
def test_dense_kernel_every_pattern(kernel_set, random_cases, n, dtype):
    K = kernel_set
    rng = np.random.default_rng(n)
    state = (rng.standard_normal(1 << n) + 1j * rng.standard_normal(1 << n)) / 2 ** (n / 2)
    with precision_context(K, dtype):
        for k in range(1, min(n, 6) + 1):
            a = rng.standard_normal((1 << k, 1 << k)) + 1j * rng.standard_normal((1 << k, 1 << k))
            u = np.linalg.qr(a)[0]
            for qubits in patterns(n, k, rng, random_cases(10)):
                got = K.apply_dense(state.astype(dtype), K.prepare_matrix(u, dtype), qubits)
                want = reference_apply(state, u, qubits)
                np.testing.assert_allclose(K.to_numpy(got), want, atol=TOL[dtype],
                                           err_msg=f"{qubits}")


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_sparse_and_diagonal_blocks(kernel_set, dtype):
    K = kernel_set
    n = 9
    rng = np.random.default_rng(3)
    state = (rng.standard_normal(1 << n) + 1j * rng.standard_normal(1 << n)) / 2 ** (n / 2)
    perm = np.eye(16)[[3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14]]
    with precision_context(K, dtype):
        for qubits in [(0, 1, 2, 3), (1, 4, 6, 8), (5, 6, 7, 8)]:
            got = K.apply_dense(state.astype(dtype), K.prepare_matrix(perm, dtype), qubits)
            np.testing.assert_allclose(K.to_numpy(got), reference_apply(state, perm, qubits),
                                       atol=TOL[dtype])
            d = np.exp(1j * rng.uniform(0, 2 * np.pi, 16))
            got = K.apply_diagonal(state.astype(dtype), K.prepare_matrix(d, dtype), qubits)
            want = reference_apply(state, np.diag(d), qubits)
            np.testing.assert_allclose(K.to_numpy(got), want, atol=TOL[dtype])


def test_warm_up_loads_without_error(kernel_set):
    for dtype in (np.complex64, np.complex128):
        with precision_context(kernel_set, dtype):
            kernel_set.warm_up(dtype)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_blocks_on_no_qubits_scale_every_amplitude(kernel_set, dtype):
    """A block whose qubits all lie on other ranks leaves a 1 x 1 matrix: one factor."""
    K = kernel_set
    state = np.arange(1, 9, dtype=dtype)
    with precision_context(K, dtype):
        for kernel in (K.apply_dense, K.apply_diagonal):
            got = kernel(state.copy(), K.prepare_matrix(np.array([[0.5j]]), dtype), ())
            np.testing.assert_allclose(K.to_numpy(got), 0.5j * state, atol=TOL[dtype])


def test_measurement_kernels_against_numpy(kernel_set):
    K = kernel_set
    with precision_context(K, np.complex128):
        check_measurement_kernels(K)


def check_measurement_kernels(K):
    """Probabilities, one qubit's probability, marginals, sampling, a Pauli expectation and a
    collapse of one 17-qubit state (above the size where the CPU loops go parallel)."""
    rng = np.random.default_rng(7)
    n = 17  # above the size where the loops go parallel
    psi = rng.standard_normal(1 << n) + 1j * rng.standard_normal(1 << n)
    psi = (psi / np.linalg.norm(psi)).astype(np.complex128)
    p = np.abs(psi) ** 2
    np.testing.assert_allclose(K.probabilities(psi), p, rtol=1e-12)
    bits = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
    assert K.qubit_one_probability(psi, 5) == pytest.approx(p[bits[:, 5] == 1].sum(), rel=1e-12)
    qubits = (9, 2, 14)  # any order: bit j of the outcome is qubits[j]
    outcome = bits[:, 9] | bits[:, 2] << 1 | bits[:, 14] << 2
    np.testing.assert_allclose(K.marginal(psi, qubits), np.bincount(outcome, p, 8), rtol=1e-10)
    draws = np.sort(rng.random(1000))
    want = np.minimum(np.searchsorted(np.cumsum(p), draws * p.sum(), side="right"), p.size - 1)
    np.testing.assert_array_equal(K.sample_sorted(psi, draws), want)
    x, z = 0b10010000000100, 0b00110000001001
    sign = 1 - 2 * (np.bitwise_count(np.arange(1 << n) & z) & 1).astype(np.int64)
    want = np.vdot(psi, sign * psi[np.arange(1 << n) ^ x])
    assert K.pauli_expectation(psi, x, z) == pytest.approx(want, abs=1e-12)
    collapsed = K.collapse(psi.copy(), 3, 1, 2.0)
    np.testing.assert_allclose(K.to_numpy(collapsed), np.where(bits[:, 3] == 1, 2 * psi, 0),
                               atol=1e-15)


@pytest.mark.parametrize("rows", [64 * 3, 64 * 5])
def test_gate_kernels_on_a_batch_of_rows(kernel_set, batch_rows, rows):
    """A batch of rows (for the CPU set a whole number of 64-row tiles, not a power of two) is
    one flat state whose row index sits above the qubits: every block acts on each row alone."""
    K = kernel_set
    rows = batch_rows(rows)
    n, dtype = 3, np.complex128
    rng = np.random.default_rng(rows)
    batch = rng.standard_normal((rows, 1 << n)) + 1j * rng.standard_normal((rows, 1 << n))
    with precision_context(K, dtype):
        for k in (1, 2, 3):
            u = np.linalg.qr(rng.standard_normal((1 << k, 1 << k))
                             + 1j * rng.standard_normal((1 << k, 1 << k)))[0]
            d = np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k))
            for qubits in itertools.combinations(range(n), k):
                want = np.array([reference_apply(row, u, qubits) for row in batch])
                got = K.apply_dense(batch.reshape(-1).copy(), K.prepare_matrix(u, dtype), qubits)
                np.testing.assert_allclose(K.to_numpy(got).reshape(rows, -1), want, atol=1e-12)
                want = np.array([reference_apply(row, np.diag(d), qubits) for row in batch])
                got = K.apply_diagonal(batch.reshape(-1).copy(), K.prepare_matrix(d, dtype),
                                       qubits)
                np.testing.assert_allclose(K.to_numpy(got).reshape(rows, -1), want, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [3, 17])
def test_compaction_and_reduced_density_matrix_kernels(kernel_set, n, dtype):
    K = kernel_set
    optional = ("insert_qubit", "extract_qubit", "reduced_density_matrix")
    missing = [name for name in optional if not hasattr(K, name)]
    if missing:  # optional entry points (kernels/__init__.py): callers fall back to numpy
        pytest.skip(f"kernel set '{K.name}' has no {', '.join(missing)} (optional)")
    rng = np.random.default_rng(n)
    psi = (rng.standard_normal(1 << n) + 1j * rng.standard_normal(1 << n)).astype(dtype)
    with precision_context(K, dtype):
        for slot in (0, n // 2, n):  # a new qubit below, inside and above the others
            for value in (0, 1):
                grown = K.to_numpy(K.insert_qubit(psi, slot, value))
                t = psi.reshape(-1, 1 << slot)  # (high bits, low bits)
                want = np.zeros((t.shape[0], 2, t.shape[1]), dtype=dtype)
                want[:, value] = t
                np.testing.assert_array_equal(grown, want.reshape(-1))
                np.testing.assert_array_equal(K.to_numpy(K.extract_qubit(grown, slot, value)),
                                              psi)
        psi = psi.astype(np.complex128) / np.linalg.norm(psi)
        qubits = (2, 0) if n == 3 else (11, 3, 16)  # any order: bit j of the matrix is qubits[j]
        t = np.moveaxis(psi.reshape((2,) * n), [n - 1 - q for q in qubits][::-1],
                        range(len(qubits)))
        v = t.reshape(1 << len(qubits), -1)
        np.testing.assert_allclose(K.reduced_density_matrix(psi.astype(dtype), qubits),
                                   v @ v.conj().T, atol=TOL[dtype] * 10)


# ---- the CPU set alone: C loops updating raw buffers in place check what they are given ------

def test_cpu_kernels_refuse_bad_arrays():
    K = CpuKernels
    state = np.zeros(8, dtype=np.complex64)
    m = K.prepare_matrix(np.eye(2), np.complex64)
    with pytest.raises(ValueError, match="ascending and inside the state"):
        K.apply_dense(state, K.prepare_matrix(np.eye(4), np.complex64), (2, 1))
    with pytest.raises(ValueError, match="inside the state"):
        K.apply_dense(state, m, (3,))
    with pytest.raises(TypeError, match="precision differs"):
        K.apply_dense(state, K.prepare_matrix(np.eye(2), np.complex128), (0,))
    with pytest.raises(TypeError, match="complex64 or complex128"):
        K.apply_dense(np.zeros(8), m, (0,))
    with pytest.raises(ValueError, match="inside the state"):  # 6 = 3 rows of one qubit
        K.apply_dense(np.zeros(6, dtype=np.complex64), m, (1,))
    with pytest.raises(ValueError, match="matrix size"):
        K.apply_dense(state, m, (0, 1))
    with pytest.raises(ValueError, match="read-only"):
        K.apply_dense(np.frombuffer(bytes(64), dtype=np.complex64), m, (0,))

