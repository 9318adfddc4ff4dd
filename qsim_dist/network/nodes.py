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
- ``read(*bits)``: the values of bits known at the node (a program that reads runs online,
  :mod:`qsim_dist.online`); ``random()``: the node's classical coin, from the run's seeded
  stream. A message may carry known values 0/1 besides bits (a herald, a choice).

The programs run together as one discrete-event simulation: a priority queue of node wake-up
times; a program runs until it yields an unfinished future, then sleeps until the future is done
(a message arrives, a pair is delivered, an operation ends) and wakes at that time, which
becomes its program time. A live qubit that waits (for a message, a pair, another qubit) gets its
node's T1/T2 channel for exactly that wait. If every program left waits for something that
nobody will provide (both sides ``recv`` first, a pair the peer never asks for, no free
communication qubit), :class:`DeadlockError` says who waits for what.

Mistakes are one :class:`ProgramError` line: a wrong argument of a node operation (an unknown
gate, the wrong number of qubits or parameters, a non-finite parameter or wait, a qubit of
another node, a qubit after ``free``, a string where a node name is expected, ...) names the node
and the argument; an exception raised by the program's own code comes out as
:class:`NodeProgramError` naming the node and the program line (``file:line``), with the
original as its ``__cause__``. A run that never ends is stopped: at most ``max_events`` node
operations and wake-ups (default :data:`MAX_EVENTS`) and ``max_time`` simulated seconds
(default :data:`MAX_TIME`), keyword arguments of :func:`lower_nodes` and :func:`run_on`.

Program code only holds :class:`~qsim_dist.network.runtime.Qubit` and
:class:`~qsim_dist.network.runtime.Bit` handles, never amplitudes or outcomes: the runtime
records every operation into the same :class:`~qsim_dist.network.runtime.Runtime` (clocks,
communication-qubit capacity, EPR generation, latency, idle noise) that lowers a
:class:`~qsim_dist.network.program.DistributedProgram`, so node programs run unchanged on every
backend of the engine, whatever holds the state. :func:`lower_nodes` gives the lowered circuit
and the schedule of one run; :func:`qsim_dist.dqc.run_nodes` the report over many shots.

Protocol halves for ``yield from``: :func:`teleport_send` / :func:`teleport_recv`,
:func:`swap_at` (a repeater joins two pairs), :func:`cat_entangle_send` /
:func:`cat_entangle_recv` and :func:`cat_disentangle_send` / :func:`cat_disentangle_recv`.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .. import validation
from ..circuit import Condition
from ..errors import QsimDistError
from ..gates import GATES, NON_UNITARY
from .program import ProgramError
from .runtime import Bit, Qubit, Runtime
from .topology import Network

NodeProgram = Callable[["NodeView"], Any]

#: default cap on node operations plus program wake-ups in one run: far above any real
#: protocol (thousands), low enough that a program that never ends stops within seconds (about
#: 40 us and 450 bytes per recorded gate: ~10 s, ~100 MB)
MAX_EVENTS = 200_000
#: default cap on the simulated time of one run, in seconds (a day: orders of magnitude beyond
#: any coherence time, so nothing that can still hold a quantum state runs longer)
MAX_TIME = 86_400.0

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DeadlockError(ProgramError):
    """Node programs wait for each other and none can go on."""


class NodeProgramError(ProgramError):
    """A node program's own code raised an exception (kept as ``__cause__``)."""


class RunLimitError(ProgramError):
    """Node programs ran past ``max_events`` or ``max_time`` (a program that never ends?)."""


class ReadsOutcomes(ProgramError):
    """A program read an outcome (``node.read``) in a run that records a schedule without
    simulating it (:func:`lower_nodes`): such programs run online (``run_nodes`` does)."""


