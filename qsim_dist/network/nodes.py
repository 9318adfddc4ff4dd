"""Node programs: one Python generator per node, run together on a discrete-event runtime.

A node program is a generator function that takes a :class:`NodeView` (its view of the machine)::

    def alice(node):
        q = node.qubit()                       # a data qubit in |0>
        node.gate("u3", q, params=(1.1, 0.4, -0.7))
        a = yield node.epr("B")                # wait for this node's half of a pair with B
        node.gate("cx", q, a)
        node.gate("h", q)
        z = node.measure(q)                    # a Bit handle: the outcome is never seen
        x = node.measure(a)
        node.free(q)
        node.free(a)
        yield node.send("B", z, x)

    def bob(node):
        b = yield node.epr("A")
        z, x = yield node.recv("A")            # the bits of A's next message
        node.correct("x", b, x)                # X on b when bit x is 1
        node.correct("z", b, z)
        return b                               # output qubit(s): the report's fidelity

    report = run_nodes({"A": alice, "B": bob}, network, shots=1000, seed=1)

Every node operation returns a :class:`Future`; ``yield`` one (or a list of them) to wait until
it is done and get its value. What each operation does and when:

- ``qubit()`` (a data qubit in |0>, live from the program's time on), ``gate``, ``correct`` (a
  gate that fires on the XOR of classical bits), ``measure`` (a new :class:`Bit` handle; with
  ``output=True`` it is a result of the run, in the report's counts), ``reset``, ``free`` (a
  qubit goes back to the node's pool: a measured one is flipped back to |0> by its own bit) are
  local and never block: each starts as soon as its qubits are free and the bits it reads are
  known at the node, and no earlier than the program's time; operations on disjoint qubits
  overlap. Their futures are done at once (``yield`` one to wait until it *ends*).
- ``send(dst, *bits)``: a classical message; it leaves when its bits are known here and arrives
  after the latency of the path. It never blocks (``yield`` it to wait until it has left).
- ``recv(src)``: the next message from ``src`` (messages between two nodes arrive in the order
  they were sent); its value is the tuple of bits, available when the message arrives.
- ``epr(peer)``: ask the link to neighbour ``peer`` for an EPR pair; the k-th request of A
  towards B and the k-th of B towards A make one pair, generated once both have asked and both
  have a free communication qubit (a node's ``comm_qubits`` bound how many halves it holds; a
  pair waits until its program frees one). Its value is this node's half.
- ``wait(seconds)``: a pause of the program.

The programs run together as one discrete-event simulation: a priority queue of node wake-up
times; a program runs until it yields an unfinished future, then sleeps until the future is done
(a message arrives, a pair is delivered, an operation ends) and wakes at that time, which
becomes its program time. A live qubit that waits (for a message, a pair, another qubit) gets its
node's T1/T2 channel for exactly that wait. If every program left waits for something that
nobody will provide (both sides ``recv`` first, a pair the peer never asks for, no free
communication qubit), :class:`DeadlockError` says who waits for what.

Program code only holds :class:`~qsim_dist.network.runtime.Qubit` and
:class:`~qsim_dist.network.runtime.Bit` handles, never amplitudes or outcomes: the runtime
records every operation into the same :class:`~qsim_dist.network.runtime.Runtime` (clocks,
communication-qubit capacity, EPR generation, latency, idle noise) that lowers a
:class:`~qsim_dist.network.program.DistributedProgram`, so node programs run unchanged on every
backend of the engine, whatever holds the state. :func:`lower_nodes` gives the lowered circuit
and the schedule of one run; :func:`qsim_dist.network.run_nodes` the report over many shots.

Protocol halves for ``yield from``: :func:`teleport_send` / :func:`teleport_recv`,
:func:`swap_at` (a repeater joins two pairs), :func:`cat_entangle_send` /
:func:`cat_entangle_recv` and :func:`cat_disentangle_send` / :func:`cat_disentangle_recv`.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..circuit import Condition
from .program import ProgramError
from .runtime import Bit, Qubit, Runtime
from .topology import Network

NodeProgram = Callable[["NodeView"], Any]


class DeadlockError(ProgramError):
    """Node programs wait for each other and none can go on."""


class Future:
    """Something a node program asked for. ``done`` once its value is known; ``time`` is when
    it is done (the end of an operation, the arrival of a message, the delivery of a pair).
    ``yield`` it in the node program to wait until then and get ``value``."""

    __slots__ = ("what", "done", "time", "value", "_waiters")

    def __init__(self, what: str):
        self.what = what
        self.done = False
        self.time = 0.0
        self.value: Any = None
        self._waiters: list[_Process] = []

    def _complete(self, time: float, value: Any, sim: "_Simulation") -> None:
        self.done, self.time, self.value = True, time, value
        waiters, self._waiters = self._waiters, []
        for proc in waiters:
            sim.check_waiting(proc)

    def __repr__(self) -> str:
        state = f"done at {self.time:.3g} s" if self.done else "pending"
        return f"<Future {self.what}: {state}>"


def _done(what: str, time: float, value: Any = None) -> Future:
    f = Future(what)
    f.done, f.time, f.value = True, time, value
    return f


@dataclass
class _Process:
    node: "NodeView"
    gen: Any
    waiting: list[Future] = field(default_factory=list)
    many: bool = False           # yielded a list: resume with the list of values
    finished: bool = False
    result: Any = None


class NodeView:
    """One node's view of the machine, handed to its program. See the module docstring."""

    def __init__(self, name: str, sim: "_Simulation"):
        self.name = name
        self._sim = sim
        self._outputs: list[Bit] = []
        self._now = 0.0

    # ---- introspection ---------------------------------------------------------------------
    @property
    def network(self) -> Network:
        return self._sim.rt.network

    @property
    def now(self) -> float:
        """The program's time: when it last woke up (operations start no earlier)."""
        return self._now

    @property
    def neighbours(self) -> list[str]:
        return self.network.neighbours(self.name)

    # ---- local operations --------------------------------------------------------------------
    def qubit(self) -> Qubit:
        """A data qubit of this node in |0>, live (decohering) from the program's time on."""
        rt, node = self._sim.rt, self.network.nodes[self.name]
        if rt.data_qubits_in_use(self.name) >= node.data_qubits:
            raise ProgramError(f"node {self.name!r} has {node.data_qubits} data qubits, all in "
                               "use (free one first)")
        return rt.data_qubit(self.name, self.now)

    def gate(self, name: str, *qubits, params: Sequence[float] = (),
             condition: Bit | Future | Sequence[Bit | Future] | None = None) -> Future:
        """Gate ``name`` on ``qubits`` (of this node); with ``condition``, only when that bit
        (or the XOR of those bits, known here) is 1."""
        qs = [self._qubit(q) for q in qubits]
        if condition is not None:
            return self.correct(name, *qs, bits=condition, params=params)
        end = self._sim.rt.gate(self.name, name, qs, params, at=self.now)
        return _done(f"gate {name}", end)

    def correct(self, name: str, *qubits, bits: Bit | Future | Sequence[Bit | Future],
                params: Sequence[float] = ()) -> Future:
        """Gate ``name`` on ``qubits`` when the XOR of ``bits`` is 1 (a Pauli-frame correction,
        or any classically controlled gate)."""
        if isinstance(bits, (Bit, Future)):
            bits = [bits]
        bs = [self._bit(b) for b in bits]
        qs = [self._qubit(q) for q in qubits]
        rt = self._sim.rt
        if len(qs) == 1 and not params:
            end = rt.correct(self.name, name, qs[0], bs, at=self.now)
        else:
            if len(bs) != 1:
                raise ProgramError("a conditioned gate with parameters or several qubits reads "
                                   "one bit")
            end = rt.gate(self.name, name, qs, params, Condition((bs[0].index,), 1), at=self.now)
        return _done(f"correct {name}", end)

    def measure(self, qubit, *, output: bool = False) -> Future:
        """Measure ``qubit`` in the Z basis into a new bit (the future's value; also usable as
        the bit itself). ``output=True`` makes the bit a result of the run (the report's counts
        hold the output bits of all nodes, node by node in the order of the programs, each
        node's in program order; bit 0 rightmost)."""
        q = self._qubit(qubit)
        rt = self._sim.rt
        bit = rt.measure(self.name, q, at=self.now)
        if output:
            self._outputs.append(bit)
        return _done("measure", rt.bit_time(bit, self.name), bit)

    def reset(self, qubit) -> Future:
        """Reset ``qubit`` to |0> (it stays this program's)."""
        end = self._sim.rt.reset(self.name, self._qubit(qubit), at=self.now)
        return _done("reset", end)

    def free(self, qubit) -> None:
        """Give ``qubit`` back to the node (reset to |0>): a data qubit to ``qubit()``, a
        communication qubit to the next EPR pair."""
        q = self._qubit(qubit)
        if not q.live and q.measured is None:
            raise ProgramError(f"node {self.name!r} frees qubit {q.index} twice")
        self._sim.rt.release(q)
        if q.kind == "comm":
            self._sim.try_pairs()

    # ---- communication -------------------------------------------------------------------------
    def send(self, dst: str, *bits) -> Future:
        """Send ``bits`` (maybe none: a signal) to node ``dst``; the future is done when the
        message leaves, its value the arrival time."""
        if dst not in self.network.nodes or dst == self.name:
            raise ProgramError(f"node {self.name!r} sends to {dst!r}, which is not another node")
        bs = [self._bit(b) for b in bits]
        rt = self._sim.rt
        arrive = rt.send(self.name, dst, bs, at=self.now)
        leave = max([self.now] + [rt.bit_time(b, self.name) for b in bs])
        self._sim.deliver(self.name, dst, tuple(bs), arrive)
        return _done(f"send to {dst}", leave, arrive)

    def recv(self, src: str) -> Future:
        """The next message from ``src``: its value is the tuple of bits, done on arrival."""
        if src not in self.network.nodes or src == self.name:
            raise ProgramError(f"node {self.name!r} receives from {src!r}, which is not another "
                               "node")
        return self._sim.receive(self.name, src)

    def epr(self, peer: str) -> Future:
        """Ask the link to neighbour ``peer`` for an EPR pair; the value is this node's half."""
        if self.network.link(self.name, peer) is None:
            raise ProgramError(f"node {self.name!r} asks for an EPR pair with {peer!r}, but they "
                               "share no link")
        return self._sim.request_pair(self.name, peer, self.now)

    def wait(self, seconds: float) -> Future:
        """A pause: yield it to sleep ``seconds``."""
        if not seconds >= 0:
            raise ProgramError(f"wait needs a non-negative time, got {seconds!r}")
        return _done("wait", self.now + (0.0 if self._sim.rt.ideal else seconds))

    # ---- handles ---------------------------------------------------------------------------------
    def _resolved(self, value, what: str, when: str):
        """``value``, or the value of a finished Future (an unfinished one is a program error:
        the program must yield it first)."""
        if not isinstance(value, Future):
            return value
        if not value.done:
            raise ProgramError(f"node {self.name!r} uses {what} of {value.what} before {when}: "
                               "yield it first")
        return value.value

    def _qubit(self, q) -> Qubit:
        q = self._resolved(q, "the qubit", "it is delivered")
        if not isinstance(q, Qubit):
            raise ProgramError(f"node {self.name!r}: expected a qubit, got {q!r}")
        if q.node != self.name:
            raise ProgramError(f"node {self.name!r} touches qubit {q.index} of node {q.node!r}")
        return q

    def _bit(self, b) -> Bit:
        b = self._resolved(b, "the bits", "they arrive")
        if isinstance(b, tuple) and len(b) == 1:
            b = b[0]
        if not isinstance(b, Bit):
            raise ProgramError(f"node {self.name!r}: expected a classical bit, got {b!r}")
        return b

    def __repr__(self) -> str:
        return f"<NodeView {self.name} at {self.now:.3g} s>"


