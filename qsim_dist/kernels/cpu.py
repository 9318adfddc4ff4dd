"""The CPU kernel set: compiled OpenMP loops (kernels/_cpu.c) updating the state in place.

On the CPU, XLA allocates a fresh output per gate and runs a one-qubit gate at ~12 GB/s (see
DESIGN.md); these loops update the buffer in place near memory bandwidth. They are compiled when
the package is installed, so a run loads no JIT runtime: its memory is the state plus a few KiB
of tiles per thread. The Pauli-trajectory kernels (the in-cache walk, per-row Paulis and sampling,
kernels/batched_cpu.py) are numba, loaded only by runs that need them.

Every kernel takes the flat state (complex64 or complex128, length 2^n) and sorted qubit positions.
"""

from __future__ import annotations

import os
import sys

import numpy as np

try:
    from . import _cpu
except ImportError as exc:  # an install without a C compiler, or a source tree never built
    raise ImportError(
        "qsim_dist's compiled CPU kernels (qsim_dist.kernels._cpu) are missing: reinstall with a "
        "C compiler at hand (pip install -e .), or use --kernels jax") from exc

_REAL = {np.dtype(np.complex64): np.float32, np.dtype(np.complex128): np.float64}


def _qubits(qubits) -> np.ndarray:
    return np.asarray(qubits, dtype=np.int64)


def _whole_tiles(rows: int) -> int:
    """``rows`` rounded up to whole tiles of 64 rows (what the gate kernels pass over)."""
    return -(-rows // 64) * 64


def get_num_threads() -> int:
    """Threads of the compiled loops (OpenMP; ``OMP_NUM_THREADS`` sets the default)."""
    return _cpu.get_num_threads()


def share_cores(ranks_on_node: int) -> None:
    """Give each rank of a node its share of the cores, unless the user chose thread counts
    (``OMP_NUM_THREADS`` for these loops, ``NUMBA_NUM_THREADS`` for the trajectory kernels):
    oversubscribed threads make every small parallel loop wait."""
    if ranks_on_node <= 1:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = max(1, (cores or 1) // ranks_on_node)
    if "OMP_NUM_THREADS" not in os.environ:
        _cpu.set_num_threads(share)
    if "NUMBA_NUM_THREADS" in os.environ:
        return
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, share)))
    else:  # numba reads it when a run first needs the trajectory kernels
        os.environ["NUMBA_NUM_THREADS"] = str(share)


