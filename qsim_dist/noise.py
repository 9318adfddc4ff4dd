"""Noise: channels, readout errors, noise models, and their lowering onto a circuit.

Conventions
-----------
- A :class:`Channel` is a list of Kraus operators ``K_i`` (``sum_i K_i^dagger K_i = I``), each a
  ``2^k x 2^k`` matrix little-endian in the channel's qubits (bit j of the index is qubit j), as
  gates are (see :mod:`qsim_dist.gates`).
- Every channel is classified once, when it is built: it is a *Pauli channel* when its chi matrix
  in the Pauli basis is diagonal, i.e. ``rho -> sum_a p_a P_a rho P_a`` with state-independent
  probabilities ``p_a``. Trajectories then draw ``P_a`` from ``p_a`` and apply it as a gate, without
  computing any norm. Phase damping and bit/phase flips are Pauli channels; amplitude damping and
  thermal relaxation with T1 < inf are not (their branch probabilities depend on the state).
- Pauli index ``a`` of a k-qubit channel has base-4 digit j for qubit j (0 = I, 1 = X, 2 = Y,
  3 = Z); a Pauli *label* is written with qubit 0 rightmost, as in Qiskit (``"XZ"`` = Z on qubit 0,
  X on qubit 1).
- ``depolarizing(p, k)`` follows Qiskit's ``depolarizing_error``: ``rho -> (1-p) rho + p I/2^k``,
  so each of the ``4^k - 1`` non-identity Paulis has probability ``p/4^k``; for one qubit
  ``<Z> -> (1-p) <Z>``. (A "total error probability" ``e`` with X, Y, Z at ``e/3`` each is
  ``depolarizing(4e/3)`` and gives ``<Z> -> (1-4e/3) <Z>``.)
- A :class:`ReadoutError` is a row-stochastic 2x2 matrix ``P[true, recorded]``, as Qiskit's.

Lowering
--------
A :class:`NoiseModel` is not stored in the IR. :meth:`NoiseModel.lower` turns a circuit into a
:class:`NoisyCircuit`: the circuit's instructions with a :class:`NoiseOp` (channel + qubits)
inserted after every gate that has an error, plus the readout confusion matrix per measured qubit.
The IR and the gate table stay as they are (noise ops are not gates and have no QASM form), every
pass and converter keeps seeing plain circuits, and only the executor
(:mod:`qsim_dist.backends.base`) and the density-matrix reference read the lowered form.

TOML form (:func:`load_noise_model`)
------------------------------------
::

    [[gate]]                      # a channel after gates
    gates = ["h", "x", "sx"]      # gate names (one string or a list), all of one arity
    channel = "depolarizing"      # see CHANNEL_FIELDS for every channel and its fields
    p = 0.001
    # qubits = [0]                # optional: only this qubit tuple (or a list of tuples,
    #                             # e.g. [[0, 1], [2, 3]]); a qubit rule replaces the all-qubit
    #                             # rules for that gate on those qubits, as in Qiskit

    [[gate]]
    gates = "cx"
    channel = "pauli"
    probabilities = { XX = 0.01, ZI = 0.02 }

    [[gate]]
    gates = "id"
    channel = "thermal_relaxation"
    t1 = 50e-6
    t2 = 70e-6
    time = 100e-9

    [[gate]]
    gates = "u"
    channel = "kraus"
    kraus = [ { real = [[1, 0], [0, 0.9]] },
              { real = [[0, 0.43588989435], [0, 0]], imag = [[0, 0], [0, 0]] } ]

    [[readout]]
    p01 = 0.02                    # P(read 1 | was 0)
    p10 = 0.05                    # P(read 0 | was 1); or matrix = [[0.98, 0.02], [0.05, 0.95]]
    # qubits = [0, 3]             # optional: only these qubits (default: every qubit)

    [durations]                   # optional: instruction durations in the unit of idle time
    default = 1                   # every instruction not listed (default 1: time = layers)
    cx = 2
    measure = 5
    reset = 5

    [[idle]]                      # a channel per unit of idle time (per idle layer by default)
    channel = "depolarizing"      # any one-qubit channel of CHANNEL_FIELDS
    p = 0.001
    # qubits = [0, 1]             # optional: only these qubits (their own idle rules replace
    #                             # the all-qubit ones)

    [[idle]]
    channel = "thermal_relaxation"  # over the whole idle time: t1, t2 in the unit of idle time
    t1 = 500
    t2 = 400

Channels after several rules on one gate are applied in the order the rules were added.

Idle noise
----------
The circuit is scheduled as soon as possible with the model's durations (every instruction 1 by
default, so that idle time counts idle layers; a conditioned instruction waits for the
measurement of its bits and always takes its duration; a barrier synchronises its qubits). A
qubit idles from the end of one operation on it to the start of the next; the idle channels are
inserted just before that next operation (or, for the final measurements, before the whole final
block of measurements). No idle noise before a qubit's first operation (it is prepared just in
time), after its last, or before a reset (which erases it). A per-unit channel ``E`` over ``m``
idle units is ``E^m``, composed into one channel (:func:`_channel_power`; a Pauli channel stays
Pauli); thermal relaxation takes the idle time itself.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import validation as check
from .circuit import Circuit, Condition, Instruction
from .errors import QsimDistError
from .gates import GATES, from_qiskit_name

_ATOL = 1e-6  # completeness/stochasticity tolerance: TOML users write 6-8 significant digits
_PAULI_ATOL = 1e-9  # off-diagonal chi entries below this count as zero
_MAX_QUBITS = 4

_PAULIS = (np.eye(2, dtype=np.complex128),
           np.array([[0, 1], [1, 0]], dtype=np.complex128),
           np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
           np.diag([1, -1]).astype(np.complex128))
PAULI_GATES = (None, "x", "y", "z")  # gate-table names of I, X, Y, Z


class NoiseModelError(QsimDistError):
    """A channel, readout error or noise model is invalid, or cannot be read or converted."""


# ---- Pauli helpers --------------------------------------------------------------------------

def pauli_digits(index: int, num_qubits: int) -> tuple[int, ...]:
    """Pauli of each qubit (0 = I, 1 = X, 2 = Y, 3 = Z) for Pauli index ``index``."""
    return tuple((index >> (2 * j)) & 3 for j in range(num_qubits))


def pauli_matrix(index: int, num_qubits: int) -> np.ndarray:
    """The ``2^k x 2^k`` matrix of Pauli ``index`` (little-endian: qubit 0 is the last factor)."""
    digits = pauli_digits(index, num_qubits)
    return reduce(np.kron, [_PAULIS[d] for d in reversed(digits)], np.eye(1, dtype=np.complex128))


def pauli_label(index: int, num_qubits: int) -> str:
    return "".join("IXYZ"[d] for d in reversed(pauli_digits(index, num_qubits)))


def _pauli_index(label: str) -> int:
    return sum("IXYZ".index(ch) << (2 * j) for j, ch in enumerate(reversed(label)))


def _pauli_probabilities(kraus: Sequence[np.ndarray], num_qubits: int) -> np.ndarray | None:
    """The Pauli probabilities when the channel's chi matrix is diagonal, else None."""
    dim = 1 << num_qubits
    basis = np.array([pauli_matrix(a, num_qubits) for a in range(dim * dim)])
    # c[i, a] = Tr(P_a K_i) / 2^k, so that K_i = sum_a c[i, a] P_a
    c = np.einsum("aji,kij->ka", basis, np.asarray(kraus)) / dim
    chi = c.T @ c.conj()
    off = chi - np.diag(np.diagonal(chi))
    if np.max(np.abs(off), initial=0.0) > _PAULI_ATOL:
        return None
    probs = np.clip(np.real(np.diagonal(chi)), 0.0, None)
    return probs / probs.sum()


