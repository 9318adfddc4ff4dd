"""The naive distributor: an ordinary circuit as a :class:`DistributedProgram`, without a compiler.

- Placement: logical qubits fill the compute nodes in file order (each up to its data qubits), or
  follow an explicit placement (``"0:A,1:A,2:B"``, see :func:`parse_placement`). Qubits never move.
- Every gate whose qubits sit on one node is a :class:`LocalGate`.
- A gate across two nodes that is block-diagonal in a qubit alone on its node (cx, cz, cp, crx,
  cu3, rzz, rzx, ...: see :func:`~qsim_dist.passes.decompose.block_diagonal_in`) is one
  :class:`RemoteGate` with that qubit as control, to the other qubits' node; the runtime swaps
  entanglement along the path when the nodes are not neighbours.
- Any other cross-node gate is decomposed first, through its definition in the gate table
  (:func:`~qsim_dist.passes.decompose.expand`, exact up to global phase), and the parts are
  distributed the same way.
- Barriers are dropped (they order nothing across nodes); measurements and resets are local.
"""

from __future__ import annotations

from typing import Sequence

from ..circuit import Circuit, Instruction
from ..passes.decompose import block_diagonal_in, expand
from .program import DistributedProgram, LocalGate, ProgramError, RemoteGate
from .topology import Network, NetworkError

def parse_placement(text: str, num_qubits: int, network: Network) -> tuple[str, ...]:
    """``"0:A,1:A,2:B"`` -> ("A", "A", "B"): every qubit 0..num_qubits-1 exactly once, on a
    compute node, within each node's data qubits."""
    where: dict[int, str] = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        qubit, sep, node = item.partition(":")
        qubit, node = qubit.strip(), node.strip()
        if not sep or not qubit.isdigit() or not node:
            raise NetworkError(f"placement: expected QUBIT:NODE items like '0:A', got '{item}'")
        q = int(qubit)
        if q >= num_qubits:
            raise NetworkError(f"placement: qubit {q} out of range (the circuit has "
                               f"{num_qubits} qubits)")
        if q in where:
            raise NetworkError(f"placement: qubit {q} placed twice")
        if node not in network.nodes:
            raise NetworkError(f"placement: no node named {node!r} in the network")
        if network.nodes[node].repeater:
            raise NetworkError(f"placement: node {node!r} is a repeater (no data qubits)")
        where[q] = node
    missing = [q for q in range(num_qubits) if q not in where]
    if missing:
        raise NetworkError(f"placement: qubit {missing[0]} is not placed "
                           f"({len(missing)} of {num_qubits} missing)")
    placement = tuple(where[q] for q in range(num_qubits))
    _check_capacity(placement, network)
    return placement


def _check_capacity(placement: Sequence[str], network: Network) -> None:
    for name in dict.fromkeys(placement):
        count = placement.count(name)
        if count > network.nodes[name].data_qubits:
            raise NetworkError(f"placement: {count} qubits on node {name!r}, which has "
                               f"{network.nodes[name].data_qubits} data qubits")


def default_placement(num_qubits: int, network: Network) -> tuple[str, ...]:
    """Qubits in order, filling the compute nodes in file order."""
    if num_qubits > network.data_capacity:
        raise NetworkError(f"the circuit has {num_qubits} qubits but network "
                           f"{network.name!r} has {network.data_capacity} data qubits")
    slots = [n.name for n in network.compute_nodes for _ in range(n.data_qubits)]
    return tuple(slots[:num_qubits])


def _placed(inst: Instruction, where: Sequence[str]) -> LocalGate | RemoteGate | None:
    """Gate ``inst`` as one op where its qubits sit, or None when it must be decomposed."""
    nodes: dict[str, list[int]] = {}
    for q in inst.qubits:
        nodes.setdefault(where[q], []).append(q)
    if len(nodes) == 1:
        return LocalGate(inst)
    if inst.condition is not None:
        raise ProgramError(f"a classically conditioned {inst.name} across nodes is not supported "
                           "by the naive distributor")
    if len(nodes) == 2:
        for control in inst.qubits:  # prefer the gate's first qubit (the control of cx, cp, ...)
            alone = nodes[where[control]] == [control]
            if alone and block_diagonal_in(inst, control):
                other = next(n for n in nodes if n != where[control])
                return RemoteGate(control, other, (inst,))
    return None


def naive_program(circuit: Circuit, network: Network,
                  placement: Sequence[str] | None = None) -> DistributedProgram:
    """The circuit as a program on ``network``: see the module docstring."""
    if placement is None:
        placement = default_placement(circuit.num_qubits, network)
    else:
        placement = tuple(placement)
        if len(placement) != circuit.num_qubits:
            raise NetworkError(f"placement names {len(placement)} nodes for "
                               f"{circuit.num_qubits} qubits")
        _check_capacity(placement, network)
    ops: list = []
    for inst in circuit:
        if inst.name == "barrier":
            continue
        if not inst.is_gate:
            ops.append(LocalGate(inst))
            continue
        # gates that cannot be placed as they are go through their definitions in the table
        ops.extend(_placed(piece, placement) for piece in
                   expand([inst], keep=lambda piece: _placed(piece, placement) is not None))
    program = DistributedProgram(circuit.num_qubits, circuit.num_clbits, placement, ops,
                                 name=circuit.name)
    program.validate(network)
    return program

