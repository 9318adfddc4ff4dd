"""The one gate table: every gate's arity, parameters, matrix and structure lives here.

Bit order: a gate on qubits ``(q0, q1, ...)`` has a ``2^k x 2^k`` matrix whose row/column index
holds the state of ``q0`` in bit 0 (least significant), ``q1`` in bit 1, and so on, as in Qiskit.
Controlled gates list their controls first: ``cx(control, target)``, ``ccx(c0, c1, target)``.

``GATES[name]`` gives a :class:`GateSpec`; :func:`gate_matrix` builds a matrix for given parameters.
A parametrised gate's matrix builder is written once against :class:`ArrayOps` (``cos``, ``exp``,
``array``, ...): ``GateSpec.matrix(params)`` runs it on floats with ``math`` and numpy (exact,
complex128), ``GateSpec.matrix(params, xp=qsim_dist.autodiff.JAX_OPS)`` on JAX tracers, so that
``jax.grad`` and ``jax.vmap`` pass through gate matrices.
Every gate outside OpenQASM 2's ``qelib1.inc`` or outside OpenQASM 3's ``stdgates.inc`` (and
SWAP, CCX, CSWAP, which the distribution compilers decompose) carries a ``definition``: a gate
body in other table gates, ``U`` and ``CX``, valid as OpenQASM 2 and 3 and exact up to global
phase, which the OpenQASM exporter writes into the file for any reader to use.

Everything else the package knows about a gate is a field of its entry, read through the
functions below the table, so that adding a gate is one ``_add`` line here (tests/test_gates.py
checks every fact against the matrices): its inverse (:func:`inverse_of`, ``inv @``), its
controlled forms (:func:`with_controls`, ``ctrl @``), the positions it never flips whatever its
parameters (``controls``: :func:`never_flips_at`, the distribution compilers), its X-basis
embedding (:func:`x_embedding`, :func:`commutes_with_x_at`), its names in OpenQASM, Qiskit and
Cirq (:func:`usual_name`, :func:`qiskit_name`, :func:`from_qiskit_name`, ``cirq_gate``) and its
definition read into gates (:func:`decomposition`, :func:`definition_gates`).
"""

from __future__ import annotations

import ast
import cmath
import math
import operator
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np

from . import validation as check
from .errors import CircuitError
from .linalg import commutes_with_x, never_flips, operator_of

Matrix = np.ndarray

# Instructions that are not unitary gates; they live in the same IR but are handled by backends.
NON_UNITARY = frozenset({"measure", "reset", "barrier"})


@dataclass(frozen=True)
class ArrayOps:
    """The array operations a gate's matrix builder uses, all from one array module.

    Every builder is written once against these names and called as ``fn(*params, xp=ops)``.
    :data:`NUMPY_OPS`, the default, is Python's scalar ``math``/``cmath`` with numpy arrays: the
    exact, fast path for float parameters. ``ArrayOps.of(jax.numpy, ...)`` takes them from an
    array module instead, so that traced parameters flow through the builders untouched (no
    ``float()``) and ``jax.grad`` and ``jax.vmap`` pass through gate matrices
    (``qsim_dist.autodiff`` does this).
    """

    cos: Callable
    sin: Callable
    exp: Callable  # of a complex argument
    array: Callable  # nested lists of scalars -> an array
    diag: Callable  # a list of scalars -> the diagonal matrix
    controlled: Callable  # (u, num_controls=1) -> u controlled on that many low qubits
    asarray: Callable  # (matrix, dtype) -> the builder's result in the module's array type
    is_traced: Callable[[Any], bool] = lambda value: False  # a value known by shape/dtype only

    @classmethod
    def of(cls, xp: Any, is_traced: Callable[[Any], bool]) -> "ArrayOps":
        """The operations of array module ``xp`` (numpy's API: ``cos``, ``exp``, ``kron``, ...);
        ``is_traced(value)`` tells a tracer, whose value cannot be checked, from a number."""

        def diag(values):
            return xp.diag(xp.array(values))

        def controlled_xp(u, num_controls=1):
            # Without in-place writes (a traced array has none): identity where some control
            # reads 0, u where all read 1 (controls are the low bits of the index).
            on = np.zeros((1 << num_controls,) * 2)
            on[-1, -1] = 1
            return xp.kron(xp.eye(u.shape[0]), np.eye(len(on)) - on) + xp.kron(u, on)

        return cls(xp.cos, xp.sin, xp.exp, xp.array, diag, controlled_xp, xp.asarray, is_traced)