class CpuKernels:
    """The CPU set behind the common kernel interface (see kernels/__init__.py)."""

    name = "cpu"
    max_dense = 4  # the largest dense block that stays memory-bound (benchmarks/)

    @staticmethod
    def zero_state(num_qubits: int, dtype) -> np.ndarray:
        state = np.zeros(1 << num_qubits, dtype=dtype)
        state[0] = 1
        return state

    @staticmethod
    def prepare_matrix(m: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
        """The real and imaginary parts, in the state's real type."""
        real = _REAL[np.dtype(dtype)]
        m = np.asarray(m)
        return (np.ascontiguousarray(m.real, dtype=real), np.ascontiguousarray(m.imag, dtype=real))

    @staticmethod
    def apply_dense(state, m, qubits):
        _cpu.apply_dense(state, m[0], m[1], _qubits(qubits))
        return state

    @staticmethod
    def apply_diagonal(state, diag, qubits):
        _cpu.apply_diagonal(state, diag[0], diag[1], _qubits(qubits))
        return state

    @staticmethod
    def probabilities(state) -> np.ndarray:
        out = np.empty(state.size, dtype=np.float64)
        _cpu.probabilities(state, out)
        return out

    @staticmethod
    def qubit_one_probability(state, q: int) -> float:
        return _cpu.qubit_one_probability(state, q)

    @staticmethod
    def marginal(state, qubits) -> np.ndarray:
        out = np.empty(1 << len(qubits), dtype=np.float64)
        _cpu.marginal(state, _qubits(qubits), out)
        return out

    @staticmethod
    def sample_sorted(state, draws: np.ndarray) -> np.ndarray:
        out = np.empty(draws.size, dtype=np.int64)
        _cpu.sample_sorted(state, np.ascontiguousarray(draws, dtype=np.float64), out)
        return out

    @staticmethod
    def warm_up(dtype) -> None:
        """Nothing to load: the kernels are machine code in the extension module."""

    @staticmethod
    def collapse(state, q: int, outcome: int, scale: float):
        _cpu.collapse(state, q, bool(outcome), float(scale))
        return state

    @staticmethod
    def pauli_expectation(state, x_mask: int, z_mask: int) -> complex:
        return _cpu.pauli_expectation(state, x_mask, z_mask)

    @staticmethod
    def reduced_density_matrix(state, qubits) -> np.ndarray:
        """``2^k x 2^k`` reduced density matrix of ``qubits`` (any order; bit j = qubits[j]),
        complex128, in one read-only pass."""
        offsets = np.zeros(1 << len(qubits), dtype=np.int64)
        for j, q in enumerate(qubits):  # index bit j of the matrix is state bit qubits[j]
            offsets[np.arange(offsets.size) >> j & 1 == 1] |= np.int64(1) << q
        out = np.empty((offsets.size, offsets.size), dtype=np.complex128)
        _cpu.reduced_density_matrix(state, _qubits(sorted(qubits)), offsets, out)
        return out

    # the adjoint method (qsim_dist.autodiff): controlled gates, overlaps of two states, H psi
    @staticmethod
    def apply_controlled(state, m, target: int, controls):
        """The prepared 2 x 2 matrix ``m`` on qubit ``target`` of the amplitudes whose
        ``controls`` all read 1 (a controlled one-qubit gate at the cost of half a one)."""
        _cpu.apply_controlled(state, m[0], m[1], _qubits([target]), _qubits(controls))
        return state

    @staticmethod
    def overlap(bra, ket, qubits, controls=()) -> np.ndarray:
        """``X`` (complex128, ``2^k x 2^k``) with ``<bra|M|ket> = sum(M * X)`` for every ``M``
        on the sorted ``qubits`` (index bit j = qubits[j]) of the amplitudes whose ``controls``
        all read 1: ``X[r, c] = sum_rest conj(bra[rest, r]) ket[rest, c]``, one read-only pass."""
        out = np.empty((1 << len(qubits),) * 2, dtype=np.complex128)
        _cpu.overlap(bra, ket, _qubits(qubits), _qubits(controls), out)
        return out

    @staticmethod
    def overlap_diagonal(bra, ket, qubits) -> np.ndarray:
        """``x`` (complex128, ``2^k``) with ``<bra|diag(d)|ket> = sum(d * x)`` for every table
        ``d`` on the sorted ``qubits``, one read-only pass."""
        out = np.empty(1 << len(qubits), dtype=np.complex128)
        _cpu.overlap_diagonal(bra, ket, _qubits(qubits), out)
        return out

    @staticmethod
    def apply_pauli_sum(state, groups) -> np.ndarray:
        """``H state`` as a new array, ``H = sum_t c_t P_t`` given as ``groups`` of strings that
        share an X part: ``(x_mask, z_masks, coefficients)``, ``(P state)[j] = (-1)^|j & z|
        state[j ^ x]`` (a Y's phase is the coefficient's). One pass per group."""
        out = np.zeros_like(state)
        for x, zs, cs in groups:
            c = np.asarray(cs, dtype=np.complex128)
            _cpu.add_pauli_terms(out, state, int(x), _qubits(zs), np.ascontiguousarray(c.real),
                                 np.ascontiguousarray(c.imag))
        return out

    @staticmethod
    def inner(bra, ket) -> complex:
        """``<bra|ket>``."""
        return complex(np.vdot(bra, ket))

    # live-qubit compaction: a qubit in a known basis state enters or leaves the state
    @staticmethod
    def insert_qubit(state, slot: int, value: int) -> np.ndarray:
        """The state with a new qubit in basis state ``value`` at bit ``slot`` (the bits at
        ``slot`` and above move up by one): ``state (x) |value>`` in that order, a new array."""
        out = np.zeros(2 * state.size, dtype=state.dtype)
        _cpu.insert_qubit(state, out, slot, value)
        return out

    @staticmethod
    def extract_qubit(state, slot: int, value: int) -> np.ndarray:
        """The state without the qubit at bit ``slot``, which must be in basis state ``value``
        (its other half is dropped; bits above ``slot`` move down by one), a new array."""
        out = np.empty(state.size // 2, dtype=state.dtype)
        _cpu.extract_qubit(state, out, slot, value)
        return out

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