# ---- channels -------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Channel:
    """A CPTP map as Kraus operators; build it with :func:`kraus` or a named constructor.

    ``pauli_probabilities`` (length ``4^k``, see the module docstring for the index) is set when
    the channel is a Pauli channel with state-independent probabilities, else None.
    """

    name: str
    num_qubits: int
    kraus: tuple[np.ndarray, ...] = field(repr=False)
    pauli_probabilities: np.ndarray | None = field(default=None, repr=False)

    @property
    def is_pauli(self) -> bool:
        return self.pauli_probabilities is not None

    def completeness_error(self) -> float:
        """``max |sum_i K_i^dagger K_i - I|`` (0 for an exact CPTP map)."""
        total = sum(k.conj().T @ k for k in self.kraus)
        return float(np.max(np.abs(total - np.eye(1 << self.num_qubits))))


def kraus(operators: Sequence[Any], name: str = "kraus") -> Channel:
    """A channel from Kraus operators (``2^k x 2^k``, ``k <= 4``) after a completeness check.

    Raises
    ------
    NoiseModelError
        If the operators are not square matrices of one power-of-two size, or
        ``sum K^dagger K`` differs from the identity by more than 1e-6.
    """
    if isinstance(operators, (str, bytes)) or not hasattr(operators, "__iter__"):
        raise NoiseModelError(f"{name}: Kraus operators must be a list of matrices, got "
                              f"{check.describe(operators)}")
    operators = list(operators)
    for k in operators:
        _check_numbers(k, f"{name}: Kraus operator entries")
    try:
        ops = [np.asarray(k, dtype=np.complex128) for k in operators]
    except (TypeError, ValueError, OverflowError) as exc:
        raise NoiseModelError(f"{name}: Kraus operators must be numeric matrices ({exc})") from None
    if not all(np.all(np.isfinite(k)) for k in ops):
        # nan passes the completeness check (every comparison with nan is false)
        raise NoiseModelError(f"{name}: Kraus operator entries must be finite numbers")
    if not ops:
        raise NoiseModelError(f"{name}: needs at least one Kraus operator")
    dim = ops[0].shape[0] if ops[0].ndim == 2 else 0
    num_qubits = dim.bit_length() - 1
    if dim < 2 or dim != 1 << num_qubits or any(k.shape != (dim, dim) for k in ops):
        raise NoiseModelError(f"{name}: Kraus operators must all be 2^k x 2^k matrices, got shapes "
                              f"{[k.shape for k in ops]}")
    if num_qubits > _MAX_QUBITS:
        raise NoiseModelError(f"{name}: channels act on at most {_MAX_QUBITS} qubits")
    ops = [k for k in ops if np.any(np.abs(k) > 1e-15)]  # zero operators are never drawn
    channel = Channel(name, num_qubits, tuple(ops))
    error = channel.completeness_error()
    if error > _ATOL:
        raise NoiseModelError(f"{name}: Kraus operators are not trace preserving "
                              f"(|sum K^dagger K - I| = {error:.3g})")
    probs = _pauli_probabilities(ops, num_qubits)
    if probs is None:
        return channel
    # store the canonical Pauli Kraus form: the density-matrix reference applies it exactly
    canonical = tuple(math.sqrt(p) * pauli_matrix(a, num_qubits) for a, p in enumerate(probs)
                      if p > 0)
    return Channel(name, num_qubits, canonical, probs)