def _parameter(value: Any, what: str, xp: ArrayOps) -> Any:
    """``value`` as a builder run with ``xp`` takes it. A tracer's value is unknown until it runs,
    so only what can be checked is: it is a real scalar; anything else is checked as the numpy
    path checks it (a concrete 0-d array by its number), so users' bad input is still refused."""
    if xp.is_traced(value):
        if getattr(value, "shape", None) != () or \
                getattr(getattr(value, "dtype", None), "kind", None) not in ("f", "i", "u"):
            raise CircuitError(f"{what} must be a finite real number, got "
                               f"{check.describe(value)}")
        return value
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()
    return check.finite(value, what, CircuitError)


@dataclass(frozen=True)
class Inverse:
    """``inv @ g`` as one table gate: ``name`` (None: ``g`` itself) on ``g``'s qubits taken in
    ``order`` (None: the same order), with parameters ``params(*g_params)`` (None: the same)."""

    name: str | None = None
    params: Callable[..., tuple] | None = field(default=None, repr=False)
    order: tuple[int, ...] | None = None


_SELF = Inverse()
_NEGATED = Inverse(params=lambda *p: tuple(-x for x in p))
_U_INVERSE = Inverse(params=lambda theta, phi, lam: (-theta, -lam, -phi))


@dataclass(frozen=True)
class GateSpec:
    """Everything known about one gate name."""

    name: str
    num_qubits: int
    num_params: int
    # fn(*params, xp=ops) for a parametrised gate, using only the ArrayOps ``xp`` on its
    # parameters (so that traced ones pass); fn() for a fixed gate
    matrix_fn: Callable[..., Matrix] = field(repr=False)
    diagonal: bool = False  # matrix is diagonal: merged into elementwise phase passes
    permutation: bool = False  # matrix is a 0/1 permutation matrix
    qelib1: bool = True  # part of OpenQASM 2's qelib1.inc (as Qiskit ships it)
    stdgates: bool = False  # part of OpenQASM 3's stdgates.inc
    definition: str | None = None  # QASM gate body; {0}.. are params, {q0}.. qubits
    param_names: tuple[str, ...] = ()
    # Facts that the parser, the converters and the passes read (through the functions below
    # the table, never by name lists of their own); tests/test_gates.py checks each against the
    # matrices.
    inverse: Inverse | None = None  # inv @ gate as one table gate; None: the table has none
    controlled: tuple[str | None, ...] = ()  # ctrl(n) @ gate is controlled[n-1] (None: none)
    controls: tuple[int, ...] = ()  # positions never flipped, whatever the parameters
    x_embed: tuple[tuple[int, str, tuple[int, ...]], ...] = ()  # (position, image, order)
    x_commuting: tuple[int, ...] = ()  # positions commuting with X, whatever the parameters
    same_as: str | None = None  # the same gate under its usual name (U is u3, CX is cx)
    qasm_builtin: bool = False  # an OpenQASM built-in, usable without an include
    qiskit_name: str | None = None  # its name in Qiskit, where not its own
    # gate(theta) as a Cirq gate: (EigenGate class, global_shift) with exponent theta/pi; shift
    # None: the class with any shift, its global phase dropped
    cirq_gate: tuple[str, float | None] | None = None

    def matrix(self, params: Sequence[float] = (), xp: ArrayOps | None = None) -> Matrix:
        """The gate's matrix for ``params`` (finite real numbers, ``num_params`` of them):
        complex128 numpy, or with ``xp`` (an :class:`ArrayOps`) built by that array module, where
        ``params`` may be traced scalars (``jax.grad``, ``jax.vmap``: ``qsim_dist.autodiff``)."""
        if isinstance(params, (str, bytes)) or not hasattr(params, "__len__"):
            raise CircuitError(f"gate '{self.name}': params must be a sequence of "
                               f"{self.num_params} finite real number(s), got "
                               f"{check.describe(params)}")
        if len(params) != self.num_params:
            raise CircuitError(
                f"gate '{self.name}' takes {self.num_params} parameter(s), got {len(params)}"
            )
        if xp is None:  # the hot path: floats, numpy
            xp = NUMPY_OPS
            values = [check.finite(p, f"gate '{self.name}': {n}", CircuitError)
                      for p, n in zip(params, self.param_names)]
        else:
            values = [_parameter(p, f"gate '{self.name}': {n}", xp)
                      for p, n in zip(params, self.param_names)]
        m = self.matrix_fn(*values, xp=xp) if values else self.matrix_fn()
        return xp.asarray(m, dtype=complex)


# ---- single-qubit matrices -------------------------------------------------------------------

_SQ2 = 1 / math.sqrt(2)


# Builders of parametrised gates take ``xp`` (an ArrayOps) and use only its operations, never
# math/cmath/np directly on a parameter, so that a traced parameter passes (see ArrayOps).

def _u3(theta: float, phi: float, lam: float, xp: ArrayOps) -> Matrix:
    c, s = xp.cos(theta / 2), xp.sin(theta / 2)
    return xp.array(
        [[c, -xp.exp(1j * lam) * s], [xp.exp(1j * phi) * s, xp.exp(1j * (phi + lam)) * c]]
    )


