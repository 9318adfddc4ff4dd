"""Protocols of a distributed quantum computer, as node programs on a :class:`Runtime`, and the
analytic formulas they obey (which the tests check the simulation against).

Conventions. An EPR pair is |Phi+> = (|00> + |11>)/sqrt2 on (half on the first node, half on the
second). A Bell-diagonal state is written by the Pauli that, applied to the second half of |Phi+>,
gives each Bell state: I -> Phi+, X -> Psi+, Y -> Psi- (up to phase), Z -> Phi-; so its
coefficients in Pauli order (I, X, Y, Z) are (Phi+, Psi+, Psi-, Phi-). A Werner pair of fidelity
F is (F, q, q, q) with q = (1-F)/3: with probability 1-F one of X, Y, Z on one half.

Building blocks (each a node program fragment; resources and times are kept by the runtime):

- :func:`pair_between`: an EPR pair between any two nodes: one pair per link of the shortest path,
  entanglement swapping (:func:`entanglement_swap`) at every intermediate node, and one
  Pauli-frame correction at the far end once all swap outcomes have arrived;
- :func:`teleport` (TeleData): Bell measurement at the source, two bits, X/Z correction at the
  destination, and the state moved from the communication qubit into a free data qubit;
- :func:`cat_entangle` / :func:`cat_disentangle` and :func:`remote_gate` (TeleGate): the control
  shared into a communication qubit of the target node, a burst of gates there that are
  block-diagonal in the control, then the share measured in the X basis and Z-corrected back;
- :func:`purify` (BBPSSW / DEJMPS, one recurrence round on two pairs): local rotations (DEJMPS),
  bilateral CNOT, both sides measure the sacrificed pair and exchange the outcomes; the round
  succeeds when they agree. Success is post-selected, which a single circuit cannot do for every
  shot: in a network run, purification therefore enters through :func:`purified_pair`, which
  draws the time and the raw pairs of repeated attempts from the protocol's success probability
  and delivers the exact Bell-diagonal state the protocol outputs on success.
"""

from __future__ import annotations

from functools import reduce
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .. import validation
from ..errors import OptionError
from .runtime import Bit, Qubit, Runtime
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


# ---- building blocks ----------------------------------------------------------------------------

def bell_measure(rt: Runtime, node: str, first: Qubit, second: Qubit) -> tuple[Bit, Bit]:
    """Bell measurement at ``node`` (CX first->second, H on first, measure both); both qubits
    are freed. Returns (z_bit, x_bit): the partner of ``second`` needs X^x Z^z."""
    rt.gate(node, "cx", (first, second))
    rt.gate(node, "h", (first,))
    z_bit = rt.measure(node, first)
    x_bit = rt.measure(node, second)
    rt.release(second)
    rt.release(first)
    return z_bit, x_bit


def entanglement_swap(rt: Runtime, node: str, left: Qubit, right: Qubit) -> tuple[Bit, Bit]:
    """Bell measurement at ``node`` of ``left`` (half of a pair to one side) and ``right`` (half
    of a pair to the other side); both are freed. Returns (x_bit, z_bit): the far end of the
    joined pair needs X^x Z^z."""
    z_bit, x_bit = bell_measure(rt, node, left, right)
    return x_bit, z_bit


def pair_between(rt: Runtime, a: str, b: str) -> tuple[Qubit, Qubit]:
    """An EPR pair between nodes ``a`` and ``b`` (half on ``a`` first), swapped along the
    shortest path; the Pauli frame of all swaps is corrected at ``b`` (each intermediate node
    sends its two bits to ``b``)."""
    path = rt.network.path(a, b)
    if len(path) < 2:
        raise ValueError(f"an EPR pair needs two different nodes, got {a!r} twice")
    pairs = [rt.epr(x, y) for x, y in zip(path, path[1:])]
    x_bits: list[Bit] = []
    z_bits: list[Bit] = []
    for node, (_, left), (right, _) in zip(path[1:-1], pairs, pairs[1:]):
        x, z = entanglement_swap(rt, node, left, right)
        rt.send(node, b, (x, z))
        x_bits.append(x)
        z_bits.append(z)
    near, far = pairs[0][0], pairs[-1][1]
    rt.correct(b, "x", far, x_bits)
    rt.correct(b, "z", far, z_bits)
    return near, far


