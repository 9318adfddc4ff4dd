"""The network runtime: node programs on a shared, timed machine, recorded as a noisy circuit.

Node programs (the protocols in :mod:`qsim_dist.network.protocols`, driven by
:mod:`qsim_dist.network.lowering`, and the generator programs of :mod:`qsim_dist.network.nodes`,
driven by its discrete-event loop) talk to a :class:`Runtime` only through node operations:

- ``gate(node, name, qubits)``, ``measure(node, qubit)``, ``reset``/``release`` of a qubit,
- ``correct(node, gate, qubit, bits)``: a Pauli correction that fires when the XOR of classical
  ``bits`` is 1 (the node must hold those bits: measured there, or received),
- ``send(src, dst, bits)``: a classical message, which arrives after the path's latency,
- ``epr(a, b)``: ask the link between neighbours ``a`` and ``b`` for an EPR pair.

Program code never sees amplitudes, measurement outcomes or random numbers: it names qubits by
:class:`Qubit` handles and classical bits by :class:`Bit` handles, and a correction names the bits
it depends on. The runtime turns every operation into timestamped events and into instructions of
one circuit over data and communication qubits, with noise inserted as :class:`NoiseOp`; the
engine's backends then simulate that circuit (by trajectories), so the same node programs run
unchanged whatever holds the state.

Timing is discrete-event and causal (every operation also takes ``at``, the earliest time it may
start: a node program's time when it issues the operation):

- every physical qubit has the time its last operation ended (``Qubit.ready``); an operation starts
  when all its qubits are ready and every classical bit it depends on has arrived at its node, and
  lasts the node's ``gate_time`` (gates) or ``measure_time`` (measurement; the reset that frees a
  measured communication qubit is part of it). Operations on disjoint qubits of one node overlap;
  every node keeps a clock (the end of its last operation), and the makespan is the latest clock;
- a message leaves when its bits are known at the sender and arrives after the sum of the link
  latencies along the shortest path;
- an EPR pair needs one free communication qubit at each end of its link; generation starts as
  soon as both are free (pairs are made ahead of use when capacity allows) and takes a random
  number of attempts, geometric with the link's per-attempt success probability (times the
  transduction efficiency), each lasting ``attempt_time``. A node with ``comm_qubits = c`` holds
  at most ``c`` live halves at once: that capacity is what limits concurrency. With
  purification by ``r`` rounds a pair is distilled from raw pairs made one after the other, and
  its generation holds ``r + 1`` communication qubits at each end until it is delivered in one
  of them; every round (failed ones too) ends with both ends sending their outcome bit, and its
  success is known only after that one-way latency;
- a live qubit (a data qubit holding a logical qubit, or a communication qubit holding half a
  pair) that waits ``t`` between two operations gets ``thermal_relaxation(T1, T2, t)`` of its node
  for exactly that wait, inserted just before its next operation.

Noise: an EPR pair is ``H``, ``CX`` on fresh communication qubits followed by its link's Werner
noise (a Pauli channel, X, Y, Z with probability ``(1-F)/3`` each on the second half) or, with
purification, the Bell-diagonal state the purification protocol delivers
(:func:`qsim_dist.network.physics.purified_pair`). Each local gate is followed by the node's
depolarizing ``gate_error_1q`` (one qubit) or ``gate_error_2q`` (over all its qubits, for gates on
two or more), each measured qubit has the node's symmetric ``readout_error``. ``ideal=True``
drops every noise source and every duration (F = 1, zero times and latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from ..circuit import Circuit, Condition, Instruction
from ..errors import OptionError
from .. import noise
from ..noise import NoiseOp, NoisyCircuit, ReadoutError
from .physics import (check_purification, generation_time, purification_comm_qubits,
                      purified_pair, werner_pauli_probabilities)
from .program import ProgramError
from .topology import Network

#: at most this many bits in one parity-conditioned correction are enumerated as conditions
#: (2^(k-1) conditioned copies, exactly one of which fires); longer ones are applied bit by bit
MAX_PARITY_BITS = 6


@lru_cache(maxsize=4096)
def channel(kind: str, *args) -> noise.Channel:
    """``noise.<kind>(*args)``, built once per distinct arguments (building a channel checks
    and classifies its Kraus operators, which costs far more than applying it)."""
    if kind == "werner":
        q = (1.0 - args[0]) / 3.0
        return noise.pauli_channel({"X": q, "Y": q, "Z": q})
    if kind == "bell_diagonal":
        return noise.pauli_channel(dict(zip("XYZ", args)))
    return getattr(noise, kind)(*args)


@dataclass(eq=False)
class Qubit:
    """A physical qubit: ``index`` in the lowered circuit, on ``node``; ``kind`` "data" or "comm"."""

    index: int
    node: str
    kind: str
    ready: float = 0.0      # when its last operation ended
    last: float = 0.0       # up to when its idle noise has been applied
    live: bool = False      # holds quantum information (decoheres while it waits)
    measured: "Bit | None" = None   # the bit of its last protocol measurement, until released
    freed: bool = False     # released: this handle is dead (the next user of the physical
    #                         qubit gets a new handle, so a stale one can be told apart)


@dataclass(frozen=True)
class Bit:
    """A classical bit: clbit ``index`` of the lowered circuit."""

    index: int


@dataclass(frozen=True)
class Event:
    """One timed thing for the schedule and its Gantt chart.

    ``kind``: "gate", "measure", "epr" (generation on a link, one event per end), "message"
    (``node`` sends to ``peer``; ``end`` is the arrival), "wait" (a live qubit idle).
    """

    node: str
    kind: str
    label: str
    start: float
    end: float
    qubits: tuple[int, ...] = ()
    peer: str | None = None


@dataclass
class LinkUse:
    """Per-link bookkeeping of one schedule."""

    pairs: int = 0            # pairs delivered to protocols
    generated: int = 0        # raw pairs made (2 per purification attempt and round)
    discarded: int = 0        # raw pairs thrown away by failed purification rounds
    attempts: int = 0         # raw generation attempts
    busy_s: float = 0.0       # time spent generating
    rounds: int = 0           # purification rounds run, failed ones included (2 bits each)


@dataclass
class _CommSlot:
    index: int | None = None  # physical qubit index, given on first use
    free_at: float = 0.0
    busy: bool = False


@dataclass
class Stats:
    """Resources and times of one schedule."""

    classical_bits: int = 0
    messages: int = 0
    links: dict[str, LinkUse] = field(default_factory=dict)
    idle_s: dict[str, float] = field(default_factory=dict)   # live-qubit idle seconds per node

    @property
    def epr_generated(self) -> int:
        return sum(u.generated for u in self.links.values())

    @property
    def epr_discarded(self) -> int:
        return sum(u.discarded for u in self.links.values())

    @property
    def epr_consumed(self) -> int:
        return self.epr_generated - self.epr_discarded


def link_name(a: str, b: str) -> str:
    return f"{a}-{b}"


class Runtime:
    """One execution of node programs on ``network``: timing, resources and the lowered circuit.

    ``rng`` draws generation attempts (and purification outcomes); it never sees quantum state.
    ``num_clbits`` reserves clbits 0..num_clbits-1 (the source circuit's); protocol bits follow.
    ``purification``: None, or ``(protocol, rounds)`` with protocol "bbpssw" or "dejmps": every
    link pair is then distilled by that many recurrence rounds before delivery; each end of
    every link must have ``rounds + 1`` communication qubits (:class:`OptionError` otherwise),
    since a round keeps one pair while the next is made.
    """

    def __init__(self, network: Network, rng: np.random.Generator | None = None, *,
                 ideal: bool = False, num_clbits: int = 0,
                 purification: tuple[str, int] | None = None):
        if not isinstance(network, Network):
            raise OptionError(f"network must be a Network (load_network, network_from_dict), "
                              f"got {type(network).__name__}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise OptionError(f"rng must be a numpy.random.Generator or None, "
                              f"got {type(rng).__name__}")
        self.network = network
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.ideal = ideal
        self.purification = None if ideal else purification
        self.ops: list[Instruction | NoiseOp] = []
        self.readout: dict[int, np.ndarray] = {}
        self.events: list[Event] = []
        self.stats = Stats(idle_s={n: 0.0 for n in network.nodes})
        self.clock: dict[str, float] = {n: 0.0 for n in network.nodes}
        self.num_qubits = 0
        self.num_clbits = num_clbits
        self.qubit_node: list[str] = []
        self._bit_at: dict[int, dict[str, float]] = {}   # clbit -> node -> time known there
        self._comm = {n: [_CommSlot() for _ in range(node.comm_qubits)]
                      for n, node in network.nodes.items()}
        self._free_data: dict[str, list[Qubit]] = {n: [] for n in network.nodes}
        self._qubits: list[Qubit] = []
        self._scratch = 0   # comm qubits a distillation borrows besides the pair's own
        if self.purification is not None:
            if not isinstance(self.purification, tuple) or len(self.purification) != 2:
                raise OptionError(f"purification must be (protocol, rounds), "
                                  f"got {self.purification!r}")
            self._scratch = self._check_purification(*self.purification)

    def _check_purification(self, protocol: str, rounds: int) -> int:
        """Refuse purification that some link end cannot hold; return the communication qubits
        a distillation borrows at each end besides the one the pair is delivered in."""
        need = purification_comm_qubits(check_purification(protocol, rounds))
        for link in self.network.links:
            for end in link.ends:
                have = self.network.nodes[end].comm_qubits
                if have < need:
                    raise OptionError(
                        f"purification {protocol}:{rounds} needs {need} communication qubits at "
                        f"each end of a link at once (a round keeps one pair while the next is "
                        f"made), but node {end!r} has comm_qubits = {have}")
        return need - 1

    # ---- qubits and bits ----------------------------------------------------------------
    def _new_index(self, node: str) -> int:
        self.num_qubits += 1
        self.qubit_node.append(node)
        return self.num_qubits - 1

    def data_qubit(self, node: str, at: float = 0.0) -> Qubit:
        """A data qubit of ``node`` in |0> (a freed slot when there is one), live from time
        ``at`` (or from when the slot was freed, if later) on."""
        spare = self._free_data[node]
        if spare:
            q = self._reissue(spare.pop())
        else:
            q = Qubit(self._new_index(node), node, "data")
            self._qubits.append(q)
        q.live = True
        q.ready = q.last = max(q.ready, at)
        return q

    def _reissue(self, old: Qubit) -> Qubit:
        """A new handle for the freed physical qubit ``old`` (same index, node and timing)."""
        q = Qubit(old.index, old.node, old.kind, ready=old.ready, last=old.last)
        self._qubits[old.index] = q
        return q

    def holds(self, q: Qubit) -> bool:
        """True when ``q`` is a live handle of this runtime (not freed, not another run's)."""
        return (0 <= q.index < len(self._qubits) and self._qubits[q.index] is q
                and not q.freed)

    def data_qubits_in_use(self, node: str) -> int:
        """Data qubits of ``node`` handed out and not released."""
        return sum(1 for q in self._qubits if q.node == node and q.kind == "data") - \
            len(self._free_data[node])

    def free_comm_qubits(self, node: str) -> int:
        """Communication qubits of ``node`` free for a new pair now: those not holding a pair
        half, less the ones a purified pair borrows while it is distilled (all but the one it is
        delivered in), so that a pair can start when this is at least 1."""
        return max(0, sum(1 for slot in self._comm[node] if not slot.busy) - self._scratch)

    def new_bit(self) -> Bit:
        self.num_clbits += 1
        return Bit(self.num_clbits - 1)

    def bit_time(self, bit: Bit, node: str) -> float | None:
        """When ``bit`` is known at ``node`` (None if it never gets there)."""
        return self._bit_at.get(bit.index, {}).get(node)

    def release(self, q: Qubit, reset: bool = True) -> None:
        """Free ``q`` (after its last use): reset it to |0> (unless it already is), and return a
        communication qubit to its node's pool or a data qubit to the spare data slots."""
        if reset and q.measured is not None:
            # measured: it is in the basis state its (faithful) bit recorded; flipping it back
            # is a classically controlled X, not a random step for the trajectories
            self.ops.append(Instruction("x", (q.index,), (), (), Condition((q.measured.index,), 1)))
        elif reset:
            self.ops.append(Instruction("reset", (q.index,)))
        q.live = False
        q.measured = None
        q.freed = True
        if q.kind == "comm":
            for slot in self._comm[q.node]:
                if slot.index == q.index:
                    slot.busy, slot.free_at = False, q.ready
                    return
        else:
            self._free_data[q.node].append(q)

    # ---- timing helpers -------------------------------------------------------------------
    def _node(self, name: str):
        return self.network.nodes[name]

    def _duration(self, node: str, what: str) -> float:
        if self.ideal:
            return 0.0
        n = self._node(node)
        return n.measure_time if what == "measure" else n.gate_time

    def _idle(self, q: Qubit, t: float) -> None:
        """Apply the idle noise of ``q`` up to time ``t`` (exactly the time it waited)."""
        wait = t - q.last
        if q.live and wait > 0:
            node = self._node(q.node)
            self.stats.idle_s[q.node] += wait
            self.events.append(Event(q.node, "wait", "wait", q.last, t, (q.index,)))
            if not self.ideal and (math.isfinite(node.t1) or math.isfinite(node.t2)):
                self.ops.append(NoiseOp(channel("thermal_relaxation", node.t1, node.t2, wait),
                                            (q.index,)))
        q.last = max(q.last, t)

    def _bits_ready(self, node: str, bits: Sequence[Bit]) -> float:
        t = 0.0
        for b in bits:
            at = self.bit_time(b, node)
            if at is None:
                raise ProgramError(f"node {node!r} uses clbit {b.index}, which was neither "
                                   f"measured there nor sent to it")
            t = max(t, at)
        return t

    def _check_local(self, node: str, qubits: Sequence[Qubit], what: str) -> None:
        for q in qubits:
            if q.node != node:
                raise ProgramError(f"{what} on node {node!r} touches qubit {q.index} of "
                                   f"node {q.node!r}")

    def _finish(self, node: str, qubits: Sequence[Qubit], end: float) -> None:
        for q in qubits:
            q.ready = q.last = end
        self.clock[node] = max(self.clock[node], end)

    # ---- node operations ------------------------------------------------------------------
    def gate(self, node: str, name: str, qubits: Sequence[Qubit], params: Sequence[float] = (),
             condition: Condition | None = None, *, noisy: bool = True, at: float = 0.0) -> float:
        """A local gate (``condition`` on clbits of the lowered circuit, known at ``node``),
        starting no earlier than ``at``; returns its end time."""
        bits = [Bit(c) for c in condition.clbits] if condition is not None else []
        return self._timed_gate(node, name, qubits, params, [condition], bits, noisy, at)

    def correct(self, node: str, name: str, qubit: Qubit, bits: Sequence[Bit],
                at: float = 0.0) -> float:
        """Apply gate ``name`` to ``qubit`` when the XOR of ``bits`` is 1 (a Pauli-frame
        correction: the node computes the parity classically, then applies one gate)."""
        bits = list(bits)
        if not bits:
            return max(qubit.ready, at)
        clbits = tuple(b.index for b in bits)
        if len(bits) <= MAX_PARITY_BITS:
            conditions = [Condition(clbits, v) for v in range(1 << len(bits))
                          if bin(v).count("1") % 2 == 1]
        else:  # X^b1 X^b2 ... = X^(b1 xor b2 ...): same state, one gate error per fired bit
            conditions = [Condition((c,), 1) for c in clbits]
        return self._timed_gate(node, name, [qubit], (), conditions, bits, True, at)

    def _timed_gate(self, node, name, qubits, params, conditions, bits, noisy,
                    at: float = 0.0) -> float:
        self._check_local(node, qubits, f"gate {name}")
        start = max([q.ready for q in qubits] + [self._bits_ready(node, bits), at])
        for q in qubits:
            self._idle(q, start)
        end = start + self._duration(node, "gate")
        idx = tuple(q.index for q in qubits)
        n = self._node(node)
        p = n.gate_error_1q if len(idx) == 1 else n.gate_error_2q
        error = channel("depolarizing", p, len(idx)) if noisy and not self.ideal and p > 0 else None
        for cond in conditions:
            self.ops.append(Instruction(name, idx, tuple(float(x) for x in params), (), cond))
            if error is not None:
                self.ops.append(NoiseOp(error, idx, cond))
        self.events.append(Event(node, "gate", name, start, end, idx))
        self._finish(node, qubits, end)
        return end

    def measure(self, node: str, qubit: Qubit, bit: Bit | None = None, at: float = 0.0) -> Bit:
        """Measure ``qubit`` (Z basis) into ``bit``, no earlier than ``at``; without ``bit``, a
        protocol measurement into a new bit, after which ``qubit`` is to be released."""
        self._check_local(node, [qubit], "measure")
        protocol = bit is None
        bit = bit if bit is not None else self.new_bit()
        start = max(qubit.ready, at)
        self._idle(qubit, start)
        end = start + self._duration(node, "measure")
        p = 0.0 if self.ideal else self._node(node).readout_error
        if protocol and p > 0:
            # the qubit is freed right after: a flip before the measurement reads the same as a
            # flip of the recorded bit, and keeps bit and qubit in agreement (see release)
            self.ops.append(NoiseOp(channel("bit_flip", p), (qubit.index,)))
        self.ops.append(Instruction("measure", (qubit.index,), (), (bit.index,)))
        if protocol:
            qubit.measured = bit
        elif p > 0:
            self.readout[qubit.index] = ReadoutError.from_flips(p, p).matrix
        self._bit_at[bit.index] = {node: end}
        self.events.append(Event(node, "measure", "measure", start, end, (qubit.index,)))
        self._finish(node, [qubit], end)
        return bit

    def reset(self, node: str, qubit: Qubit, at: float = 0.0) -> float:
        """Reset ``qubit`` to |0> (a source-circuit reset: the qubit stays live) no earlier than
        ``at``; lasts the node's ``measure_time``. Returns its end time."""
        self._check_local(node, [qubit], "reset")
        start = max(qubit.ready, at)
        self._idle(qubit, start)
        end = start + self._duration(node, "measure")
        self.ops.append(Instruction("reset", (qubit.index,)))
        self.events.append(Event(node, "measure", "reset", start, end, (qubit.index,)))
        self._finish(node, [qubit], end)
        return end

    def send(self, src: str, dst: str, bits: Sequence[Bit], at: float = 0.0,
             values: int = 0) -> float:
        """Send ``bits`` (and ``values`` classical bits the sender knows, e.g. a herald) from
        ``src`` to ``dst`` once they are known at ``src`` and no earlier than ``at``; return the
        arrival time."""
        bits = list(bits)
        leave = max(self._bits_ready(src, bits), at)
        latency = 0.0 if self.ideal else self.network.latency(src, dst)
        arrive = leave + latency
        for b in bits:
            known = self._bit_at[b.index]
            known[dst] = min(known.get(dst, math.inf), arrive)
        self.stats.classical_bits += len(bits) + values
        self.stats.messages += 1
        label = ",".join([f"c{b.index}" for b in bits] + ["value"] * values)
        self.events.append(Event(src, "message", label, leave,
                                 arrive, peer=dst))
        return arrive

    def _comm_qubit(self, node: str) -> tuple[_CommSlot, Qubit]:
        slots = [s for s in self._comm[node] if not s.busy]
        if not slots:
            have = len(self._comm[node])
            raise ProgramError(f"node {node!r} needs more communication qubits than its "
                               f"{have} at once" if have else
                               f"node {node!r} has no communication qubits")
        slot = min(slots, key=lambda s: s.free_at)
        if slot.index is None:
            slot.index = self._new_index(node)
            self._qubits.append(Qubit(slot.index, node, "comm"))
        slot.busy = True
        q = self._qubits[slot.index]   # qubit i is self._qubits[i]: both append in index order
        if q.freed:
            q = self._reissue(q)
        q.ready = q.last = max(q.ready, slot.free_at)
        return slot, q

    def _scratch_slots(self, node: str) -> list[_CommSlot]:
        """The free communication slots of ``node`` a purified pair borrows while it is
        distilled, besides the one it is delivered in (none without purification): the ones
        free earliest after the pair's own, which :meth:`_comm_qubit` picks first."""
        if not self._scratch:
            return []
        free = sorted((s for s in self._comm[node] if not s.busy), key=lambda s: s.free_at)
        if len(free) < self._scratch + 1:
            protocol, rounds = self.purification
            raise ProgramError(
                f"node {node!r} needs {self._scratch + 1} free communication qubits at once to "
                f"distil a pair ({protocol}:{rounds}), but only {len(free)} of its "
                f"{len(self._comm[node])} are free (the others hold pair halves)")
        return free[1:self._scratch + 1]

    def epr(self, a: str, b: str, at: float = 0.0) -> tuple[Qubit, Qubit]:
        """An EPR pair (|00>+|11>)/sqrt2 up to the link's noise between neighbours ``a`` and
        ``b``, generation starting no earlier than ``at``: the half on ``a`` first."""
        link = self.network.link(a, b)
        if link is None:
            raise ProgramError(f"nodes {a!r} and {b!r} share no link")
        scratch = [self._scratch_slots(n) for n in (a, b)]
        _, qa = self._comm_qubit(a)
        _, qb = self._comm_qubit(b)
        start = max([qa.ready, qb.ready, at] + [s.free_at for slots in scratch for s in slots])
        use = self.stats.links.setdefault(link_name(*link.ends), LinkUse())
        if self.ideal:
            duration, probs, raw, discarded, attempts = 0.0, None, 1, 0, 1
        elif self.purification is not None:
            protocol, rounds = self.purification
            latency = link.latency
            local = 2 * max(self._duration(a, "gate"), self._duration(b, "gate")) + max(
                self._duration(a, "measure"), self._duration(b, "measure"))
            made = purified_pair(link, protocol, rounds, self.rng, local_time=local + latency)
            duration, probs, raw, discarded, attempts = made[:5]
            # each round, failed or not, ends with both sides sending their outcome bit
            self.stats.classical_bits += 2 * made.round_attempts
            self.stats.messages += 2 * made.round_attempts
            use.rounds += made.round_attempts
        else:
            attempts, duration = generation_time(link, self.rng)
            probs, raw, discarded = werner_pauli_probabilities(link.fidelity), 1, 0
        end = start + duration
        for slots in scratch:      # borrowed for the distillation, free again once it is over
            for slot in slots:
                slot.free_at = max(slot.free_at, end)
        for q in (qa, qb):
            q.ready = q.last = end
            q.live = True
        self.ops.append(Instruction("h", (qa.index,)))
        self.ops.append(Instruction("cx", (qa.index, qb.index)))
        if probs is not None and probs[0] < 1.0:
            self.ops.append(NoiseOp(channel("bell_diagonal", *map(float, probs[1:])),
                                    (qb.index,)))
        use.pairs += 1
        use.generated += raw
        use.discarded += discarded
        use.attempts += attempts
        use.busy_s += duration
        for node, peer, q in ((a, b, qa), (b, a, qb)):
            self.events.append(Event(node, "epr", f"EPR {link_name(a, b)}", start, end,
                                     (q.index,), peer))
            self.clock[node] = max(self.clock[node], end)
        return qa, qb

    # ---- the end ------------------------------------------------------------------------
    @property
    def makespan(self) -> float:
        return max(self.clock.values(), default=0.0)

    def finish(self) -> float:
        """Let every live qubit idle up to the makespan (its wait until the machine stops);
        return the makespan."""
        end = self.makespan
        for q in self._qubits:
            self._idle(q, end)
        return end

    def circuit(self, name: str = "lowered") -> Circuit:
        """The instructions recorded so far as a plain circuit (noise left out)."""
        return Circuit(self.num_qubits, self.num_clbits,
                       [op for op in self.ops if isinstance(op, Instruction)], name=name)

    def noisy_circuit(self, name: str = "lowered") -> NoisyCircuit:
        return NoisyCircuit(self.circuit(name), list(self.ops), dict(self.readout))