def _rx(t: float, xp: ArrayOps) -> Matrix:
    c, s = xp.cos(t / 2), xp.sin(t / 2)
    return xp.array([[c, -1j * s], [-1j * s, c]])


def _ry(t: float, xp: ArrayOps) -> Matrix:
    c, s = xp.cos(t / 2), xp.sin(t / 2)
    return xp.array([[c, -s], [s, c]])


def _rz(t: float, xp: ArrayOps) -> Matrix:
    return xp.diag([xp.exp(-0.5j * t), xp.exp(0.5j * t)])


def _p(lam: float, xp: ArrayOps) -> Matrix:
    return xp.diag([1, xp.exp(1j * lam)])


def _r(theta: float, phi: float, xp: ArrayOps) -> Matrix:
    c, s = xp.cos(theta / 2), xp.sin(theta / 2)
    return xp.array([[c, -1j * xp.exp(-1j * phi) * s], [-1j * xp.exp(1j * phi) * s, c]])


_I = np.eye(2)
_X = np.array([[0, 1], [1, 0]])
_Y = np.array([[0, -1j], [1j, 0]])
_Z = np.diag([1, -1])
_H = np.array([[1, 1], [1, -1]]) * _SQ2
_S = np.diag([1, 1j])
_T = np.diag([1, cmath.exp(0.25j * math.pi)])
_SX = 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]])


def controlled(u: Matrix, num_controls: int = 1) -> Matrix:
    """``u`` controlled on ``num_controls`` qubits that come first (the low bits of the index)."""
    dim_u = u.shape[0]
    dim = dim_u << num_controls
    m = np.eye(dim, dtype=np.complex128)
    on = (1 << num_controls) - 1
    idx = [on | (j << num_controls) for j in range(dim_u)]
    m[np.ix_(idx, idx)] = u
    return m


# The default: scalar math on floats (exactly as fast and as exact as plain Python), numpy arrays.
NUMPY_OPS = ArrayOps(math.cos, math.sin, cmath.exp, np.array, np.diag, controlled, np.asarray)


def _exp_pauli2(a: Matrix, b: Matrix, theta: float, xp: ArrayOps) -> Matrix:
    """exp(-i theta/2 * B(q1) (x) A(q0)) in little-endian order."""
    p = np.kron(b, a)
    return xp.cos(theta / 2) * np.eye(4) - 1j * xp.sin(theta / 2) * p


def _cp(lam: float, xp: ArrayOps) -> Matrix:
    return xp.controlled(_p(lam, xp))


def _swap() -> Matrix:
    return np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def _iswap() -> Matrix:
    return np.array([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]])


def _ecr() -> Matrix:
    return _SQ2 * np.array([[0, 1, 0, 1j], [1, 0, -1j, 0], [0, 1j, 0, 1], [-1j, 0, 1, 0]])


def _xx_minus_yy(theta: float, beta: float, xp: ArrayOps) -> Matrix:
    c, s = xp.cos(theta / 2), xp.sin(theta / 2)
    a, b = -1j * s * xp.exp(-1j * beta), -1j * s * xp.exp(1j * beta)
    return xp.array([[c, 0, 0, a], [0, 1, 0, 0], [0, 0, 1, 0], [b, 0, 0, c]])


def _xx_plus_yy(theta: float, beta: float, xp: ArrayOps) -> Matrix:
    c, s = xp.cos(theta / 2), xp.sin(theta / 2)
    a, b = -1j * s * xp.exp(-1j * beta), -1j * s * xp.exp(1j * beta)
    return xp.array([[1, 0, 0, 0], [0, c, a, 0], [0, b, c, 0], [0, 0, 0, 1]])


def _cswap() -> Matrix:
    # control is qubit 0; swap qubits 1 and 2
    m = np.eye(8)
    m[[3, 5]] = m[[5, 3]]
    return m


def _defined(name: str, num_qubits: int) -> Callable[[], Matrix]:
    """The matrix builder of a gate whose matrix is its ``definition`` exactly (phase included):
    the product of the gates the definition calls."""

    def build() -> Matrix:
        return operator_of(num_qubits, ((GATES[gate].matrix(params), qubits)
                                        for gate, qubits, params in decomposition(name)))

    return build


# ---- the table -------------------------------------------------------------------------------

GATES: dict[str, GateSpec] = {}


def _add(name, nq, npar, fn, *, param_names=(), **facts):
    GATES[name] = GateSpec(name, nq, npar, fn,
                           param_names=tuple(param_names) or tuple(f"p{i}" for i in range(npar)),
                           **facts)


_T3 = ("theta", "phi", "lambda")
# one-qubit
_add("id", 1, 0, lambda: _I, diagonal=True, stdgates=True,
     inverse=_SELF, x_commuting=(0,))
