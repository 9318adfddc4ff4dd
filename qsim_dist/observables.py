"""Pauli sums: the observables of :meth:`Backend.expectation`.

A Pauli string is stored as two bit masks over qubits, ``x_mask`` and ``z_mask``; a qubit in both
carries Y. With that encoding, for a basis index ``j``::

    (P psi)[j] = (-i)^{#Y} * (-1)^{popcount(j & z_mask)} * psi[j ^ x_mask]

Accepted inputs for :func:`as_pauli_sum`:
- a Qiskit-style label ``"XZI"`` (rightmost character is qubit 0, as the bit order of the state);
- a sparse label ``"X0 Z3"`` (letter then qubit index, separated by spaces);
- a list of ``(coefficient, label)`` pairs; a ``PauliSum``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import QsimDistError

_SPARSE = re.compile(r"^([IXYZ])(\d+)$")


@dataclass(frozen=True)
class PauliSum:
    """sum_k coeff_k * P_k with P_k given by (x_mask, z_mask)."""

    num_qubits: int
    terms: tuple[tuple[complex, int, int], ...]


def parse_pauli(label: str, num_qubits: int) -> tuple[int, int]:
    """(x_mask, z_mask) of one Pauli label, dense (``"XZI"``) or sparse (``"X0 Z3"``)."""
    label = label.strip()
    x = z = 0
    if not label:
        return 0, 0
    tokens = label.split()
    if all(_SPARSE.match(t) for t in tokens) and any(ch.isdigit() for ch in label):
        pairs = [(_SPARSE.match(t).group(1), int(_SPARSE.match(t).group(2))) for t in tokens]
    elif len(tokens) == 1 and set(label) <= set("IXYZ"):
        if len(label) != num_qubits:
            raise QsimDistError(f"Pauli label '{label}' has {len(label)} letters for "
                                f"{num_qubits} qubits")
        pairs = [(ch, q) for q, ch in enumerate(reversed(label))]
    else:
        raise QsimDistError(f"cannot read Pauli label '{label}' (use 'XZI' or 'X0 Z2')")
    for ch, q in pairs:
        if not 0 <= q < num_qubits:
            raise QsimDistError(f"Pauli label '{label}': qubit {q} out of range")
        if ch in "XY":
            x |= 1 << q
        if ch in "ZY":
            z |= 1 << q
    return x, z


def as_pauli_sum(obs: "PauliSum | str | Sequence", num_qubits: int) -> PauliSum:
    if isinstance(obs, PauliSum):
        return obs
    if isinstance(obs, str):
        obs = [(1.0, obs)]
    terms = []
    for coeff, label in obs:
        x, z = parse_pauli(label, num_qubits)
        terms.append((complex(coeff), x, z))
    return PauliSum(num_qubits, tuple(terms))


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