class _Simulation:
    """The event loop and the matching of messages and pair requests."""

    def __init__(self, rt: Runtime, programs: Mapping[str, NodeProgram]):
        self.rt = rt
        self.procs: dict[str, _Process] = {}
        self.heap: list[tuple[float, int, str, Any]] = []
        self.seq = itertools.count()
        self.mail: dict[tuple[str, str], list[tuple[tuple[Bit, ...], float]]] = {}
        self.inbox_waiting: dict[tuple[str, str], list[Future]] = {}
        self.requests: dict[tuple[str, str], list[tuple[float, Future]]] = {}
        self.matched: list[tuple[str, str, float, Future, Future]] = []
        for name, program in programs.items():
            if name not in rt.network.nodes:
                raise ProgramError(f"a program for {name!r}, which is not a node of the network")
            node = NodeView(name, self)
            gen = program(node)
            if not inspect.isgenerator(gen):
                raise ProgramError(f"the program of node {name!r} must be a generator function "
                                   "(it has no yield)")
            self.procs[name] = _Process(node, gen)
            self._wake(name, 0.0, None)

    # ---- scheduling -------------------------------------------------------------------------
    def _wake(self, name: str, time: float, value: Any) -> None:
        heapq.heappush(self.heap, (time, next(self.seq), name, value))

    def check_waiting(self, proc: _Process) -> None:
        if proc.waiting and all(f.done for f in proc.waiting):
            futures, proc.waiting = proc.waiting, []
            time = max([proc.node._now] + [f.time for f in futures])
            value = [f.value for f in futures] if proc.many else futures[0].value
            self._wake(proc.node.name, time, value)

    def run(self) -> None:
        while self.heap:
            time, _, name, value = heapq.heappop(self.heap)
            proc = self.procs[name]
            proc.node._now = max(proc.node._now, time)
            try:
                request = proc.gen.send(value)
            except StopIteration as stop:
                proc.finished, proc.result = True, stop.value
                continue
            many = isinstance(request, (list, tuple))
            futures = list(request) if many else [request]
            for f in futures:
                if not isinstance(f, Future):
                    raise ProgramError(f"node {name!r} yielded {f!r}: yield the futures its "
                                       "operations return (or a list of them)")
            proc.waiting, proc.many = futures, many
            if all(f.done for f in futures):
                self.check_waiting(proc)
            else:
                for f in futures:
                    if not f.done:
                        f._waiters.append(proc)
        self._check_end()

    def _check_end(self) -> None:
        blocked = [p for p in self.procs.values() if not p.finished]
        if blocked:
            waits = "; ".join(f"{p.node.name} waits for " +
                              ", ".join(f.what for f in p.waiting if not f.done)
                              for p in blocked)
            raise DeadlockError(f"deadlock: {waits} (and nothing else can happen)")
        for (a, b), pending in self.requests.items():
            if pending:
                raise DeadlockError(f"node {a!r} asked for an EPR pair with {b!r}, which {b!r} "
                                    "never asked for")
        for a, b, _, _, _ in self.matched:
            raise DeadlockError(f"an EPR pair between {a!r} and {b!r} was never generated: no "
                                "free communication qubit (free one after use)")

    # ---- messages -------------------------------------------------------------------------------
    def deliver(self, src: str, dst: str, bits: tuple[Bit, ...], arrive: float) -> None:
        waiting = self.inbox_waiting.get((src, dst))
        if waiting:
            waiting.pop(0)._complete(arrive, bits, self)
        else:
            self.mail.setdefault((src, dst), []).append((bits, arrive))

    def receive(self, dst: str, src: str) -> Future:
        box = self.mail.get((src, dst))
        if box:
            bits, arrive = box.pop(0)
            return _done(f"a message from {src}", arrive, bits)
        f = Future(f"a message from {src}")
        self.inbox_waiting.setdefault((src, dst), []).append(f)
        return f

    # ---- EPR pairs ------------------------------------------------------------------------------
    def request_pair(self, node: str, peer: str, now: float) -> Future:
        f = Future(f"an EPR pair with {peer}")
        theirs = self.requests.get((peer, node))
        if theirs:
            t_peer, f_peer = theirs.pop(0)
            a, b = self.rt.network.link(node, peer).ends
            fa, fb = (f, f_peer) if a == node else (f_peer, f)
            self.matched.append((a, b, max(now, t_peer), fa, fb))
            self.try_pairs()
        else:
            self.requests.setdefault((node, peer), []).append((now, f))
        return f

    def try_pairs(self) -> None:
        """Generate every matched pair whose ends both have a free communication qubit, in
        the order the pairs were matched."""
        still = []
        for a, b, at, fa, fb in self.matched:
            if self.rt.free_comm_qubits(a) and self.rt.free_comm_qubits(b):
                qa, qb = self.rt.epr(a, b, at=at)
                fa._complete(qa.ready, qa, self)
                fb._complete(qb.ready, qb, self)
            else:
                still.append((a, b, at, fa, fb))
        self.matched = still


