"""A distributed program: an ordinary circuit placed on a network, at the level of protocols.

This is the contract between the distribution compiler (which writes programs) and the network
runtime (which schedules them in time, lowers them to a circuit with communication qubits and
noise, and simulates it). Logical qubits keep their circuit numbering; each lives on one node at
a time (``placement``), and only :class:`Teleport` moves one.

Ops, in program order, each a subclass of :class:`Op` that carries its own validation, cost,
lowering and makespan estimate (so a new kind of op is one class here):

- :class:`LocalGate`: one circuit instruction (gate, measure, reset, barrier, possibly classically
  conditioned) whose qubits all sit on one node at that point of the program.
- :class:`RemoteGate` (TeleGate, cat-entangler burst): one EPR pair between the node holding
  ``control`` and ``node`` (swapped along the shortest path when they are not neighbours);
  cat-entangle shares ``control`` into a communication qubit on ``node``, the ``body`` runs
  there with that copy standing in for ``control``, then cat-disentangle measures the copy in the
  X basis and corrects ``control`` with Z. Every body instruction is a gate on qubits that sit on
  ``node`` and possibly ``control``; the gates that touch ``control`` must be block-diagonal in
  it (controlled-U, CZ, CP, RZZ, ...), which is what makes one EPR pair serve them all.
- :class:`Teleport` (TeleData): one EPR pair (along the path), Bell measurement, two classical
  bits, Pauli correction: logical ``qubit`` now lives on ``node``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

from .. import validation
from ..circuit import Instruction
from ..errors import QsimDistError
from ..passes.decompose import block_diagonal_in
from .topology import Network


class ProgramError(QsimDistError):
    """A distributed program does not fit its network or breaks a protocol's rules."""


@dataclass(frozen=True)
class Cost:
    """What a program consumes. EPR pairs and classical bits count every hop of a swapped path."""

    epr_pairs: int
    classical_bits: int
    remote_gates: int        # two-qubit gates of the source circuit done across nodes
    telegates: int           # RemoteGate ops (cat-entangler bursts)
    teleports: int           # Teleport ops
    depth: int               # circuit depth of the program, counting each protocol as one layer

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Op(ABC):
    """One step of a :class:`DistributedProgram`. Each kind of op carries everything the network
    layer asks of it, so that a new kind cannot be silently mis-validated, mis-costed or
    mis-scheduled (a subclass that misses one of the abstract methods cannot be instantiated):

    - :meth:`check_types`, :meth:`validate`: its arguments, and whether it is possible where the
      program has put the qubits so far;
    - :attr:`qubits`, :meth:`moves`, :meth:`resources`: what it touches, which logical qubits it
      moves to another node, and what it consumes (:meth:`DistributedProgram.cost` adds these up);
    - :meth:`instructions`: what it does to the logical qubits (the program as a circuit);
    - :meth:`lower`: how it runs on the :class:`~qsim_dist.network.runtime.Runtime`
      (:func:`~qsim_dist.network.lowering.lower`);
    - :meth:`estimate`: how long it takes, read off the same node and link timing facts as the
      runtime (:func:`~qsim_dist.network.distribute.estimate_makespan`).

    The contexts of :meth:`lower` and :meth:`estimate` (``Lowering`` in ``lowering.py``,
    ``Timeline`` in ``distribute.py``) live above this module: the runtime imports
    :class:`ProgramError` from here, so importing them would make a circle.
    """

    @abstractmethod
    def check_types(self, k: int, num_qubits: int, num_clbits: int) -> None:
        """Raise :class:`ProgramError` unless every argument has the right type and every qubit
        and clbit index is in range (``k``: the op's index, for the message)."""

    @abstractmethod
    def validate(self, k: int, network: Network, where: Sequence[str]) -> None:
        """Raise :class:`ProgramError` unless the op is possible with logical qubit q on node
        ``where[q]`` (the data-qubit capacity after :meth:`moves` is checked by the program)."""

    @property
    @abstractmethod
    def qubits(self) -> tuple[int, ...]:
        """The logical qubits the op acts on (one layer of the program's depth)."""

    @abstractmethod
    def moves(self) -> dict[int, str]:
        """Logical qubit -> the node it lives on after this op, for the qubits it moves."""

    @abstractmethod
    def resources(self, network: Network, where: Sequence[str]) -> Usage:
        """What the op consumes with the qubits placed at ``where`` (before its :meth:`moves`);
        the program counts the depth itself, from :attr:`qubits`."""

    @abstractmethod
    def instructions(self) -> tuple[Instruction, ...]:
        """The source-circuit instructions the op applies to its logical qubits, in order
        (none for an op that only moves qubits)."""

    @abstractmethod
    def lower(self, k: int, ctx: Lowering) -> None:
        """Run the op as node programs on ``ctx.rt``, on the physical data qubits ``ctx.data``
        (rebinding an entry when the op moves that logical qubit)."""

    @abstractmethod
    def estimate(self, timeline: Timeline) -> None:
        """Advance ``timeline`` (when each qubit, clbit and link is next free) past the op."""

    def scan_terminal(self, touched: set[int], clbits_later: set[int]) -> bool:
        """One step of the backward walk that finds terminal measurements: whether this op is a
        measurement that nothing later touches (``touched`` qubits, ``clbits_later`` read or
        written), then add what the op touches itself. Most ops are not measurements."""
        touched.update(self.qubits)
        return False