def teleport(rt: Runtime, qubit: Qubit, dst: str) -> Qubit:
    """TeleData: move the state of data qubit ``qubit`` to a free data qubit of node ``dst``
    (returned). The source qubit is measured, reset and freed."""
    src = qubit.node
    a, b = pair_between(rt, src, dst)
    z_bit, x_bit = bell_measure(rt, src, qubit, a)
    rt.send(src, dst, (z_bit, x_bit))
    rt.correct(dst, "x", b, (x_bit,))
    rt.correct(dst, "z", b, (z_bit,))
    target = rt.data_qubit(dst)
    rt.gate(dst, "cx", (b, target))   # move into the empty (|0>) memory: two CNOTs
    rt.gate(dst, "cx", (target, b))
    rt.release(b, reset=False)        # b is back in |0>
    return target


def cat_entangle(rt: Runtime, control: Qubit, a: Qubit, b: Qubit) -> None:
    """Share ``control`` into ``b`` (the far half of pair (a, b); ``a`` on the control's node):
    afterwards a|0>|00> + b|1>|11> on (control, b). ``a`` is measured and freed; one bit."""
    src, dst = control.node, b.node
    rt.gate(src, "cx", (control, a))
    bit = rt.measure(src, a)
    rt.release(a)
    rt.send(src, dst, (bit,))
    rt.correct(dst, "x", b, (bit,))


def cat_disentangle(rt: Runtime, control: Qubit, share: Qubit) -> None:
    """Undo :func:`cat_entangle`: ``share`` measured in the X basis and freed, one bit back,
    Z on ``control`` when it reads 1."""
    src, dst = share.node, control.node
    rt.gate(src, "h", (share,))
    bit = rt.measure(src, share)
    rt.release(share)
    rt.send(src, dst, (bit,))
    rt.correct(dst, "z", control, (bit,))


def remote_gate(rt: Runtime, control: Qubit, node: str, body: Callable[[Qubit], None]) -> None:
    """TeleGate burst: one EPR pair between the control's node and ``node``; ``body(share)``
    issues gates on ``node`` with ``share`` standing in for ``control`` (they must be
    block-diagonal in it: CX, CZ, CP, controlled-U, ...)."""
    a, b = pair_between(rt, control.node, node)
    cat_entangle(rt, control, a, b)
    body(b)
    cat_disentangle(rt, control, b)


def purify(rt: Runtime, keep: tuple[Qubit, Qubit], sacrifice: tuple[Qubit, Qubit],
           protocol: str = "bbpssw") -> tuple[Bit, Bit]:
    """One recurrence round on pairs ``keep`` and ``sacrifice`` (each (half on node A, half on
    node B)). Returns the two outcome bits, known at both nodes; the round succeeds when they are
    equal (post-selection is the caller's: compare the bits in the counts). The sacrificed
    pair is freed.

    BBPSSW is the bilateral CNOT (its Werner twirl is not applied: on Werner inputs the output's
    fidelity is already the formula's). DEJMPS first rotates Rx(pi/2) on A's halves and
    Rx(-pi/2) on B's.
    """
    if protocol not in PURIFICATION_PROTOCOLS:
        raise OptionError(f"unknown purification protocol {protocol!r}")
    (ka, kb), (sa, sb) = keep, sacrifice
    na, nb = ka.node, kb.node
    if protocol == "dejmps":
        for q in (ka, sa):
            rt.gate(na, "rx", (q,), (np.pi / 2,))
        for q in (kb, sb):
            rt.gate(nb, "rx", (q,), (-np.pi / 2,))
    rt.gate(na, "cx", (ka, sa))
    rt.gate(nb, "cx", (kb, sb))
    bit_a = rt.measure(na, sa)
    bit_b = rt.measure(nb, sb)
    rt.release(sa)
    rt.release(sb)
    rt.send(na, nb, (bit_a,))
    rt.send(nb, na, (bit_b,))
    return bit_a, bit_b
