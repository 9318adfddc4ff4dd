"""Pauli sums: the observables of :meth:`Backend.expectation`.

A Pauli string is stored as two bit masks over qubits, ``x_mask`` and ``z_mask``; a qubit in both
carries Y. With that encoding, for a basis index ``j``::

    (P psi)[j] = (-i)^{#Y} * (-1)^{popcount(j & z_mask)} * psi[j ^ x_mask]

Accepted inputs for :func:`as_pauli_sum`:
- a Qiskit-style label ``"XZI"`` (rightmost character is qubit 0, as the bit order of the state);
- a sparse label ``"X0 Z3"`` (letter then qubit index, separated by spaces);
- a sum of such labels with real coefficients, ``"Z0 Z1 + 0.5 X3 - 2e-1 Y0"``
  (:func:`parse_pauli_sum`, what ``qsim-dist run --observable`` takes);
- a list of ``(coefficient, label)`` pairs; a ``PauliSum``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import validation as check
from .errors import QsimDistError


class ObservableError(QsimDistError):
    """An observable cannot be read: bad label, qubit out of range, non-finite coefficient."""

_SPARSE = re.compile(r"^([IXYZ])(\d+)$")


@dataclass(frozen=True)
class PauliSum:
    """sum_k coeff_k * P_k with P_k given by (x_mask, z_mask)."""

    num_qubits: int
    terms: tuple[tuple[complex, int, int], ...]

    def __post_init__(self) -> None:
        n = check.count(self.num_qubits, "PauliSum num_qubits", ObservableError)
        terms = []
        for j, term in enumerate(self.terms):
            if not isinstance(term, tuple) or len(term) != 3:
                raise ObservableError(f"PauliSum term {j} must be (coefficient, x_mask, z_mask), "
                                      f"got {check.describe(term)}")
            coeff = check.finite_complex(term[0], f"PauliSum term {j}: coefficient",
                                         ObservableError)
            masks = [check.count(m, f"PauliSum term {j}: {w}", ObservableError,
                                 maximum=(1 << n) - 1) for m, w in zip(term[1:], ("x_mask",
                                                                                 "z_mask"))]
            terms.append((coeff, *masks))
        object.__setattr__(self, "num_qubits", n)
        object.__setattr__(self, "terms", tuple(terms))


def parse_pauli(label: str, num_qubits: int) -> tuple[int, int]:
    """(x_mask, z_mask) of one Pauli label, dense (``"XZI"``) or sparse (``"X0 Z3"``).

    Dense labels are read with qubit 0 rightmost, as counts are printed:

    >>> parse_pauli("XZI", 3)          # X on qubit 2, Z on qubit 1
    (4, 2)
    >>> parse_pauli("Y0 Z2", 3)        # Y sets both masks
    (1, 5)
    """
    check.text(label, "a Pauli label", ObservableError)
    num_qubits = check.count(num_qubits, "num_qubits", ObservableError)
    label = label.strip()
    x = z = 0
    if not label:
        return 0, 0
    tokens = label.split()
    if all(_SPARSE.match(t) for t in tokens) and any(ch.isdigit() for ch in label):
        pairs = [(_SPARSE.match(t).group(1), int(_SPARSE.match(t).group(2))) for t in tokens]
        if len({q for _, q in pairs}) != len(pairs):
            raise ObservableError(f"Pauli label '{label}' names a qubit twice")
    elif len(tokens) == 1 and set(label) <= set("IXYZ"):
        if len(label) != num_qubits:
            raise ObservableError(f"Pauli label '{label}' has {len(label)} letters for "
                                f"{num_qubits} qubits")
        pairs = [(ch, q) for q, ch in enumerate(reversed(label))]
    else:
        raise ObservableError(f"cannot read Pauli label '{label}' (use 'XZI' or 'X0 Z2')")
    for ch, q in pairs:
        if not 0 <= q < num_qubits:
            raise ObservableError(f"Pauli label '{label}': qubit {q} out of range "
                                  f"(0..{num_qubits - 1})")
        if ch in "XY":
            x |= 1 << q
        if ch in "ZY":
            z |= 1 << q
    return x, z


def as_pauli_sum(obs: "PauliSum | str | Sequence", num_qubits: int) -> PauliSum:
    """``obs`` as a :class:`PauliSum` on ``num_qubits`` qubits (see the module docstring).

    >>> as_pauli_sum([(0.5, "Z0 Z1"), (1, "X2")], 3).terms
    (((0.5+0j), 0, 3), ((1+0j), 4, 0))
    >>> as_pauli_sum("Z5", 3)
    Traceback (most recent call last):
        ...
    qsim_dist.observables.ObservableError: Pauli label 'Z5': qubit 5 out of range (0..2)

    Raises
    ------
    ObservableError
        For anything else than the accepted forms, a label that does not fit ``num_qubits``, or a
        coefficient that is not a finite number.
    """
    num_qubits = check.count(num_qubits, "num_qubits", ObservableError)
    if isinstance(obs, PauliSum):
        if obs.num_qubits != num_qubits:
            raise ObservableError(f"the observable is on {obs.num_qubits} qubits, the circuit "
                                  f"has {num_qubits}")
        return obs
    if isinstance(obs, str):
        return parse_pauli_sum(obs, num_qubits)
    if isinstance(obs, bytes) or not hasattr(obs, "__iter__"):
        raise ObservableError(f"an observable must be a Pauli label, a list of (coefficient, "
                              f"label) pairs or a PauliSum, got {check.describe(obs)}")
    terms = []
    for j, term in enumerate(obs):
        if isinstance(term, (str, bytes)) or not hasattr(term, "__len__") or len(term) != 2:
            raise ObservableError(f"observable term {j} must be a (coefficient, label) pair, got "
                                  f"{check.describe(term)}")
        coeff, label = term
        coeff = check.finite_complex(coeff, f"observable term {j}: coefficient", ObservableError)
        x, z = parse_pauli(label, num_qubits)
        terms.append((coeff, x, z))
    return PauliSum(num_qubits, tuple(terms))


# one term of a written sum: an optional real coefficient (an optional "*"), then its label
_TERM = re.compile(r"^(?P<coeff>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)?\s*\*?\s*"
                   r"(?P<label>[IXYZ][IXYZ0-9 ]*)$")


def parse_pauli_sum(text: str, num_qubits: int) -> PauliSum:
    """A written sum of Pauli labels, ``"Z0 Z1 + 0.5 X3 - 2 Y0"`` (terms joined by ``+`` or
    ``-``, each an optional real coefficient and a sparse or dense label).

    >>> parse_pauli_sum("Z0 Z1 - 0.5 X2", 3).terms
    (((1+0j), 0, 3), ((-0.5+0j), 4, 0))
    """
    check.text(text, "an observable", ObservableError)
    # a sign splits terms, except in a coefficient's exponent (labels have no letter e)
    pieces = re.split(r"(?<![eE])([+-])", text)
    terms, sign = [], 1.0
    for j, piece in enumerate(pieces):
        if piece in "+-" and j % 2:
            sign = -sign if piece == "-" else sign
            continue
        piece = piece.strip()
        if not piece:
            if j == 0:
                continue   # a leading sign
            raise ObservableError(f"observable '{text}': a sign with no term after it")
        match = _TERM.match(piece)
        if match is None:
            raise ObservableError(f"observable '{text}': cannot read the term '{piece}' "
                                  f"(a coefficient, then a label such as 'Z0 Z1' or 'XZI')")
        coeff = sign * float(match.group("coeff") or 1.0)
        terms.append((coeff, match.group("label")))
        sign = 1.0
    if not terms:
        raise ObservableError(f"observable '{text}' has no term")
    if pieces[-1].strip() == "" and len(pieces) > 1:
        raise ObservableError(f"observable '{text}': a sign with no term after it")
    return as_pauli_sum(terms, num_qubits)


def pauli_phase(x_mask: int, z_mask: int) -> complex:
    """The constant (-i)^{#Y} of the encoding above."""
    return (-1j) ** bin(x_mask & z_mask).count("1")


def apply_pauli_to_vector(psi: np.ndarray, x_mask: int, z_mask: int) -> np.ndarray:
    """P psi for a dense vector (reference implementation of the formula above)."""
    j = np.arange(psi.size, dtype=np.int64)
    parity = np.zeros(psi.size, dtype=np.int64)
    zj = j & z_mask
    while np.any(zj):
        parity ^= zj & 1
        zj >>= 1
    sign = 1 - 2 * parity
    return pauli_phase(x_mask, z_mask) * sign * psi[j ^ x_mask]