@dataclass
class NodeRun:
    """One run of node programs on a :class:`Runtime`: the runtime (with its recorded ops,
    events and stats), what each program returned, its output qubits and output bits."""

    runtime: Runtime
    results: dict[str, Any]
    output_qubits: tuple[Qubit, ...]
    output_bits: tuple[Bit, ...]
    makespan: float


def _qubits_of(value: Any) -> list[Qubit]:
    if value is None:
        return []
    if isinstance(value, Future):
        return _qubits_of(value.value)
    if isinstance(value, Qubit):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return [q for v in value for q in _qubits_of(v)]
    return []


def run_on(rt: Runtime, programs: Mapping[str, NodeProgram]) -> NodeRun:
    """Run ``programs`` (node name -> generator function of a :class:`NodeView`) together on
    ``rt``; every live qubit then idles until the makespan. The output qubits are the qubits
    the programs return (node by node, in the order of ``programs``)."""
    sim = _Simulation(rt, programs)
    sim.run()
    makespan = rt.finish()
    results = {name: p.result for name, p in sim.procs.items()}
    qubits = tuple(q for name in sim.procs for q in _qubits_of(results[name]))
    if len({q.index for q in qubits}) != len(qubits):
        raise ProgramError("a qubit is returned twice by the node programs")
    bits = tuple(b for p in sim.procs.values() for b in p.node._outputs)
    return NodeRun(rt, results, qubits, bits, makespan)