#: What answers ``node.read``: called with the runtime and a bit, after the ops recorded so
#: far, it returns the bit's value in this shot (``qsim_dist.dqc`` builds one on a stepper).
Outcomes = Callable[[Runtime, Bit], int]


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
        self._sim.tick()
        rt, node = self._sim.rt, self.network.nodes[self.name]
        if rt.data_qubits_in_use(self.name) >= node.data_qubits:
            raise ProgramError(f"node {self.name!r} has {node.data_qubits} data qubits, all in "
                               "use (free one first)")
        return rt.data_qubit(self.name, self.now)

    def gate(self, name: str, *qubits, params: Sequence[float] = (),
             condition: Bit | Future | Sequence[Bit | Future] | None = None) -> Future:
        """Gate ``name`` on ``qubits`` (of this node); with ``condition``, only when that bit
        (or the XOR of those bits, known here) is 1."""
        if condition is not None:
            return self.correct(name, *qubits, bits=condition, params=params)
        qs, params = self._gate_args("gate", name, qubits, params)
        end = self._sim.rt.gate(self.name, name, qs, params, at=self.now)
        return _done(f"gate {name}", end)

    def correct(self, name: str, *qubits, bits: Bit | Future | Sequence[Bit | Future],
                params: Sequence[float] = ()) -> Future:
        """Gate ``name`` on ``qubits`` when the XOR of ``bits`` is 1 (a Pauli-frame correction,
        or any classically controlled gate)."""
        qs, params = self._gate_args("correct", name, qubits, params)
        if isinstance(bits, (Bit, Future)):
            bits = [bits]
        elif not isinstance(bits, (list, tuple)):
            raise ProgramError(f"node {self.name!r}: correct {name}: bits must be a bit, a "
                               f"future or a list of them, got {validation.describe(bits)}")
        bs = [self._bit(b) for b in bits]
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
        if not isinstance(output, bool):
            raise ProgramError(f"node {self.name!r}: measure output must be True or False, "
                               f"got {validation.describe(output)}")
        q = self._qubit(qubit)
        self._sim.tick()
        rt = self._sim.rt
        bit = rt.measure(self.name, q, at=self.now)
        if output:
            self._outputs.append(bit)
        return _done("measure", rt.bit_time(bit, self.name), bit)

    def reset(self, qubit) -> Future:
        """Reset ``qubit`` to |0> (it stays this program's)."""
        self._sim.tick()
        end = self._sim.rt.reset(self.name, self._qubit(qubit), at=self.now)
        return _done("reset", end)

    def free(self, qubit) -> None:
        """Give ``qubit`` back to the node (reset to |0>): a data qubit to ``qubit()``, a
        communication qubit to the next EPR pair."""
        if isinstance(qubit, Qubit) and qubit.freed:
            raise ProgramError(f"node {self.name!r} frees qubit {qubit.index} twice")
        q = self._qubit(qubit)
        self._sim.tick()
        self._sim.rt.release(q)
        if q.kind == "comm":
            self._sim.try_pairs()

    # ---- communication -------------------------------------------------------------------------
    def send(self, dst: str, *items) -> Future:
        """Send ``items`` (maybe none: a signal) to node ``dst``: bits (their values travel,
        unseen) and classical values the program knows (0 or 1: a herald, a choice; one
        classical bit each). The future is done when the message leaves, its value the
        arrival time."""
        self._peer(dst, "sends to")
        message = tuple(self._message_item(x) for x in items)
        bs = [x for x in message if isinstance(x, Bit)]
        self._sim.tick()
        rt = self._sim.rt
        arrive = rt.send(self.name, dst, bs, at=self.now, values=len(message) - len(bs))
        leave = max([self.now] + [rt.bit_time(b, self.name) for b in bs])
        self._sim.deliver(self.name, dst, message, arrive)
        return _done(f"send to {dst}", leave, arrive)

    def recv(self, src: str) -> Future:
        """The next message from ``src``: its value is the tuple of bits, done on arrival."""
        self._peer(src, "receives from")
        self._sim.tick()
        return self._sim.receive(self.name, src)

    def epr(self, peer: str) -> Future:
        """Ask the link to neighbour ``peer`` for an EPR pair; the value is this node's half."""
        self._peer(peer, "asks for an EPR pair with")
        self._sim.tick()
        if self.network.link(self.name, peer) is None:
            raise ProgramError(f"node {self.name!r} asks for an EPR pair with {peer!r}, but they "
                               "share no link")
        return self._sim.request_pair(self.name, peer, self.now)

    def read(self, *bits) -> Future:
        """The values (0 or 1) of ``bits`` — bits, futures of ``measure``, a received message
        or the future of a ``recv`` (its message's bits and values) — once each is known at this node (measured here, or
        arrived in a message): yield it to get an int (one bit) or a tuple (several, or a
        message). Reading a bit this node does not have is a :class:`ProgramError`."""
        if not bits:
            raise ProgramError(f"node {self.name!r}: read needs at least one bit")
        many = len(bits) > 1
        flat: list[Bit | int] = []
        for b in bits:
            message = b.value if isinstance(b, Future) and b.done else b
            if isinstance(message, tuple):                # a received message
                flat += [x if _is_value(x) else self._bit(x) for x in message]
                many = True
            elif _is_value(b):
                flat.append(int(b))                       # a value it was sent: known
            else:
                flat.append(self._bit(b))
        rt = self._sim.rt
        when = []
        for b in flat:
            if not isinstance(b, Bit):
                continue
            t = rt.bit_time(b, self.name)
            if t is None:
                raise ProgramError(f"node {self.name!r} reads bit c{b.index}, which it does not "
                                   "have (measured at another node and not received here)")
            when.append(t)
        self._sim.tick()
        if self._sim.outcomes is None and any(isinstance(b, Bit) for b in flat):
            raise ReadsOutcomes(f"node {self.name!r} reads an outcome: a program that branches "
                                "on outcomes runs online (run_nodes), not as one recorded "
                                "schedule (lower_nodes)")
        values = tuple(self._sim.outcomes(rt, b) if isinstance(b, Bit) else b for b in flat)
        return _done("read", max([self.now] + when), values if many else values[0])

    def random(self) -> float:
        """A classical coin of this node: a float in [0, 1) from the run's seeded stream (the
        one that draws link generation times), e.g. for a Bell measurement that succeeds with
        probability 1/2. It never depends on the quantum state, so programs that only use it
        to branch still run as one recorded schedule."""
        self._sim.tick()
        return float(self._sim.rt.rng.random())

    def wait(self, seconds: float) -> Future:
        """A pause: yield it to sleep ``seconds``."""
        # inf would end the run at time inf (reported as makespan 0); nan compares false
        seconds = validation.non_negative(seconds, f"node {self.name!r}: wait seconds",
                                          ProgramError)
        self._sim.tick()
        return _done("wait", self.now + (0.0 if self._sim.rt.ideal else seconds))

    # ---- arguments -------------------------------------------------------------------------------
    def _gate_args(self, op: str, name: Any, qubits: Sequence[Any], params: Any
                   ) -> tuple[list[Qubit], tuple[float, ...]]:
        """Check a gate's name, qubits (this node's, live, distinct, as many as the gate acts
        on) and parameters (finite numbers, as many as it takes); count the operation."""
        where = f"node {self.name!r}: {op}"
        if not isinstance(name, str) or name not in GATES or name in NON_UNITARY:
            raise ProgramError(f"{where}: {validation.describe(name)} is not a gate name (a "
                               "unitary gate of qsim_dist.gates; node.measure and node.reset "
                               "measure and reset)")
        spec = GATES[name]
        if len(qubits) != spec.num_qubits:
            raise ProgramError(f"{where} {name}: acts on {spec.num_qubits} qubit(s), got "
                               f"{len(qubits)}")
        qs = [self._qubit(q) for q in qubits]
        if len({q.index for q in qs}) != len(qs):
            raise ProgramError(f"{where} {name}: the same qubit appears twice")
        if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
            raise ProgramError(f"{where} {name}: params must be a sequence of numbers, got "
                               f"{validation.describe(params)}")
        params = tuple(validation.finite(p, f"{where} {name}: parameter", ProgramError)
                       for p in params)
        if len(params) != spec.num_params:
            raise ProgramError(f"{where} {name}: takes {spec.num_params} parameter(s), got "
                               f"{len(params)}")
        self._sim.tick()
        return qs, params

    def _peer(self, other: Any, verb: str) -> str:
        """``other`` checked as the name of another node of the network."""
        if not isinstance(other, str) or other not in self.network.nodes or other == self.name:
            raise ProgramError(f"node {self.name!r} {verb} {validation.describe(other)}, which "
                               "is not the name of another node")
        return other

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
        if q.freed:
            raise ProgramError(f"node {self.name!r} uses qubit {q.index} after freeing it")
        if not self._sim.rt.holds(q):
            raise ProgramError(f"node {self.name!r} uses qubit {q.index} of another run")
        return q

    def _bit(self, b) -> Bit:
        b = self._resolved(b, "the bits", "they arrive")
        if isinstance(b, tuple) and len(b) == 1:
            b = b[0]
        if _is_value(b):
            raise ProgramError(f"node {self.name!r}: {b!r} is a classical value the program "
                               "knows, not a bit: branch on it in Python")
        if not isinstance(b, Bit):
            raise ProgramError(f"node {self.name!r}: expected a classical bit, got {b!r}")
        return b

    def _message_item(self, x) -> Bit | int:
        """One item of a message: a bit handle, or a known classical value 0 or 1."""
        x = self._resolved(x, "the bits", "they arrive")
        if isinstance(x, tuple) and len(x) == 1:
            x = x[0]
        if _is_value(x):
            return int(x)
        if isinstance(x, (int, float, np.integer)) and not isinstance(x, Bit):
            raise ProgramError(f"node {self.name!r}: a message carries bits and the values 0 "
                               f"and 1, got {validation.describe(x)}")
        return self._bit(x)

    def __repr__(self) -> str:
        return f"<NodeView {self.name} at {self.now:.3g} s>"


