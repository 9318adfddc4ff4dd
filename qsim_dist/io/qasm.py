"""OpenQASM 2 and 3 import and export.

Reading
-------
:func:`loads` and :func:`load` parse with the maintained ``openqasm3`` parser (its grammar also
accepts OpenQASM 2 programs) and lower the AST to a :class:`~qsim_dist.circuit.Circuit`:

- quantum and classical registers (``qreg``/``creg``, ``qubit[n]``/``bit[n]``, ``qubit``/``bit``)
  are flattened in declaration order into qubit and clbit indices; the :class:`Register` records
  are kept. Operations on whole registers are broadcast (``h q;``, ``cx a, b;``,
  ``measure q -> c;``).
- ``include "qelib1.inc"`` and ``include "stdgates.inc"`` make the whole gate table
  (:data:`qsim_dist.gates.GATES`) available; no file is read, and any other include is an error.
  ``U`` and ``CX`` are always available.
- User ``gate`` definitions are expanded into table gates. A definition named like a table gate,
  with the same arity, whose body reproduces the table gate's matrix up to global phase (as the
  exporters below and Qiskit's write them) stays that table gate; any other definition overrides
  the table for the rest of the file.
- ``gphase`` is a global phase and is dropped; ``ctrl @ gphase(a) q`` is ``p(a) q``.
  ``inv @`` and integer ``pow(k) @`` apply to any gate; ``ctrl @``/``ctrl(n) @`` apply to gates
  whose controlled form is in the table (``ctrl @ x`` is ``cx``, ``ctrl(2) @ x`` is ``ccx``, ...).
- ``if (c == v)`` on a whole register, ``if (c[i])``, ``if (c[i] == v)``, ``if (!c[i])``,
  ``if (c[i] != v)`` and ``&&`` of single-bit tests; every statement of the body becomes one
  conditioned instruction. ``else`` is accepted on a single-bit condition.
- Numeric ``const`` declarations are evaluated and usable in expressions.
- ``input float x;`` / ``input angle x;`` parameters take their values from ``inputs=`` (every
  declared input needs one; ``qsim-dist run --input x=0.3``) and are used as constants;
  :func:`input_names` lists them, and :func:`qsim_dist.autodiff.qasm_expectation_fn` makes them
  the arguments of a differentiable expectation value.

Limits (each a one-line :class:`~qsim_dist.errors.QasmError` past it): expanding the file (gate
definitions, broadcasts over registers, ``pow(k) @``) may produce at most ``max_instructions``
instructions and operand bits, counted at every level of nesting as they are produced (default
:data:`MAX_INSTRUCTIONS`, ten million: a few nested definitions that each call the previous one
twice would otherwise expand exponentially); parentheses, brackets and runs of operators nest at
most :data:`MAX_NESTING` deep (the parser recurses on them). Every number in the program must be
finite (``1e400``, ``1e308*10``, ``nan`` are refused); OpenQASM 2 indices must be in
``[0, size)`` (OpenQASM 3 also takes ``-size <= i < 0``, counted from the end).

Not supported (each a one-line :class:`~qsim_dist.errors.QasmError`): classical computation
(``int``/``float`` variables, assignments, loops, subroutines), ``output``, inputs other
than ``float`` and ``angle``,
``negctrl @``, non-integer ``pow``, ``measure`` without a target bit, timing (``delay``,
``box``), physical qubits (``$0``), and OpenQASM 2 identifiers that are OpenQASM 3 keywords (a
register called ``in`` or ``output``), which the OpenQASM 3 grammar rejects.

Writing
-------
:func:`dumps` and :func:`dump` write OpenQASM 2 (``include "qelib1.inc";``) or 3
(``include "stdgates.inc";``), one register declaration per :class:`Register`, a ``gate``
definition (from :attr:`GateSpec.definition`) for every used gate the target library lacks, and
parameters as ``repr`` of the float so that they read back exactly. OpenQASM 3 conditions are
``c == v`` on a whole register and ``c[i]`` / ``!c[i]`` (joined by ``&&``) on single bits, as
``qiskit.qasm3.loads`` accepts them (it rejects ``c[i] == 1``).
"""

from __future__ import annotations

import contextlib
import io
import math
import operator
import os
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .. import validation as check
from ..circuit import Circuit, Condition, Instruction, Register
from ..errors import CircuitError, QasmError
from ..gates import GATES, GateSpec, definition_gates, inverse_of, with_controls
from ..linalg import operator_of

__all__ = ["load", "loads", "dump", "dumps", "MAX_INSTRUCTIONS", "MAX_NESTING"]

#: Default of ``max_instructions`` of :func:`loads` / :func:`load` (see "Limits" above).
MAX_INSTRUCTIONS = check.MAX_EXPANDED_INSTRUCTIONS
#: The deepest nesting of parentheses/brackets, or the longest run of operators, in the source.
MAX_NESTING = 64

_LIBRARIES = ("qelib1.inc", "stdgates.inc")

_CONSTANTS = {"pi": math.pi, "π": math.pi, "tau": math.tau, "τ": math.tau,
              "euler": math.e, "ℇ": math.e}
_FUNCTIONS = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "ln": math.log,
              "sqrt": math.sqrt, "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan}
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
           "**": math.pow, "%": math.fmod}

# A gate as expanded on local qubits 0..k-1: (table name or "barrier", qubits, params).
Op = tuple[str, tuple[int, ...], tuple[float, ...]]

_HEADER2 = re.compile(r"^\s*OPENQASM\s+2(\.\d+)?\s*;", re.M)
_LINE_COMMENT = re.compile(r"//[^\n]*")
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_OPAQUE = re.compile(r"\bopaque\s+([A-Za-z_]\w*)[^;]*;")
_PARSER_POS = re.compile(r"L(\d+):C(\d+): (.*)", re.S)
_ANTLR_POS = re.compile(r"line (\d+):(\d+) (.*)")