def lower_nodes(programs: Mapping[str, NodeProgram], network: Network, *,
                rng: np.random.Generator | None = None, ideal: bool = False,
                purification: tuple[str, int] | None = None, name: str = "nodes"):
    """Run ``programs`` once on ``network`` (generation times from ``rng``) and return the
    :class:`~qsim_dist.network.lowering.Lowered` circuit and schedule; its ``final_qubits``
    are the programs' output qubits and ``output_clbits`` their output bits."""
    from .lowering import Lowered

    rt = Runtime(network, rng, ideal=ideal, purification=purification)
    run = run_on(rt, programs)
    noisy = rt.noisy_circuit(f"{name}@{network.name}")
    return Lowered(noisy=noisy, terminal=0,
                   final_qubits=tuple(q.index for q in run.output_qubits),
                   num_source_clbits=len(run.output_bits), qubit_node=tuple(rt.qubit_node),
                   makespan=run.makespan, events=rt.events, stats=rt.stats,
                   output_clbits=tuple(b.index for b in run.output_bits))


# ---- protocol halves, for ``yield from`` ------------------------------------------------------

def teleport_send(node: NodeView, qubit, dst: str, pair=None):
    """TeleData, sender's half: Bell measurement of ``qubit`` with this node's half of a pair
    with neighbour ``dst`` (``pair``, or a new one), two bits to ``dst``; both qubits freed."""
    a = pair if pair is not None else (yield node.epr(dst))
    node.gate("cx", qubit, a)
    node.gate("h", qubit)
    z = node.measure(qubit)
    x = node.measure(a)
    node.free(qubit)
    node.free(a)
    yield node.send(dst, z, x)