def _is_value(x) -> bool:
    """A classical value a program knows (not a :class:`Bit` handle): 0 or 1."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, Bit) and x in (0, 1)


def start_program(name: str, program: NodeProgram, node: "NodeView"):
    """``program(node)``, refused in one line unless it makes a generator."""
    try:
        gen = program(node)
    except QsimDistError:
        raise
    except Exception as exc:   # e.g. a function of no argument, or one that raises
        raise _wrapped(name, "calling its program", exc) from exc
    if not inspect.isgenerator(gen):
        raise ProgramError(f"the program of node {name!r} must be a generator function "
                           "(it has no yield)")
    return gen


class _Simulation:
    """The event loop and the matching of messages and pair requests. With ``ranks`` (a
    :class:`~qsim_dist.network.ranked.ProgramRanks`) each program runs on its node's rank."""

    def __init__(self, rt: Runtime, programs: Mapping[str, NodeProgram], *,
                 max_events: int = MAX_EVENTS, max_time: float = MAX_TIME,
                 outcomes: Outcomes | None = None, ranks=None):
        self.rt = rt
        self.outcomes = outcomes
        self.max_events = validation.count(max_events, "max_events", ProgramError, minimum=1)
        self.max_time = validation.positive(max_time, "max_time", ProgramError)
        self.events = 0
        self.procs: dict[str, _Process] = {}
        self.heap: list[tuple[float, int, str, Any]] = []
        self.seq = itertools.count()
        self.mail: dict[tuple[str, str], list[tuple[tuple[Bit, ...], float]]] = {}
        self.inbox_waiting: dict[tuple[str, str], list[Future]] = {}
        self.requests: dict[tuple[str, str], list[tuple[float, Future]]] = {}
        self.matched: list[tuple[str, str, float, Future, Future]] = []
        if not isinstance(programs, Mapping):
            raise ProgramError("programs must be a mapping of node name -> generator function, "
                               f"got {validation.describe(programs)}")
        for name, program in programs.items():
            if not isinstance(name, str) or name not in rt.network.nodes:
                raise ProgramError(f"a program for {name!r}, which is not a node of the network")
            if not callable(program):
                raise ProgramError(f"the program of node {name!r} must be a generator function "
                                   f"of its NodeView, got {validation.describe(program)}")
            if ranks is None:
                node = NodeView(name, self)
                gen = start_program(name, program, node)
            else:   # on MPI ranks: the program runs on its node's owner (.ranked)
                node, gen = ranks.start(name, program, self)
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

    def tick(self) -> None:
        """Count one node operation or wake-up; stop a run past ``max_events``."""
        self.events += 1
        if self.events > self.max_events:
            raise RunLimitError(
                f"node programs ran past max_events = {self.max_events} operations and "
                "wake-ups (a program that never ends?); pass a larger max_events to "
                "run_nodes / lower_nodes to allow more")

    def run(self) -> None:
        while self.heap:
            time, _, name, value = heapq.heappop(self.heap)
            if time > self.max_time:
                raise RunLimitError(
                    f"node {name!r} would wake at {time:.6g} s of simulated time, past "
                    f"max_time = {self.max_time:g} s (a program that never ends?); pass a "
                    "larger max_time to run_nodes / lower_nodes to allow more")
            self.tick()
            proc = self.procs[name]
            proc.node._now = max(proc.node._now, time)
            try:
                request = proc.gen.send(value)
            except StopIteration as stop:
                proc.finished, proc.result = True, stop.value
                continue
            except QsimDistError as exc:
                _locate(exc)
                raise
            except Exception as exc:
                raise _wrapped(name, "its program raised", exc) from exc
            many = isinstance(request, (list, tuple))
            futures = list(request) if many else [request]
            for f in futures:
                if not isinstance(f, Future):
                    raise ProgramError(f"node {name!r} yielded {validation.describe(f)}: yield "
                                       "the futures its operations return (or a list of them)")
            proc.waiting, proc.many = futures, many
            if not futures:        # an empty list: nothing to wait for, go on at once
                proc.waiting = []
                self._wake(name, proc.node._now, [])
            elif all(f.done for f in futures):
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


