"""The JAX/XLA kernel set: the GPU path, and JAX functions that jit, grad and vmap compose with.

Each kernel is a pure function, jit-compiled once per (state length, dtype, qubits) and cached by
JAX; the input state buffer is donated, so XLA may update it in place. Qubits are static
arguments: a compiled kernel is reused by every block on the same qubits, which keeps compile
time bounded by the number of distinct blocks, not by circuit depth.

Being pure functions of arrays (matrices and states traced like any other input), the kernels
let ``jax.grad`` and ``jax.vmap`` through: ``qsim_dist.autodiff`` runs a circuit on
``apply_dense``, ``apply_diagonal`` and ``pauli_expectation`` with gate matrices built from
traced parameters and differentiates or batches the expectation value
(``tests/test_jax_autodiff.py``). A gradient must be taken inside a ``jax.jit`` (autodiff wraps
its function in one): outside any jit, a donated state buffer is freed before the backward pass
reads it; inside one, the buffers are XLA's.
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


# -- the adjoint method (qsim_dist.autodiff): controlled gates, overlaps of two states, H psi ---

def _control_index(n: int, controls: tuple[int, ...]) -> tuple:
    # the (2,)*n tensor's part where every control reads 1 (those axes dropped)
    index = [slice(None)] * n
    for c in controls:
        index[n - 1 - c] = 1
    return tuple(index)


def _sub_axis(n: int, q: int, controls: tuple[int, ...]) -> int:
    # qubit q's axis once the control axes are dropped
    return n - 1 - q - sum(c > q for c in controls)


@partial(jax.jit, static_argnames=("target", "controls"), donate_argnums=0)
def apply_controlled(state, m, target, controls):
    n = state.size.bit_length() - 1
    t = state.reshape((2,) * n)
    index = _control_index(n, controls)
    axis = _sub_axis(n, target, controls)
    sub = jnp.tensordot(m.astype(state.dtype), t[index], axes=([1], [axis]))
    return t.at[index].set(jnp.moveaxis(sub, 0, axis)).reshape(-1)


@partial(jax.jit, static_argnames=("qubits", "controls"))
def overlap(bra, ket, qubits, controls=()):
    n = bra.size.bit_length() - 1
    index = _control_index(n, controls)
    axes = [_sub_axis(n, q, controls) for q in reversed(qubits)]
    k = len(qubits)

    def rows(state):  # (rest, 2^k): column r is block index r (bit j = qubits[j])
        t = state.reshape((2,) * n)[index]
        return jnp.moveaxis(t, axes, list(range(t.ndim - k, t.ndim))).reshape(-1, 1 << k)
    return jnp.conj(rows(bra)).T @ rows(ket)


@partial(jax.jit, static_argnames=("qubits",))
def overlap_diagonal(bra, ket, qubits):
    n = bra.size.bit_length() - 1
    keep = {n - 1 - q for q in qubits}
    t = (jnp.conj(bra) * ket).reshape((2,) * n)
    # the kept axes stay in increasing order: the highest qubit first, as a table's index
    return jnp.sum(t, axis=tuple(a for a in range(n) if a not in keep)).reshape(-1)


@partial(jax.jit, static_argnames=("groups",))
def apply_pauli_sum(state, groups):
    n = state.size.bit_length() - 1
    j = jnp.arange(state.size, dtype=jnp.int64 if state.size > 2**31 - 1 else jnp.int32)
    out = jnp.zeros_like(state)
    for x, zs, cs in groups:
        flips = [n - 1 - b for b in range(n) if x >> b & 1]
        moved = jnp.flip(state.reshape((2,) * n), axis=flips).reshape(-1) if flips else state
        factor = jnp.zeros(state.shape, dtype=state.dtype)
        for z, c in zip(zs, cs):
            parity = jax.lax.population_count(j & z) & 1
            factor = factor + (1 - 2 * parity).astype(state.real.dtype) * c
        out = out + factor * moved
    return out


# -- a batch of trajectories as one (rows, 2^n) array -----------------------------------------
# Gates common to every row need no kernel of their own: the flat batch is a state whose row
# index sits above the qubit bits (rows a power of two), so apply_dense/apply_diagonal serve.


@partial(jax.jit, donate_argnums=0)
def apply_paulis_rows(rows, x, z, phase):
    """Row r becomes ``P_r row``: ``(P psi)[j] = phase[r] (-1)^|j & z[r]| psi[j ^ x[r]]``
    (X on x, Z on z, Y on both, ``phase = (-i)^#Y``); identity rows have x = z = 0, phase 1."""
    j = jnp.arange(rows.shape[1], dtype=x.dtype)
    moved = jnp.take_along_axis(rows, j[None, :] ^ x[:, None], axis=1)
    parity = jax.lax.population_count(j[None, :] & z[:, None]) & 1
    sign = (1 - 2 * parity).astype(rows.real.dtype)
    return moved * sign * phase[:, None].astype(rows.dtype)


@partial(jax.jit, donate_argnums=0)
def _take_rows(rows, source):
    return rows[source]


@jax.jit
def sample_rows(rows, row_of_shot, draws):
    """Inverse-transform sampling per row: shot s reads a basis index of row ``row_of_shot[s]``
    from its uniform ``draws[s]`` (each row renormalised by its sum). A bitwise binary search
    over the row's cumulative sums: n gathers of one element per shot, no per-shot copy."""
    cdf = jnp.cumsum(rows.real ** 2 + rows.imag ** 2, axis=1)
    size = rows.shape[1]
    target = draws.astype(cdf.dtype) * cdf[row_of_shot, size - 1]
    index = jnp.zeros(row_of_shot.shape, dtype=row_of_shot.dtype)
    for b in reversed(range(size.bit_length() - 1)):  # static: unrolled over the n bits
        candidate = index | (1 << b)
        index = jnp.where(cdf[row_of_shot, candidate - 1] <= target, candidate, index)
    return index  # the number of entries <= target, at most size - 1


# -- pieces of a bit exchange: the array side of Comm.swap_bits_device / permute_ranks_device --
# (MPI stays in qsim_dist/comm.py.) As in the host-staged Comm.swap_bits, the shard is the tensor
# (2,)*n (axis a = local bit n-1-a) seen with the ``lead`` axes (the swapped local bits, most
# significant first) in front and the other axes, in order, behind; piece p fixes the first c of
# those to the bits of p (highest first). take_piece cuts piece p out as the (2^m, 2^(n-m-c))
# send buffer (row t = lead bits reading t); put_piece writes a received piece back in its place.
# Only piece-sized arrays are made: a dynamic slice of the fixed axes (XLA fuses it with the
# transpose into one piece-sized output) and, in put_piece, the received piece transposed back
# (piece-sized; XLA may fuse it into the update). put_piece donates the shard, so XLA writes the
# piece in place with a dynamic-update-slice: no shard-sized copy when the donation is taken,
# which JAX honours on GPU and on its current CPU runtime; a runtime that refuses a donation
# (JAX then warns) copies the shard. p is a traced argument: one compiled kernel per shape,
# not per piece. lead=() cuts the shard into 2^c consecutive pieces (permute_ranks_device).

def _piece_window(n: int, lead: tuple[int, ...], c: int, p):
    """Start indices and sizes of piece ``p``'s window in the (2,)*n tensor."""
    fixed = [a for a in range(n) if a not in lead][:c]
    starts: list = [0] * n
    sizes = [2] * n
    for k, a in enumerate(fixed):
        starts[a] = (p >> (c - 1 - k)) & 1
        sizes[a] = 1
    return starts, sizes


@partial(jax.jit, static_argnames=("lead", "c"))
def take_piece(shard, p, lead, c):
    n = shard.size.bit_length() - 1
    m = len(lead)
    starts, sizes = _piece_window(n, lead, c, p)
    window = jax.lax.dynamic_slice(shard.reshape((2,) * n), starts, sizes)
    return jnp.moveaxis(window, lead, list(range(m))).reshape(1 << m, -1)


@partial(jax.jit, static_argnames=("lead", "c"), donate_argnums=0)
def put_piece(shard, piece, p, lead, c):
    n = shard.size.bit_length() - 1
    m = len(lead)
    starts, sizes = _piece_window(n, lead, c, p)
    behind = [sizes[a] for a in range(n) if a not in lead]
    update = jnp.moveaxis(piece.reshape((2,) * m + tuple(behind)), list(range(m)), lead)
    t = jax.lax.dynamic_update_slice(shard.reshape((2,) * n), update.astype(shard.dtype), starts)
    return t.reshape(-1)


def zero_state(num_qubits: int, dtype) -> jax.Array:
    return jnp.zeros(1 << num_qubits, dtype=dtype).at[0].set(1)


def to_numpy(state) -> np.ndarray:
    return np.asarray(state)


class JaxKernels:
    """The XLA set behind the common kernel interface (see kernels/__init__.py)."""

    name = "jax"
    max_dense = 5  # the largest dense block that stays memory-bound (benchmarks/)

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
        # in float64 on the host, summed as qsim_dist.linalg.marginal_probabilities does (kernels
        # import nothing of the package but errors)
        probs = JaxKernels.probabilities(state)
        n = int(probs.size).bit_length() - 1
        keep = [n - 1 - q for q in reversed(qubits)]  # tensor axis of each kept qubit
        other = tuple(a for a in range(n) if a not in keep)
        t = probs.reshape((2,) * n)
        t = t.sum(axis=other) if other else t
        order = sorted(keep)  # the axes left, in increasing order: put them in `keep` order
        return np.transpose(t, [order.index(a) for a in keep]).reshape(-1)

    @staticmethod
    def sample_sorted(state, draws: np.ndarray) -> np.ndarray:
        probs = probabilities(state)
        cdf = jnp.cumsum(probs)
        idx = jnp.searchsorted(cdf, jnp.asarray(draws, cdf.dtype) * cdf[-1], side="right")
        # a draw that rounds up to the total runs past the end: it belongs to the last outcome
        # that can occur, not to the last index (which may have probability 0)
        last_possible = state.size - 1 - int(jnp.argmax(probs[::-1] > 0))
        return np.minimum(np.asarray(idx, dtype=np.int64), last_possible)

    @staticmethod
    def warm_up(dtype) -> None:
        """Nothing to load ahead: XLA compiles each kernel shape on first use (and times it)."""

    @staticmethod
    def collapse(state, q: int, outcome: int, scale: float):
        return collapse(state, int(q), int(outcome), scale)

    @staticmethod
    def pauli_expectation(state, x_mask: int, z_mask: int) -> complex:
        return complex(pauli_expectation(state, int(x_mask), int(z_mask)))

    # rows of trajectories: a power of two of them (the flat batch is a state), every shape
    # padded to a power of two so that a kernel compiles once per size class
    @staticmethod
    def rows(state, count: int):
        """A batch of rows whose first ``count`` are copies of ``state``, the rest zero."""
        capacity = 1 << (count - 1).bit_length()
        return jnp.zeros((capacity, state.size), state.dtype).at[:count].set(state)

    @staticmethod
    def active_rows(rows, used: int):
        return rows  # every row: a slice would be a copy and a new shape to compile

    @staticmethod
    def copy_rows(rows, dst: np.ndarray, src: np.ndarray):
        """Row ``dst[i]`` becomes a copy of row ``src[i]`` (the batch grows as needed)."""
        need = int(dst.max()) + 1
        if need > rows.shape[0]:
            capacity = 1 << (need - 1).bit_length()
            rows = jnp.concatenate([rows, jnp.zeros((capacity - rows.shape[0], rows.shape[1]),
                                                    rows.dtype)])
        source = np.arange(rows.shape[0])
        source[dst] = src
        return _take_rows(rows, jnp.asarray(source))

    @staticmethod
    def apply_paulis_rows(rows, which: np.ndarray, x: np.ndarray, z: np.ndarray,
                          phase: np.ndarray):
        """Row ``which[i]`` becomes the Pauli string (x[i], z[i], phase[i]) times itself."""
        full_x = np.zeros(rows.shape[0], dtype=x.dtype)
        full_z = np.zeros(rows.shape[0], dtype=z.dtype)
        full_phase = np.ones(rows.shape[0], dtype=phase.dtype)
        full_x[which], full_z[which], full_phase[which] = x, z, phase
        return apply_paulis_rows(rows, jnp.asarray(full_x), jnp.asarray(full_z),
                                 jnp.asarray(full_phase))

    @staticmethod
    def sample_rows(rows, row_of_shot: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """A basis index per shot, read from row ``row_of_shot[s]`` with uniform ``draws[s]``."""
        shots = draws.size
        padded = 1 << max(0, (shots - 1).bit_length())
        which = np.zeros(padded, dtype=np.int64)
        which[:shots] = row_of_shot
        u = np.zeros(padded, dtype=np.float64)
        u[:shots] = draws
        return np.asarray(sample_rows(rows, jnp.asarray(which), jnp.asarray(u)),
                          dtype=np.int64)[:shots]

    @staticmethod
    def apply_controlled(state, m, target: int, controls):
        return apply_controlled(state, m, int(target), tuple(int(c) for c in controls))

    @staticmethod
    def overlap(bra, ket, qubits, controls=()):
        return overlap(bra, ket, tuple(int(q) for q in qubits),
                       tuple(int(c) for c in controls))

    @staticmethod
    def overlap_diagonal(bra, ket, qubits):
        return overlap_diagonal(bra, ket, tuple(int(q) for q in qubits))

    @staticmethod
    def apply_pauli_sum(state, groups):
        return apply_pauli_sum(state, tuple((int(x), tuple(int(z) for z in zs),
                                             tuple(complex(c) for c in cs))
                                            for x, zs, cs in groups))

    @staticmethod
    def inner(bra, ket):
        return jnp.vdot(bra, ket)

    @staticmethod
    def copy(state):
        return jnp.array(state, copy=True)

    @staticmethod
    def to_numpy(state) -> np.ndarray:
        return to_numpy(state)