class Usage(NamedTuple):
    """One op's share of a program's :class:`Cost` (a tuple: thousands are made per program)."""

    epr_pairs: int = 0
    classical_bits: int = 0
    remote_gates: int = 0
    telegates: int = 0
    teleports: int = 0


NO_USAGE = Usage()   # what a local op consumes


def _check_instruction(inst: Any, k: int, num_qubits: int, num_clbits: int) -> None:
    if not isinstance(inst, Instruction):
        raise ProgramError(f"op {k}: expected an Instruction, got {validation.describe(inst)}")
    for q in inst.qubits:
        validation.index(q, num_qubits, f"op {k}: {inst.name} qubit", ProgramError)
    clbits = inst.clbits + (inst.condition.clbits if inst.condition else ())
    for b in clbits:
        validation.index(b, num_clbits, f"op {k}: {inst.name} clbit", ProgramError)


def _check_target(op: RemoteGate | Teleport, qubit: Any, k: int, num_qubits: int) -> None:
    """The qubit and target node of a protocol op."""
    validation.index(qubit, num_qubits, f"op {k}: {type(op).__name__} qubit", ProgramError)
    if not isinstance(op.node, str):
        raise ProgramError(f"op {k}: node must be a node name, got "
                           f"{validation.describe(op.node)}")


def _protocol_cost(network: Network, a: str, b: str) -> tuple[int, int]:
    """(EPR pairs, classical bits) of one protocol between nodes ``a`` and ``b``: one pair per
    hop, the protocol's 2 bits and 2 per entanglement swap at an intermediate node."""
    hops = network.distance(a, b)
    return hops, 2 + 2 * (hops - 1)


@dataclass(frozen=True)
class LocalGate(Op):
    """One circuit instruction (gate, measure, reset, barrier, possibly classically
    conditioned) on qubits that all sit on one node."""

    instruction: Instruction

    def check_types(self, k: int, num_qubits: int, num_clbits: int) -> None:
        _check_instruction(self.instruction, k, num_qubits, num_clbits)

    def validate(self, k: int, network: Network, where: Sequence[str]) -> None:
        nodes = {where[q] for q in self.instruction.qubits}
        if len(nodes) > 1:
            raise ProgramError(f"op {k}: local {self.instruction.name} spans nodes "
                               f"{sorted(nodes)}")

    @property
    def qubits(self) -> tuple[int, ...]:
        return self.instruction.qubits

    def moves(self) -> dict[int, str]:
        return {}

    def resources(self, network: Network, where: Sequence[str]) -> Usage:
        return NO_USAGE

    def instructions(self) -> tuple[Instruction, ...]:
        return (self.instruction,)

    def lower(self, k: int, ctx: Lowering) -> None:
        inst, rt = self.instruction, ctx.rt
        if inst.name == "barrier":
            return
        qubits = [ctx.data[q] for q in inst.qubits]
        node = qubits[0].node
        if inst.name in ("measure", "reset"):
            if inst.condition is not None:
                raise ProgramError(f"op {k}: a conditioned {inst.name} is not supported on "
                                   "the network")
            if inst.name == "reset":
                rt.reset(node, qubits[0])
                return
            rt.measure(node, qubits[0], ctx.bit(inst.clbits[0]))
            if k in ctx.terminal:
                ctx.tail.append(rt.ops.pop())   # the measure instruction: moved to the end
                qubits[0].live = False
            return
        if inst.condition is not None:
            for c in inst.condition.clbits:   # bring every bit the condition reads here
                ctx.bring_bit(c, node)
        rt.gate(node, inst.name, qubits, inst.params, inst.condition)

    def estimate(self, timeline: Timeline) -> None:
        inst = self.instruction
        if not inst.qubits:
            return
        ready, clbit_ready = timeline.ready, timeline.clbit_ready
        node = timeline.nodes[timeline.where[inst.qubits[0]]]
        start = max(ready[q] for q in inst.qubits)
        if inst.condition is not None:
            start = max([start] + [clbit_ready[c] for c in inst.condition.clbits])
        if inst.name == "barrier":
            end = start
        elif inst.name in ("measure", "reset"):
            end = start + node.measure_time
        else:
            end = start + node.gate_time
        for q in inst.qubits:
            ready[q] = end
        for c in inst.clbits:
            clbit_ready[c] = end

    def scan_terminal(self, touched: set[int], clbits_later: set[int]) -> bool:
        inst = self.instruction
        if inst.name == "barrier":
            return False
        terminal = (inst.name == "measure" and inst.condition is None
                    and inst.qubits[0] not in touched and inst.clbits[0] not in clbits_later)
        touched.update(inst.qubits)
        clbits_later.update(inst.clbits)
        if inst.condition is not None:
            clbits_later.update(inst.condition.clbits)
        return terminal


