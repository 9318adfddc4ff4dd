"""Gate-level protocols that read their outcomes: node-program fragments for ``yield from``.

Each protocol is the gates, measurements and messages that produce it, run on the node's
noisy gates, readout and memories, with its decisions taken on outcomes the program reads
(``node.read``): such programs run online (:mod:`qsim_dist.online`), shot by shot. Both ends of
a two-party protocol call the same function (or its two halves) with each other's name; they
take the same branch because each branches only on bits known at both ends.

- :func:`purify`: BBPSSW or DEJMPS recurrence, any number of rounds: both ends apply the
  local rotations (DEJMPS) and the bilateral CNOT, measure the sacrificed pair, exchange the
  outcomes and keep the pair when they agree; a failed round frees both pairs and makes them
  again (optionally up to ``max_attempts`` rounds). BBPSSW twirls each kept pair back to a
  Werner state (a random cyclic bilateral Clifford, the choice sent with the outcome), so its
  rounds follow :func:`~qsim_dist.network.physics.bbpssw`; ``twirl=False`` leaves it out.
- :func:`swap_heralded` / :func:`heralded_end`: entanglement swapping at a repeater whose
  Bell measurement succeeds with probability ``success`` (a linear-optics measurement: 1/2);
  failure is heralded to both ends, which free their halves and ask again.
- :func:`remote_rz_source` / :func:`remote_rz_target`: a repeat-until-success rotation
  Rz(theta) of a qubit of another module, made from an ancilla the source prepares (a module
  with non-Clifford gates serving one without): each attempt applies Rz(+-phi) with probability
  1/2 each; after a miss the next attempt uses twice the angle, so the target ends in exactly
  Rz(theta) after a geometric number of attempts (mean 2).
- :func:`parity_check`: the parity Z_a Z_b of two qubits of two modules, measured with one EPR
  pair and one bit each way, leaving the superposition within each parity intact (the
  distributed error-detection round of a repetition code across modules).

The analytic purification model (``purification=`` of :func:`~qsim_dist.dqc.run_nodes`) stays
the fast option: it is exactly this protocol when local gates, measurements and memories are
ideal, and it does not simulate the gates.
"""

from __future__ import annotations

import numpy as np

from .. import validation
from ..errors import OptionError
from .nodes import NodeView, cat_disentangle_recv, cat_disentangle_send, cat_entangle_recv, \
    cat_entangle_send
from .physics import PURIFICATION_PROTOCOLS
from .program import ProgramError

# the bilateral Clifford U (x) U* with U = S H cycles the Pauli errors of a Bell-diagonal
# pair X -> Z -> Y -> X; applied 0, 1 or 2 times at random it makes their weights equal
_TWIRL_FIRST = ("h", "s")      # on the link's first end: U = S H
_TWIRL_SECOND = ("h", "sdg")   # on the second: U* = S^dagger H


def _attempts(max_attempts, what: str) -> int | None:
    if max_attempts is None:
        return None
    return validation.count(max_attempts, f"{what}: max_attempts", ProgramError, minimum=1)


def _first_end(node: NodeView, peer: str) -> bool:
    link = node.network.link(node.name, peer)
    if link is None:
        raise ProgramError(f"node {node.name!r} purifies with {peer!r}, but they share no link")
    return link.ends[0] == node.name


# ---- purification -------------------------------------------------------------------------------

def purify(node: NodeView, peer: str, *, protocol: str = "bbpssw", rounds: int = 1,
           twirl: bool = True, max_attempts: int | None = None):
    """This node's half of a pair with neighbour ``peer`` distilled by ``rounds`` recurrence
    rounds of ``protocol`` ("bbpssw" or "dejmps"); ``peer`` runs the same call with this node's
    name. A level-r pair is made from two level-(r-1) pairs, one after the other (each end holds
    ``rounds + 1`` halves at once). Returns None when some round failed ``max_attempts`` times
    in a row (both ends give up together); by default it retries until it succeeds."""
    if protocol not in PURIFICATION_PROTOCOLS:
        raise OptionError(f"unknown purification protocol {protocol!r} (choose "
                          f"{', '.join(PURIFICATION_PROTOCOLS)})")
    rounds = validation.count(rounds, "purify: rounds", ProgramError)
    limit = _attempts(max_attempts, "purify")
    first = _first_end(node, peer)
    return (yield from _distil(node, peer, protocol, rounds, twirl and protocol == "bbpssw",
                               limit, first))


def _distil(node, peer, protocol, level, twirl, limit, first):
    if level == 0:
        return (yield node.epr(peer))
    tries = 0
    while limit is None or tries < limit:
        tries += 1
        keep = yield from _distil(node, peer, protocol, level - 1, twirl, limit, first)
        if keep is None:
            return None
        sacrifice = yield from _distil(node, peer, protocol, level - 1, twirl, limit, first)
        if sacrifice is None:
            node.free(keep)
            return None
        if protocol == "dejmps":
            angle = np.pi / 2 if first else -np.pi / 2
            node.gate("rx", keep, params=(angle,))
            node.gate("rx", sacrifice, params=(angle,))
        node.gate("cx", keep, sacrifice)
        mine = node.measure(sacrifice)
        node.free(sacrifice)
        choice = ()
        if twirl and first:    # the first end draws the twirl and sends it with its outcome
            k = int(node.random() * 3)
            choice = (k & 1, k >> 1)
        node.send(peer, mine, *choice)
        message = yield node.recv(peer)
        values = yield node.read(mine, message)
        if values[0] == values[1]:
            if twirl:
                k = (values[2] | values[3] << 1) if not first else choice[0] | choice[1] << 1
                for _ in range(k):
                    for name in (_TWIRL_FIRST if first else _TWIRL_SECOND):
                        node.gate(name, keep)
            return keep
        node.free(keep)
    return None


