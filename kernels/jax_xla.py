"""The JAX/XLA kernel set: the GPU path (and vmap/autodiff-friendly on any device).

Each kernel is a pure function, jit-compiled once per (state length, dtype, qubits) and cached by
JAX; the input state buffer is donated, so XLA may update it in place. Qubits are static
arguments: a compiled kernel is reused by every block on the same qubits, which keeps compile
time bounded by the number of distinct blocks, not by circuit depth.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np


def _axes(n: int, qubits: tuple[int, ...]) -> list[int]:
    # Axis a of the (2,)*n tensor is qubit n-1-a; matrix bit j is qubits[j] (highest bit first).
    return [n - 1 - q for q in reversed(qubits)]


@partial(jax.jit, static_argnames=("qubits",), donate_argnums=0)
def apply_dense(state, m, qubits):
    n = state.size.bit_length() - 1
    k = len(qubits)
    axes = _axes(n, qubits)
    t = state.reshape((2,) * n)
    u = m.astype(state.dtype).reshape((2,) * (2 * k))
    t = jnp.tensordot(u, t, axes=(list(range(k, 2 * k)), axes))
    return jnp.moveaxis(t, list(range(k)), axes).reshape(-1)


@partial(jax.jit, static_argnames=("qubits",), donate_argnums=0)
def apply_diagonal(state, diag, qubits):
    n = state.size.bit_length() - 1
    k = len(qubits)
    # Broadcast the (2,)*k table against the state tensor: size-2 axes at the qubits, 1 elsewhere.
    shape = [1] * n
    for q in qubits:
        shape[n - 1 - q] = 2
    # Table axis a holds qubits[k-1-a]; order the axes by decreasing qubit, as the state's are.
    held = [qubits[k - 1 - a] for a in range(k)]
    d = diag.astype(state.dtype).reshape((2,) * k)
    d = jnp.transpose(d, sorted(range(k), key=lambda a: -held[a])).reshape(shape)
    return (state.reshape((2,) * n) * d).reshape(-1)


@jax.jit
def probabilities(state):
    return (state.real.astype(jnp.float64 if state.dtype == jnp.complex128 else jnp.float32) ** 2
            + state.imag.astype(state.real.dtype) ** 2)


@partial(jax.jit, static_argnames=("q",))
def qubit_one_probability(state, q):
    n = state.size.bit_length() - 1
    t = state.reshape((1 << (n - 1 - q), 2, 1 << q))[:, 1, :]
    return jnp.sum(jnp.abs(t) ** 2)


@partial(jax.jit, static_argnames=("q", "outcome"), donate_argnums=0)
def collapse(state, q, outcome, scale):
    n = state.size.bit_length() - 1
    t = state.reshape((1 << (n - 1 - q), 2, 1 << q))
    keep = jnp.zeros((1, 2, 1), dtype=t.real.dtype).at[0, outcome, 0].set(1)
    return (t * (keep * scale).astype(state.dtype)).reshape(-1)


@partial(jax.jit, static_argnames=("x_mask", "z_mask"))
def pauli_expectation(state, x_mask, z_mask):
    j = jnp.arange(state.size, dtype=jnp.int64 if state.size > 2**31 - 1 else jnp.int32)
    partner = state[j ^ x_mask]
    z = j & z_mask
    parity = jnp.zeros_like(j)
    for b in range(int(z_mask).bit_length()):  # z_mask is static: unrolled over its bits
        parity ^= (z >> b) & 1
    sign = (1 - 2 * parity).astype(state.real.dtype)
    return jnp.sum(jnp.conj(state) * partner * sign)


def zero_state(num_qubits: int, dtype) -> jax.Array:
    return jnp.zeros(1 << num_qubits, dtype=dtype).at[0].set(1)


def to_numpy(state) -> np.ndarray:
    return np.asarray(state)


class JaxKernels:
    """The XLA set behind the common kernel interface (see kernels/__init__.py)."""

    name = "jax"

    @staticmethod
    def zero_state(num_qubits: int, dtype):
        return zero_state(num_qubits, dtype)

    @staticmethod
    def prepare_matrix(m: np.ndarray, dtype):
        return jnp.asarray(m, dtype=dtype)

    @staticmethod
    def apply_dense(state, m, qubits):
        return apply_dense(state, m, tuple(int(q) for q in qubits))

    @staticmethod
    def apply_diagonal(state, diag, qubits):
        return apply_diagonal(state, diag, tuple(int(q) for q in qubits))

    @staticmethod
    def probabilities(state) -> np.ndarray:
        return np.asarray(probabilities(state), dtype=np.float64)

    @staticmethod
    def qubit_one_probability(state, q: int) -> float:
        return float(qubit_one_probability(state, int(q)))

    @staticmethod
    def marginal(state, qubits) -> np.ndarray:
        from qsim_dist.backends.reference import marginal_probabilities

        return marginal_probabilities(JaxKernels.probabilities(state), qubits)

    @staticmethod
    def sample_sorted(state, draws: np.ndarray) -> np.ndarray:
        cdf = jnp.cumsum(probabilities(state))
        idx = jnp.searchsorted(cdf, jnp.asarray(draws, cdf.dtype) * cdf[-1], side="right")
        return np.minimum(np.asarray(idx, dtype=np.int64), state.size - 1)

    @staticmethod
    def warm_up(dtype) -> None:
        """Nothing to load ahead: XLA compiles each kernel shape on first use (and times it)."""

    @staticmethod
    def collapse(state, q: int, outcome: int, scale: float):
        return collapse(state, int(q), int(outcome), scale)

    @staticmethod
    def pauli_expectation(state, x_mask: int, z_mask: int) -> complex:
        return complex(pauli_expectation(state, int(x_mask), int(z_mask)))

    @staticmethod
    def copy(state):
        return jnp.array(state, copy=True)

    @staticmethod
    def to_numpy(state) -> np.ndarray:
        return to_numpy(state)