class _Err(Exception):
    """A user mistake found while lowering; :func:`_at` adds the line number."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@contextlib.contextmanager
def _at(node: Any) -> Iterator[None]:
    """Turn an :class:`_Err` raised while handling ``node`` into a QasmError naming its line."""
    try:
        yield
    except _Err as exc:
        span = getattr(node, "span", None)
        where = f"line {span.start_line}: " if span is not None else ""
        raise QasmError(_one_line(f"{where}{exc}")) from None


# ---- reading ---------------------------------------------------------------------------------


def loads(text: str, name: str = "circuit", *,
          max_instructions: int = MAX_INSTRUCTIONS,
          inputs: Mapping[str, float] | None = None) -> Circuit:
    """Read an OpenQASM 2 or 3 program.

    Parameters
    ----------
    text
        The program source.
    name
        Name given to the returned circuit.
    max_instructions
        Most instructions (and operand bits) the expansion may produce (see "Limits" above).
    inputs
        The value of each OpenQASM 3 ``input float`` / ``input angle`` the program declares
        (:func:`input_names` lists them); every declared input needs one.

    Returns
    -------
    Circuit
        The lowered circuit (see the module docstring for what is supported).

    Raises
    ------
    QasmError
        On any syntax error or invalid program, with the line number where one is known.
    """
    check.text(text, "OpenQASM source", QasmError)
    check.text(name, "circuit name", QasmError)
    max_instructions = check.count(max_instructions, "max_instructions", QasmError, minimum=1)
    if _is_blank(text):
        raise QasmError("empty OpenQASM source: no OPENQASM header and no statements")
    text, opaque = _normalise(text)
    _check_nesting(text)
    program = _parse(text)
    from openqasm3 import ast

    version = str(program.version or "3")
    if version.split(".")[0] not in ("2", "3"):
        raise QasmError(f"unsupported OpenQASM version {version}")
    lowerer = _Lowerer(ast, int(version[0]), opaque, max_instructions, _checked_inputs(inputs))
    try:
        return lowerer.run(program, name)
    except RecursionError:  # e.g. thousands of gate definitions each calling the previous one
        raise QasmError("the program nests gate definitions or expressions too deeply to "
                        "expand") from None


def load(path: str | os.PathLike, *, max_instructions: int = MAX_INSTRUCTIONS,
         inputs: Mapping[str, float] | None = None) -> Circuit:
    """Read an OpenQASM 2 or 3 file; the circuit is named after the file's stem (``inputs``:
    the values of its ``input`` parameters, see :func:`loads`).

    Raises
    ------
    QasmError
        If the file is missing or unreadable, or its content is invalid (see :func:`loads`).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise QasmError(f"an OpenQASM file path must be a str or path, got {check.describe(path)}")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QasmError(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise QasmError(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise QasmError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return loads(text, name=path.stem, max_instructions=max_instructions, inputs=inputs)
    except QasmError as exc:
        raise QasmError(f"{path}: {exc}") from None


def input_names(text: str) -> list[str]:
    """The OpenQASM 3 ``input`` parameters a program declares, in declaration order."""
    check.text(text, "OpenQASM source", QasmError)
    text, _ = _normalise(text)
    _check_nesting(text)
    from openqasm3 import ast

    return [stmt.identifier.name for stmt in _parse(text).statements
            if isinstance(stmt, ast.IODeclaration) and stmt.io_identifier.name == "input"]


def _checked_inputs(inputs: Mapping[str, float] | None) -> dict[str, float]:
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        raise QasmError(f"inputs must map input names to numbers, got {check.describe(inputs)}")
    out = {}
    for key, value in inputs.items():
        if not isinstance(key, str):
            raise QasmError(f"inputs: a name must be a str, got {check.describe(key)}")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)) \
                or not math.isfinite(float(value)):
            raise QasmError(f"inputs: {key} must be a finite number, got "
                            f"{check.describe(value)}")
        out[key] = float(value)
    return out


def _is_blank(text: str) -> bool:
    return not _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", text)).strip()


def _normalise(text: str) -> tuple[str, set[str]]:
    """Make an OpenQASM 2 source acceptable to the OpenQASM 3 grammar.

    The only OpenQASM 2 construct the grammar lacks is ``opaque``: such declarations are removed
    (keeping line numbers) and their names returned, so that a later use reports a clear error.
    """
    if not _HEADER2.search(text):
        return text, set()
    # OpenQASM 2 has only // comments; dropping them keeps `opaque` inside a comment from matching.
    text = _LINE_COMMENT.sub("", text)
    opaque: set[str] = set()

    def drop(match: re.Match) -> str:
        opaque.add(match.group(1))
        return "\n" * match.group(0).count("\n")

    return _OPAQUE.sub(drop, text), opaque


_OPERATOR_CHARS = frozenset("+-*/%^~!&|<>=@")


def _check_nesting(text: str) -> None:
    """Refuse sources the recursive parser would overflow on, quickly and with the line: the
    parser needs Python stack per nesting level and takes many seconds to fail past it."""
    scan = _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"),
                                                    text))
    depth = run = 0
    line = 1
    for ch in scan:
        if ch == "\n":
            line += 1
        elif ch in "([":
            depth += 1
            run = 0
            if depth > MAX_NESTING:
                raise QasmError(f"line {line}: parentheses or brackets nested more than "
                                f"{MAX_NESTING} deep")
        elif ch in ")]":
            depth = max(depth - 1, 0)
            run = 0
        elif ch in _OPERATOR_CHARS:
            run += 1
            if run > MAX_NESTING:
                raise QasmError(f"line {line}: more than {MAX_NESTING} operators in a row")
        elif not ch.isspace():
            run = 0


def _parse(text: str):
    import openqasm3
    from openqasm3.parser import QASM3ParsingError

    # ANTLR's default listener prints "line 1:0 ..." to stderr; keep it to build our message.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return openqasm3.parse(text)
    except QASM3ParsingError as exc:
        raise QasmError(_syntax_message(exc, captured.getvalue())) from None
    except RecursionError:
        raise QasmError("an expression or statement is nested too deeply for the parser "
                        "(split long expressions, e.g. into const declarations)") from None
    except Exception as exc:  # the AST builder fails on some inputs the grammar accepts
        raise QasmError(_one_line(f"cannot parse OpenQASM source: {exc!r}")) from None


def _syntax_message(exc: Exception, antlr_output: str) -> str:
    """One line 'line L, column C: syntax error: ...' from whatever the parser reported."""
    match = _PARSER_POS.match(str(exc)) or _ANTLR_POS.search(antlr_output)
    if match:
        line, column, what = int(match.group(1)), int(match.group(2)), match.group(3)
    else:
        cause = exc.__cause__.args[0] if exc.__cause__ and exc.__cause__.args else None
        token = getattr(cause, "offendingToken", None)
        if token is None:
            return "syntax error"
        line, column = token.line, token.column
        found = "end of input" if token.type == -1 else repr(token.text)
        what = f"unexpected {found}"
        recognizer = getattr(cause, "recognizer", None)
        if recognizer is not None:
            expected = cause.getExpectedTokens()
            if len(expected) <= 4:
                names = expected.toString(recognizer.literalNames, recognizer.symbolicNames)
                what = f"expected {names.strip('{}')} before {found}"
    return _one_line(f"line {line}, column {column + 1}: syntax error: {what}")


