"""Protocols of a distributed quantum computer, as node programs on a :class:`Runtime`. The
analytic formulas they obey (which the tests check the simulation against) are
:mod:`qsim_dist.network.physics`.

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
  shot: in a network run, purification therefore enters through
  :func:`~qsim_dist.network.physics.purified_pair`, which draws the time and the raw pairs of
  repeated attempts from the protocol's success probability and delivers the exact
  Bell-diagonal state the protocol outputs on success.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import OptionError
from .physics import PURIFICATION_PROTOCOLS
from .runtime import Bit, Qubit, Runtime

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
