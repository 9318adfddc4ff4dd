"""Network ops carry their own validation, cost, lowering and makespan estimate (issue 12).

A kind of op that misses one of them cannot be built, and one that has them all is validated,
costed, lowered and estimated through its own methods, not as a Teleport by default."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from qsim_dist.circuit import Instruction
from qsim_dist.network import (DistributedProgram, LocalGate, ProgramError, RemoteGate, Teleport,
                               lower, network_from_dict)
from qsim_dist.network.distribute import estimate_makespan
from qsim_dist.network.lowering import logical_circuit
from qsim_dist.network.program import Op, Usage

NET = network_from_dict({
    "nodes": {"A": {"data_qubits": 2, "gate_time": 1e-6, "measure_time": 5e-6},
              "B": {"data_qubits": 2, "gate_time": 2e-6, "measure_time": 5e-6}},
    "links": [{"between": ["A", "B"]}]})


@dataclass(frozen=True)
class Wait(Op):
    """A node idles ``qubit``'s node for ``duration`` seconds: a local op with a time of its own
    and one unit of made-up cost, so that each method's effect can be seen."""

    qubit: int
    duration: float

    def check_types(self, k, num_qubits, num_clbits):
        if not 0 <= self.qubit < num_qubits:
            raise ProgramError(f"op {k}: wait qubit {self.qubit} out of range")

    def validate(self, k, network, where):
        if network.nodes[where[self.qubit]].repeater:
            raise ProgramError(f"op {k}: wait on a repeater")

    @property
    def qubits(self):
        return (self.qubit,)

    def moves(self):
        return {}

    def resources(self, network, where):
        return Usage(classical_bits=1)

    def instructions(self):
        return ()

    def lower(self, k, ctx):
        ctx.rt.gate(ctx.data[self.qubit].node, "id", [ctx.data[self.qubit]], ())

    def estimate(self, timeline):
        timeline.ready[self.qubit] += self.duration


def test_an_op_missing_a_method_cannot_be_built():
    @dataclass(frozen=True)
    class NoEstimate(Op):
        qubit: int

        def check_types(self, k, num_qubits, num_clbits): ...
        def validate(self, k, network, where): ...
        @property
        def qubits(self): return (self.qubit,)
        def moves(self): return {}
        def resources(self, network, where): return Usage()
        def instructions(self): return ()
        def lower(self, k, ctx): ...

    with pytest.raises(TypeError, match="estimate"):
        NoEstimate(0)
    with pytest.raises(TypeError):
        Op()


def test_a_program_refuses_what_is_not_an_op():
    with pytest.raises(ProgramError, match="op 1: unknown op"):
        DistributedProgram(1, 0, ("A",), [LocalGate(Instruction("h", (0,))), ("h", 0)])
    with pytest.raises(ProgramError, match="ops must be a list"):
        DistributedProgram(1, 0, ("A",), "h 0")
    program = DistributedProgram(1, 0, ("A",), [])
    program.ops.append(Instruction("h", (0,)))     # added after construction: validate sees it
    with pytest.raises(ProgramError, match="op 0: unknown op"):
        program.validate(NET)


def test_the_builtin_ops_keep_their_fields_equality_and_repr():
    assert Teleport(0, "B") == Teleport(0, "B") != Teleport(1, "B")
    assert repr(Teleport(0, "B")) == "Teleport(qubit=0, node='B')"
    assert RemoteGate(0, "B", ()).body == ()
    assert all(issubclass(kind, Op) for kind in (LocalGate, RemoteGate, Teleport))


def test_a_custom_op_is_costed_lowered_and_estimated_through_its_own_methods():
    h = LocalGate(Instruction("h", (0,)))
    plain = DistributedProgram(2, 0, ("A", "B"), [h])
    waited = DistributedProgram(2, 0, ("A", "B"), [h, Wait(0, 1e-3)])
    waited.validate(NET)

    with pytest.raises(ProgramError, match="wait qubit 5"):
        DistributedProgram(2, 0, ("A", "B"), [Wait(5, 1.0)]).validate(NET)

    cost = waited.cost(NET)    # not a teleport: no EPR pair, its own bit, one more layer
    assert (cost.epr_pairs, cost.teleports, cost.classical_bits, cost.depth) == (0, 0, 1, 2)

    assert estimate_makespan(waited, NET) == pytest.approx(estimate_makespan(plain, NET) + 1e-3)

    lowered = lower(waited, NET, ideal=True)
    assert [inst.name for inst in lowered.circuit.instructions] == ["h", "id"]
    assert lowered.final_qubits == (0, 1)
    assert logical_circuit(waited).instructions == [h.instruction]