_add("x", 1, 0, lambda: _X, permutation=True, stdgates=True,
     inverse=_SELF, controlled=("cx", "ccx", "c3x", "c4x"), x_commuting=(0,))
_add("y", 1, 0, lambda: _Y, stdgates=True,
     inverse=_SELF, controlled=("cy",))
_add("z", 1, 0, lambda: _Z, diagonal=True, stdgates=True,
     inverse=_SELF, controlled=("cz", "ccz"))
_add("h", 1, 0, lambda: _H, stdgates=True,
     inverse=_SELF, controlled=("ch",))
_add("s", 1, 0, lambda: _S, diagonal=True, stdgates=True,
     inverse=Inverse("sdg"), controlled=("cs",))
_add("sdg", 1, 0, lambda: _S.conj(), diagonal=True, stdgates=True,
     inverse=Inverse("s"), controlled=("csdg",))
_add("t", 1, 0, lambda: _T, diagonal=True, stdgates=True,
     inverse=Inverse("tdg"))
_add("tdg", 1, 0, lambda: _T.conj(), diagonal=True, stdgates=True,
     inverse=Inverse("t"))
_add("sx", 1, 0, lambda: _SX, stdgates=True,
     inverse=Inverse("sxdg"), controlled=("csx", None, "c3sqrtx"), x_commuting=(0,))
_add("sxdg", 1, 0, lambda: _SX.conj().T,
     definition="s {q0}; h {q0}; s {q0};",
     inverse=Inverse("sx"), x_commuting=(0,))
_add("rx", 1, 1, _rx, stdgates=True, param_names=("theta",),
     inverse=_NEGATED, controlled=("crx",), x_commuting=(0,),
     cirq_gate=("XPowGate", -0.5))
_add("ry", 1, 1, _ry, stdgates=True, param_names=("theta",),
     inverse=_NEGATED, controlled=("cry",), cirq_gate=("YPowGate", -0.5))
_add("rz", 1, 1, _rz, diagonal=True, stdgates=True, param_names=("theta",),
     inverse=_NEGATED, controlled=("crz",), cirq_gate=("ZPowGate", -0.5))
_add("p", 1, 1, _p, diagonal=True, stdgates=True, param_names=("lambda",),
     inverse=_NEGATED, controlled=("cp",), cirq_gate=("ZPowGate", 0.0))
_add("phase", 1, 1, _p, diagonal=True, qelib1=False, stdgates=True, definition="u1({0}) {q0};",
     param_names=("lambda",),
     inverse=_NEGATED, controlled=("cphase",), qiskit_name="p")
_add("u0", 1, 1, lambda g, xp: _I, diagonal=True, param_names=("gamma",),
     definition="U(0,0,0) {q0};",
     inverse=_SELF, qiskit_name="id")
_add("u1", 1, 1, _p, diagonal=True, stdgates=True, param_names=("lambda",),
     inverse=_NEGATED, controlled=("cu1",))
_add("u2", 1, 2, lambda phi, lam, xp: _u3(math.pi / 2, phi, lam, xp), stdgates=True,
     param_names=("phi", "lambda"),
     inverse=Inverse("u3", lambda phi, lam: (-math.pi / 2, -lam, -phi)))
_add("u3", 1, 3, _u3, stdgates=True, param_names=_T3,
     inverse=_U_INVERSE, controlled=("cu3",))
_add("u", 1, 3, _u3, param_names=_T3,
     definition="U({0},{1},{2}) {q0};",
     inverse=_U_INVERSE, controlled=("cu",))
_add("U", 1, 3, _u3, param_names=_T3,
     inverse=_U_INVERSE, controlled=("cu",), same_as="u3", qasm_builtin=True, qiskit_name="u")
_add("r", 1, 2, _r, qelib1=False, definition="u3({0}, {1} - pi/2, -{1} + pi/2) {q0};",
     param_names=("theta", "phi"),
     inverse=Inverse(params=lambda theta, phi: (-theta, phi)))
# two-qubit
_add("cx", 2, 0, lambda: controlled(_X), permutation=True, stdgates=True,
     inverse=_SELF, controlled=("ccx", "c3x", "c4x"), controls=(0,), x_embed=((1, "cz", (0, 1)),))
_add("CX", 2, 0, lambda: controlled(_X), permutation=True, stdgates=True,
     inverse=_SELF, controlled=("ccx", "c3x", "c4x"), controls=(0,), x_embed=((1, "cz", (0, 1)),),
     same_as="cx", qasm_builtin=True, qiskit_name="cx")
_add("cy", 2, 0, lambda: controlled(_Y), stdgates=True,
     inverse=_SELF, controls=(0,))
_add("cz", 2, 0, lambda: controlled(_Z), diagonal=True, stdgates=True,
     inverse=_SELF, controlled=("ccz",))