@dataclass
class _GateDef:
    """A user ``gate`` definition; ``scope`` holds the user gates visible from its body."""

    name: str
    params: tuple[str, ...]
    qubits: tuple[str, ...]
    body: list
    scope: dict[str, "_GateDef"]
    fixed: bool = True  # its expansion's size does not depend on the parameters (pow @ does)
    costs: dict = field(default_factory=dict)  # args (None when fixed) -> (size, work)


class _Lowerer:
    """Walks the openqasm3 AST once and collects instructions."""

    def __init__(self, ast: Any, version: int, opaque: set[str],
                 max_instructions: int = MAX_INSTRUCTIONS,
                 inputs: Mapping[str, float] | None = None):
        self.ast = ast
        self.inputs = dict(inputs or {})   # values of the program's input parameters
        self.budget = max_instructions  # instructions and operand bits still allowed
        self.max_instructions = max_instructions
        self.version = version
        self.opaque = opaque
        self.library = False  # a built-in include was seen
        self.gates: dict[str, _GateDef] = {}
        self.kept: set[str] = set()  # definitions recognised as the table gate of that name
        self.consts: dict[str, float] = {}
        self.qregs: dict[str, Register] = {}
        self.cregs: dict[str, Register] = {}
        self.num_qubits = 0
        self.num_clbits = 0
        self.out: list[Instruction] = []
        self.lenient = False  # trial expansion of a definition: math errors are not the user's
        self.shallow = False  # trial expansion that does not enter user gates (checked already)
        self.paid = False  # inside an expansion whose whole cost was counted up front

    def run(self, program: Any, name: str) -> Circuit:
        for stmt in program.statements:
            with _at(stmt):
                self._statement(stmt, None)
        unused = sorted(set(self.inputs) - set(self.consts))
        if unused:
            raise QasmError(f"inputs name {', '.join(unused)}, which the program does not "
                            "declare as input")
        try:
            return Circuit(self.num_qubits, self.num_clbits, self.out, list(self.qregs.values()),
                           list(self.cregs.values()), name)
        except CircuitError as exc:  # not expected: every instruction was checked above
            raise QasmError(_one_line(str(exc))) from None

    # -- statements ---------------------------------------------------------------------------
    def _statement(self, stmt: Any, condition: Condition | None) -> None:
        a = self.ast
        conditional = (a.QuantumGate, a.QuantumPhase, a.QuantumMeasurementStatement,
                       a.QuantumReset, a.QuantumBarrier)
        if condition is not None and not isinstance(stmt, conditional):
            raise _Err(f"{_describe(stmt)} cannot appear inside an if body "
                       "(only gates, measure, reset and barrier)")
        if isinstance(stmt, a.Include):
            if stmt.filename not in _LIBRARIES:
                raise _Err(f"cannot include '{stmt.filename}': only qelib1.inc and stdgates.inc "
                           "are built in (other files are not read)")
            self.library = True
        elif isinstance(stmt, a.QubitDeclaration):
            self._declare(stmt.qubit.name, stmt.size, quantum=True)
        elif isinstance(stmt, a.ClassicalDeclaration):
            if not isinstance(stmt.type, a.BitType):
                raise _Err(f"classical variables of type {_type_name(stmt.type)} are not "
                           "supported (only bit registers)")
            if stmt.init_expression is not None:
                raise _Err("initialised bit registers are not supported")
            self._declare(stmt.identifier.name, stmt.type.size, quantum=False)
        elif isinstance(stmt, a.ConstantDeclaration):
            name = stmt.identifier.name
            self._check_new_name(name)
            self.consts[name] = self._eval(stmt.init_expression, {})
        elif isinstance(stmt, a.QuantumGateDefinition):
            self._define(stmt)
        elif isinstance(stmt, (a.QuantumGate, a.QuantumPhase)):
            self._gate(stmt, condition)
        elif isinstance(stmt, a.QuantumMeasurementStatement):
            self._measure(stmt, condition)
        elif isinstance(stmt, a.QuantumReset):
            for q in self._qubit_list([stmt.qubits]):
                self.out.append(Instruction("reset", (q,), condition=condition))
        elif isinstance(stmt, a.QuantumBarrier):
            if not stmt.qubits:
                self._spend(self.num_qubits)
            qubits = self._qubit_list(stmt.qubits) or list(range(self.num_qubits))
            # a barrier does nothing to the state: a condition on it is dropped (OpenQASM 2 has
            # no conditioned barrier to write it back as)
            self.out.append(Instruction("barrier", tuple(qubits)))
        elif isinstance(stmt, a.BranchingStatement):
            self._branch(stmt)
        elif isinstance(stmt, a.Pragma):
            pass  # directives for other tools
        elif isinstance(stmt, a.IODeclaration):
            self._input(stmt)
        else:
            raise _Err(f"{_describe(stmt)} is not supported")

    def _input(self, stmt: Any) -> None:
        """``input float x;`` / ``input angle x;``: a parameter whose value the caller gives
        (``inputs=``), used in expressions as a constant."""
        a, name = self.ast, stmt.identifier.name
        if stmt.io_identifier.name != "input":
            raise _Err(f"{stmt.io_identifier.name} declarations are not supported (results are "
                       "the measured bits)")
        if not isinstance(stmt.type, (a.FloatType, a.AngleType)):
            raise _Err(f"input {name}: only float and angle inputs are supported, not "
                       f"{_type_name(stmt.type)}")
        self._check_new_name(name)
        if name not in self.inputs:
            raise _Err(f"input {name} has no value (pass inputs={{'{name}': ...}}, or "
                       f"--input {name}=VALUE on the command line)")
        self.consts[name] = self.inputs[name]

    def _spend(self, n: int) -> None:
        """Count ``n`` more instructions (or operand bits) produced; refuse past the limit, before
        the work is done."""
        self.budget -= n
        if self.budget < 0:
            raise _Err(f"the program expands to more than {self.max_instructions} instructions "
                       "(nested gate definitions, broadcasts or pow @); the limit is "
                       "max_instructions of qsim_dist.io.qasm.load/loads")

    def _check_new_name(self, name: str) -> None:
        if name in self.qregs or name in self.cregs or name in self.consts:
            raise _Err(f"'{name}' is already declared")

    def _declare(self, name: str, size_expr: Any, quantum: bool) -> None:
        self._check_new_name(name)
        size = 1 if size_expr is None else self._eval_int(size_expr, {})
        if size < 1:
            raise _Err(f"register '{name}' must have a positive size, got {size}")
        if quantum:
            self.qregs[name] = Register(name, self.num_qubits, size)
            self.num_qubits += size
        else:
            self.cregs[name] = Register(name, self.num_clbits, size)
            self.num_clbits += size

    def _gate(self, stmt: Any, condition: Condition | None) -> None:
        k, ops = self._ops_for(stmt, {}, self.gates)
        name = _gate_name(stmt)
        operands = [self._operand(q, quantum=True) for q in stmt.qubits]
        if len(operands) != k:
            raise _Err(f"gate '{name}' acts on {k} qubit(s), got {len(operands)}")
        for qubits in _broadcast(operands, [_operand_label(q) for q in stmt.qubits]):
            if len(set(qubits)) != len(qubits):
                dup = next(q for q in qubits if qubits.count(q) > 1)
                raise _Err(f"gate '{name}' uses qubit {self._qubit_label(dup)} more than once")
            self._spend(len(ops))
            for op_name, local, params in ops:
                self.out.append(Instruction(op_name, tuple(qubits[i] for i in local), params,
                                            condition=condition))

    def _measure(self, stmt: Any, condition: Condition | None) -> None:
        if stmt.target is None:
            raise _Err("measure without a target bit is not supported (write c[i] = measure q[j];)")
        qubits = self._operand(stmt.measure.qubit, quantum=True)
        clbits = self._operand(stmt.target, quantum=False)
        if len(qubits) != len(clbits):
            raise _Err(f"measure: register size mismatch ({len(qubits)} qubit(s) into "
                       f"{len(clbits)} bit(s))")
        for q, c in zip(qubits, clbits):
            self.out.append(Instruction("measure", (q,), (), (c,), condition))

    def _branch(self, stmt: Any) -> None:
        cond = self._condition(stmt.condition)
        for inner in stmt.if_block:
            with _at(inner):
                self._statement(inner, cond)
        if stmt.else_block:
            if len(cond.clbits) != 1:
                raise _Err("else is supported only after a condition on a single bit")
            negated = Condition(cond.clbits, 1 - cond.value)
            for inner in stmt.else_block:
                with _at(inner):
                    self._statement(inner, negated)

    # -- gates --------------------------------------------------------------------------------
    def _resolve(self, name: str, scope: dict[str, _GateDef]) -> GateSpec | _GateDef:
        if name in scope:
            return scope[name]
        if name in GATES and (self.library or GATES[name].qasm_builtin or name in self.kept):
            return GATES[name]
        if name in self.opaque:
            raise _Err(f"gate '{name}' is declared opaque and has no definition")
        if name in GATES:
            lib = "qelib1.inc" if self.version == 2 else "stdgates.inc"
            raise _Err(f"unknown gate '{name}' (missing include \"{lib}\"?)")
        raise _Err(f"unknown gate '{name}'")

    def _ops_for(self, stmt: Any, env: dict[str, float],
                 scope: dict[str, _GateDef]) -> tuple[int, list[Op]]:
        """(number of qubits, ops on local qubits) for a gate call or gphase statement."""
        mods = [self._modifier(m, env) for m in stmt.modifiers]
        if isinstance(stmt, self.ast.QuantumPhase):
            return _phase_ops(self._eval(stmt.argument, env), mods)
        name = stmt.name.name
        target = self._resolve(name, scope)
        args = tuple(float(self._eval(e, env)) for e in stmt.arguments)
        wanted = target.num_params if isinstance(target, GateSpec) else len(target.params)
        if len(args) != wanted:
            raise _Err(f"gate '{name}' takes {wanted} parameter(s), got {len(args)}")
        if isinstance(target, GateSpec):
            k = target.num_qubits
            ops: list[Op] = [(target.name, tuple(range(k)), args)]
        else:
            k = len(target.qubits)
            if self.shallow:
                # the callee's body was checked at its own definition; expanding it here again
                # would make checking nested definitions exponential
                for kind, value in mods:
                    if kind == "pow" and value != int(value):
                        raise _Err("pow @ with a non-integer exponent is not supported")
                    if kind == "negctrl":
                        raise _Err("negctrl @ is not supported")
                    if kind == "ctrl":
                        k += int(value)
                return k, []
            ops = self._expand_paid(target, args)
        for kind, value in reversed(mods):  # the modifier nearest the gate applies first
            if kind == "inv":
                ops = _inverse_ops(ops)
            elif kind == "pow":
                if value != int(value):
                    raise _Err("pow @ with a non-integer exponent is not supported")
                if not self.paid:
                    self._spend(len(ops) * abs(int(value)))
                ops = (ops if value >= 0 else _inverse_ops(ops)) * abs(int(value))
            elif kind == "ctrl":
                ops = _control(ops, int(value), name)
                k += int(value)
            else:
                raise _Err("negctrl @ is not supported")
        return k, ops

    def _modifier(self, mod: Any, env: dict[str, float]) -> tuple[str, float]:
        kind = mod.modifier.name
        if mod.argument is None:
            if kind == "pow":
                raise _Err("pow @ needs an exponent")
            return kind, 1
        value = self._eval(mod.argument, env)
        if kind in ("ctrl", "negctrl") and (value != int(value) or value < 1):
            raise _Err(f"{kind} @ needs a positive integer, got {value}")
        return kind, value

    def _expand_paid(self, gdef: _GateDef, args: Sequence[float]) -> list[Op]:
        """:meth:`_expand`, its whole work counted first (:meth:`_cost`): an expansion past the
        limit is refused at once, not after minutes of work."""
        if self.paid:
            return self._expand(gdef, args)
        self._spend(self._cost(gdef, tuple(args))[1])
        self.paid = True
        try:
            return self._expand(gdef, args)
        finally:
            self.paid = False

    def _cost(self, gdef: _GateDef, args: tuple[float, ...]) -> tuple[int, int]:
        """(number of ops, ops produced at every level) of expanding ``gdef`` with ``args``,
        without expanding it: memoised per definition (per arguments when ``pow @`` depends on
        them), so that nested definitions cost time linear in their number."""
        key = None if gdef.fixed else args
        hit = gdef.costs.get(key)
        if hit is not None:
            return hit
        env = dict(zip(gdef.params, args))
        size = work = 0
        for stmt in gdef.body:
            with _at(stmt):
                if isinstance(stmt, self.ast.QuantumBarrier):
                    n, inner = 1, 0
                elif isinstance(stmt, (self.ast.QuantumGate, self.ast.QuantumPhase)):
                    n, inner = self._call_cost(stmt, env, gdef.scope)
                else:
                    n, inner = 0, 0  # an error, reported by the expansion itself
            size += n
            work += inner + n
            if work > self.budget:
                break  # over the limit anyway: stop counting
        if len(gdef.costs) > 1024:
            gdef.costs.clear()
        gdef.costs[key] = (size, work)
        return size, work

    def _call_cost(self, stmt: Any, env: dict[str, float],
                   scope: dict[str, _GateDef]) -> tuple[int, int]:
        """(ops, work) of one gate call in a body, as :meth:`_ops_for` would produce them."""
        reps = 1
        for mod in stmt.modifiers:
            kind, value = self._modifier(mod, env)
            if kind == "pow" and value == int(value):
                reps *= abs(int(value))
        if isinstance(stmt, self.ast.QuantumPhase):
            return 1, 0
        target = self._resolve(stmt.name.name, scope)
        if isinstance(target, GateSpec):
            return reps, reps
        args: tuple[float, ...] = ()
        if not target.fixed:
            args = tuple(float(self._eval(e, env)) for e in stmt.arguments)
            if len(args) != len(target.params):
                return 0, 0  # an error, reported by the expansion itself
        n, inner = self._cost(target, args)
        return n * reps, inner + n * reps

    def _expand(self, gdef: _GateDef, args: Sequence[float]) -> list[Op]:
        env = dict(zip(gdef.params, args))
        local = {q: i for i, q in enumerate(gdef.qubits)}
        ops: list[Op] = []
        for stmt in gdef.body:
            with _at(stmt):
                if isinstance(stmt, self.ast.QuantumBarrier):
                    qs = [self._local(q, local) for q in stmt.qubits] or list(local.values())
                    ops.append(("barrier", tuple(qs), ()))
                    continue
                if not isinstance(stmt, (self.ast.QuantumGate, self.ast.QuantumPhase)):
                    raise _Err(f"{_describe(stmt)} is not allowed in a gate body")
                k, sub = self._ops_for(stmt, env, gdef.scope)
                qs = [self._local(q, local) for q in stmt.qubits]
                if len(qs) != k:
                    raise _Err(f"gate '{_gate_name(stmt)}' acts on {k} qubit(s), got {len(qs)}")
                if len(set(qs)) != len(qs):
                    raise _Err(f"gate '{_gate_name(stmt)}' uses a qubit more than once")
                ops.extend((n, tuple(qs[i] for i in lq), p) for n, lq, p in sub)
        return ops

    def _local(self, node: Any, local: dict[str, int]) -> int:
        if not isinstance(node, self.ast.Identifier):
            raise _Err("qubits inside a gate body must be the gate's own arguments, "
                       "without indexing")
        if node.name not in local:
            raise _Err(f"unknown qubit '{node.name}' in gate body")
        return local[node.name]

    def _define(self, stmt: Any) -> None:
        name = stmt.name.name
        if name in self.gates or name in self.kept:
            raise _Err(f"gate '{name}' is already defined")
        params = tuple(p.name for p in stmt.arguments)
        qubits = tuple(q.name for q in stmt.qubits)
        for arg in params + qubits:
            if (params + qubits).count(arg) > 1:
                raise _Err(f"gate '{name}' has two arguments called '{arg}'")
        gdef = _GateDef(name, params, qubits, stmt.body, dict(self.gates),
                        _fixed_cost(stmt.body, set(params), self.gates, self.ast))
        # Expanding the body now reports its mistakes at their own lines, even for unused gates;
        # random parameters also let the body be compared with a table gate of the same name
        # (only then are user gates in the body expanded: the check is shallow otherwise).
        spec = GATES.get(name)
        like_table = spec is not None and (spec.num_params, spec.num_qubits) == (len(params),
                                                                                 len(qubits))
        rng = np.random.default_rng(20240607)
        samples = [tuple(rng.uniform(-math.pi, math.pi, len(params)))
                   for _ in range(2 if like_table else 1)]
        self.lenient, self.shallow = True, not like_table
        try:
            trials = [self._expand(gdef, s) if self.shallow else self._expand_paid(gdef, s)
                      for s in samples]
        finally:
            self.lenient = self.shallow = False
        gdef.costs.clear()  # counted with trial parameters in lenient mode
        if (like_table and all(_equal_up_to_phase(_unitary(len(qubits), ops), spec.matrix(s))
                        for ops, s in zip(trials, samples))):
            self.kept.add(name)
        else:
            self.gates[name] = gdef

    # -- operands -----------------------------------------------------------------------------
    def _register(self, name: str, quantum: bool) -> Register:
        regs, other = (self.qregs, self.cregs) if quantum else (self.cregs, self.qregs)
        if name in regs:
            return regs[name]
        if name.startswith("$"):
            raise _Err(f"physical qubits ({name}) are not supported")
        kind = "qubit" if quantum else "classical"
        if name in other:
            raise _Err(f"'{name}' is not a {kind} register")
        raise _Err(f"undeclared {kind} register '{name}'")

    def _operand(self, node: Any, quantum: bool) -> list[int]:
        a = self.ast
        if isinstance(node, a.Identifier):
            reg = self._register(node.name, quantum)
            self._spend(reg.size)
            return list(range(reg.start, reg.start + reg.size))
        if not isinstance(node, a.IndexedIdentifier):
            raise _Err(f"unsupported operand {type(node).__name__}")
        reg = self._register(node.name.name, quantum)
        if len(node.indices) != 1:
            raise _Err(f"multi-dimensional indexing of '{reg.name}' is not supported")
        return [reg.start + i for i in self._indices(node.indices[0], reg)]

    def _indices(self, index: Any, reg: Register) -> list[int]:
        """Positions in ``reg`` named by one index: a list of expressions (the parser's form
        of ``[i]`` and ``[a:b]``) or a discrete set ``{i, j}``."""
        a = self.ast
        if isinstance(index, list):
            if len(index) != 1:
                raise _Err(f"multi-dimensional indexing of '{reg.name}' is not supported")
            index = index[0]
        if isinstance(index, a.RangeDefinition):
            start = 0 if index.start is None else self._eval_int(index.start, {})
            end = reg.size - 1 if index.end is None else self._eval_int(index.end, {})
            step = 1 if index.step is None else self._eval_int(index.step, {})
            if step == 0:
                raise _Err("range step cannot be zero")
            span = range(start, end + (1 if step > 0 else -1), step)
            self._spend(len(span))
            raw = list(span)
        elif isinstance(index, a.DiscreteSet):
            raw = [self._eval_int(v, {}) for v in index.values]
        else:
            raw = [self._eval_int(index, {})]
        out = []
        # OpenQASM 3 counts negative indices from the end; OpenQASM 2 has none (q[-1] is an error,
        # not q[size-1])
        low = -reg.size if self.version >= 3 else 0
        for i in raw:
            if not low <= i < reg.size:
                allowed = (f"{low}..{reg.size - 1}" if reg.size else "none")
                raise _Err(f"index {i} out of range for register '{reg.name}' of size {reg.size} "
                           f"(allowed: {allowed})")
            out.append(i % reg.size)
        return out

    def _qubit_list(self, operands: Sequence[Any]) -> list[int]:
        """All qubits named by ``operands``, in order, each once."""
        seen: dict[int, None] = {}
        for node in operands:
            seen.update(dict.fromkeys(self._operand(node, quantum=True)))
        return list(seen)

    def _qubit_label(self, qubit: int) -> str:
        for reg in self.qregs.values():
            if reg.start <= qubit < reg.start + reg.size:
                return f"{reg.name}[{qubit - reg.start}]"
        return str(qubit)

    # -- conditions ---------------------------------------------------------------------------
    def _condition(self, expr: Any) -> Condition:
        a = self.ast
        if isinstance(expr, a.BinaryExpression) and expr.op.name in ("==", "!="):
            lhs, rhs = expr.lhs, expr.rhs
            if not isinstance(lhs, (a.Identifier, a.IndexExpression)):
                lhs, rhs = rhs, lhs  # `1 == c[0]`
            bits = self._condition_bits(lhs)
            value = self._eval(rhs, {})
            if value != int(value) or not 0 <= value < (1 << len(bits)):
                raise _Err(f"condition value {value} does not fit in {len(bits)} bit(s)")
            value = int(value)
            if expr.op.name == "!=":
                if len(bits) != 1:
                    raise _Err("'!=' is supported only on a single bit")
                value = 1 - value
            return Condition(bits, value)
        if isinstance(expr, a.BinaryExpression) and expr.op.name == "&&":
            left, right = self._condition(expr.lhs), self._condition(expr.rhs)
            if set(left.clbits) & set(right.clbits):
                raise _Err("'&&' of conditions on the same bit is not supported")
            return Condition(left.clbits + right.clbits,
                             left.value | (right.value << len(left.clbits)))
        if isinstance(expr, a.UnaryExpression) and expr.op.name == "!":
            inner = self._condition(expr.expression)
            if len(inner.clbits) != 1:
                raise _Err("'!' is supported only on a single bit")
            return Condition(inner.clbits, 1 - inner.value)
        if isinstance(expr, (a.Identifier, a.IndexExpression)):
            bits = self._condition_bits(expr)
            if len(bits) != 1:
                raise _Err("a condition on a register needs a value (if (c == 3) ...)")
            return Condition(bits, 1)
        raise _Err("unsupported condition: use c == value, c[i], !c[i], c[i] == value or &&")

    def _condition_bits(self, expr: Any) -> tuple[int, ...]:
        a = self.ast
        if isinstance(expr, a.Identifier):
            reg = self._register(expr.name, quantum=False)
            self._spend(reg.size)
            return tuple(range(reg.start, reg.start + reg.size))
        if isinstance(expr, a.IndexExpression) and isinstance(expr.collection, a.Identifier):
            reg = self._register(expr.collection.name, quantum=False)
            return tuple(reg.start + i for i in self._indices(expr.index, reg))
        raise _Err("unsupported condition: use c == value, c[i], !c[i], c[i] == value or &&")

    # -- expressions --------------------------------------------------------------------------
    def _eval(self, expr: Any, env: dict[str, float]) -> float:
        """The value of ``expr``: always a finite number (a nan or inf angle would give a NaN
        state, sampled as all ones)."""
        value = self._eval_node(expr, env)
        if isinstance(value, float) and not math.isfinite(value):
            if self.lenient:  # trial expansion with random parameters: not the user's mistake
                return 1.0
            raise _Err(f"{_expression_text(expr)} is not a finite number ({value})")
        return value

    def _eval_node(self, expr: Any, env: dict[str, float]) -> float:
        a = self.ast
        if isinstance(expr, (a.IntegerLiteral, a.FloatLiteral, a.BitstringLiteral)):
            return expr.value
        if isinstance(expr, a.BooleanLiteral):
            return int(expr.value)
        if isinstance(expr, a.Identifier):
            for table in (env, self.consts, _CONSTANTS):
                if expr.name in table:
                    return table[expr.name]
            raise _Err(f"unknown identifier '{expr.name}'")
        if isinstance(expr, a.UnaryExpression):
            if expr.op.name != "-":
                raise _Err(f"operator '{expr.op.name}' is not supported in an expression")
            return -self._eval(expr.expression, env)
        if isinstance(expr, a.BinaryExpression):
            op = expr.op.name
            if op == "^" and self.version == 2:
                op = "**"  # OpenQASM 2 writes powers with ^ (OpenQASM 3: xor)
            if op not in _BINARY:
                raise _Err(f"operator '{op}' is not supported in an expression")
            lhs, rhs = self._eval(expr.lhs, env), self._eval(expr.rhs, env)
            return self._math(_BINARY[op], (lhs, rhs), f"{lhs} {op} {rhs}")
        if isinstance(expr, a.FunctionCall):
            fname = expr.name.name
            if fname not in _FUNCTIONS:
                raise _Err(f"unknown function '{fname}'")
            if len(expr.arguments) != 1:
                raise _Err(f"{fname} takes one argument, got {len(expr.arguments)}")
            arg = self._eval(expr.arguments[0], env)
            return self._math(_FUNCTIONS[fname], (arg,), f"{fname}({arg})")
        raise _Err(f"unsupported expression ({type(expr).__name__})")

    def _math(self, fn: Any, args: tuple, text: str) -> float:
        try:
            return fn(*args)
        except (ArithmeticError, ValueError, TypeError):
            if self.lenient:
                return 1.0
            raise _Err(f"math error in {text}") from None

    def _eval_int(self, expr: Any, env: dict[str, float]) -> int:
        value = self._eval(expr, env)
        if value != int(value):
            raise _Err(f"expected an integer, got {value}")
        return int(value)