def _check_numbers(value: Any, what: str) -> None:
    """Refuse bools and strings inside a (nested list or array) matrix: numpy would read
    ``true`` as 1.0 and ``"0.5"`` as 0.5 without a word."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "bSUV":
            raise NoiseModelError(f"{what} must be numbers, got an array of {value.dtype}")
        if value.dtype.kind != "O":
            return
        value = value.tolist()
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise NoiseModelError(f"{what} must be numbers, got {check.describe(value)}")
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_numbers(v, what)


def _probability(value: Any, what: str, high: float = 1.0) -> float:
    # a little slack above `high` for values computed by the user (0.1 + 0.2 + ...)
    return min(check.in_range(value, 0.0, high + 1e-12, what, NoiseModelError), high)


def pauli_channel(probabilities: Mapping[str, float]) -> Channel:
    """Pauli channel from ``{label: probability}`` (labels of one length, qubit 0 rightmost);
    the identity gets the remaining probability."""
    if not isinstance(probabilities, Mapping):
        raise NoiseModelError(f"pauli: probabilities must be a table {{label = probability}}, "
                              f"got {probabilities!r}")
    labels = list(probabilities)
    if not all(isinstance(s, str) for s in labels):
        raise NoiseModelError(f"pauli: labels must be strings of I, X, Y, Z, got {labels}")
    if not labels or len({len(s) for s in labels}) != 1 or any(
            not s or set(s) - set("IXYZ") for s in labels):
        raise NoiseModelError(f"pauli: labels must be non-empty strings of I, X, Y, Z of one "
                              f"length, got {labels}")
    k = len(labels[0])
    if k > _MAX_QUBITS:
        raise NoiseModelError(f"pauli: channels act on at most {_MAX_QUBITS} qubits")
    probs = np.zeros(4 ** k)
    for label, p in probabilities.items():
        probs[_pauli_index(label)] += _probability(p, f"pauli: probability of {label}")
    rest = 1.0 - probs[1:].sum() - probs[0]
    if rest < -1e-12:
        raise NoiseModelError(f"pauli: probabilities sum to {1 - rest:g} > 1")
    probs[0] += max(rest, 0.0)
    return _from_pauli("pauli", probs, k)


def _from_pauli(name: str, probs: np.ndarray, num_qubits: int) -> Channel:
    ops = [math.sqrt(p) * pauli_matrix(a, num_qubits) for a, p in enumerate(probs) if p > 0]
    return kraus(ops, name)


def depolarizing(p: float, num_qubits: int = 1) -> Channel:
    """Qiskit's depolarizing error: ``rho -> (1-p) rho + p I / 2^k``, ``0 <= p <= 4^k/(4^k-1)``."""
    num_qubits = check.count(num_qubits, "depolarizing: num_qubits", NoiseModelError,
                             minimum=1, maximum=_MAX_QUBITS)
    n = 4 ** num_qubits
    p = _probability(p, "depolarizing: p", n / (n - 1))
    probs = np.full(n, p / n)
    probs[0] = 1 - p + p / n
    return _from_pauli("depolarizing", probs, num_qubits)


def bit_flip(p: float) -> Channel:
    """X with probability ``p``."""
    return _from_pauli("bit_flip", np.array([1 - _probability(p, "bit_flip: p"), p, 0, 0]), 1)


def phase_flip(p: float) -> Channel:
    """Z with probability ``p``."""
    return _from_pauli("phase_flip", np.array([1 - _probability(p, "phase_flip: p"), 0, 0, p]), 1)


def amplitude_damping(gamma: float) -> Channel:
    """|1> decays to |0> with probability ``gamma``."""
    g = _probability(gamma, "amplitude_damping: gamma")
    return kraus([[[1, 0], [0, math.sqrt(1 - g)]], [[0, math.sqrt(g)], [0, 0]]],
                 "amplitude_damping")


def phase_damping(lam: float) -> Channel:
    """Coherences scaled by ``sqrt(1 - lam)`` (Qiskit's ``phase_damping_error``); Pauli."""
    lam = _probability(lam, "phase_damping: lambda")
    return kraus([[[1, 0], [0, math.sqrt(1 - lam)]], [[0, 0], [0, math.sqrt(lam)]]],
                 "phase_damping")


def thermal_relaxation(t1: float, t2: float, time: float) -> Channel:
    """Relaxation towards |0> for ``time``: populations decay as ``exp(-time/t1)``, coherences as
    ``exp(-time/t2)``; needs ``t2 <= 2 t1`` (``t1 = inf`` is pure dephasing).

    Amplitude damping with ``gamma = 1 - exp(-time/t1)`` (which already scales coherences by
    ``exp(-time/(2 t1))``) followed by phase damping for the rest of the coherence decay.
    """
    for value, what in ((t1, "t1"), (t2, "t2")):
        # inf is meaningful here (no decay): the one place a non-finite number is accepted
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) \
                or not value > 0:
            raise NoiseModelError(f"thermal_relaxation: {what} must be a number > 0 (inf: no "
                                  f"decay), got {check.describe(value)}")
    t1, t2 = float(t1), float(t2)
    time = check.non_negative(time, "thermal_relaxation: time", NoiseModelError)
    if t2 > 2 * t1 * (1 + 1e-12):
        raise NoiseModelError(f"thermal_relaxation: t2 = {t2:g} must be at most 2*t1 = {2 * t1:g}")
    gamma = 1 - math.exp(-time / t1)
    lam = min(max(1 - math.exp(-2 * time / t2 + time / t1), 0.0), 1.0)
    ad = amplitude_damping(gamma).kraus
    pd = phase_damping(lam).kraus
    return kraus([b @ a for a in ad for b in pd], "thermal_relaxation")