_add("ch", 2, 0, lambda: controlled(_H), stdgates=True,
     inverse=_SELF, controls=(0,))
_add("cs", 2, 0, lambda: controlled(_S), diagonal=True, qelib1=False,
     definition="u1(pi/4) {q0}; cx {q0},{q1}; u1(-pi/4) {q1}; cx {q0},{q1}; u1(pi/4) {q1};",
     inverse=Inverse("csdg"))
_add("csdg", 2, 0, lambda: controlled(_S.conj()), diagonal=True, qelib1=False,
     definition="u1(-pi/4) {q0}; cx {q0},{q1}; u1(pi/4) {q1}; cx {q0},{q1}; u1(-pi/4) {q1};",
     inverse=Inverse("cs"))
_add("cp", 2, 1, _cp, diagonal=True, stdgates=True,
     param_names=("lambda",),
     inverse=_NEGATED, cirq_gate=("CZPowGate", 0.0))
_add("cphase", 2, 1, _cp, diagonal=True, qelib1=False, stdgates=True,
     definition="cu1({0}) {q0},{q1};", param_names=("lambda",),
     inverse=_NEGATED, qiskit_name="cp")
_add("cu1", 2, 1, _cp, diagonal=True, param_names=("lambda",),
     definition="u1({0}/2) {q0}; cx {q0},{q1}; u1(-{0}/2) {q1}; cx {q0},{q1}; u1({0}/2) {q1};",
     inverse=_NEGATED)
_add("cu3", 2, 3, lambda t, ph, la, xp: xp.controlled(_u3(t, ph, la, xp)), param_names=_T3,
     definition="u1(({2}+{1})/2) {q0}; u1(({2}-{1})/2) {q1}; cx {q0},{q1}; "
                "u3(-{0}/2,0,-({1}+{2})/2) {q1}; cx {q0},{q1}; u3({0}/2,{1},0) {q1};",
     inverse=_U_INVERSE, controls=(0,))
_add("cu", 2, 4, lambda t, ph, la, g, xp:
     xp.controlled(xp.exp(1j * g) * _u3(t, ph, la, xp)),
     stdgates=True, param_names=_T3 + ("gamma",),
     inverse=Inverse(params=lambda theta, phi, lam, gamma: (-theta, -lam, -phi, -gamma)),
     controls=(0,))
_add("crx", 2, 1, lambda t, xp: xp.controlled(_rx(t, xp)), stdgates=True, param_names=("theta",),
     inverse=_NEGATED, controls=(0,), x_embed=((1, "crz", (0, 1)),))
_add("cry", 2, 1, lambda t, xp: xp.controlled(_ry(t, xp)), stdgates=True, param_names=("theta",),
     inverse=_NEGATED, controls=(0,))
_add("crz", 2, 1, lambda t, xp: xp.controlled(_rz(t, xp)), diagonal=True, stdgates=True,
     param_names=("theta",),
     inverse=_NEGATED)
_add("csx", 2, 0, lambda: controlled(_SX),
     definition="h {q1}; cu1(pi/2) {q0},{q1}; h {q1};",
     controls=(0,), x_embed=((1, "cs", (0, 1)),))
_add("swap", 2, 0, _swap, permutation=True, stdgates=True,
     inverse=_SELF, controlled=("cswap",),
     definition="cx {q0},{q1}; cx {q1},{q0}; cx {q0},{q1};")
_add("iswap", 2, 0, _iswap, qelib1=False,
     definition="s {q0}; s {q1}; h {q0}; cx {q0},{q1}; cx {q1},{q0}; h {q1};",
     inverse=Inverse("xx_plus_yy", lambda: (math.pi, 0.0)))
_add("dcx", 2, 0, _defined("dcx", 2),
     permutation=True, qelib1=False, definition="cx {q0},{q1}; cx {q1},{q0};",
     inverse=Inverse(order=(1, 0)))
_add("ecr", 2, 0, _ecr, qelib1=False,
     definition="rzx(pi/4) {q0},{q1}; x {q0}; rzx(-pi/4) {q0},{q1};",
     inverse=_SELF, x_commuting=(1,))
_add("rxx", 2, 1, lambda t, xp: _exp_pauli2(_X, _X, t, xp), param_names=("theta",),
     definition="u3(pi/2,{0},0) {q0}; h {q1}; cx {q0},{q1}; u1(-{0}) {q1}; cx {q0},{q1}; h {q1}; "
                "u2(-pi,pi-{0}) {q0};",
     inverse=_NEGATED, x_embed=((0, "rzx", (0, 1)), (1, "rzx", (1, 0))),
     cirq_gate=("XXPowGate", None))
