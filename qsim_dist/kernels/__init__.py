"""Array kernels on one state shard, behind one interface.

The kernels import nothing of the package but ``errors``: no MPI (``jax_xla.take_piece`` and
``put_piece`` only cut out and write back the pieces of a bit exchange; ``qsim_dist/comm.py``
sends them) and no circuits (a kernel sees matrices, phase tables and qubit numbers, never an
instruction; ``qsim_dist.autodiff`` and the backends turn circuits into kernel calls).

Two sets implement it: ``cpu`` (compiled OpenMP loops updating the state in place) and ``jax``
(XLA: the GPU path; donated buffers). Every kernel returns the updated state, so callers write
``state = K.apply_dense(state, m, qubits)`` whichever set they hold. Interface:

    zero_state(n, dtype)                   |0...0> of length 2^n
    prepare_matrix(m, dtype)               a matrix/diagonal in the set's array type
    apply_dense(state, m, qubits)          2^k x 2^k matrix on sorted qubits (bit j = qubits[j])
    apply_diagonal(state, diag, qubits)    elementwise phase table on sorted qubits
    probabilities(state)                   |amplitude|^2 as numpy float64
    qubit_one_probability(state, q)        P(qubit q reads 1)
    collapse(state, q, outcome, scale)     project qubit q on outcome, multiply by scale
    pauli_expectation(state, x, z)         sum_j conj(psi_j) (-1)^|j&z| psi_{j^x}
    copy(state), to_numpy(state)
    rows(state, count)                     a batch of rows, the first count copies of state
    active_rows(rows, used)                the part of a batch the gate kernels pass over
    copy_rows(rows, dst, src)              rows[dst] = rows[src], the batch grown as needed
    apply_paulis_rows(rows, which, x, z, phase)  row which[i] times its Pauli string
    sample_rows(rows, row_of_shot, draws)  a basis index per shot from its row and uniform
Optional (the CPU set has them; callers fall back to numpy without them):
    reduced_density_matrix(state, qubits), insert_qubit(state, slot, value),
    extract_qubit(state, slot, value)
The adjoint method of ``qsim_dist.autodiff`` also needs (both sets have them):
    apply_controlled(state, m, target, controls)  2 x 2 matrix on target where controls read 1
    overlap(bra, ket, qubits, controls=())        X with <bra|M|ket> = sum(M * X), M on qubits
                                                  of the amplitudes whose controls read 1
    overlap_diagonal(bra, ket, qubits)            x with <bra|diag(d)|ket> = sum(d * x)
    apply_pauli_sum(state, groups)                H state (a new array); groups of strings
                                                  sharing an X part: (x, z_masks, coefficients)
    inner(bra, ket)                               <bra|ket>
A batch of rows is itself a state of n + log2(rows) qubits: gates on every row are the ordinary
kernels applied to the flat batch (rows a power of two, or for the CPU set whole tiles of 64).
"""

from __future__ import annotations

import importlib.metadata
import os
import time

KERNEL_SETS = ("cpu", "jax")


def jax_has_accelerator() -> bool:
    """Whether JAX would run on a GPU, decided without importing JAX when no plugin is installed
    (importing JAX costs a second of start-up that a CPU run does not need)."""
    if os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
        return False
    names = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()
             if d.metadata["Name"]}
    if not any(n.startswith(("jax-cuda", "jax_cuda", "jax-rocm", "jax_rocm")) for n in names):
        return False
    import jax

    return jax.default_backend() != "cpu"


_WARM: set[tuple[str, type]] = set()


def warm_up(kernels, dtype) -> float:
    """Load a kernel set's compiled code once per process and dtype; the seconds it took."""
    if (kernels.name, dtype) in _WARM:
        return 0.0
    t0 = time.perf_counter()
    kernels.warm_up(dtype)
    _WARM.add((kernels.name, dtype))
    return time.perf_counter() - t0


def get_kernels(name: str = "auto"):
    """The kernel set called ``name``; ``auto`` is jax on a GPU, cpu otherwise."""
    from qsim_dist.errors import BackendError

    if name == "auto":
        name = "jax" if jax_has_accelerator() else "cpu"
    if name == "cpu":
        from .cpu import CpuKernels

        return CpuKernels
    if name == "jax":
        from .jax_xla import JaxKernels

        return JaxKernels
    raise BackendError(f"unknown kernel set '{name}' (choose auto, cpu or jax)")