def _fixed_cost(body: list, params: set[str], gates: dict[str, _GateDef], ast: Any) -> bool:
    """True when the number of ops a body expands to does not depend on the parameters: no
    ``pow @`` exponent names one, and every user gate called is itself fixed."""
    for stmt in body:
        for mod in getattr(stmt, "modifiers", ()):
            if mod.modifier.name == "pow" and _mentions(mod.argument, params, ast):
                return False
        callee = gates.get(getattr(getattr(stmt, "name", None), "name", None))
        if callee is not None and not callee.fixed:
            return False
    return True


def _mentions(node: Any, names: set[str], ast: Any) -> bool:
    """``node`` (an AST expression) uses one of the identifiers ``names``."""
    if isinstance(node, ast.Identifier):
        return node.name in names
    if isinstance(node, list):
        return any(_mentions(n, names, ast) for n in node)
    if is_dataclass(node) and not isinstance(node, type):
        return any(_mentions(getattr(node, f.name), names, ast) for f in fields(node)
                   if f.name != "span")
    return False


def _expression_text(expr: Any) -> str:
    """A short rendering of an expression for a message (the AST has no source text)."""
    try:
        from openqasm3 import dumps as ast_dumps

        text = " ".join(ast_dumps(expr).split())
    except Exception:  # the printer does not know every node: a generic word will do
        return "the expression"
    return f"expression '{text[:57]}...'" if len(text) > 60 else f"expression '{text}'"