_add("ryy", 2, 1, lambda t, xp: _exp_pauli2(_Y, _Y, t, xp), qelib1=False, param_names=("theta",),
     definition="rx(pi/2) {q0}; rx(pi/2) {q1}; cx {q0},{q1}; rz({0}) {q1}; cx {q0},{q1}; "
                "rx(-pi/2) {q0}; rx(-pi/2) {q1};",
     inverse=_NEGATED, cirq_gate=("YYPowGate", None))
_add("rzz", 2, 1, lambda t, xp: _exp_pauli2(_Z, _Z, t, xp), diagonal=True, param_names=("theta",),
     definition="cx {q0},{q1}; u1({0}) {q1}; cx {q0},{q1};",
     inverse=_NEGATED, cirq_gate=("ZZPowGate", None))
_add("rzx", 2, 1, lambda t, xp: _exp_pauli2(_Z, _X, t, xp), qelib1=False, param_names=("theta",),
     definition="h {q1}; cx {q0},{q1}; rz({0}) {q1}; cx {q0},{q1}; h {q1};",
     inverse=_NEGATED, controls=(0,), x_embed=((1, "rzz", (0, 1)),))
_add("xx_minus_yy", 2, 2, _xx_minus_yy, qelib1=False, param_names=("theta", "beta"),
     definition="rz(-{1}) {q1}; rz(-pi/2) {q0}; sx {q0}; rz(pi/2) {q0}; s {q1}; cx {q0},{q1}; "
                "ry({0}/2) {q0}; ry(-{0}/2) {q1}; cx {q0},{q1}; sdg {q1}; rz(-pi/2) {q0}; "
                "sxdg {q0}; rz(pi/2) {q0}; rz({1}) {q1};",
     inverse=Inverse(params=lambda theta, beta: (-theta, beta)))
_add("xx_plus_yy", 2, 2, _xx_plus_yy, qelib1=False, param_names=("theta", "beta"),
     definition="rz({1}) {q0}; rz(-pi/2) {q1}; sx {q1}; rz(pi/2) {q1}; s {q0}; cx {q1},{q0}; "
                "ry(-{0}/2) {q1}; ry(-{0}/2) {q0}; cx {q1},{q0}; sdg {q0}; rz(-pi/2) {q1}; "
                "sxdg {q1}; rz(pi/2) {q1}; rz(-{1}) {q0};",
     inverse=Inverse(params=lambda theta, beta: (-theta, beta)))
# three and more qubits
_add("ccx", 3, 0, lambda: controlled(_X, 2), permutation=True, stdgates=True,
     inverse=_SELF, controlled=("c3x", "c4x"), controls=(0, 1), x_embed=((2, "ccz", (0, 1, 2)),),
     definition="h {q2}; cx {q1},{q2}; tdg {q2}; cx {q0},{q2}; t {q2}; cx {q1},{q2}; tdg {q2}; "
                "cx {q0},{q2}; t {q1}; t {q2}; h {q2}; cx {q0},{q1}; t {q0}; tdg {q1}; "
                "cx {q0},{q1};")
_add("ccz", 3, 0, lambda: controlled(_Z, 2), diagonal=True, qelib1=False,
     definition="h {q2}; ccx {q0},{q1},{q2}; h {q2};",
     inverse=_SELF)
_add("cswap", 3, 0, _cswap, permutation=True, stdgates=True,
     inverse=_SELF, controls=(0,),
     definition="cx {q2},{q1}; ccx {q0},{q1},{q2}; cx {q2},{q1};")
_add("rccx", 3, 0, _defined("rccx", 3),
     definition="u2(0,pi) {q2}; u1(pi/4) {q2}; cx {q1},{q2}; u1(-pi/4) {q2}; "
                "cx {q0},{q2}; u1(pi/4) {q2}; cx {q1},{q2}; u1(-pi/4) {q2}; "
                "u2(0,pi) {q2};",
     inverse=_SELF, controls=(0, 1))
_add("c3x", 4, 0, lambda: controlled(_X, 3), permutation=True,
     definition="h {q3}; p(pi/8) {q0}; p(pi/8) {q1}; p(pi/8) {q2}; p(pi/8) {q3}; "
                "cx {q0},{q1}; p(-pi/8) {q1}; cx {q0},{q1}; cx {q1},{q2}; p(-pi/8) {q2}; "
                "cx {q0},{q2}; p(pi/8) {q2}; cx {q1},{q2}; p(-pi/8) {q2}; cx {q0},{q2}; "
                "cx {q2},{q3}; p(-pi/8) {q3}; cx {q1},{q3}; p(pi/8) {q3}; cx {q2},{q3}; "
                "p(-pi/8) {q3}; cx {q0},{q3}; p(pi/8) {q3}; cx {q2},{q3}; p(-pi/8) {q3}; "
                "cx {q1},{q3}; p(pi/8) {q3}; cx {q2},{q3}; p(-pi/8) {q3}; cx {q0},{q3}; "
                "h {q3};",
     inverse=_SELF, controlled=("c4x",), controls=(0, 1, 2), x_commuting=(3,), qiskit_name="mcx")
