"""Seeded randomized tests of every kernel entry point against plain numpy, for every kernel set
(the ``kernel_set`` fixture of conftest.py), then of the CPU set's own edge cases.

Random shapes: 1-12 qubits, every block width k from 0 (a 1 x 1 matrix) to 6 (the wide path)
and now and then 7-8, random sorted qubit subsets (including all-low, all-high and k = n),
tiny states (fewer groups than a CPU tile), batches of rows (rows x 2^n with rows as the set
sizes a batch: for the CPU set a multiple of 64, whose lowest row bits are usable qubits too),
both precisions. Each case is small, so the whole file runs in seconds per set.
"""

import numpy as np
import pytest

from qsim_dist.kernels.cpu import CpuKernels
from qsim_dist.kernels.shard import precision_context

DTYPES = [np.complex64, np.complex128]
TOL = {np.complex64: 2e-5, np.complex128: 1e-12}
ROWS = [64, 128, 192, 320]  # batches asked for: the CPU set makes them whole tiles of 64 rows


def usable_qubits(length: int) -> int:
    """Qubits of a flat state of ``length`` amplitudes: the bits below its lowest set bit."""
    return (length & -length).bit_length() - 1


def ref_apply_row(row, u, qubits):
    n, k = row.size.bit_length() - 1, len(qubits)
    if k == 0:
        return u[0, 0] * row
    t = row.reshape((2,) * n)
    axes = [n - 1 - q for q in reversed(qubits)]
    out = np.tensordot(u.reshape((2,) * (2 * k)), t, axes=(list(range(k, 2 * k)), axes))
    return np.moveaxis(out, list(range(k)), axes).reshape(-1)


def ref_apply(state, u, qubits):
    """``u`` (index bit j = qubits[j]) on every row of a flat state (one row if 2^n long)."""
    s = state.astype(np.complex128)
    width = s.size & -s.size
    return np.concatenate([ref_apply_row(r, u, qubits) for r in s.reshape(-1, width)])


def bits_at(index, qubits):
    out = np.zeros_like(index)
    for j, q in enumerate(qubits):
        out |= ((index >> q) & 1) << j
    return out


def random_state(rng, length, dtype):
    s = rng.standard_normal(length) + 1j * rng.standard_normal(length)
    return (s / np.linalg.norm(s)).astype(dtype)


def random_block(rng, k):
    if k == 0:
        return np.array([[np.exp(1j * rng.uniform(0, 2 * np.pi)) * rng.uniform(0.5, 2)]])
    if k >= 3 and rng.random() < 0.3:  # permutations and controlled blocks are sparse
        return np.eye(1 << k, dtype=complex)[rng.permutation(1 << k)]
    a = rng.standard_normal((1 << k, 1 << k)) + 1j * rng.standard_normal((1 << k, 1 << k))
    return np.linalg.qr(a)[0]


def random_qubits(rng, m, k):
    pick = rng.random()
    if pick < 0.15:
        return tuple(range(k))  # all low
    if pick < 0.3:
        return tuple(range(m - k, m))  # all high
    return tuple(sorted(rng.choice(m, k, replace=False).tolist()))


def shapes(rng, count, batch_rows):
    """(length, n) pairs: single states of 1-12 qubits and batches of rows of 0-7 qubits (as
    many rows as ``batch_rows`` makes of a row count of ROWS)."""
    for _ in range(count):
        if rng.random() < 0.7:
            n = int(rng.integers(1, 13))
            yield 1 << n, n
        else:
            n = int(rng.integers(0, 8))
            yield batch_rows(int(rng.choice(ROWS))) << n, n


def check_block(K, rng, length, dtype, k, what):
    m = usable_qubits(length)
    qubits = random_qubits(rng, m, k)
    psi = random_state(rng, length, dtype)
    msg = f"{what} length={length} dtype={np.dtype(dtype).name} qubits={qubits}"
    tol = TOL[dtype] * (1 + k)
    if what == "dense":
        u = random_block(rng, k)
        got = K.apply_dense(psi.copy(), K.prepare_matrix(u, dtype), qubits)
        want = ref_apply(psi, u, qubits)
    else:
        d = np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k)) * rng.uniform(0.5, 1.5, 1 << k)
        got = K.apply_diagonal(psi.copy(), K.prepare_matrix(d, dtype), qubits)
        want = psi.astype(np.complex128) * d[bits_at(np.arange(length), qubits)]
    assert got.dtype == dtype and got.size == length
    np.testing.assert_allclose(K.to_numpy(got), want, rtol=0, atol=tol, err_msg=msg)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("what", ["dense", "diagonal"])
