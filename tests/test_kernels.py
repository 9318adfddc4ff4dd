"""Every kernel set (the ``kernel_set`` fixture of conftest.py: cpu, jax) against a dense numpy
reference, pattern by pattern; then what the CPU set alone promises.

The CPU set's dense kernel has several paths: one-qubit runs (strided loops below qubit 3), the
tiled kernel for 2-4 qubits (groups consecutive in memory above the lowest target, gathered
amplitude by amplitude below it, tiles smaller than the buffers for small states) and the generic
kernel for wider blocks; the patterns below reach each of them.
"""

import functools
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


# ---- the adjoint method's kernels (qsim_dist.autodiff): both sets against dense numpy ----------

def random_state(n, rng):
    psi = rng.standard_normal(1 << n) + 1j * rng.standard_normal(1 << n)
    return psi / np.linalg.norm(psi)


def controlled_matrix(u, target, controls):
    """``u`` on ``target`` where every control reads 1, as a dense matrix on the sorted qubits."""
    qubits = sorted((target, *controls))
    full = np.eye(1 << len(qubits), dtype=complex)
    on = sum(1 << qubits.index(c) for c in controls)
    block = [on, on | 1 << qubits.index(target)]
    full[np.ix_(block, block)] = u
    return full, tuple(qubits)


# (target, controls): low and high targets, controls below, above and on both sides of them
CONTROLLED = [(0, ()), (1, ()), (2, ()), (3, ()), (1, (0,)), (0, (1,)), (4, (0, 6)),
              (2, (0, 1, 3)), (6, (5,)), (5, (6,))]


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [2, 7, 9])
def test_controlled_one_qubit_gates_and_their_overlaps(kernel_set, sum_tol, n, dtype):
    K = kernel_set
    rng = np.random.default_rng(n)
    with precision_context(K, dtype):
        for target, controls in CONTROLLED:
            if max((target, *controls)) >= n:
                continue
            u = np.linalg.qr(rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2)))[0]
            full, qubits = controlled_matrix(u, target, controls)
            psi, bra = random_state(n, rng), random_state(n, rng)
            got = K.apply_controlled(psi.astype(dtype), K.prepare_matrix(u, dtype), target,
                                     controls)
            np.testing.assert_allclose(K.to_numpy(got), reference_apply(psi, full, qubits),
                                       atol=TOL[dtype], err_msg=f"{target} {controls}")
            # <bra|M|ket> = sum(M * X), M on target where the controls read 1 (0 elsewhere)
            x = np.asarray(K.overlap(bra.astype(dtype), psi.astype(dtype), (target,), controls))
            m = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
            zero, _ = controlled_matrix(np.zeros((2, 2)), target, controls)
            want = np.vdot(bra, reference_apply(psi, controlled_matrix(m, target, controls)[0] -
                                                zero, qubits))
            assert abs(np.sum(m * x) - want) < sum_tol(TOL[dtype] * 10, dtype)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [3, 7, 9])
def test_dense_and_diagonal_overlaps(kernel_set, sum_tol, n, dtype):
    K = kernel_set
    rng = np.random.default_rng(n + 1)
    with precision_context(K, dtype):
        for k in range(1, 4):
            for qubits in patterns(n, k, rng, 4):
                bra, ket = random_state(n, rng), random_state(n, rng)
                dim = 1 << k
                m = rng.standard_normal((dim, dim)) + 1j * rng.standard_normal((dim, dim))
                x = np.asarray(K.overlap(bra.astype(dtype), ket.astype(dtype), qubits))
                want = np.vdot(bra, reference_apply(ket, m, qubits))
                assert abs(np.sum(m * x) - want) < sum_tol(TOL[dtype] * 10, dtype), qubits
                d = rng.standard_normal(dim) + 1j * rng.standard_normal(dim)
                x = np.asarray(K.overlap_diagonal(bra.astype(dtype), ket.astype(dtype), qubits))
                want = np.vdot(bra, reference_apply(ket, np.diag(d), qubits))
                assert abs(np.sum(d * x) - want) < sum_tol(TOL[dtype] * 10, dtype), qubits
        # two target qubits with a control: the CPU set's general overlap
        if n >= 3:
            bra, ket = random_state(n, rng), random_state(n, rng)
            x = np.asarray(K.overlap(bra.astype(dtype), ket.astype(dtype), (0, 2), (1,)))
            m = rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))
            full = np.zeros((8, 8), dtype=complex)  # qubits 0, 1, 2: m where qubit 1 reads 1
            on = [2, 3, 6, 7]
            full[np.ix_(on, on)] = m
            want = np.vdot(bra, reference_apply(ket, full, (0, 1, 2)))
            assert abs(np.sum(m * x) - want) < sum_tol(TOL[dtype] * 10, dtype)


PAULI = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
         "Z": np.diag([1.0, -1.0])}


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [1, 3, 7])
def test_pauli_sums_and_inner_products(kernel_set, sum_tol, n, dtype):
    from qsim_dist.observables import as_pauli_sum, pauli_phase

    K = kernel_set
    rng = np.random.default_rng(n + 2)
    words = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(8)] + ["I" * n, "Z" * n]
    coeffs = rng.standard_normal(len(words))
    h = sum(c * functools.reduce(np.kron, [PAULI[p] for p in w]) for c, w in zip(coeffs, words))
    by_x = {}  # strings grouped by X part, each coefficient times its phase (-i)^#Y
    for c, x, z in as_pauli_sum(list(zip(coeffs, words)), n).terms:
        by_x.setdefault(x, []).append((z, c * pauli_phase(x, z)))
    groups = [(x, [z for z, _ in zc], [c for _, c in zc]) for x, zc in by_x.items()]
    psi = random_state(n, rng)
    with precision_context(K, dtype):
        got = K.apply_pauli_sum(psi.astype(dtype), groups)
        np.testing.assert_allclose(K.to_numpy(got), h @ psi, atol=TOL[dtype] * 10)
        assert abs(K.inner(psi.astype(dtype), got) - np.vdot(psi, h @ psi)) < \
            sum_tol(TOL[dtype] * 10, dtype)


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



def test_cpu_adjoint_kernels_refuse_bad_arrays():
    K = CpuKernels
    state = np.zeros(8, dtype=np.complex128)
    m = K.prepare_matrix(np.eye(2), np.complex128)
    with pytest.raises(ValueError, match="distinct and inside the state"):
        K.apply_controlled(state, m, 1, (1,))
    with pytest.raises(ValueError, match="2 x 2"):
        K.apply_controlled(state, K.prepare_matrix(np.eye(4), np.complex128), 1, (0,))
    with pytest.raises(ValueError, match="one precision and length"):
        K.overlap(state, np.zeros(4, dtype=np.complex128), (0,))
    with pytest.raises(ValueError, match="one precision and length"):
        K.overlap_diagonal(state, state.astype(np.complex64), (0,))
    with pytest.raises(ValueError, match="ascending"):
        K.overlap(state, state, (2, 1))
    with pytest.raises(ValueError, match="another buffer"):
        from qsim_dist.kernels import _cpu
        _cpu.add_pauli_terms(state, state, 0, np.zeros(1, dtype=np.int64), np.ones(1),
                             np.zeros(1))
    with pytest.raises(ValueError, match="past the state"):
        K.apply_pauli_sum(state, [(8, (0,), (1.0,))])