_add("c3sqrtx", 4, 0, lambda: controlled(_SX, 3),
     definition="h {q3}; cu1(pi/8) {q0},{q3}; h {q3}; cx {q0},{q1}; h {q3}; "
                "cu1(-pi/8) {q1},{q3}; h {q3}; cx {q0},{q1}; h {q3}; cu1(pi/8) {q1},{q3}; "
                "h {q3}; cx {q1},{q2}; h {q3}; cu1(-pi/8) {q2},{q3}; h {q3}; "
                "cx {q0},{q2}; h {q3}; cu1(pi/8) {q2},{q3}; h {q3}; cx {q1},{q2}; h {q3}; "
                "cu1(-pi/8) {q2},{q3}; h {q3}; cx {q0},{q2}; h {q3}; cu1(pi/8) {q2},{q3}; "
                "h {q3};",
     controls=(0, 1, 2), x_commuting=(3,), qiskit_name="c3sx")
_add("rc3x", 4, 0, _defined("rc3x", 4),
     definition="u2(0,pi) {q3}; u1(pi/4) {q3}; cx {q2},{q3}; u1(-pi/4) {q3}; "
                "u2(0,pi) {q3}; cx {q0},{q3}; u1(pi/4) {q3}; cx {q1},{q3}; "
                "u1(-pi/4) {q3}; cx {q0},{q3}; u1(pi/4) {q3}; cx {q1},{q3}; "
                "u1(-pi/4) {q3}; u2(0,pi) {q3}; u1(pi/4) {q3}; cx {q2},{q3}; "
                "u1(-pi/4) {q3}; u2(0,pi) {q3};",
     controls=(0, 1, 2), qiskit_name="rcccx")
_add("c4x", 5, 0, lambda: controlled(_X, 4), permutation=True,
     definition="h {q4}; cu1(pi/2) {q3},{q4}; h {q4}; c3x {q0},{q1},{q2},{q3}; h {q4}; "
                "cu1(-pi/2) {q3},{q4}; h {q4}; c3x {q0},{q1},{q2},{q3}; "
                "c3sqrtx {q0},{q1},{q2},{q4};",
     inverse=_SELF, controls=(0, 1, 2, 3), x_commuting=(4,), qiskit_name="mcx")


def gate_spec(name: str) -> GateSpec:
    """The table entry for ``name``; a clear error for an unknown gate."""
    if not isinstance(name, str):
        raise CircuitError(f"a gate name must be a string, got {name!r:.60}")
    try:
        return GATES[name]
    except KeyError:
        raise CircuitError(f"unknown gate '{name}'") from None


def gate_matrix(name: str, params: Sequence[float] = ()) -> Matrix:
    """The ``2^k x 2^k`` complex128 matrix of gate ``name`` (little-endian in its qubits)."""
    return gate_spec(name).matrix(params)


# ---- facts read from the table ---------------------------------------------------------------
# The parser, the converters and the passes ask these functions; none keeps a gate-name list.

#: A table gate on some qubits: (name, qubits, parameters).
GateOp = tuple[str, tuple[int, ...], tuple[float, ...]]


def inverse_of(name: str, qubits: Sequence[int], params: Sequence[float]) -> GateOp | None:
    """``inv @ name(params) qubits`` as one table gate, or None when the table has no inverse
    for ``name``."""
    inv = gate_spec(name).inverse
    if inv is None:
        return None
    return (inv.name or name,
            tuple(qubits) if inv.order is None else tuple(qubits[i] for i in inv.order),
            tuple(params) if inv.params is None else tuple(inv.params(*params)))


def with_controls(name: str, params: Sequence[float],
                  num_controls: int) -> tuple[str, tuple[float, ...]] | None:
    """``ctrl(num_controls) @ name(params)`` as (table gate, parameters), its controls the first
    qubits, or None when the table has no such gate. Parameters the controlled gate adds (the
    controlled phase ``gamma`` of ``cu``) are zero."""
    forms = gate_spec(name).controlled
    if not 1 <= num_controls <= len(forms) or forms[num_controls - 1] is None:
        return None
    target = GATES[forms[num_controls - 1]]
    return target.name, tuple(params) + (0.0,) * (target.num_params - len(params))


@lru_cache(maxsize=65536)
def never_flips_at(name: str, params: tuple[float, ...], position: int) -> bool:
    """Gate ``name(params)`` is block-diagonal in its qubit ``position`` (never flips it): a
    diagonal gate everywhere, a gate with ``controls`` exactly there, any other from its
    matrix."""
    spec = gate_spec(name)
    if spec.diagonal:
        return True
    if spec.controls:
        return position in spec.controls
    return never_flips(spec.matrix(params), position)