def test_blocks_on_random_shapes(kernel_set, batch_rows, random_cases, what, dtype):
    K = kernel_set
    rng = np.random.default_rng([1, DTYPES.index(dtype), what == "dense"])
    with precision_context(K, dtype):
        for length, n in shapes(rng, random_cases(70), batch_rows):
            m = usable_qubits(length)
            for k in range(0, min(m, 6) + 1):
                check_block(K, rng, length, dtype, k, what)
            if m >= 7 and rng.random() < 0.25:  # wider than any fusion asks for
                check_block(K, rng, length, dtype, int(rng.integers(7, min(m, 8) + 1)), what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_blocks_on_edge_shapes(kernel_set, batch_rows, dtype):
    """Every qubit subset of tiny states (k = n included), the top qubits of a batch, and a state
    large enough for the parallel loops."""
    K = kernel_set
    rng = np.random.default_rng(2)
    with precision_context(K, dtype):
        for n in range(1, 6):
            for mask in range(1 << n):
                qubits = tuple(q for q in range(n) if mask >> q & 1)
                psi = random_state(rng, 1 << n, dtype)
                u = random_block(rng, len(qubits))
                got = K.apply_dense(psi.copy(), K.prepare_matrix(u, dtype), qubits)
                np.testing.assert_allclose(K.to_numpy(got), ref_apply(psi, u, qubits),
                                           atol=TOL[dtype] * 8, err_msg=f"n={n} qubits={qubits}")
        # qubits 3..8 reach into the row index
        for length in (batch_rows(192) << 3, batch_rows(64) << 1, batch_rows(448)):
            m = usable_qubits(length)
            for k in (1, 2, 4, 5, 6):
                qubits = tuple(range(m - k, m))
                psi = random_state(rng, length, dtype)
                u = random_block(rng, k)
                got = K.apply_dense(psi.copy(), K.prepare_matrix(u, dtype), qubits)
                np.testing.assert_allclose(K.to_numpy(got), ref_apply(psi, u, qubits),
                                           atol=TOL[dtype] * 8)
        for k in (1, 2, 3, 4, 5):
            check_block(K, rng, 1 << 16, dtype, k, "dense")
        check_block(K, rng, 1 << 16, dtype, 3, "diagonal")


@pytest.mark.parametrize("dtype", DTYPES)
def test_measurement_kernels_on_random_shapes(kernel_set, batch_rows, random_cases, sum_tol,
                                              dtype):
    K = kernel_set
    with precision_context(K, dtype):
        check_measurement_kernels(K, batch_rows, random_cases(120), dtype,
                                  lambda tol: sum_tol(tol, dtype))


def check_measurement_kernels(K, batch_rows, count, dtype, tol):
    """Every measurement entry point on random shapes (and the CPU set's parallel loops)."""
    rng = np.random.default_rng([3, DTYPES.index(dtype)])
    cases = list(shapes(rng, count, batch_rows)) + [(1 << 16, 16), (batch_rows(192) << 9, 9)]
    for length, n in cases:
        m = usable_qubits(length)
        psi = random_state(rng, length, dtype)
        msg = f"length={length} dtype={np.dtype(dtype).name}"
        index = np.arange(length, dtype=np.int64)
        pc = psi.astype(np.complex128)
        p = np.abs(pc) ** 2

        got = K.probabilities(psi)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, p, rtol=tol(1e-12), atol=1e-300, err_msg=msg)

        q = int(rng.integers(m))
        want = p[(index >> q) & 1 == 1].sum()
        assert K.qubit_one_probability(psi, q) == pytest.approx(want, rel=tol(1e-9), abs=1e-15), msg

        outcome, scale = int(rng.integers(2)), float(rng.uniform(0.5, 2))
        got = K.collapse(psi.copy(), q, outcome, scale)
        want = np.where((index >> q) & 1 == outcome, scale * pc, 0)
        np.testing.assert_allclose(K.to_numpy(got), want, rtol=0, atol=TOL[dtype], err_msg=msg)

        x, z = int(rng.integers(1 << m)), int(rng.integers(1 << m))
        if rng.random() < 0.2:
            x = 0  # a diagonal observable
        sign = 1 - 2 * (np.bitwise_count(index & z) & 1).astype(np.int64)
        want = np.vdot(pc, sign * pc[index ^ x])
        assert K.pauli_expectation(psi, x, z) == pytest.approx(want, abs=tol(1e-10)), \
            f"{msg} {x} {z}"

        k = int(rng.integers(0, min(m, 8) + 1))
        qubits = rng.choice(m, k, replace=False).tolist()  # any order
        want = np.bincount(bits_at(index, qubits), p, 1 << k)
        np.testing.assert_allclose(K.marginal(psi, qubits), want, rtol=tol(1e-9), atol=1e-15,
                                   err_msg=f"{msg} {qubits}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_sorted_on_random_shapes(kernel_set, batch_rows, random_cases, sum_tol, dtype):
    K = kernel_set
    with precision_context(K, dtype):
        check_sample_sorted(K, batch_rows, random_cases(120), dtype, sum_tol(1e-12, dtype))


def check_sample_sorted(K, batch_rows, count, dtype, rounding):
    """Each index returned holds the draw: its cumulative interval contains draw x total (up
    to rounding), its probability is not 0, and every draw got an index."""
    rng = np.random.default_rng([4, DTYPES.index(dtype)])
    cases = list(shapes(rng, count, batch_rows)) + [(1 << 16, 16), (3 << 16, 16)]
    for length, n in cases:
        psi = random_state(rng, length, dtype)
        if length > 2:  # zeros to skip, sometimes whole chunks of them
            psi[rng.random(length) < rng.choice([0.0, 0.3, 0.9])] = 0
            psi[rng.integers(length)] = 0.5
        draws = np.sort(rng.random(int(rng.integers(0, 400))))
        if rng.random() < 0.3:
            draws = np.concatenate(([0.0], draws))
        got = K.sample_sorted(psi, draws)
        assert got.shape == draws.shape and got.dtype == np.int64
        p = np.abs(psi.astype(np.complex128)) ** 2
        cum = np.cumsum(p)
        total = cum[-1]
        assert np.all((got >= 0) & (got < length)), f"length={length}: indices outside the state"
        t = draws * total
        slack = rounding * total
        ok = (cum[got] - p[got] <= t + slack) & (cum[got] >= t - slack) & (p[got] > 0)
        assert ok.all(), f"length={length}: draws {draws[~ok][:4]} -> {got[~ok][:4]}"
        want = np.minimum(np.searchsorted(cum, t, side="right"), length - 1)
        # the index of a double-precision search, but for draws within rounding of a boundary
        # (many more of them where the set sums in single precision)
        assert np.mean(got == want) > (0.99 if rounding <= 1e-12 else 0.95)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_entry_points(kernel_set, dtype):
    K = kernel_set
    with precision_context(K, dtype):
        for n in (0, 1, 5):
            s = K.zero_state(n, dtype)
            assert s.dtype == dtype and s.shape == (1 << n,) and s[0] == 1 and not s[1:].any()
        K.warm_up(dtype)
        psi = random_state(np.random.default_rng(5), 16, dtype)
        c = K.copy(psi)
        assert c is not psi and np.array_equal(c, psi)
        assert np.array_equal(K.to_numpy(psi), psi)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_entry_points(kernel_set, batch_rows, dtype):
    """rows, active_rows, copy_rows, apply_paulis_rows and sample_rows against numpy, and the
    gate kernels on the active rows of a batch built by rows(). (Results are read from what each
    kernel returns: the CPU set updates in place, the JAX set returns new arrays.)"""
    K = kernel_set
    with precision_context(K, dtype):
        check_batch_entry_points(K, batch_rows, dtype)


def check_batch_entry_points(K, batch_rows, dtype):
    rng = np.random.default_rng([6, DTYPES.index(dtype)])
    for n in (1, 3, 6):
        psi = random_state(rng, 1 << n, dtype)
        count = int(rng.integers(1, 150))
        rows = K.rows(psi, count)
        assert rows.shape == (batch_rows(count), 1 << n) and rows.dtype == dtype
        assert np.array_equal(K.to_numpy(rows)[:count], np.broadcast_to(psi, (count, 1 << n)))
        assert not K.to_numpy(rows)[count:].any()
        rows = np.array([random_state(rng, 1 << n, dtype) for _ in range(rows.shape[0])])
        used = int(rng.integers(1, rows.shape[0] + 1))
        active = K.active_rows(rows, used)
        assert batch_rows(active.shape[0]) == active.shape[0] and active.shape[0] >= used
        for k in range(0, n + 1):
            qubits = random_qubits(rng, n, k)
            u = random_block(rng, k)
            want = np.array([ref_apply_row(r.astype(np.complex128), u, qubits)
                             for r in K.to_numpy(active)])
            active = K.apply_dense(active.reshape(-1), K.prepare_matrix(u, dtype),
                                   qubits).reshape(active.shape)
            np.testing.assert_allclose(K.to_numpy(active), want, atol=TOL[dtype] * (1 + k))

        before = K.to_numpy(rows).copy()
        dst = np.arange(rows.shape[0] - 3, rows.shape[0] + 70)  # grows the batch
        src = rng.integers(0, rows.shape[0], dst.size)
        grown = K.copy_rows(rows, dst, src)
        assert batch_rows(grown.shape[0]) == grown.shape[0] and grown.shape[0] > dst.max()
        want = np.zeros_like(K.to_numpy(grown))
        want[:before.shape[0]] = before
        want[dst] = want[src]
        np.testing.assert_array_equal(K.to_numpy(grown), want)

        which = rng.choice(grown.shape[0], 20, replace=False)
        x = rng.integers(0, 1 << n, which.size)
        z = rng.integers(0, 1 << n, which.size)
        phase = ((-1j) ** rng.integers(0, 4, which.size)).astype(dtype)
        want = K.to_numpy(grown).astype(np.complex128)
        j = np.arange(1 << n)
        for i, r in enumerate(which):
            sign = 1 - 2 * (np.bitwise_count(j & z[i]) & 1).astype(np.int64)
            want[r] = phase[i] * sign * want[r][j ^ x[i]]
        got = K.apply_paulis_rows(grown, which, x, z, phase)
        np.testing.assert_allclose(K.to_numpy(got), want, atol=TOL[dtype])

        row_of_shot = np.sort(rng.choice(used, 50))
        draws = rng.random(50)
        for r in np.unique(row_of_shot):  # sorted within each row's shots
            draws[row_of_shot == r] = np.sort(draws[row_of_shot == r])
        got = K.sample_rows(got, row_of_shot, draws)
        p = np.abs(want.astype(np.complex128)) ** 2
        for s, (r, d) in enumerate(zip(row_of_shot, draws)):
            cum = np.cumsum(p[r])
            w = min(np.searchsorted(cum, d * cum[-1], side="right"), cum.size - 1)
            assert got[s] == w or abs(cum[w] - d * cum[-1]) < 1e-6 * cum[-1]


# ---- edge cases found by review (each failed before its fix) -------------------------------

@pytest.mark.parametrize("n", [3, 17])
def test_sample_sorted_never_returns_an_impossible_outcome(kernel_set, n):
    """A draw of 1.0 (or one rounding past a chunk's end) lands on the last amplitude with
    probability, not on the zeros after it."""
    K = kernel_set
    with precision_context(K, np.complex128):
        psi = np.zeros(1 << n, dtype=np.complex128)
        psi[0] = 1
        assert list(K.sample_sorted(psi, np.array([0.0, 0.5, 1.0]))) == [0, 0, 0]
        psi[:] = 0
        psi[5] = psi[(1 << n) - 3] = np.sqrt(0.5)
        got = K.sample_sorted(psi, np.array([0.0, 0.49, 0.51, 1.0]))
        assert list(got) == [5, 5, (1 << n) - 3, (1 << n) - 3]


def test_marginal_over_every_qubit_needs_no_more_than_the_state(kernel_set):
    """64 partial histograms of 2^k outcomes each would be 64x the state when k = n."""
    K = kernel_set
    n = 14
    rng = np.random.default_rng(3)
    psi = (rng.standard_normal(1 << n) + 1j * rng.standard_normal(1 << n)).astype(np.complex64)
    with precision_context(K, np.complex64):
        np.testing.assert_allclose(K.marginal(psi, list(range(n))), K.probabilities(psi),
                                   rtol=1e-6)


# ---- the CPU set alone: its matrix layout and the C module's own buffers -------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_prepared_matrix_is_real_and_imaginary_parts(dtype):
    m = np.array([[1 + 2j, 3], [4j, 5 - 1j]])
    re, im = CpuKernels.prepare_matrix(m, dtype)
    real = np.float32 if dtype == np.complex64 else np.float64
    assert re.dtype == im.dtype == real and re.flags.c_contiguous and im.flags.c_contiguous
    np.testing.assert_array_equal(re + 1j * im, m)


def test_sample_sorted_writes_every_draw_at_chunk_edges():
    """Chunk c takes the draws in [ends[c-1], ends[c]): a draw in the rounding gap between
    ends[c] - norms[c] and ends[c-1] was once written by no chunk."""
    psi = np.array([0.6701259617486883, 0.7422473950041155], dtype=np.complex128)
    draw = 0.44906880460960447  # draw x total falls between fl(|a0|^2) and fl(total - |a1|^2)
    out = np.full(4, -7, dtype=np.int64)
    from qsim_dist.kernels import _cpu

    _cpu.sample_sorted(psi, np.full(4, draw), out)
    assert np.all(out == 1)


def test_sample_sorted_refuses_a_read_only_out():
    from qsim_dist.kernels import _cpu

    out = np.frombuffer(bytes(16), dtype=np.int64)
    psi = np.array([0, 1], dtype=np.complex128)
    with pytest.raises(ValueError, match="read-only"):
        _cpu.sample_sorted(psi, np.array([0.25, 0.5]), out)

