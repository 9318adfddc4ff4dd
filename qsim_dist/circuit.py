"""The one IR: a :class:`Circuit` is a flat list of :class:`Instruction`.

Qubit ``q`` is bit ``q`` of a basis-state index (little-endian, as Qiskit). Classical bit ``c`` is
bit ``c`` of the integer a register comparison reads; counts are printed with clbit 0 rightmost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import validation as check
from .errors import CircuitError
from .gates import GATES, NON_UNITARY, gate_spec


def _plain_bits(values: Any) -> bool:
    """``values`` is already a tuple of non-negative ints."""
    if type(values) is not tuple:
        return False
    for v in values:
        if type(v) is not int or v < 0:
            return False
    return True


def _plain_params(values: Any) -> bool:
    """``values`` is already a tuple of finite floats."""
    if type(values) is not tuple:
        return False
    for v in values:
        if type(v) is not float or not -math.inf < v < math.inf:
            return False
    return True


def _tuple_of(values: Any, what: str, plain: Callable[[Any], bool], each: Callable,
              kind: str) -> tuple:
    """``values`` as a tuple whose items pass ``each(item, name, CircuitError)``; a tuple that
    ``plain`` accepts is returned as it is (the fast path of every instruction built)."""
    if plain(values):
        return values
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise CircuitError(f"{what} must be {kind}, got {check.describe(values)}")
    return tuple(each(v, f"{what}[{j}]", CircuitError) for j, v in enumerate(values))


def _bits(values: Any, what: str) -> tuple[int, ...]:
    """``values`` as a tuple of non-negative ints (qubit or clbit numbers, range checked by the
    circuit); numpy integers become ints, anything else that is not an integer is refused."""
    return _tuple_of(values, what, _plain_bits, check.count, "a tuple of non-negative integers")


def _params(values: Any, what: str) -> tuple[float, ...]:
    """``values`` as a tuple of finite floats (nan or inf would give a NaN state)."""
    return _tuple_of(values, what, _plain_params, check.finite,
                     "a sequence of finite real numbers")


@dataclass(frozen=True)
class Condition:
    """Fires when the classical bits ``clbits`` (clbits[0] least significant) read as ``value``."""

    clbits: tuple[int, ...]
    value: int

    def __post_init__(self) -> None:
        clbits = _bits(self.clbits, "condition clbits")
        if not clbits:
            raise CircuitError("condition clbits must name at least one clbit")
        if len(set(clbits)) != len(clbits):
            raise CircuitError(f"condition clbits must be distinct, got {list(clbits)}")
        object.__setattr__(self, "clbits", clbits)
        object.__setattr__(self, "value", check.count(
            self.value, f"condition value on {len(clbits)} clbit(s)", CircuitError,
            maximum=(1 << len(clbits)) - 1))

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

    def __post_init__(self) -> None:
        # Fast path first: instructions are built in hot loops (passes, network runtime), where
        # fields are nearly always plain tuples of ints / finite floats already.
        if type(self.name) is not str:
            object.__setattr__(self, "name", str(check.text(self.name, "instruction name",
                                                            CircuitError)))  # e.g. numpy.str_
        qubits, params, clbits = self.qubits, self.params, self.clbits
        if type(qubits) is not tuple or type(params) is not tuple or type(clbits) is not tuple \
                or not _plain_bits(qubits + clbits) or not _plain_params(params):
            object.__setattr__(self, "qubits", _bits(qubits, f"{self.name}: qubits"))
            object.__setattr__(self, "params", _params(params, f"{self.name}: params"))
            object.__setattr__(self, "clbits", _bits(clbits, f"{self.name}: clbits"))
        if self.condition is not None and not isinstance(self.condition, Condition):
            raise CircuitError(f"{self.name}: condition must be a Condition or None, got "
                               f"{check.describe(self.condition)}")

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

    def __post_init__(self) -> None:
        check.text(self.name, "register name", CircuitError)
        object.__setattr__(self, "start", check.count(self.start, f"register '{self.name}' start",
                                                      CircuitError))
        object.__setattr__(self, "size", check.count(self.size, f"register '{self.name}' size",
                                                     CircuitError))


@dataclass
class Circuit:
    """A circuit on ``num_qubits`` qubits and ``num_clbits`` classical bits.

    Built gate by gate (each call checks its gate, qubits and parameters and returns the circuit):

    >>> bell = Circuit(2, name="bell").add("h", 0).add("cx", 0, 1).measure_all()
    >>> bell.num_gates, bell.num_clbits, bell.is_dynamic()
    (2, 2, False)
    >>> " ".join(i.name for i in bell.instructions)
    'h cx measure measure'
    >>> Circuit(2).add("cx", 0, 0)
    Traceback (most recent call last):
        ...
    qsim_dist.errors.CircuitError: cx: the same qubit appears twice in [0, 0]
    """

    num_qubits: int
    num_clbits: int = 0
    instructions: list[Instruction] = field(default_factory=list)
    qregs: list[Register] = field(default_factory=list)
    cregs: list[Register] = field(default_factory=list)
    name: str = "circuit"

    def __post_init__(self) -> None:
        self.num_qubits = check.count(self.num_qubits, "num_qubits", CircuitError)
        self.num_clbits = check.count(self.num_clbits, "num_clbits", CircuitError)
        check.text(self.name, "circuit name", CircuitError)
        for what, regs, size in (("qregs", self.qregs, self.num_qubits),
                                 ("cregs", self.cregs, self.num_clbits)):
            if isinstance(regs, (str, bytes)) or not isinstance(regs, Iterable):
                raise CircuitError(f"{what} must be a list of Register, got {check.describe(regs)}")
            for reg in regs:
                check.instance(reg, Register, f"each of {what}", CircuitError)
                if reg.start + reg.size > size:
                    raise CircuitError(f"{what}: register '{reg.name}' ({reg.start}..."
                                       f"{reg.start + reg.size - 1}) does not fit in {size} bits")
        if isinstance(self.instructions, (str, bytes)) or not isinstance(self.instructions,
                                                                          Iterable):
            raise CircuitError(f"instructions must be a list of Instruction, got "
                               f"{check.describe(self.instructions)}")
        if not isinstance(self.qregs, list):
            self.qregs = list(self.qregs)
        if not isinstance(self.cregs, list):
            self.cregs = list(self.cregs)
        if not self.qregs and self.num_qubits:
            self.qregs = [Register("q", 0, self.num_qubits)]
        if not self.cregs and self.num_clbits:
            self.cregs = [Register("c", 0, self.num_clbits)]
        checked, self.instructions = self.instructions, []
        for inst in checked:
            self.append(inst)

    # -- building ---------------------------------------------------------------------------
    def append(self, inst: Instruction) -> "Circuit":
        check.instance(inst, Instruction, "an appended instruction", CircuitError)
        self._validate(inst)
        self.instructions.append(inst)
        return self

    def add(self, name: str, *qubits: int, params: Iterable[float] = (), clbits: Iterable[int] = (),
            condition: Condition | None = None) -> "Circuit":
        """Append gate (or ``measure``/``reset``/``barrier``) ``name`` on ``qubits``.

        Qubits and clbits must be integers (``0.5``, ``"0"`` and ``True`` are refused, not
        rounded); ``params`` a sequence of finite real numbers.

        Raises
        ------
        CircuitError
            For any argument of the wrong type or out of range, naming the argument.
        """
        check.text(name, "gate name", CircuitError)
        qubits = tuple(check.index(q, self.num_qubits, f"{name}: qubit", CircuitError)
                       for q in qubits)
        return self.append(Instruction(name, qubits, _params(params, f"{name}: params"),
                                       _bits(clbits, f"{name}: clbits"), condition))

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
            if not q < n:
                raise CircuitError(f"{inst.name}: qubit {q} out of range (circuit has {n} qubits)")
        if len(set(inst.qubits)) != len(inst.qubits):
            raise CircuitError(f"{inst.name}: the same qubit appears twice in {list(inst.qubits)}")
        clbits = inst.clbits + (inst.condition.clbits if inst.condition else ())
        for c in clbits:
            if not c < self.num_clbits:
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