@lru_cache(maxsize=65536)
def commutes_with_x_at(name: str, params: tuple[float, ...], position: int) -> bool:
    """Gate ``name(params)`` commutes with X on its qubit ``position``. Conservative (False) for
    a gate block-diagonal in the Z basis of that qubit: it commutes with X there only when it
    does not act on the qubit at all."""
    spec = gate_spec(name)
    if x_embedding(name, position) is not None or position in spec.x_commuting:
        return True
    if spec.diagonal or position in spec.controls:
        return False
    return commutes_with_x(spec.matrix(params), position)


def x_embedding(name: str, position: int) -> tuple[str, tuple[int, ...]] | None:
    """(image, order) when conjugating qubit ``position`` of gate ``name`` by H gives exactly
    table gate ``image`` on the gate's qubits taken in ``order`` (H_t CX(c, t) H_t = CZ(c, t)),
    else None."""
    for at, image, order in gate_spec(name).x_embed:
        if at == position:
            return image, order
    return None


def usual_name(name: str) -> str:
    """The name under which a gate with two names is written (``u3`` for ``U``)."""
    return gate_spec(name).same_as or name


def qiskit_name(name: str) -> str:
    """The name of gate ``name`` in Qiskit (``mcx`` for ``c3x`` and ``c4x``)."""
    return gate_spec(name).qiskit_name or name


def from_qiskit_name(qname: str) -> str | None:
    """The table gate for Qiskit's gate name ``qname`` (a table name stands for itself), or None
    when there is none or the name is ambiguous (``mcx``: by its number of controls)."""
    if qname in GATES:
        return qname
    return _by_qiskit_name().get(qname)


@lru_cache(maxsize=1)
def _by_qiskit_name() -> dict[str, str]:
    names: dict[str, list[str]] = {}
    for spec in GATES.values():
        if spec.qiskit_name is not None:
            names.setdefault(spec.qiskit_name, []).append(spec.name)
    return {q: table[0] for q, table in names.items() if len(table) == 1}


# ---- definitions -----------------------------------------------------------------------------

_STATEMENT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*([^()]*)$")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}


def _split_args(text: str) -> list[str]:
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i])
            start = i + 1
    args.append(text[start:])
    return [a.strip() for a in args if a.strip()]


@lru_cache(maxsize=None)
def _definition_steps(name: str) -> tuple[tuple[str, tuple[ast.expr, ...], tuple[int, ...]], ...]:
    """The definition of ``name`` read once: (gate, parameter expressions, qubit positions) per
    statement, the expressions in the gate's parameters ``_p0``, ``_p1``, ... and ``pi``."""
    spec = gate_spec(name)
    if spec.definition is None:
        raise CircuitError(f"gate '{name}' has no decomposition")
    text = spec.definition.format(*(f"_p{i}" for i in range(spec.num_params)),
                                  **{f"q{i}": f"q{i}" for i in range(spec.num_qubits)})
    steps = []
    for statement in text.split(";"):
        if not statement.strip():
            continue
        match = _STATEMENT.match(statement)
        if match is None:
            raise CircuitError(f"cannot read gate-definition statement {statement!r}")
        gate, args, operands = match.groups()
        exprs = tuple(ast.parse(a, mode="eval").body for a in _split_args(args)) if args else ()
        positions = tuple(int(o.strip()[1:]) for o in operands.split(","))
        steps.append((gate, exprs, positions))
    return tuple(steps)


def _evaluate(expr: ast.expr, env: dict[str, float]) -> float:
    """A parameter expression of a definition: numbers, ``pi``, parameters, + - * / **."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float)):
        return float(expr.value)
    if isinstance(expr, ast.Name) and expr.id in env:
        return env[expr.id]
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
        value = _evaluate(expr.operand, env)
        return -value if isinstance(expr.op, ast.USub) else value
    if isinstance(expr, ast.BinOp) and type(expr.op) in _BINOPS:
        return _BINOPS[type(expr.op)](_evaluate(expr.left, env), _evaluate(expr.right, env))
    raise CircuitError(f"cannot evaluate gate-definition expression {ast.unparse(expr)!r}")


def decomposition(name: str, params: Sequence[float] = ()) -> list[GateOp]:
    """One level of gate ``name``'s ``definition`` for ``params``, on its qubits ``0..k-1``
    (exact up to global phase). Raises CircuitError for a gate without a definition."""
    env = {"pi": math.pi, **{f"_p{i}": p for i, p in enumerate(params)}}
    return [(gate, positions, tuple(_evaluate(e, env) for e in exprs))
            for gate, exprs, positions in _definition_steps(name)]


def definition_gates(name: str) -> tuple[str, ...]:
    """The gates that ``name``'s definition calls, in order of first use; () without one."""
    if gate_spec(name).definition is None:
        return ()
    return tuple(dict.fromkeys(gate for gate, _, _ in _definition_steps(name)))