@dataclass(frozen=True)
class RemoteGate(Op):
    """A TeleGate (cat-entangler burst): ``body`` runs on ``node`` with a shared copy of
    ``control`` (see the module docstring)."""

    control: int
    node: str
    body: tuple[Instruction, ...]

    def check_types(self, k: int, num_qubits: int, num_clbits: int) -> None:
        _check_target(self, self.control, k, num_qubits)
        if not isinstance(self.body, (list, tuple)):
            raise ProgramError(f"op {k}: body must be a tuple of instructions, got "
                               f"{validation.describe(self.body)}")
        for inst in self.body:
            _check_instruction(inst, k, num_qubits, num_clbits)

    def validate(self, k: int, network: Network, where: Sequence[str]) -> None:
        if self.node not in network.nodes or network.nodes[self.node].repeater:
            raise ProgramError(f"op {k}: burst target {self.node!r} is not a compute node")
        if where[self.control] == self.node:
            raise ProgramError(f"op {k}: control {self.control} is already on {self.node!r}")
        for inst in self.body:
            if not inst.is_gate or inst.condition is not None:
                raise ProgramError(f"op {k}: a burst body holds unconditioned gates only, "
                                   f"got {inst.name}")
            for q in inst.qubits:
                if q != self.control and where[q] != self.node:
                    raise ProgramError(f"op {k}: body gate {inst.name} touches qubit {q} "
                                       f"on {where[q]!r}, not on {self.node!r}")
            if not block_diagonal_in(inst, self.control):
                raise ProgramError(f"op {k}: body gate {inst.name} on {inst.qubits} can "
                                   f"flip the shared control {self.control}")

    @property
    def qubits(self) -> tuple[int, ...]:
        return tuple({self.control, *(q for i in self.body for q in i.qubits)})

    def moves(self) -> dict[int, str]:
        return {}

    def resources(self, network: Network, where: Sequence[str]) -> Usage:
        epr, bits = _protocol_cost(network, where[self.control], self.node)
        remote = sum(1 for i in self.body if self.control in i.qubits and len(i.qubits) > 1)
        return Usage(epr, bits, remote, telegates=1)

    def instructions(self) -> tuple[Instruction, ...]:
        return tuple(self.body)

    def lower(self, k: int, ctx: Lowering) -> None:
        rt, data = ctx.rt, ctx.data

        def body(share):
            for inst in self.body:
                rt.gate(self.node, inst.name,
                        [share if q == self.control else data[q] for q in inst.qubits],
                        inst.params)
        ctx.remote_gate(rt, data[self.control], self.node, body)

    def estimate(self, timeline: Timeline) -> None:
        ready, nodes = timeline.ready, timeline.nodes
        home, there = nodes[timeline.where[self.control]], nodes[self.node]
        pair, latency = timeline.epr(home.name, self.node)
        t = max(ready[self.control], pair) + home.gate_time + home.measure_time
        t += latency + there.gate_time
        for inst in self.body:
            others = [q for q in inst.qubits if q != self.control]
            t = max([t] + [ready[q] for q in others]) + there.gate_time
            for q in others:
                ready[q] = t
        t += there.gate_time + there.measure_time + latency + home.gate_time
        ready[self.control] = t


@dataclass(frozen=True)
class Teleport(Op):
    """TeleData: logical ``qubit`` moves to ``node``."""

    qubit: int
    node: str

    def check_types(self, k: int, num_qubits: int, num_clbits: int) -> None:
        _check_target(self, self.qubit, k, num_qubits)

    def validate(self, k: int, network: Network, where: Sequence[str]) -> None:
        pass   # the target node is checked with the capacity, after the move

    @property
    def qubits(self) -> tuple[int, ...]:
        return (self.qubit,)

    def moves(self) -> dict[int, str]:
        return {self.qubit: self.node}

    def resources(self, network: Network, where: Sequence[str]) -> Usage:
        epr, bits = _protocol_cost(network, where[self.qubit], self.node)
        return Usage(epr, bits, teleports=1)

    def instructions(self) -> tuple[Instruction, ...]:
        return ()

    def lower(self, k: int, ctx: Lowering) -> None:
        if ctx.data[self.qubit].node != self.node:
            ctx.data[self.qubit] = ctx.teleport(ctx.rt, ctx.data[self.qubit], self.node)

    def estimate(self, timeline: Timeline) -> None:
        ready, nodes = timeline.ready, timeline.nodes
        home, there = nodes[timeline.where[self.qubit]], nodes[self.node]
        pair, latency = timeline.epr(home.name, self.node)
        t = max(ready[self.qubit], pair) + 2 * home.gate_time + home.measure_time
        ready[self.qubit] = t + latency + 2 * there.gate_time