def teleport_recv(node: NodeView, src: str, pair=None):
    """TeleData, receiver's half: this node's half of a pair with neighbour ``src`` (``pair``,
    or a new one), corrected by ``src``'s two bits; returns the qubit that holds the state."""
    b = pair if pair is not None else (yield node.epr(src))
    z, x = yield node.recv(src)
    node.correct("x", b, bits=x)
    node.correct("z", b, bits=z)
    return b


def swap_at(node: NodeView, left: str, right: str, to: str | None = None):
    """Entanglement swapping at a repeater: a pair with ``left`` and one with ``right``, Bell
    measurement, and the two bits (x, z) sent to ``to`` (default ``right``), which applies
    X^x Z^z to its half (:func:`swap_correct`)."""
    l, r = yield [node.epr(left), node.epr(right)]
    node.gate("cx", l, r)
    node.gate("h", l)
    z = node.measure(l)
    x = node.measure(r)
    node.free(l)
    node.free(r)
    yield node.send(to or right, x, z)


def swap_correct(node: NodeView, half, repeaters: Sequence[str]):
    """The far end of a swapped chain: X^(xor x) Z^(xor z) of the bits of ``repeaters``."""
    xs, zs = [], []
    for r in repeaters:
        x, z = yield node.recv(r)
        xs.append(x)
        zs.append(z)
    if xs:
        node.correct("x", half, bits=xs)
        node.correct("z", half, bits=zs)
    return half


def cat_entangle_send(node: NodeView, control, peer: str, pair=None):
    """Cat-entangler, control side: share ``control`` with neighbour ``peer`` (one pair, one
    bit)."""
    a = pair if pair is not None else (yield node.epr(peer))
    node.gate("cx", control, a)
    bit = node.measure(a)
    node.free(a)
    yield node.send(peer, bit)


def cat_entangle_recv(node: NodeView, peer: str, pair=None):
    """Cat-entangler, target side: returns the qubit standing in for ``peer``'s control."""
    b = pair if pair is not None else (yield node.epr(peer))
    (bit,) = yield node.recv(peer)
    node.correct("x", b, bits=bit)
    return b


def cat_disentangle_send(node: NodeView, share, peer: str):
    """Cat-disentangler, target side: ``share`` measured in the X basis, freed, bit to ``peer``."""
    node.gate("h", share)
    bit = node.measure(share)
    node.free(share)
    yield node.send(peer, bit)


def cat_disentangle_recv(node: NodeView, control, peer: str):
    """Cat-disentangler, control side: Z on ``control`` when ``peer``'s bit reads 1."""
    (bit,) = yield node.recv(peer)
    node.correct("z", control, bits=bit)
