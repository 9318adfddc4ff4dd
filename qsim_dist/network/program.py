"""A distributed program: an ordinary circuit placed on a network, at the level of protocols.

This is the contract between the distribution compiler (which writes programs) and the network
runtime (which schedules them in time, lowers them to a circuit with communication qubits and
noise, and simulates it). Logical qubits keep their circuit numbering; each lives on one node at
a time (``placement``), and only :class:`Teleport` moves one.

Ops, in program order:

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

from dataclasses import dataclass, field
from typing import Any, Iterable, Union

from .. import validation
from ..circuit import Instruction
from ..errors import QsimDistError
from ..passes.decompose import block_diagonal_in
from .topology import Network


class ProgramError(QsimDistError):
    """A distributed program does not fit its network or breaks a protocol's rules."""


@dataclass(frozen=True)
class LocalGate:
    instruction: Instruction


@dataclass(frozen=True)
class RemoteGate:
    control: int
    node: str
    body: tuple[Instruction, ...]


@dataclass(frozen=True)
class Teleport:
    qubit: int
    node: str


Op = Union[LocalGate, RemoteGate, Teleport]


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


@dataclass
class DistributedProgram:
    """``ops`` over ``num_qubits`` logical qubits (``placement[q]`` = node of qubit q at the
    start) and ``num_clbits`` classical bits of the source circuit."""

    num_qubits: int
    num_clbits: int
    placement: tuple[str, ...]
    ops: list[Op] = field(default_factory=list)
    name: str = "program"

    def final_placement(self) -> tuple[str, ...]:
        where = list(self.placement)
        for op in self.ops:
            if isinstance(op, Teleport):
                where[op.qubit] = op.node
        return tuple(where)

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
            if isinstance(op, LocalGate):
                nodes = {where[q] for q in op.instruction.qubits}
                if len(nodes) > 1:
                    raise ProgramError(f"op {k}: local {op.instruction.name} spans nodes "
                                       f"{sorted(nodes)}")
            elif isinstance(op, RemoteGate):
                if op.node not in network.nodes or network.nodes[op.node].repeater:
                    raise ProgramError(f"op {k}: burst target {op.node!r} is not a compute node")
                if where[op.control] == op.node:
                    raise ProgramError(f"op {k}: control {op.control} is already on {op.node!r}")
                for inst in op.body:
                    if not inst.is_gate or inst.condition is not None:
                        raise ProgramError(f"op {k}: a burst body holds unconditioned gates only, "
                                           f"got {inst.name}")
                    for q in inst.qubits:
                        if q != op.control and where[q] != op.node:
                            raise ProgramError(f"op {k}: body gate {inst.name} touches qubit {q} "
                                               f"on {where[q]!r}, not on {op.node!r}")
                    if not block_diagonal_in(inst, op.control):
                        raise ProgramError(f"op {k}: body gate {inst.name} on {inst.qubits} can "
                                           f"flip the shared control {op.control}")
            elif isinstance(op, Teleport):
                where[op.qubit] = op.node
                check_capacity(k)
            else:
                raise ProgramError(f"op {k}: unknown op {op!r}")

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
        if not isinstance(self.ops, (list, tuple)):
            raise ProgramError(f"ops must be a list, got {validation.describe(self.ops)}")

        def check(inst: Any, k: int) -> None:
            if not isinstance(inst, Instruction):
                raise ProgramError(f"op {k}: expected an Instruction, got "
                                   f"{validation.describe(inst)}")
            for q in inst.qubits:
                validation.index(q, n, f"op {k}: {inst.name} qubit", ProgramError)
            clbits = inst.clbits + (inst.condition.clbits if inst.condition else ())
            for b in clbits:
                validation.index(b, c, f"op {k}: {inst.name} clbit", ProgramError)

        for k, op in enumerate(self.ops):
            if isinstance(op, LocalGate):
                check(op.instruction, k)
            elif isinstance(op, (RemoteGate, Teleport)):
                qubit = op.control if isinstance(op, RemoteGate) else op.qubit
                validation.index(qubit, n, f"op {k}: {type(op).__name__} qubit", ProgramError)
                if not isinstance(op.node, str):
                    raise ProgramError(f"op {k}: node must be a node name, got "
                                       f"{validation.describe(op.node)}")
                if isinstance(op, RemoteGate):
                    if not isinstance(op.body, (list, tuple)):
                        raise ProgramError(f"op {k}: body must be a tuple of instructions, got "
                                           f"{validation.describe(op.body)}")
                    for inst in op.body:
                        check(inst, k)
            else:
                raise ProgramError(f"op {k}: unknown op {validation.describe(op)}")

    def cost(self, network: Network) -> Cost:
        """Resources, counting ``network.distance`` EPR pairs per protocol (one per hop) and the
        classical bits of each: cat-entangle 1 + cat-disentangle 1, teleport 2, and 2 per
        entanglement swap at an intermediate node."""
        where = list(self.placement)
        epr = bits = remote = telegates = teleports = 0
        layer = [0] * self.num_qubits
        for op in self.ops:
            if isinstance(op, LocalGate):
                qubits: Iterable[int] = op.instruction.qubits
            elif isinstance(op, RemoteGate):
                hops = network.distance(where[op.control], op.node)
                epr += hops
                bits += 2 + 2 * (hops - 1)
                telegates += 1
                remote += sum(1 for i in op.body if op.control in i.qubits and len(i.qubits) > 1)
                qubits = {op.control, *(q for i in op.body for q in i.qubits)}
            else:
                hops = network.distance(where[op.qubit], op.node)
                epr += hops
                bits += 2 + 2 * (hops - 1)
                teleports += 1
                where[op.qubit] = op.node
                qubits = (op.qubit,)
            qubits = tuple(qubits)
            if qubits:
                top = max(layer[q] for q in qubits) + 1
                for q in qubits:
                    layer[q] = top
        return Cost(epr_pairs=epr, classical_bits=bits, remote_gates=remote,
                    telegates=telegates, teleports=teleports, depth=max(layer, default=0))