@dataclass
class DistributedProgram:
    """``ops`` over ``num_qubits`` logical qubits (``placement[q]`` = node of qubit q at the
    start) and ``num_clbits`` classical bits of the source circuit."""

    num_qubits: int
    num_clbits: int
    placement: tuple[str, ...]
    ops: list[Op] = field(default_factory=list)
    name: str = "program"

    def __post_init__(self) -> None:
        self._check_ops()

    def _check_ops(self) -> None:
        """``ops`` is a list of :class:`Op` (checked at construction and again by
        :meth:`validate`, since the list may grow in between)."""
        if not isinstance(self.ops, (list, tuple)):
            raise ProgramError(f"ops must be a list, got {validation.describe(self.ops)}")
        # one subclass check per kind of op, not per op: programs hold thousands
        if all(issubclass(kind, Op) for kind in set(map(type, self.ops))):
            return
        k, op = next((k, op) for k, op in enumerate(self.ops) if not isinstance(op, Op))
        raise ProgramError(f"op {k}: unknown op {validation.describe(op)}")

    def validate(self, network: Network) -> None:
        """Raise :class:`ProgramError` unless every op is possible where the program puts it:
        nodes exist and are compute nodes, data-qubit capacity holds at every point, local
        gates are local, bursts obey the block-diagonal rule."""
        self._check_types()
        if len(self.placement) != self.num_qubits:
            raise ProgramError(f"placement names {len(self.placement)} nodes for "
                               f"{self.num_qubits} qubits")
        where = list(self.placement)

        def check_capacity(op_index: int) -> None:
            load: dict[str, int] = {}
            for node in where:
                if node not in network.nodes or network.nodes[node].repeater:
                    raise ProgramError(f"op {op_index}: qubits placed on {node!r}, which is not "
                                       "a compute node of the network")
                load[node] = load.get(node, 0) + 1
            for node, count in load.items():
                if count > network.nodes[node].data_qubits:
                    raise ProgramError(f"op {op_index}: {count} qubits on node {node!r}, which "
                                       f"has {network.nodes[node].data_qubits} data qubits")

        check_capacity(-1)
        for k, op in enumerate(self.ops):
            op.validate(k, network, where)
            moved = op.moves()
            if moved:
                for q, node in moved.items():
                    where[q] = node
                check_capacity(k)

    def _check_types(self) -> None:
        """Every field and op argument of the right type, every qubit and clbit index in range
        (a negative index would silently wrap around)."""
        n = validation.count(self.num_qubits, "num_qubits", ProgramError)
        c = validation.count(self.num_clbits, "num_clbits", ProgramError)
        if isinstance(self.placement, (str, bytes)) or not isinstance(self.placement,
                                                                      (list, tuple)) \
                or not all(isinstance(x, str) for x in self.placement):
            raise ProgramError(f"placement must be a sequence of node names, got "
                               f"{validation.describe(self.placement)}")
        self._check_ops()
        for k, op in enumerate(self.ops):
            op.check_types(k, n, c)

    def cost(self, network: Network) -> Cost:
        """Resources: the sum of every op's :meth:`Op.resources` (a protocol counts
        ``network.distance`` EPR pairs, one per hop, and its classical bits: cat-entangle 1 +
        cat-disentangle 1, teleport 2, and 2 per entanglement swap at an intermediate node),
        and the depth, counting each op as one layer of its :attr:`Op.qubits`."""
        where = list(self.placement)
        epr = bits = remote = telegates = teleports = 0
        layer = [0] * self.num_qubits
        for op in self.ops:
            used = op.resources(network, where)
            if used is not NO_USAGE:   # most ops are local: skip adding their zeros
                epr += used.epr_pairs
                bits += used.classical_bits
                remote += used.remote_gates
                telegates += used.telegates
                teleports += used.teleports
            moved = op.moves()
            if moved:
                for q, node in moved.items():
                    where[q] = node
            qubits = op.qubits
            if qubits:
                top = max(layer[q] for q in qubits) + 1
                for q in qubits:
                    layer[q] = top
        return Cost(epr_pairs=epr, classical_bits=bits, remote_gates=remote,
                    telegates=telegates, teleports=teleports, depth=max(layer, default=0))