# ---- heralded entanglement swapping ------------------------------------------------------------

def swap_heralded(node: NodeView, left: str, right: str, *, success: float = 0.5,
                  max_attempts: int | None = None):
    """At a repeater: a pair with ``left`` and one with ``right``, a Bell measurement that
    succeeds with probability ``success`` (the node's coin), and the herald to both ends —
    with the outcome (x, z) to ``right``, which corrects (:func:`heralded_end` with
    ``far=True``). A failed measurement loses both pairs; both ends ask again. Returns the
    attempts made (None when ``max_attempts`` failed)."""
    success = validation.probability(success, "swap_heralded: success", ProgramError)
    limit = _attempts(max_attempts, "swap_heralded")
    tries = 0
    while limit is None or tries < limit:
        tries += 1
        l, r = yield [node.epr(left), node.epr(right)]
        ok = node.random() < success
        if ok:
            node.gate("cx", l, r)
            node.gate("h", l)
            z = node.measure(l)
            x = node.measure(r)
        node.free(l)
        node.free(r)
        last = limit is not None and tries == limit
        node.send(left, int(ok), int(last))
        if ok:
            node.send(right, 1, int(last), x, z)
            return tries
        node.send(right, 0, int(last))
    return None


def heralded_end(node: NodeView, repeater: str, *, far: bool):
    """An end of :func:`swap_heralded`: a pair with ``repeater`` per attempt, until its herald
    says the swap succeeded; the ``far`` end (the repeater's ``right``) applies X^x Z^z.
    Returns the half of the joined pair (None when the repeater gave up)."""
    while True:
        half = yield node.epr(repeater)
        message = yield node.recv(repeater)
        ok, last = yield node.read(*message[:2])
        if ok:
            if far:
                x, z = message[2:]
                node.correct("x", half, bits=x)
                node.correct("z", half, bits=z)
            return half
        node.free(half)
        if last:
            return None


# ---- repeat-until-success remote rotation -------------------------------------------------------

def remote_rz_source(node: NodeView, peer: str, theta: float, *,
                     max_attempts: int | None = None):
    """The serving module's half of a repeat-until-success Rz(``theta``) on a qubit of
    neighbour ``peer`` (which runs :func:`remote_rz_target`): per attempt an ancilla in
    cos(a)|0> + i sin(a)|1>, shared into ``peer`` where it controls a CZ on the target, measured
    in the X basis; outcome 0 applied exp(iaZ), 1 applied exp(-iaZ), and the next attempt
    doubles a to undo it. Returns the attempts (None after ``max_attempts`` misses; the target
    then holds Rz(-(2^n - 1) theta) of the input)."""
    theta = validation.finite(theta, "remote_rz_source: theta", ProgramError)
    limit = _attempts(max_attempts, "remote_rz_source")
    a = -theta / 2.0                       # Rz(theta) = exp(-i theta Z / 2) = exp(i a Z)
    tries = 0
    while True:
        tries += 1
        ancilla = node.qubit()
        node.gate("rx", ancilla, params=(-2.0 * a,))
        yield from cat_entangle_send(node, ancilla, peer)
        yield from cat_disentangle_recv(node, ancilla, peer)
        node.gate("h", ancilla)
        m = node.measure(ancilla)
        node.free(ancilla)
        hit = (yield node.read(m)) == 0
        give_up = not hit and limit is not None and tries >= limit
        yield node.send(peer, int(hit or give_up))
        if hit:
            return tries
        if give_up:
            return None
        a *= 2.0


def remote_rz_target(node: NodeView, target, peer: str):
    """The served module's half of :func:`remote_rz_source`: per attempt the shared ancilla
    controls a CZ on ``target``; returns ``target`` once ``peer`` says it is done."""
    while True:
        share = yield from cat_entangle_recv(node, peer)
        node.gate("cz", share, target)
        yield from cat_disentangle_send(node, share, peer)
        (done,) = yield node.recv(peer)
        if done:
            return target


# ---- distributed parity check --------------------------------------------------------------------

def parity_check(node: NodeView, qubit, peer: str):
    """The parity of ``qubit`` here and the qubit ``peer`` passes to its own call (Z Z across the
    two modules), with one EPR pair: each end CNOTs its qubit onto its half, measures it and
    sends the bit; each returns the parity (0 or 1), and the two qubits keep their
    superposition within that parity."""
    half = yield node.epr(peer)
    node.gate("cx", qubit, half)
    mine = node.measure(half)
    node.free(half)
    node.send(peer, mine)
    (theirs,) = yield node.recv(peer)
    a, b = yield node.read(mine, theirs)
    return a ^ b
