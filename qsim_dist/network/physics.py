"""The physics of links and purification, shared by the runtime (which draws link pairs from it)
and the protocols (whose simulated outcomes the tests check against it): Werner pairs, swapping
and teleportation fidelities, BBPSSW / DEJMPS recurrence rounds, link generation times and the
time and resources of a purified pair. Conventions as in :mod:`qsim_dist.network.protocols`.
"""

from __future__ import annotations

from functools import reduce
from typing import Any, NamedTuple, Sequence

import numpy as np

from .. import validation
from ..errors import OptionError
from .topology import Link

PURIFICATION_PROTOCOLS = ("bbpssw", "dejmps")
#: the most recurrence rounds per pair: r rounds consume at least 2^r raw pairs per delivered
#: pair (and the work of drawing them), so a large r is unbounded work from a small input
MAX_PURIFICATION_ROUNDS = 10


# ---- formulas ---------------------------------------------------------------------------------

def werner_pauli_probabilities(fidelity: float) -> np.ndarray:
    """(I, X, Y, Z) probabilities on one half of a Werner pair of fidelity ``fidelity``."""
    q = (1.0 - fidelity) / 3.0
    return np.array([fidelity, q, q, q])


def teleport_fidelity(fidelity: float) -> float:
    """Average fidelity of teleporting a pure state over a Werner pair: (2F + 1) / 3."""
    return (2.0 * fidelity + 1.0) / 3.0


def swap_fidelity(f1: float, f2: float) -> float:
    """Werner fidelity after swapping Werner pairs: F1 F2 + (1 - F1)(1 - F2) / 3."""
    return f1 * f2 + (1.0 - f1) * (1.0 - f2) / 3.0


def swapped_weights(first: Sequence[float], second: Sequence[float]) -> np.ndarray:
    """Pauli-ordered (I, X, Y, Z) weights of the pair that swapping two Bell-diagonal pairs
    makes: the Pauli errors of the two pairs multiply (X = (1,0), Y = (1,1), Z = (0,1) in
    (x, z) bits, which add mod 2)."""
    bits = [(0, 0), (1, 0), (1, 1), (0, 1)]
    out = np.zeros(4)
    for i, (x1, z1) in enumerate(bits):
        for j, (x2, z2) in enumerate(bits):
            out[bits.index((x1 ^ x2, z1 ^ z2))] += first[i] * second[j]
    return out


def chain_fidelity(fidelities: Sequence[float]) -> float:
    """End-to-end Werner fidelity of a repeater chain with these link fidelities."""
    return reduce(swap_fidelity, fidelities)


def bbpssw(fidelity: float) -> tuple[float, float]:
    """One BBPSSW round on two Werner pairs of fidelity F: (success probability, output F).

    p = F^2 + 2 F (1-F)/3 + 5 ((1-F)/3)^2,   F' = (F^2 + ((1-F)/3)^2) / p
    (Bennett et al. 1996); the output is twirled back to a Werner state.
    """
    f, q = fidelity, (1.0 - fidelity) / 3.0
    p = f * f + 2 * f * q + 5 * q * q
    return p, (f * f + q * q) / p


def dejmps(coefficients: Sequence[float]) -> tuple[float, np.ndarray]:
    """One DEJMPS round on two copies of a Bell-diagonal state (Deutsch et al. 1996).

    ``coefficients`` = (A, B, C, D) = weights of (Phi+, Psi-, Psi+, Phi-). With
    N = (A + B)^2 + (C + D)^2 the success probability, the output is
    ((A^2 + B^2), 2 C D, (C^2 + D^2), 2 A B) / N, in the same order.
    """
    a, b, c, d = (float(x) for x in coefficients)
    n = (a + b) ** 2 + (c + d) ** 2
    return n, np.array([a * a + b * b, 2 * c * d, c * c + d * d, 2 * a * b]) / n


def _dejmps_pauli(probs: np.ndarray) -> tuple[float, np.ndarray]:
    """:func:`dejmps` on Pauli-ordered weights (I, X, Y, Z) = (Phi+, Psi+, Psi-, Phi-)."""
    p, out = dejmps([probs[0], probs[2], probs[1], probs[3]])
    return p, np.array([out[0], out[2], out[1], out[3]])


