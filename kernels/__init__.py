"""Array kernels on one state shard, behind one interface; no MPI, no circuits.

Two sets implement it: ``numba`` (CPU, parallel loops updating the state in place) and ``jax``
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
"""

from __future__ import annotations

import importlib.metadata
import os

KERNEL_SETS = ("numba", "jax")


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


def get_kernels(name: str = "auto"):
    """The kernel set called ``name``; ``auto`` is jax on a GPU, numba otherwise."""
    from qsim_dist.errors import BackendError

    if name == "auto":
        name = "jax" if jax_has_accelerator() else "numba"
    if name == "numba":
        from .numba_cpu import NumbaKernels

        return NumbaKernels
    if name == "jax":
        from .jax_xla import JaxKernels

        return JaxKernels
    raise BackendError(f"unknown kernel set '{name}' (choose auto, numba or jax)")
