"""The one IR: a :class:`Circuit` is a flat list of :class:`Instruction`.

Qubit ``q`` is bit ``q`` of a basis-state index (little-endian, as Qiskit). Classical bit ``c`` is
bit ``c`` of the integer a register comparison reads; counts are printed with clbit 0 rightmost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from .errors import CircuitError
from .gates import GATES, NON_UNITARY, gate_spec


@dataclass(frozen=True)
class Condition:
    """Fires when the classical bits ``clbits`` (clbits[0] least significant) read as ``value``."""

    clbits: tuple[int, ...]
    value: int

    def holds(self, bits: Sequence[int]) -> bool:
        read = 0
        for j, c in enumerate(self.clbits):
            read |= (int(bits[c]) & 1) << j
        return read == self.value


@dataclass(frozen=True)
class Instruction:
    """One gate, measurement, reset or barrier.

    ``measure`` has one qubit and one clbit; ``reset`` one qubit; ``barrier`` any qubits.
    """

    name: str
    qubits: tuple[int, ...]
    params: tuple[float, ...] = ()
    clbits: tuple[int, ...] = ()
    condition: Condition | None = None

    @property
    def is_gate(self) -> bool:
        return self.name not in NON_UNITARY

    def matrix(self):
        return gate_spec(self.name).matrix(self.params)


@dataclass(frozen=True)
class Register:
    name: str
    start: int  # first index in the circuit's flat qubit or clbit numbering
    size: int


@dataclass
class Circuit:
    """A circuit on ``num_qubits`` qubits and ``num_clbits`` classical bits."""

    num_qubits: int
    num_clbits: int = 0
    instructions: list[Instruction] = field(default_factory=list)
    qregs: list[Register] = field(default_factory=list)
    cregs: list[Register] = field(default_factory=list)
    name: str = "circuit"

    def __post_init__(self) -> None:
        if self.num_qubits < 0 or self.num_clbits < 0:
            raise CircuitError("a circuit cannot have a negative number of qubits or clbits")
        if not self.qregs and self.num_qubits:
            self.qregs = [Register("q", 0, self.num_qubits)]
        if not self.cregs and self.num_clbits:
            self.cregs = [Register("c", 0, self.num_clbits)]
        checked, self.instructions = self.instructions, []
        for inst in checked:
            self.append(inst)

    # -- building ---------------------------------------------------------------------------
    def append(self, inst: Instruction) -> "Circuit":
        self._validate(inst)
        self.instructions.append(inst)
        return self

    def add(self, name: str, *qubits: int, params: Iterable[float] = (), clbits: Iterable[int] = (),
            condition: Condition | None = None) -> "Circuit":
        return self.append(Instruction(name, tuple(int(q) for q in qubits),
                                       tuple(float(p) for p in params),
                                       tuple(int(c) for c in clbits), condition))

    def measure(self, qubit: int, clbit: int) -> "Circuit":
        return self.add("measure", qubit, clbits=(clbit,))

    def measure_all(self) -> "Circuit":
        """Add one clbit per qubit (a register ``meas``) and measure every qubit into it."""
        start = self.num_clbits
        self.num_clbits += self.num_qubits
        self.cregs.append(Register("meas", start, self.num_qubits))
        for q in range(self.num_qubits):
            self.measure(q, start + q)
        return self

    def _validate(self, inst: Instruction) -> None:
        n = self.num_qubits
        for q in inst.qubits:
            if not 0 <= q < n:
                raise CircuitError(f"{inst.name}: qubit {q} out of range (circuit has {n} qubits)")
        if len(set(inst.qubits)) != len(inst.qubits):
            raise CircuitError(f"{inst.name}: the same qubit appears twice in {list(inst.qubits)}")
        clbits = inst.clbits + (inst.condition.clbits if inst.condition else ())
        for c in clbits:
            if not 0 <= c < self.num_clbits:
                raise CircuitError(
                    f"{inst.name}: clbit {c} out of range (circuit has {self.num_clbits} clbits)")
        if inst.name == "measure":
            if len(inst.qubits) != 1 or len(inst.clbits) != 1:
                raise CircuitError("measure takes one qubit and one clbit")
        elif inst.name == "reset":
            if len(inst.qubits) != 1:
                raise CircuitError("reset takes one qubit")
        elif inst.name != "barrier":
            spec = GATES.get(inst.name)
            if spec is None:
                raise CircuitError(f"unknown gate '{inst.name}'")
            if len(inst.qubits) != spec.num_qubits:
                raise CircuitError(f"gate '{inst.name}' acts on {spec.num_qubits} qubit(s), "
                                   f"got {len(inst.qubits)}")
            if len(inst.params) != spec.num_params:
                raise CircuitError(f"gate '{inst.name}' takes {spec.num_params} parameter(s), "
                                   f"got {len(inst.params)}")

    # -- reading ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)

    def __len__(self) -> int:
        return len(self.instructions)

    @property
    def num_gates(self) -> int:
        return sum(1 for i in self.instructions if i.is_gate)

    def is_dynamic(self) -> bool:
        """True when some outcome can influence later quantum operations, so shots cannot all be
        sampled from one final state: a condition, a reset, or a gate/measure after a measurement
        on the same qubit."""
        measured: set[int] = set()
        for inst in self.instructions:
            if inst.condition is not None or inst.name == "reset":
                return True
            if inst.name == "measure":
                if inst.qubits[0] in measured:
                    return True
                measured.add(inst.qubits[0])
            elif inst.name != "barrier" and measured.intersection(inst.qubits):
                return True
        return False

    def copy(self) -> "Circuit":
        return Circuit(self.num_qubits, self.num_clbits, list(self.instructions), list(self.qregs),
                       list(self.cregs), self.name)

    def __repr__(self) -> str:
        return (f"Circuit({self.name!r}, qubits={self.num_qubits}, clbits={self.num_clbits}, "
                f"instructions={len(self.instructions)})")