def _describe(stmt: Any) -> str:
    words = re.sub(r"(?<!^)([A-Z])", r" \1", type(stmt).__name__).lower()
    return f"'{words}' statement"


def _type_name(node: Any) -> str:
    return type(node).__name__.removesuffix("Type").lower()


def _gate_name(stmt: Any) -> str:
    name = getattr(stmt, "name", None)
    return name.name if name is not None else "gphase"


def _operand_label(node: Any) -> str:
    name = getattr(node, "name", "?")
    return name if isinstance(name, str) else name.name


def _broadcast(operands: list[list[int]], labels: list[str]) -> list[tuple[int, ...]]:
    """One qubit tuple per application: registers of equal size pair up, single qubits repeat."""
    sizes = {len(o) for o in operands if len(o) != 1}
    if len(sizes) > 1:
        described = ", ".join(f"'{lab}' has {len(o)}" for lab, o in zip(labels, operands)
                              if len(o) != 1)
        raise _Err(f"register size mismatch: {described}")
    count = sizes.pop() if sizes else 1
    return [tuple(o[0] if len(o) == 1 else o[i] for o in operands) for i in range(count)]


def _phase_ops(theta: float, mods: list[tuple[str, float]]) -> tuple[int, list[Op]]:
    """gphase with modifiers: a global phase (dropped), or p / cp on its controls."""
    controls = 0
    for kind, value in mods:
        if kind == "inv":
            theta = -theta
        elif kind == "pow":
            theta *= value
        elif kind == "ctrl":
            controls += int(value)
        else:
            raise _Err("negctrl @ is not supported")
    if controls == 0:
        return 0, []
    # ctrl @ gphase(a) is p(a) on a control; with more controls, one of p's controlled forms
    gate = ("p", (theta,)) if controls == 1 else with_controls("p", (theta,), controls - 1)
    if gate is None:
        raise _Err(f"ctrl @ gphase with more than {1 + len(GATES['p'].controlled)} controls is "
                   "not supported")
    return controls, [(gate[0], tuple(range(controls)), gate[1])]