def check_purification(protocol: Any, rounds: Any) -> int:
    """Refuse an unknown protocol or a round count outside [0, MAX_PURIFICATION_ROUNDS] (one
    :class:`OptionError` line); return the rounds."""
    if not isinstance(protocol, str) or protocol not in PURIFICATION_PROTOCOLS:
        raise OptionError(f"unknown purification protocol {protocol!r} (choose "
                          f"{', '.join(PURIFICATION_PROTOCOLS)})")
    return validation.count(rounds, "purification rounds", OptionError,
                            maximum=MAX_PURIFICATION_ROUNDS)


def purification_rounds(fidelity: float, protocol: str,
                        rounds: int) -> list[tuple[float, np.ndarray]]:
    """For each recurrence round on Werner pairs of ``fidelity``: (success probability, the
    Pauli-ordered (I, X, Y, Z) weights of the pair it delivers)."""
    check_purification(protocol, rounds)
    probs = werner_pauli_probabilities(fidelity)
    out = []
    for _ in range(rounds):
        if protocol == "bbpssw":
            p, f = bbpssw(float(probs[0]))
            probs = werner_pauli_probabilities(f)
        else:
            p, probs = _dejmps_pauli(probs)
        out.append((p, probs))
    return out


# ---- timing of link generation ------------------------------------------------------------------

def generation_time(link: Link, rng: np.random.Generator) -> tuple[int, float]:
    """(attempts, seconds) to deliver one raw pair: attempts are geometric with success
    probability ``link.attempt_success`` (one draw), each taking ``link.attempt_time``."""
    # a Link expects at most MAX_EXPECTED_ATTEMPTS attempts, so the draw never saturates
    attempts = int(rng.geometric(link.attempt_success))
    return attempts, attempts * link.attempt_time


def purification_comm_qubits(rounds: int) -> int:
    """Communication qubits each end of a link holds at once while it distils one pair by
    ``rounds`` recurrence rounds, pairs made one after the other (:func:`purified_pair`): a
    level-r pair keeps its first level-(r-1) pair while it makes the second, so it needs one
    more than a level-(r-1) pair: ``rounds + 1`` (1 without purification, 2 for one round)."""
    return rounds + 1


class PurifiedPair(NamedTuple):
    """What :func:`purified_pair` drew for one delivered pair."""

    seconds: float            # from the first attempt to the last round's exchanged outcomes
    weights: np.ndarray       # Pauli-ordered (I, X, Y, Z) weights of the delivered pair
    generated: int            # raw pairs generated
    discarded: int            # raw pairs thrown away by failed rounds
    attempts: int             # raw generation attempts
    round_attempts: int       # purification rounds run (successful and failed): each one
    #                           exchanges two classical bits, one each way


def purified_pair(link: Link, protocol: str, rounds: int, rng: np.random.Generator,
                  local_time: float = 0.0) -> PurifiedPair:
    """Time and resources of one pair distilled by ``rounds`` recurrence rounds on ``link``.

    A level-r pair needs two level-(r-1) pairs made one after the other on the link, then the
    round's local gates and measurements, and the exchange of the two outcomes (one bit each
    way): ``local_time`` is the gates, the measurement and the one-way latency, since the round's
    success is known only once the outcomes have arrived. The round fails with probability
    1 - p_r, both pairs are discarded and it starts over.
    """
    table = purification_rounds(link.fidelity, protocol, rounds)
    generated = discarded = attempts = round_attempts = 0

    def make(level: int) -> tuple[float, int]:
        """Seconds and raw pairs inside one level-``level`` pair."""
        nonlocal generated, discarded, attempts, round_attempts
        if level == 0:
            n, t = generation_time(link, rng)
            attempts += n
            generated += 1
            return t, 1
        total = 0.0
        while True:
            t1, r1 = make(level - 1)
            t2, r2 = make(level - 1)
            total += t1 + t2 + local_time
            round_attempts += 1
            if rng.random() < table[level - 1][0]:
                return total, r1 + r2
            discarded += r1 + r2

    seconds, _ = make(rounds)
    weights = table[-1][1] if table else werner_pauli_probabilities(link.fidelity)
    return PurifiedPair(seconds, weights, generated, discarded, attempts, round_attempts)
