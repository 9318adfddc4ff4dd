"""Small helpers for a state shard that the common kernel interface does not cover: the precision
context, host staging for MPI (whatever the kernel set's array type) and the Pauli term between
two shards."""

from __future__ import annotations

import contextlib

import numpy as np


def precision_context(K, dtype) -> contextlib.AbstractContextManager:
    """Where kernels of set ``K`` must run for ``dtype``: JAX computes in complex128 only with
    64-bit types switched on, which is done locally, never for the whole process."""
    if K.name == "jax" and np.dtype(dtype) == np.complex128:
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def to_host(K, state) -> np.ndarray:
    """A writable numpy array holding ``state``: the array itself for the CPU set (no copy),
    a host copy for a device array."""
    host = K.to_numpy(state)
    return host if host.flags.writeable else np.array(host)


def from_host(K, host: np.ndarray, state):
    """The state of kernel set ``K`` holding ``host``: ``host`` itself for a set whose states
    are numpy arrays (``state`` is then only its type), a device copy otherwise."""
    if host is state or isinstance(state, np.ndarray):
        return host
    return K.prepare_matrix(host, host.dtype)


def pauli_partner_sum(mine: np.ndarray, partner: np.ndarray, start: int, z_mask: int) -> complex:
    """sum_x conj(mine[x]) (-1)^popcount((start + x) & z_mask) partner[x]: one piece of a Pauli
    expectation whose X part moves amplitudes to another rank (``partner`` already permuted)."""
    j = np.arange(start, start + mine.size, dtype=np.int64) & z_mask
    parity = np.zeros(mine.size, dtype=np.int64)
    while z_mask:
        parity ^= j & 1
        j >>= 1
        z_mask >>= 1
    terms = np.conj(mine) * partner
    return complex(terms[parity == 0].sum(dtype=np.complex128)
                   - terms[parity == 1].sum(dtype=np.complex128))