def _program_line(tb) -> str | None:
    """``file:line`` of the innermost frame of user generator code in traceback ``tb`` (the
    node program, or a generator it runs with ``yield from``), else of the innermost frame
    outside this package."""
    generator = outside = None
    while tb is not None:
        code = tb.tb_frame.f_code
        path = os.path.abspath(code.co_filename)
        if not path.startswith(_PACKAGE + os.sep):
            outside = f"{code.co_filename}:{tb.tb_lineno}"
            if code.co_flags & inspect.CO_GENERATOR:
                generator = outside
        tb = tb.tb_next
    return generator or outside


def _locate(exc: QsimDistError) -> None:
    """Add the program line to a one-line project error raised inside a node program."""
    where = _program_line(exc.__traceback__)
    if where and len(exc.args) == 1 and isinstance(exc.args[0], str) \
            and "(program line " not in exc.args[0]:
        exc.args = (f"{exc.args[0]} (program line {where})",)


def _wrapped(name: str, what: str, exc: BaseException) -> NodeProgramError:
    """One line for an exception of a node program's own code; the caller chains it."""
    text = " ".join(str(exc).split()) or "(no message)"
    if len(text) > 200:
        text = text[:197] + "..."
    where = _program_line(exc.__traceback__)
    at = f" (program line {where})" if where else ""
    return NodeProgramError(f"node {name!r}: {what} {type(exc).__name__}: {text}{at}")


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


