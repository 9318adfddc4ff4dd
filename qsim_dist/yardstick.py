"""The yardstick: the exact outcome distribution and final density matrix of a small circuit.

An independent check of every backend, kept short and separate as stim's VectorSimulator is: it
shares with what it checks only the gate table (:mod:`qsim_dist.gates`) and the IR as data
(:mod:`qsim_dist.circuit`; a :class:`~qsim_dist.noise.NoisyCircuit` with its
:class:`~qsim_dist.noise.NoiseOp` channels and readout matrices). It imports no backend, kernel
or pass, and has its own loop for gates, measurements, resets, classical conditions and noise.

Method. The run is a set of *branches*, one per classical register (the clbits recorded so far),
each holding an unnormalised density matrix whose trace is the probability of that register:

- a gate ``U`` maps ``rho -> U rho U^dagger``; a channel ``rho -> sum_i K_i rho K_i^dagger``;
- a measurement of qubit ``q`` splits a branch by the projectors on ``q = 0`` and ``q = 1``; a
  readout error then splits each outcome over the *recorded* bit by its confusion matrix
  ``P[true, recorded]``, and the recorded bit goes into the register (conditions read recorded
  bits, as on hardware); a reset is the channel ``{|0><0|, |0><1|}``;
- a conditioned operation acts only on the branches whose register satisfies its condition.

Branches that reach the same register are summed: what follows depends only on the register and
(linearly) on the state, so this is exact and bounds the branches by ``2^num_clbits``. Nothing is
sampled. Each branch costs ``4^n`` complex numbers, hence :data:`MAX_QUBITS`.

Bit order as everywhere in the package: qubit ``q`` is bit ``q`` of a basis index, and registers
are keyed as backends key their counts (clbit 0 rightmost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .circuit import Circuit, Instruction
from .errors import CircuitError
from .gates import GATES
from .noise import NoiseOp, NoisyCircuit

MAX_QUBITS = 10  # a branch is 4^n complex numbers: 16 MiB at 10 qubits
NEGLIGIBLE = 1e-14  # a register less likely than this is dropped: no shot count could see it

_PROJECTORS = (np.array([[1, 0], [0, 0]], dtype=complex), np.array([[0, 0], [0, 1]], dtype=complex))
_RESET = (_PROJECTORS[0], np.array([[0, 1], [0, 0]], dtype=complex))  # |0><0|, |0><1|
_PERFECT_READOUT = np.eye(2)


@dataclass
class Exact:
    """What the yardstick computes for a circuit.

    Attributes
    ----------
    distribution
        Probability of each recorded classical register, keyed as backends key counts (clbit 0
        rightmost; ``""`` for a circuit without clbits); registers below :data:`NEGLIGIBLE` are
        left out.
    density_matrix
        The final state (``2^n x 2^n``, trace 1), mixed over every branch: what the circuit
        leaves when nobody looks at its outcomes.
    """

    distribution: dict[str, float]
    density_matrix: np.ndarray

    def expectation(self, pauli: str) -> float:
        """``Tr(rho P)`` for a Pauli label of one letter per qubit, qubit 0 rightmost (``"ZZI"``:
        Z on qubits 1 and 2)."""
        n = self.density_matrix.shape[0].bit_length() - 1
        if len(pauli) != n or set(pauli) - set("IXYZ"):
            raise CircuitError(f"expectation: need one of I, X, Y, Z per qubit ({n}), got "
                               f"{pauli!r}")
        t = self.density_matrix.reshape((2,) * (2 * n))
        for q, letter in enumerate(reversed(pauli)):
            if letter != "I":
                t = _multiply(t, GATES[letter.lower()].matrix(()), (q,), _row_axis(n))
        return float(np.real(np.trace(t.reshape(1 << n, 1 << n))))


def exact(circuit: Circuit | NoisyCircuit) -> Exact:
    """The exact outcome distribution and final density matrix of ``circuit``.

    A :class:`~qsim_dist.noise.NoisyCircuit` (from ``NoiseModel.lower``) brings its channels,
    applied exactly, and its readout errors, applied to the recorded bits.

    Examples
    --------
    >>> from qsim_dist import library
    >>> result = exact(library.ghz(2, measure=True))
    >>> {k: round(p, 12) for k, p in sorted(result.distribution.items())}
    {'00': 0.5, '11': 0.5}

    Raises
    ------
    CircuitError
        For anything but a Circuit or NoisyCircuit, or more than :data:`MAX_QUBITS` qubits.
    """
    if isinstance(circuit, NoisyCircuit):
        base, ops, readout = circuit.circuit, circuit.ops, circuit.readout
    elif isinstance(circuit, Circuit):
        base, ops, readout = circuit, circuit.instructions, {}
    else:
        raise CircuitError(f"the yardstick takes a Circuit or NoisyCircuit, got "
                           f"{type(circuit).__name__}")
    n = base.num_qubits
    if n > MAX_QUBITS:
        raise CircuitError(f"the yardstick holds at most {MAX_QUBITS} qubits (4^n entries per "
                           f"branch), the circuit has {n}")
    start = np.zeros((2,) * (2 * n), dtype=complex)
    start[(0,) * (2 * n)] = 1
    branches = {(0,) * base.num_clbits: start}
    for op in ops:
        after: dict[tuple[int, ...], np.ndarray] = {}
        for bits, rho in branches.items():
            taken = op.condition is None or op.condition.holds(bits)
            for new_bits, new_rho in (_step(op, bits, rho, n, readout) if taken
                                      else [(bits, rho)]):
                after[new_bits] = after[new_bits] + new_rho if new_bits in after else new_rho
        branches = {bits: rho for bits, rho in after.items() if _trace(rho, n) > NEGLIGIBLE}
    dim = 1 << n
    return Exact(
        distribution={"".join(str(b) for b in reversed(bits)): _trace(rho, n)
                      for bits, rho in branches.items()},
        density_matrix=sum(rho.reshape(dim, dim) for rho in branches.values()))


def _step(op: Instruction | NoiseOp, bits: tuple[int, ...], rho: np.ndarray, n: int,
          readout: dict[int, np.ndarray]) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """The branches (register, unnormalised density tensor) that ``op`` makes of one branch."""
    if isinstance(op, NoiseOp):
        yield bits, sum(_sandwich(rho, k, op.qubits, n) for k in op.channel.kraus)
    elif op.name == "barrier":
        yield bits, rho
    elif op.name == "reset":
        yield bits, sum(_sandwich(rho, k, op.qubits, n) for k in _RESET)
    elif op.name == "measure":
        clbit = op.clbits[0]
        confusion = readout.get(op.qubits[0], _PERFECT_READOUT)
        for outcome, projector in enumerate(_PROJECTORS):
            collapsed = _sandwich(rho, projector, op.qubits, n)
            for recorded in (0, 1):
                if confusion[outcome, recorded]:
                    new_bits = bits[:clbit] + (recorded,) + bits[clbit + 1:]
                    yield new_bits, confusion[outcome, recorded] * collapsed
    else:
        yield bits, _sandwich(rho, GATES[op.name].matrix(op.params), op.qubits, n)


# ---- the density tensor --------------------------------------------------------------------
# rho (2^n x 2^n) is held as a tensor of 2n axes of size 2: axis a < n is bit n-1-a of the row
# index, axis n + a the same bit of the column index (numpy's row-major reshape).

def _row_axis(n: int):
    return lambda q: n - 1 - q


def _column_axis(n: int):
    return lambda q: 2 * n - 1 - q


def _multiply(t: np.ndarray, m: np.ndarray, qubits: Sequence[int], axis_of) -> np.ndarray:
    """``m`` (``2^k x 2^k``, index bit j = ``qubits[j]``) contracted into the axes of ``qubits``
    that ``axis_of`` names: on the row axes, the product ``m rho``."""
    k = len(qubits)
    labels = list(range(t.ndim))
    targets = [axis_of(q) for q in reversed(qubits)]  # m's tensor axis j is bit k-1-j
    fresh = list(range(t.ndim, t.ndim + k))
    out = labels.copy()
    for axis, label in zip(targets, fresh):
        out[axis] = label
    return np.einsum(np.asarray(m, dtype=complex).reshape((2,) * (2 * k)), fresh + targets,
                     t, labels, out)


def _sandwich(t: np.ndarray, m: np.ndarray, qubits: Sequence[int], n: int) -> np.ndarray:
    """``m rho m^dagger``: ``m`` on the row axes, ``conj(m)`` on the column axes (``(rho
    m^dagger)[r, c'] = sum_c rho[r, c] conj(m[c', c])``)."""
    m = np.asarray(m, dtype=complex)
    return _multiply(_multiply(t, m, qubits, _row_axis(n)), m.conj(), qubits, _column_axis(n))


def _trace(t: np.ndarray, n: int) -> float:
    return float(np.real(np.trace(t.reshape(1 << n, 1 << n))))