def _inverse(op: Op) -> Op:
    name, qubits, params = op
    if name == "barrier":
        return op
    inverse = inverse_of(name, qubits, params)
    if inverse is None:
        raise _Err(f"inv @ is not supported for gate '{name}'")
    return inverse


def _inverse_ops(ops: list[Op]) -> list[Op]:
    return [_inverse(op) for op in reversed(ops)]


def _control(ops: list[Op], n: int, name: str) -> list[Op]:
    if len(ops) == 1 and ops[0][0] != "barrier":
        base, qubits, params = ops[0]
        controlled = with_controls(base, params, n)
        if controlled is not None:
            return [(controlled[0], tuple(range(n)) + tuple(q + n for q in qubits),
                     controlled[1])]
    raise _Err(f"ctrl @ with {n} control(s) is not supported for gate '{name}' "
               "(the table has no such controlled gate)")


def _unitary(num_qubits: int, ops: list[Op]) -> np.ndarray:
    """Matrix of ``ops`` on ``num_qubits`` local qubits (little-endian)."""
    return operator_of(num_qubits, ((GATES[name].matrix(params), qubits)
                                    for name, qubits, params in ops if name != "barrier"))


def _equal_up_to_phase(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> bool:
    i = np.unravel_index(np.argmax(np.abs(b)), b.shape)
    if abs(a[i]) < 1e-12:
        return False
    phase = a[i] / b[i]
    return bool(np.allclose(a, phase / abs(phase) * b, atol=atol))


# ---- writing ---------------------------------------------------------------------------------

_RESERVED = frozenset("""
OPENQASM include qreg creg gate opaque measure reset barrier if else for while in break continue
end return def defcal defcalgrammar cal extern box let const input output qubit bit int uint float
angle bool complex duration stretch array void mutable readonly delay sizeof durationof ctrl
negctrl inv pow gphase true false switch case default pi tau euler U CX
""".split())
_QASM2_IDENTIFIER = re.compile(r"[a-z][A-Za-z0-9_]*\Z")


def dumps(circuit: Circuit, version: int = 2) -> str:
    """Write ``circuit`` as OpenQASM ``version`` (2 or 3).

    Parameters
    ----------
    circuit
        The circuit to write.
    version
        2 writes ``include "qelib1.inc";`` with ``qreg``/``creg``; 3 writes
        ``include "stdgates.inc";`` with ``qubit[n]``/``bit[n]``.

    Returns
    -------
    str
        The program text; :func:`loads` reads it back to equal instructions.

    Raises
    ------
    QasmError
        For an unknown version, a non-finite parameter, or (version 2) a condition on clbits
        that are not exactly one classical register.
    """
    if version not in (2, 3):
        raise QasmError(f"OpenQASM version must be 2 or 3, got {version!r}")
    taken = set(GATES)
    qregs = _layout(circuit.qregs, circuit.num_qubits, "q", taken)
    cregs = _layout(circuit.cregs, circuit.num_clbits, "c", taken)
    qlabel = _labels(qregs)
    clabel = _labels(cregs)
    whole_cregs = {tuple(range(start, start + size)): name for name, start, size in cregs}
    lines = ["OPENQASM 2.0;" if version == 2 else "OPENQASM 3.0;",
             'include "qelib1.inc";' if version == 2 else 'include "stdgates.inc";']
    used = dict.fromkeys(i.name for i in circuit if i.is_gate)
    lines += _definitions(used, version)
    for name, _, size in qregs:
        lines.append(f"qreg {name}[{size}];" if version == 2 else f"qubit[{size}] {name};")
    for name, _, size in cregs:
        lines.append(f"creg {name}[{size}];" if version == 2 else f"bit[{size}] {name};")
    all_qubits = tuple(range(circuit.num_qubits))
    for inst in circuit:
        qs = ", ".join(qlabel[q] for q in inst.qubits)
        if inst.name == "measure":
            q, c = qlabel[inst.qubits[0]], clabel[inst.clbits[0]]
            text = f"measure {q} -> {c};" if version == 2 else f"{c} = measure {q};"
        elif inst.name == "barrier":
            if inst.qubits == all_qubits:
                qs = ", ".join(name for name, _, _ in qregs)
            text = f"barrier {qs};"
        elif inst.name == "reset":
            text = f"reset {qs};"
        else:
            params = f"({', '.join(_number(p) for p in inst.params)})" if inst.params else ""
            text = f"{inst.name}{params} {qs};"
        if inst.condition is not None:
            cond = _condition_text(inst.condition, whole_cregs, clabel, version)
            text = f"if({cond}) {text}" if version == 2 else f"if ({cond}) {{ {text} }}"
        lines.append(text)
    return "\n".join(lines) + "\n"


def dump(circuit: Circuit, path: str | os.PathLike, version: int = 2) -> None:
    """Write ``circuit`` to ``path`` as OpenQASM ``version`` (see :func:`dumps`).

    The file appears complete or not at all (:func:`qsim_dist.io.files.atomic_write`: a
    regular file only, written under a temporary name and renamed); a path that cannot be
    written or a failed write is a :class:`~qsim_dist.errors.QasmError`.
    """
    from .files import atomic_write

    text = dumps(circuit, version)
    with atomic_write(path, "OpenQASM", QasmError, size=len(text)) as out:
        out.write(text.encode("utf-8"))


def _identifier(name: str, taken: set[str]) -> str:
    """A valid OpenQASM 2 and 3 identifier for ``name``, distinct from ``taken`` (updated)."""
    ident = re.sub(r"\W", "_", name, flags=re.ASCII)
    if not _QASM2_IDENTIFIER.match(ident):
        ident = "r" + ident if ident[:1].isalnum() else "r_" + ident.lstrip("_")
    if ident in _RESERVED:
        ident += "_"
    base, n = ident, 1
    while ident in taken:
        ident, n = f"{base}_{n}", n + 1
    taken.add(ident)
    return ident


def _layout(regs: Sequence[Register], size: int, default: str,
            taken: set[str]) -> list[tuple[str, int, int]]:
    """(name, start, size) per register to declare: the circuit's own when they tile 0..size-1
    in order, else one register ``default`` over everything."""
    ordered = sorted(regs, key=lambda r: r.start)
    tiles = [0] + [r.start + r.size for r in ordered]
    if ordered and all(r.start == t for r, t in zip(ordered, tiles)) and tiles[-1] == size:
        return [(_identifier(r.name, taken), r.start, r.size) for r in ordered if r.size]
    return [(_identifier(default, taken), 0, size)] if size else []


def _labels(regs: list[tuple[str, int, int]]) -> dict[int, str]:
    return {start + i: f"{name}[{i}]" for name, start, size in regs for i in range(size)}


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise QasmError(f"cannot write the non-finite parameter {value!r}")
    text = repr(float(value))
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:  # OpenQASM 2 reals need a decimal point: 1e-05 -> 1.0e-05
        text = f"{mantissa}.0e{exponent}"
    return text


def _condition_text(cond: Condition, whole_cregs: dict[tuple[int, ...], str],
                    clabel: dict[int, str], version: int) -> str:
    name = whole_cregs.get(tuple(cond.clbits))
    if name is not None:
        return f"{name}=={cond.value}" if version == 2 else f"{name} == {cond.value}"
    if version == 2:
        raise QasmError(f"OpenQASM 2 can only condition on a whole classical register; clbits "
                        f"{list(cond.clbits)} are not one register (write version=3)")
    # single bits as `c[i]` / `!c[i]`: OpenQASM 3 compares a bit with a bool, not an int
    # (`c[i] == 1` is rejected by e.g. qiskit.qasm3.loads); the reader accepts both forms
    return " && ".join(clabel[c] if (cond.value >> j) & 1 else f"!{clabel[c]}"
                       for j, c in enumerate(cond.clbits))


def _in_library(spec: GateSpec, version: int) -> bool:
    return spec.qelib1 if version == 2 else (spec.stdgates or spec.qasm_builtin)


def _definitions(used: Sequence[str], version: int) -> list[str]:
    """``gate`` definitions for the used gates the library lacks, dependencies first."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        spec = GATES[name]
        if _in_library(spec, version):
            return
        if spec.definition is None:
            raise QasmError(f"gate '{name}' has no OpenQASM definition to write")
        for dep in definition_gates(name):
            visit(dep)
        order.append(name)

    for name in used:
        visit(name)
    return [_definition_text(GATES[name]) for name in order]


def _definition_text(spec: GateSpec) -> str:
    qubits = [f"q{i}" for i in range(spec.num_qubits)]
    body = spec.definition.format(*spec.param_names, **{q: q for q in qubits})
    params = f"({', '.join(spec.param_names)})" if spec.param_names else ""
    return f"gate {spec.name}{params} {', '.join(qubits)} {{ {body} }}"