def run_on(rt: Runtime, programs: Mapping[str, NodeProgram], *, max_events: int = MAX_EVENTS,
           max_time: float = MAX_TIME, outcomes: Outcomes | None = None,
           ranks=None) -> NodeRun:
    """Run ``programs`` (node name -> generator function of a :class:`NodeView`) together on
    ``rt``; every live qubit then idles until the makespan. The output qubits are the qubits
    the programs return (node by node, in the order of ``programs``).

    Parameters
    ----------
    max_events : at most this many node operations and program wake-ups
        (:class:`RunLimitError` beyond: a program that never ends).
    max_time : no program wakes later than this simulated time, in seconds
        (:class:`RunLimitError` beyond).
    outcomes : what answers ``node.read`` (see :data:`Outcomes`); None: a program that reads
        raises :class:`ReadsOutcomes`.
    ranks : a :class:`~qsim_dist.network.ranked.ProgramRanks` under MPI: each program runs on
        the rank that owns its node, the others replay what it does.
    """
    sim = _Simulation(rt, programs, max_events=max_events, max_time=max_time,
                      outcomes=outcomes, ranks=ranks)
    sim.run()
    makespan = rt.finish()
    results = {name: p.result for name, p in sim.procs.items()}
    qubits = tuple(q for name in sim.procs for q in _qubits_of(results[name]))
    for name in sim.procs:
        for q in _qubits_of(results[name]):
            if not rt.holds(q):
                raise ProgramError(f"node {name!r} returns qubit {q.index}, which "
                                   + ("it freed" if q.freed else "is another run's"))
    if len({q.index for q in qubits}) != len(qubits):
        raise ProgramError("a qubit is returned twice by the node programs")
    bits = tuple(b for p in sim.procs.values() for b in p.node._outputs)
    return NodeRun(rt, results, qubits, bits, makespan)


def lower_nodes(programs: Mapping[str, NodeProgram], network: Network, *,
                rng: np.random.Generator | None = None, ideal: bool = False,
                purification: tuple[str, int] | None = None, name: str = "nodes",
                max_events: int = MAX_EVENTS, max_time: float = MAX_TIME):
    """Run ``programs`` once on ``network`` (generation times from ``rng``) and return the
    :class:`~qsim_dist.network.lowering.Lowered` circuit and schedule; its ``final_qubits``
    are the programs' output qubits and ``output_clbits`` their output bits. ``max_events``
    and ``max_time`` cap the run (see :func:`run_on`)."""
    from .lowering import Lowered

    rt = Runtime(network, rng, ideal=ideal, purification=purification)
    run = run_on(rt, programs, max_events=max_events, max_time=max_time)
    return lowered_of(run, f"{name}@{network.name}")


def lowered_of(run: NodeRun, name: str):
    """One run of node programs as a :class:`~qsim_dist.network.lowering.Lowered` (its
    recorded ops, schedule and resources)."""
    from .lowering import Lowered

    rt = run.runtime
    noisy = rt.noisy_circuit(name)
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