@dataclass(frozen=True, eq=False)
class ReadoutError:
    """One qubit's readout confusion: ``matrix[true, recorded]``, rows summing to 1."""

    matrix: np.ndarray

    def __post_init__(self) -> None:
        _check_numbers(self.matrix, "readout: matrix entries")
        try:
            m = np.asarray(self.matrix, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise NoiseModelError(f"readout: matrix must be 2x2 numbers, got {self.matrix!r}") \
                from None
        if m.shape == (2, 2) and not np.all(np.isfinite(m)):
            raise NoiseModelError(f"readout: matrix entries must be finite numbers, got "
                                  f"{m.tolist()}")
        if m.shape != (2, 2) or np.any(m < 0) or np.any(m > 1) or np.any(
                np.abs(m.sum(axis=1) - 1) > _ATOL):
            raise NoiseModelError(f"readout: matrix must be 2x2 with entries in [0, 1] and rows "
                                  f"summing to 1, got {m.tolist()}")
        object.__setattr__(self, "matrix", m)

    @classmethod
    def from_flips(cls, p01: float, p10: float) -> "ReadoutError":
        """``p01`` = P(read 1 | was 0), ``p10`` = P(read 0 | was 1)."""
        p01 = _probability(p01, "readout: p01")
        p10 = _probability(p10, "readout: p10")
        return cls(np.array([[1 - p01, p01], [p10, 1 - p10]]))


# ---- the lowered form -----------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class NoiseOp:
    """A channel on ``qubits`` (channel bit j = ``qubits[j]``), applied when ``condition`` holds
    (the condition of the gate it follows: a gate that does not fire adds no error)."""

    channel: Channel
    qubits: tuple[int, ...]
    condition: Condition | None = None


@dataclass
class NoisyCircuit:
    """A circuit with its noise inserted: ``ops`` in program order (barriers dropped), and the
    readout confusion matrix (``P[true, recorded]``) of each qubit that has one."""

    circuit: Circuit
    ops: list[Instruction | NoiseOp]
    readout: dict[int, np.ndarray]

    @property
    def has_channels(self) -> bool:
        return any(isinstance(op, NoiseOp) for op in self.ops)


# ---- the noise model ------------------------------------------------------------------------

class NoiseModel:
    """Channels after gates (all-qubit rules or rules for given qubit tuples) and readout errors.

    A rule for given qubits replaces the all-qubit rules of that gate on exactly those qubits
    (Qiskit's semantics); several rules for one key apply in the order they were added.
    Idle noise (:meth:`add_idle_error`, :meth:`add_idle_relaxation`, :meth:`set_durations`)
    acts on waiting qubits; see "Idle noise" in the module docstring.
    Not modelled yet: errors on measure/reset themselves.

    Examples
    --------
    >>> model = (NoiseModel()
    ...          .add_gate_error(depolarizing(0.001), ["h", "x"])
    ...          .add_gate_error(depolarizing(0.05, 2), "cx", qubits=(3, 4))
    ...          .add_readout_error(ReadoutError.from_flips(p01=0.02, p10=0.05)))
    >>> model = model.set_durations({"cx": 3, "measure": 10}).add_idle_relaxation(t1=500, t2=400)
    >>> from qsim_dist.backends import get_backend
    >>> from qsim_dist.library import ghz
    >>> result = get_backend("reference").run(ghz(5, measure=True), shots=1000, seed=1, noise=model)
    >>> sum(result.counts.values()), result.counts["00000"] + result.counts["11111"] > 700
    (1000, True)
    """

    def __init__(self) -> None:
        self._all: dict[str, list[Channel]] = {}
        self._local: dict[tuple[str, tuple[int, ...]], list[Channel]] = {}
        self._readout_all: ReadoutError | None = None
        self._readout_local: dict[int, ReadoutError] = {}
        # idle rules: (channel applied per unit of idle time, or (t1, t2) for thermal relaxation
        # over the idle time), for every qubit (key None) or for given qubits
        self._idle_all: list[Channel | tuple[float, float]] = []
        self._idle_local: dict[int, list[Channel | tuple[float, float]]] = {}
        self._durations: dict[str, float] = {}
        self._default_duration = 1.0

    def add_gate_error(self, channel: Channel, gates: str | Iterable[str],
                       qubits: Sequence[int] | None = None) -> "NoiseModel":
        """Apply ``channel`` after every gate named in ``gates`` (on ``qubits`` only, if given)."""
        check.instance(channel, Channel, "a gate error's channel", NoiseModelError)
        names = [gates] if isinstance(gates, str) else _listed(gates, "a gate error's gates")
        if not names:
            raise NoiseModelError("a gate error needs at least one gate name")
        key_qubits = None if qubits is None else tuple(
            check.count(q, "a gate error's qubit", NoiseModelError)
            for q in _listed(qubits, "a gate error's qubits"))
        for name in names:
            if not isinstance(name, str):
                raise NoiseModelError(f"a gate error's gates must be gate names, got "
                                      f"{check.describe(name)}")
            spec = GATES.get(name)
            if spec is None:
                raise NoiseModelError(f"unknown gate '{name}' in a gate error")
            if spec.num_qubits != channel.num_qubits:
                raise NoiseModelError(f"{channel.name} acts on {channel.num_qubits} qubit(s) but "
                                      f"gate '{name}' on {spec.num_qubits}")
            if key_qubits is None:
                self._all.setdefault(name, []).append(channel)
                continue
            if len(key_qubits) != spec.num_qubits or len(set(key_qubits)) != len(key_qubits) \
                    or min(key_qubits) < 0:
                raise NoiseModelError(f"gate '{name}' needs {spec.num_qubits} distinct "
                                      f"non-negative qubits, got {list(key_qubits)}")
            self._local.setdefault((name, key_qubits), []).append(channel)
        return self

    def add_readout_error(self, error: ReadoutError,
                          qubits: Iterable[int] | None = None) -> "NoiseModel":
        """Confuse the recorded bit of measurements of ``qubits`` (every qubit when None)."""
        check.instance(error, ReadoutError, "a readout error", NoiseModelError)
        if qubits is None:
            self._readout_all = error
        else:
            for q in _listed(qubits, "readout: qubits"):
                self._readout_local[check.count(q, "readout: qubit", NoiseModelError)] = error
        return self

    def set_durations(self, durations: Mapping[str, float],
                      default: float = 1.0) -> "NoiseModel":
        """Durations of instructions (gate names, ``"measure"``, ``"reset"``) in the unit of
        idle time; the others take ``default``. Without this call every instruction takes 1, so
        idle time counts idle layers."""
        if not isinstance(durations, Mapping):
            raise NoiseModelError(f"durations must be a table {{instruction: duration}}, got "
                                  f"{check.describe(durations)}")
        table = {}
        for name, value in dict(durations).items():
            if name not in GATES and name not in ("measure", "reset"):
                raise NoiseModelError(f"durations: unknown instruction '{name}'")
            table[name] = _duration(value, f"durations: {name}")
        self._default_duration = _duration(default, "durations: default")
        self._durations = table
        return self

    def duration(self, name: str) -> float:
        """How long instruction ``name`` takes (see :meth:`set_durations`)."""
        return self._durations.get(name, self._default_duration)

    def add_idle_error(self, channel: Channel,
                       qubits: Iterable[int] | None = None) -> "NoiseModel":
        """Apply the one-qubit ``channel`` to a waiting qubit once per unit of its idle time
        (once per idle layer with the default durations); on ``qubits`` only, if given (a
        qubit's own idle rules replace the all-qubit ones). Idle times must then be whole
        numbers of units."""
        if not isinstance(channel, Channel) or channel.num_qubits != 1:
            raise NoiseModelError("an idle error must be a one-qubit channel")
        return self._add_idle(channel, qubits)

    def add_idle_relaxation(self, t1: float, t2: float,
                            qubits: Iterable[int] | None = None) -> "NoiseModel":
        """Thermal relaxation (:func:`thermal_relaxation`, ``t1`` and ``t2`` in the unit of
        idle time) over each wait of a qubit, whatever its length."""
        thermal_relaxation(t1, t2, 0.0)  # validates t1, t2
        return self._add_idle((float(t1), float(t2)), qubits)

    def _add_idle(self, rule: Any, qubits: Iterable[int] | None) -> "NoiseModel":
        if qubits is None:
            self._idle_all.append(rule)
        else:
            for q in _listed(qubits, "idle: qubits"):
                q = check.count(q, "idle: qubit", NoiseModelError)
                self._idle_local.setdefault(q, []).append(rule)
        return self

    @property
    def has_idle_noise(self) -> bool:
        return bool(self._idle_all or self._idle_local)

    def idle_errors(self, qubit: int, time: float) -> list[Channel]:
        """The channels for ``qubit`` waiting ``time`` units, in order."""
        out = []
        for rule in self._idle_local.get(qubit, self._idle_all):
            if isinstance(rule, tuple):
                out.append(_relaxation(rule[0], rule[1], time))
                continue
            units = round(time)
            if abs(time - units) > 1e-9 * max(1.0, abs(time)):
                raise NoiseModelError(f"idle: qubit {qubit} waits {time:g} units, not a whole "
                                      f"number: a per-unit idle channel needs whole idle times "
                                      f"(use add_idle_relaxation for any duration)")
            if units:
                out.append(_channel_power(rule, units))
        return out

    def _check_qubits(self, num_qubits: int) -> None:
        """Every qubit named by a rule exists in a circuit of ``num_qubits`` qubits."""
        named = [(f"gate error on '{name}'", qs) for name, qs in self._local]
        named += [("readout error", (q,)) for q in self._readout_local]
        named += [("idle error", (q,)) for q in self._idle_local]
        for what, qs in named:
            missing = [q for q in qs if q >= num_qubits]
            if missing:
                raise NoiseModelError(f"the noise model's {what} names qubit {missing[0]}, but "
                                      f"the circuit has {num_qubits} qubit(s) (0..{num_qubits - 1})")

    def gate_errors(self, name: str, qubits: Sequence[int]) -> list[Channel]:
        """The channels after gate ``name`` on ``qubits``, in order."""
        local = self._local.get((name, tuple(qubits)))
        return list(local) if local is not None else list(self._all.get(name, ()))

    def readout_error(self, qubit: int) -> ReadoutError | None:
        return self._readout_local.get(qubit, self._readout_all)

    def lower(self, circuit: Circuit) -> NoisyCircuit:
        """Insert this model's noise into ``circuit`` (which is not changed).

        Raises
        ------
        NoiseModelError
            If a rule names a qubit the circuit does not have (it would silently never apply).
        """
        check.instance(circuit, Circuit, "the circuit to add noise to", NoiseModelError)
        self._check_qubits(circuit.num_qubits)
        ops: list[Instruction | NoiseOp] = []
        readout: dict[int, np.ndarray] = {}
        idle = _IdleSchedule(self) if self.has_idle_noise else None
        for inst in circuit:
            if idle is not None:
                ops.extend(idle.before(inst))
            if inst.name == "barrier":
                continue
            ops.append(inst)
            if inst.is_gate:
                ops.extend(NoiseOp(ch, inst.qubits, inst.condition)
                           for ch in self.gate_errors(inst.name, inst.qubits))
            elif inst.name == "measure":
                error = self.readout_error(inst.qubits[0])
                if error is not None:
                    readout[inst.qubits[0]] = error.matrix
        if idle is not None:
            ops = _hoist_terminal_idle(ops, idle.inserted)
        return NoisyCircuit(circuit, ops, readout)


def _duration(value: Any, what: str) -> float:
    return check.non_negative(value, what, NoiseModelError)


def _listed(values: Any, what: str) -> list:
    """``values`` as a list; a bare number or string is not a list of qubits or names."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise NoiseModelError(f"{what} must be a list, got {check.describe(values)}")
    return list(values)


_RELAXATION_CACHE: dict[tuple[float, float, float], Channel] = {}
_POWER_CACHE: dict[tuple[int, int], Channel] = {}


def _relaxation(t1: float, t2: float, time: float) -> Channel:
    key = (t1, t2, time)
    if key not in _RELAXATION_CACHE:
        if len(_RELAXATION_CACHE) > 4096:
            _RELAXATION_CACHE.clear()
        _RELAXATION_CACHE[key] = thermal_relaxation(t1, t2, time)
    return _RELAXATION_CACHE[key]


def _channel_power(channel: Channel, m: int) -> Channel:
    """``channel`` applied ``m`` times in a row, as one channel with at most ``4^k`` Kraus
    operators (superoperator power, Kraus operators from the Choi matrix)."""
    if m == 1:
        return channel
    key = (id(channel), m)
    hit = _POWER_CACHE.get(key)
    if hit is not None and hit[0] is channel:
        return hit[1]
    dim = 1 << channel.num_qubits
    # superoperator on row-major vec(rho): vec(K rho K^dag) = (K (x) conj(K)) vec(rho)
    sup = sum(np.kron(k, k.conj()) for k in channel.kraus)
    sup = np.linalg.matrix_power(sup, m)
    # Choi: C[(i,a),(j,b)] = S[(i,j),(a,b)] (reshuffle); C = sum vec(K) vec(K)^dag
    choi = sup.reshape(dim, dim, dim, dim).transpose(0, 2, 1, 3).reshape(dim * dim, dim * dim)
    w, v = np.linalg.eigh((choi + choi.conj().T) / 2)
    ops = [math.sqrt(x) * v[:, j].reshape(dim, dim) for j, x in enumerate(w) if x > 1e-14]
    out = kraus(ops, channel.name)
    _POWER_CACHE[key] = (channel, out)
    return out


class _IdleSchedule:
    """As-soon-as-possible schedule of a circuit with the model's durations; yields the idle
    channels due before each instruction: a qubit waits from the end of its previous operation
    to the start of its next one (a conditioned instruction starts when its bits are measured
    and always takes its duration). No idle noise before a qubit's first operation, after its
    last, or before a reset (the reset erases it)."""

    def __init__(self, model: NoiseModel):
        self.model = model
        self.free: dict[int, float] = {}  # qubit -> end of its last operation
        self.ready: dict[int, float] = {}  # clbit -> when its value is known
        self.sync: dict[int, float] = {}  # qubit -> no operation before (a barrier)
        self.inserted: set[int] = set()  # ids of the idle ops

    def before(self, inst: Instruction) -> list[NoiseOp]:
        free, ready = self.free, self.ready
        start = max([free.get(q, 0.0) for q in inst.qubits] +
                    [self.sync.get(q, 0.0) for q in inst.qubits] +
                    [ready.get(c, 0.0) for c in (inst.condition.clbits if inst.condition else ())],
                    default=0.0)
        if inst.name == "barrier":  # synchronises its qubits, takes no time
            for q in inst.qubits:
                self.sync[q] = start
            return []
        out = []
        for q in inst.qubits:
            if q in free and start > free[q] and inst.name != "reset":
                out += [NoiseOp(ch, (q,)) for ch in self.model.idle_errors(q, start - free[q])]
        end = start + self.model.duration(inst.name)
        for q in inst.qubits:
            free[q] = end
        if inst.name == "measure":
            ready[inst.clbits[0]] = end
        self.inserted.update(id(op) for op in out)
        return out


def _hoist_terminal_idle(ops: list, idle: set[int]) -> list:
    """Move idle channels inside the final block of unconditioned measurements before it (they
    act on other qubits than the measurements they pass), so that the block stays terminal and
    is sampled at once."""
    start = len(ops)
    while start and ((isinstance(ops[start - 1], Instruction) and ops[start - 1].name == "measure"
                      and ops[start - 1].condition is None) or id(ops[start - 1]) in idle):
        start -= 1
    hoisted, rest, measured = [], [], set()
    for op in ops[start:]:
        if isinstance(op, NoiseOp) and not measured & set(op.qubits):
            hoisted.append(op)
        else:
            rest.append(op)
            if isinstance(op, Instruction):
                measured.update(op.qubits)
    return ops[:start] + hoisted + rest


# ---- the TOML form --------------------------------------------------------------------------

def _kraus_from_toml(ops: Any) -> Channel:
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise NoiseModelError("kraus: 'kraus' must be a list of tables {real = [[..]], "
                              "imag = [[..]]}")
    mats = []
    for o in ops:
        extra = set(o) - {"real", "imag"}
        if extra or "real" not in o:
            raise NoiseModelError(f"kraus: each operator needs 'real' (and optional 'imag'), "
                                  f"got keys {sorted(o)}")
        _check_numbers([o["real"], o.get("imag", 0.0)], "kraus: operator entries")
        try:
            m = np.asarray(o["real"], dtype=np.float64) + 1j * np.asarray(o.get("imag", 0.0),
                                                                         dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise NoiseModelError(f"kraus: operators must be numeric matrices ({exc})") from None
        mats.append(m)
    return kraus(mats)


# channel -> (required fields, constructor taking them in order and then the gates' arity)
CHANNEL_FIELDS: dict[str, tuple[tuple[str, ...], Any]] = {
    "depolarizing": (("p",), lambda p, k: depolarizing(p, k)),
    "pauli": (("probabilities",), lambda probs, k: pauli_channel(probs)),
    "bit_flip": (("p",), lambda p, k: bit_flip(p)),
    "phase_flip": (("p",), lambda p, k: phase_flip(p)),
    "amplitude_damping": (("gamma",), lambda g, k: amplitude_damping(g)),
    "phase_damping": (("lambda",), lambda lam, k: phase_damping(lam)),
    "thermal_relaxation": (("t1", "t2", "time"),
                           lambda t1, t2, t, k: thermal_relaxation(t1, t2, t)),
    "kraus": (("kraus",), lambda ops, k: _kraus_from_toml(ops)),
}


def _qubit_tuples(value: Any) -> list[tuple[int, ...]]:
    def ints(v):
        return isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool)
                                                  for x in v)

    if ints(value):
        return [tuple(value)]
    if isinstance(value, list) and value and all(ints(v) for v in value):
        return [tuple(v) for v in value]
    raise NoiseModelError(f"'qubits' must be a list of qubit indices or a list of such lists, "
                          f"got {value!r}")


def _channel_rule(rule: dict, where: str, own: Sequence[str], drop: Sequence[str] = ()
                  ) -> tuple[str, str, tuple[str, ...], Any]:
    """Check the channel of a ``[[gate]]`` or ``[[idle]]`` rule: its name, that the rule has
    exactly the channel's fields (less ``drop``) plus the rule's ``own`` fields (``qubits`` is
    always optional); return (channel name, where with the name, fields, channel maker)."""
    if "channel" not in rule:
        raise NoiseModelError(f"{where}: missing field 'channel'")
    name = rule["channel"]
    if name not in CHANNEL_FIELDS:
        raise NoiseModelError(f"{where}: unknown channel {name!r} (choose from "
                              f"{', '.join(CHANNEL_FIELDS)})")
    where = f"{where} ({name})"
    fields, make = CHANNEL_FIELDS[name]
    fields = tuple(f for f in fields if f not in drop)
    allowed = {"channel", "qubits", *own, *fields}
    extra = sorted(set(rule) - allowed)
    if extra:
        raise NoiseModelError(f"{where}: unknown field {extra[0]!r} (allowed: "
                              f"{', '.join(sorted(allowed))})")
    for f in (*own, *fields):
        if f not in rule:
            raise NoiseModelError(f"{where}: missing field {f!r}")
    return name, where, fields, make


def _gate_rule(model: NoiseModel, rule: dict, where: str) -> None:
    name, where, fields, make = _channel_rule(rule, where, own=("gates",))
    gates = rule["gates"]
    gates = [gates] if isinstance(gates, str) else gates
    if not isinstance(gates, list) or not gates or not all(isinstance(g, str) for g in gates):
        raise NoiseModelError(f"{where}: 'gates' must be a gate name or a list of gate names")
    unknown = [g for g in gates if g not in GATES]
    if unknown:
        raise NoiseModelError(f"{where}: unknown gate {unknown[0]!r}")
    arities = {GATES[g].num_qubits for g in gates}
    if len(arities) != 1:
        raise NoiseModelError(f"{where}: gates {gates} act on different numbers of qubits")
    try:
        channel = make(*(rule[f] for f in fields), arities.pop())
        for qubits in _qubit_tuples(rule["qubits"]) if "qubits" in rule else [None]:
            model.add_gate_error(channel, gates, qubits)
    except NoiseModelError as exc:
        message = str(exc).removeprefix(f"{name}: ")  # the channel is already named in `where`
        raise NoiseModelError(f"{where}: {message}") from None


def _readout_rule(model: NoiseModel, rule: dict, where: str) -> None:
    extra = sorted(set(rule) - {"p01", "p10", "matrix", "qubits"})
    if extra:
        raise NoiseModelError(f"{where}: unknown field {extra[0]!r} (allowed: matrix, p01, p10, "
                              f"qubits)")
    try:
        if "matrix" in rule:
            if "p01" in rule or "p10" in rule:
                raise NoiseModelError("give either 'matrix' or 'p01' and 'p10', not both")
            error = ReadoutError(rule["matrix"])
        else:
            for f in ("p01", "p10"):
                if f not in rule:
                    raise NoiseModelError(f"missing field {f!r}")
            error = ReadoutError.from_flips(rule["p01"], rule["p10"])
        qubits = None
        if "qubits" in rule:
            qubits = _qubit_tuples(rule["qubits"])
            if len(qubits) != 1:
                raise NoiseModelError("'qubits' must be one list of qubit indices")
            qubits = qubits[0]
        model.add_readout_error(error, qubits)
    except NoiseModelError as exc:
        raise NoiseModelError(f"{where}: {str(exc).removeprefix('readout: ')}") from None


def _idle_rule(model: NoiseModel, rule: dict, where: str) -> None:
    # thermal relaxation over the idle time: its 'time' comes from the schedule
    name, where, fields, make = _channel_rule(rule, where, own=(), drop=(
        ("time",) if rule.get("channel") == "thermal_relaxation" else ()))
    qubits = None
    try:
        if "qubits" in rule:
            tuples = _qubit_tuples(rule["qubits"])
            if len(tuples) != 1:
                raise NoiseModelError("'qubits' must be one list of qubit indices")
            qubits = tuples[0]
        if name == "thermal_relaxation":
            for f in fields:
                if isinstance(rule[f], bool) or not isinstance(rule[f], (int, float)):
                    raise NoiseModelError(f"thermal_relaxation: {f} must be a number, "
                                          f"got {rule[f]!r}")
            model.add_idle_relaxation(rule["t1"], rule["t2"], qubits)
        else:
            model.add_idle_error(make(*(rule[f] for f in fields), 1), qubits)
    except NoiseModelError as exc:
        message = str(exc).removeprefix(f"{name}: ")
        raise NoiseModelError(f"{where}: {message}") from None


def noise_model_from_dict(data: Mapping[str, Any], source: str = "noise model") -> NoiseModel:
    """A :class:`NoiseModel` from the parsed TOML form (see the module docstring)."""
    extra = sorted(set(data) - {"gate", "readout", "idle", "durations"})
    if extra:
        raise NoiseModelError(f"{source}: unknown section {extra[0]!r} (allowed: [[gate]], "
                              f"[[readout]], [[idle]], [durations])")
    model = NoiseModel()
    durations = data.get("durations")
    if durations is not None:
        if not isinstance(durations, dict):
            raise NoiseModelError(f"{source}: 'durations' must be a table ([durations])")
        durations = dict(durations)
        default = durations.pop("default", 1.0)
        try:
            model.set_durations(durations, default)
        except NoiseModelError as exc:
            raise NoiseModelError(f"{source}: [durations]: "
                                  f"{str(exc).removeprefix('durations: ')}") from None
    for section, add in (("gate", _gate_rule), ("readout", _readout_rule),
                         ("idle", _idle_rule)):
        rules = data.get(section, [])
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise NoiseModelError(f"{source}: '{section}' must be an array of tables "
                                  f"([[{section}]])")
        for j, rule in enumerate(rules, 1):
            add(model, rule, f"{source}: [[{section}]] #{j}")
    return model


def load_noise_model(path: str | Path) -> NoiseModel:
    """Read a noise model from a TOML file (see the module docstring for the form).

    Raises
    ------
    NoiseModelError
        With a one-line message naming the file and the rule, for every unreadable or bad input.
    """
    from .io.toml import read_toml

    data = read_toml(path, "noise model", NoiseModelError)
    return noise_model_from_dict(data, str(path))


# ---- Qiskit Aer ------------------------------------------------------------------------------

def from_qiskit_noise_model(noise_model: Any) -> NoiseModel:
    """Convert a ``qiskit_aer.noise.NoiseModel`` where it is expressible here: quantum errors on
    gates of the gate table (all-qubit or local; any error Aer can turn into a quantum channel,
    Pauli ones are recognised as such) and one-qubit readout errors.

    Reads Aer's model tables (``_default_quantum_errors``, ``_local_quantum_errors``, readout
    tables), which Aer's public API does not expose as data.

    Raises
    ------
    NoiseModelError
        For errors on measure/reset or on gates outside the gate table, custom noise passes,
        and correlated (multi-qubit) readout errors.
    """
    from qiskit.quantum_info import Kraus

    def name_of(qname: str) -> str:
        name = from_qiskit_name(qname)
        if name is None:
            raise NoiseModelError(f"qiskit noise model: an error on '{qname}' is not expressible "
                                  f"(only errors after gates of the gate table are)")
        return name

    def channel_of(error: Any) -> Channel:
        return kraus(Kraus(error.to_quantumchannel()).data, "qiskit")

    def readout_of(error: Any) -> ReadoutError:
        if error.number_of_qubits != 1:
            raise NoiseModelError("qiskit noise model: correlated multi-qubit readout errors are "
                                  "not expressible")
        return ReadoutError(error.probabilities)

    if getattr(noise_model, "_custom_noise_passes", None):
        raise NoiseModelError("qiskit noise model: custom noise passes are not expressible")
    model = NoiseModel()
    for qname, error in noise_model._default_quantum_errors.items():
        model.add_gate_error(channel_of(error), name_of(qname))
    for qname, by_qubits in noise_model._local_quantum_errors.items():
        for qubits, error in by_qubits.items():
            model.add_gate_error(channel_of(error), name_of(qname), qubits)
    if noise_model._default_readout_error is not None:
        model.add_readout_error(readout_of(noise_model._default_readout_error))
    for qubits, error in noise_model._local_readout_errors.items():
        model.add_readout_error(readout_of(error), qubits)
    return model


# ---- comparing sampled distributions ---------------------------------------------------------

def total_variation_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """``1/2 sum_x |a(x) - b(x)|`` after normalising each of counts (or probabilities) a and b."""
    na, nb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a.get(x, 0) / na - b.get(x, 0) / nb) for x in set(a) | set(b))


def tvd_bound(num_outcomes: int, shots_a: int, shots_b: int | None = None,
              confidence: float = 1e-3) -> float:
    """A TVD that two samples of one distribution (``shots_a`` and ``shots_b`` shots; or one sample
    against the exact distribution when ``shots_b`` is None) exceed with probability < confidence.

    ``E[TVD] <= 1/2 sqrt(M s)`` with ``s = 1/N_a + 1/N_b`` (Cauchy-Schwarz over the M outcomes),
    plus McDiarmid's deviation ``sqrt(ln(1/confidence) s / 2)`` (one shot moves the TVD by at most
    ``1/N``).
    """
    s = 1 / shots_a + (1 / shots_b if shots_b else 0.0)
    return 0.5 * math.sqrt(num_outcomes * s) + math.sqrt(math.log(1 / confidence) * s / 2)


def marginal_counts(counts: Mapping[str, int], clbits: Sequence[int]) -> dict[str, int]:
    """Counts of the bits ``clbits`` only (keys with clbits[0] rightmost)."""
    out: dict[str, int] = {}
    for key, n in counts.items():
        sub = "".join(key[len(key) - 1 - c] for c in reversed(clbits))
        out[sub] = out.get(sub, 0) + n
    return out
