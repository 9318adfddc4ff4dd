"""The one gate table: every gate's arity, parameters, matrix and structure lives here.

Bit order: a gate on qubits ``(q0, q1, ...)`` has a ``2^k x 2^k`` matrix whose row/column index
holds the state of ``q0`` in bit 0 (least significant), ``q1`` in bit 1, and so on, as in Qiskit.
Controlled gates list their controls first: ``cx(control, target)``, ``ccx(c0, c1, target)``.

``GATES[name]`` gives a :class:`GateSpec`; :func:`gate_matrix` builds a matrix for given parameters.
Every gate outside OpenQASM 2's ``qelib1.inc`` or outside OpenQASM 3's ``stdgates.inc`` carries a
``definition``: a gate body in other table gates, ``U`` and ``CX``, valid as OpenQASM 2 and 3 and
exact up to global phase, which the OpenQASM exporter writes into the file for any reader to use.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import validation as check
from .errors import CircuitError
from .linalg import operator_of

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
class GateSpec:
    """Everything known about one gate name."""

    name: str
    num_qubits: int
    num_params: int
    matrix_fn: Callable[..., Matrix] = field(repr=False)
    diagonal: bool = False  # matrix is diagonal: merged into elementwise phase passes
    permutation: bool = False  # matrix is a 0/1 permutation matrix
    qelib1: bool = True  # part of OpenQASM 2's qelib1.inc (as Qiskit ships it)
    stdgates: bool = False  # part of OpenQASM 3's stdgates.inc
    definition: str | None = None  # QASM gate body; {0}.. are params, {q0}.. qubits
    param_names: tuple[str, ...] = ()

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


def _compose(num_qubits: int, ops: Sequence[tuple[str, tuple[int, ...], tuple[float, ...]]]) -> Matrix:
    """Matrix of a short sequence of table gates (used for gates defined by a decomposition)."""
    return operator_of(num_qubits, ((GATES[name].matrix(params), qubits)
                                    for name, qubits, params in ops))


def _rccx() -> Matrix:
    pi = math.pi
    return _compose(3, [
        ("u2", (2,), (0, pi)), ("u1", (2,), (pi / 4,)), ("cx", (1, 2), ()),
        ("u1", (2,), (-pi / 4,)), ("cx", (0, 2), ()), ("u1", (2,), (pi / 4,)),
        ("cx", (1, 2), ()), ("u1", (2,), (-pi / 4,)), ("u2", (2,), (0, pi)),
    ])


def _rc3x() -> Matrix:
    pi = math.pi
    return _compose(4, [
        ("u2", (3,), (0, pi)), ("u1", (3,), (pi / 4,)), ("cx", (2, 3), ()),
        ("u1", (3,), (-pi / 4,)), ("u2", (3,), (0, pi)), ("cx", (0, 3), ()),
        ("u1", (3,), (pi / 4,)), ("cx", (1, 3), ()), ("u1", (3,), (-pi / 4,)),
        ("cx", (0, 3), ()), ("u1", (3,), (pi / 4,)), ("cx", (1, 3), ()),
        ("u1", (3,), (-pi / 4,)), ("u2", (3,), (0, pi)), ("u1", (3,), (pi / 4,)),
        ("cx", (2, 3), ()), ("u1", (3,), (-pi / 4,)), ("u2", (3,), (0, pi)),
    ])


# ---- the table -------------------------------------------------------------------------------

GATES: dict[str, GateSpec] = {}


def _add(name, nq, npar, fn, *, diagonal=False, permutation=False, qelib1=True, stdgates=False,
         definition=None, param_names=()):
    GATES[name] = GateSpec(name, nq, npar, fn, diagonal, permutation, qelib1, stdgates, definition,
                           tuple(param_names) or tuple(f"p{i}" for i in range(npar)))


_T3 = ("theta", "phi", "lambda")
# one-qubit
_add("id", 1, 0, lambda: _I, diagonal=True, stdgates=True)
_add("x", 1, 0, lambda: _X, permutation=True, stdgates=True)
_add("y", 1, 0, lambda: _Y, stdgates=True)
_add("z", 1, 0, lambda: _Z, diagonal=True, stdgates=True)
_add("h", 1, 0, lambda: _H, stdgates=True)
_add("s", 1, 0, lambda: _S, diagonal=True, stdgates=True)
_add("sdg", 1, 0, lambda: _S.conj(), diagonal=True, stdgates=True)
_add("t", 1, 0, lambda: _T, diagonal=True, stdgates=True)
_add("tdg", 1, 0, lambda: _T.conj(), diagonal=True, stdgates=True)
_add("sx", 1, 0, lambda: _SX, stdgates=True)
_add("sxdg", 1, 0, lambda: _SX.conj().T,
     definition="s {q0}; h {q0}; s {q0};")
_add("rx", 1, 1, _rx, stdgates=True, param_names=("theta",))
_add("ry", 1, 1, _ry, stdgates=True, param_names=("theta",))
_add("rz", 1, 1, _rz, diagonal=True, stdgates=True, param_names=("theta",))
_add("p", 1, 1, _p, diagonal=True, stdgates=True, param_names=("lambda",))
_add("phase", 1, 1, _p, diagonal=True, qelib1=False, stdgates=True, definition="u1({0}) {q0};",
     param_names=("lambda",))
_add("u0", 1, 1, lambda g, xp: _I, diagonal=True, param_names=("gamma",),
     definition="U(0,0,0) {q0};")
_add("u1", 1, 1, _p, diagonal=True, stdgates=True, param_names=("lambda",))
_add("u2", 1, 2, lambda phi, lam, xp: _u3(math.pi / 2, phi, lam, xp), stdgates=True,
     param_names=("phi", "lambda"))
_add("u3", 1, 3, _u3, stdgates=True, param_names=_T3)
_add("u", 1, 3, _u3, param_names=_T3,
     definition="U({0},{1},{2}) {q0};")
_add("U", 1, 3, _u3, param_names=_T3)
_add("r", 1, 2, _r, qelib1=False, definition="u3({0}, {1} - pi/2, -{1} + pi/2) {q0};",
     param_names=("theta", "phi"))
# two-qubit
_add("cx", 2, 0, lambda: controlled(_X), permutation=True, stdgates=True)
_add("CX", 2, 0, lambda: controlled(_X), permutation=True, stdgates=True)
_add("cy", 2, 0, lambda: controlled(_Y), stdgates=True)
_add("cz", 2, 0, lambda: controlled(_Z), diagonal=True, stdgates=True)
_add("ch", 2, 0, lambda: controlled(_H), stdgates=True)
_add("cs", 2, 0, lambda: controlled(_S), diagonal=True, qelib1=False,
     definition="u1(pi/4) {q0}; cx {q0},{q1}; u1(-pi/4) {q1}; cx {q0},{q1}; u1(pi/4) {q1};")
_add("csdg", 2, 0, lambda: controlled(_S.conj()), diagonal=True, qelib1=False,
     definition="u1(-pi/4) {q0}; cx {q0},{q1}; u1(pi/4) {q1}; cx {q0},{q1}; u1(-pi/4) {q1};")
_add("cp", 2, 1, _cp, diagonal=True, stdgates=True,
     param_names=("lambda",))
_add("cphase", 2, 1, _cp, diagonal=True, qelib1=False, stdgates=True,
     definition="cu1({0}) {q0},{q1};", param_names=("lambda",))
_add("cu1", 2, 1, _cp, diagonal=True, param_names=("lambda",),
     definition="u1({0}/2) {q0}; cx {q0},{q1}; u1(-{0}/2) {q1}; cx {q0},{q1}; u1({0}/2) {q1};")
_add("cu3", 2, 3, lambda t, ph, la, xp: xp.controlled(_u3(t, ph, la, xp)), param_names=_T3,
     definition="u1(({2}+{1})/2) {q0}; u1(({2}-{1})/2) {q1}; cx {q0},{q1}; "
                "u3(-{0}/2,0,-({1}+{2})/2) {q1}; cx {q0},{q1}; u3({0}/2,{1},0) {q1};")
_add("cu", 2, 4, lambda t, ph, la, g, xp:
     xp.controlled(xp.exp(1j * g) * _u3(t, ph, la, xp)),
     stdgates=True, param_names=_T3 + ("gamma",))
_add("crx", 2, 1, lambda t, xp: xp.controlled(_rx(t, xp)), stdgates=True, param_names=("theta",))
_add("cry", 2, 1, lambda t, xp: xp.controlled(_ry(t, xp)), stdgates=True, param_names=("theta",))
_add("crz", 2, 1, lambda t, xp: xp.controlled(_rz(t, xp)), diagonal=True, stdgates=True,
     param_names=("theta",))
_add("csx", 2, 0, lambda: controlled(_SX),
     definition="h {q1}; cu1(pi/2) {q0},{q1}; h {q1};")
_add("swap", 2, 0, _swap, permutation=True, stdgates=True)
_add("iswap", 2, 0, _iswap, qelib1=False,
     definition="s {q0}; s {q1}; h {q0}; cx {q0},{q1}; cx {q1},{q0}; h {q1};")
_add("dcx", 2, 0, lambda: _compose(2, [("cx", (0, 1), ()), ("cx", (1, 0), ())]),
     permutation=True, qelib1=False, definition="cx {q0},{q1}; cx {q1},{q0};")
_add("ecr", 2, 0, _ecr, qelib1=False,
     definition="rzx(pi/4) {q0},{q1}; x {q0}; rzx(-pi/4) {q0},{q1};")
_add("rxx", 2, 1, lambda t, xp: _exp_pauli2(_X, _X, t, xp), param_names=("theta",),
     definition="u3(pi/2,{0},0) {q0}; h {q1}; cx {q0},{q1}; u1(-{0}) {q1}; cx {q0},{q1}; h {q1}; "
                "u2(-pi,pi-{0}) {q0};")
_add("ryy", 2, 1, lambda t, xp: _exp_pauli2(_Y, _Y, t, xp), qelib1=False, param_names=("theta",),
     definition="rx(pi/2) {q0}; rx(pi/2) {q1}; cx {q0},{q1}; rz({0}) {q1}; cx {q0},{q1}; "
                "rx(-pi/2) {q0}; rx(-pi/2) {q1};")
_add("rzz", 2, 1, lambda t, xp: _exp_pauli2(_Z, _Z, t, xp), diagonal=True, param_names=("theta",),
     definition="cx {q0},{q1}; u1({0}) {q1}; cx {q0},{q1};")
_add("rzx", 2, 1, lambda t, xp: _exp_pauli2(_Z, _X, t, xp), qelib1=False, param_names=("theta",),
     definition="h {q1}; cx {q0},{q1}; rz({0}) {q1}; cx {q0},{q1}; h {q1};")
_add("xx_minus_yy", 2, 2, _xx_minus_yy, qelib1=False, param_names=("theta", "beta"),
     definition="rz(-{1}) {q1}; rz(-pi/2) {q0}; sx {q0}; rz(pi/2) {q0}; s {q1}; cx {q0},{q1}; "
                "ry({0}/2) {q0}; ry(-{0}/2) {q1}; cx {q0},{q1}; sdg {q1}; rz(-pi/2) {q0}; "
                "sxdg {q0}; rz(pi/2) {q0}; rz({1}) {q1};")
_add("xx_plus_yy", 2, 2, _xx_plus_yy, qelib1=False, param_names=("theta", "beta"),
     definition="rz({1}) {q0}; rz(-pi/2) {q1}; sx {q1}; rz(pi/2) {q1}; s {q0}; cx {q1},{q0}; "
                "ry(-{0}/2) {q1}; ry(-{0}/2) {q0}; cx {q1},{q0}; sdg {q0}; rz(-pi/2) {q1}; "
                "sxdg {q1}; rz(pi/2) {q1}; rz(-{1}) {q0};")
# three and more qubits
_add("ccx", 3, 0, lambda: controlled(_X, 2), permutation=True, stdgates=True)
_add("ccz", 3, 0, lambda: controlled(_Z, 2), diagonal=True, qelib1=False,
     definition="h {q2}; ccx {q0},{q1},{q2}; h {q2};")
_add("cswap", 3, 0, _cswap, permutation=True, stdgates=True)
_add("rccx", 3, 0, _rccx,
     definition="u2(0,pi) {q2}; u1(pi/4) {q2}; cx {q1},{q2}; u1(-pi/4) {q2}; "
                "cx {q0},{q2}; u1(pi/4) {q2}; cx {q1},{q2}; u1(-pi/4) {q2}; "
                "u2(0,pi) {q2};")
_add("c3x", 4, 0, lambda: controlled(_X, 3), permutation=True,
     definition="h {q3}; p(pi/8) {q0}; p(pi/8) {q1}; p(pi/8) {q2}; p(pi/8) {q3}; "
                "cx {q0},{q1}; p(-pi/8) {q1}; cx {q0},{q1}; cx {q1},{q2}; p(-pi/8) {q2}; "
                "cx {q0},{q2}; p(pi/8) {q2}; cx {q1},{q2}; p(-pi/8) {q2}; cx {q0},{q2}; "
                "cx {q2},{q3}; p(-pi/8) {q3}; cx {q1},{q3}; p(pi/8) {q3}; cx {q2},{q3}; "
                "p(-pi/8) {q3}; cx {q0},{q3}; p(pi/8) {q3}; cx {q2},{q3}; p(-pi/8) {q3}; "
                "cx {q1},{q3}; p(pi/8) {q3}; cx {q2},{q3}; p(-pi/8) {q3}; cx {q0},{q3}; "
                "h {q3};")
_add("c3sqrtx", 4, 0, lambda: controlled(_SX, 3),
     definition="h {q3}; cu1(pi/8) {q0},{q3}; h {q3}; cx {q0},{q1}; h {q3}; "
                "cu1(-pi/8) {q1},{q3}; h {q3}; cx {q0},{q1}; h {q3}; cu1(pi/8) {q1},{q3}; "
                "h {q3}; cx {q1},{q2}; h {q3}; cu1(-pi/8) {q2},{q3}; h {q3}; "
                "cx {q0},{q2}; h {q3}; cu1(pi/8) {q2},{q3}; h {q3}; cx {q1},{q2}; h {q3}; "
                "cu1(-pi/8) {q2},{q3}; h {q3}; cx {q0},{q2}; h {q3}; cu1(pi/8) {q2},{q3}; "
                "h {q3};")
_add("rc3x", 4, 0, _rc3x,
     definition="u2(0,pi) {q3}; u1(pi/4) {q3}; cx {q2},{q3}; u1(-pi/4) {q3}; "
                "u2(0,pi) {q3}; cx {q0},{q3}; u1(pi/4) {q3}; cx {q1},{q3}; "
                "u1(-pi/4) {q3}; cx {q0},{q3}; u1(pi/4) {q3}; cx {q1},{q3}; "
                "u1(-pi/4) {q3}; u2(0,pi) {q3}; u1(pi/4) {q3}; cx {q2},{q3}; "
                "u1(-pi/4) {q3}; u2(0,pi) {q3};")
_add("c4x", 5, 0, lambda: controlled(_X, 4), permutation=True,
     definition="h {q4}; cu1(pi/2) {q3},{q4}; h {q4}; c3x {q0},{q1},{q2},{q3}; h {q4}; "
                "cu1(-pi/2) {q3},{q4}; h {q4}; c3x {q0},{q1},{q2},{q3}; "
                "c3sqrtx {q0},{q1},{q2},{q4};")


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
