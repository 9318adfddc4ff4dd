"""Deterministic benchmark circuits and gate-by-gate translations to the peer simulators.

Every generator returns a :class:`qsim_dist.Circuit` and depends only on its arguments, so a child
process can rebuild exactly the same circuit from ``(name, n, seed)``. The translations map each of
our instructions to exactly one instruction of the peer (no transpiling, no decomposition, no
optimisation), so every simulator gets the same gate list and may only apply its own built-in fusion.

Qubit ``q`` is bit ``q`` of a basis-state index everywhere (little-endian, as Qiskit); the Cirq
translation returns the qubit order that makes Cirq/qsim use that convention too.

Circuits
--------
``qft(n, prepare=True)``
    Optional input layer (``prepare=True``, the default): ``ry(theta_q)`` on every qubit ``q`` with
    ``theta_q = pi * (q + 1) / (n + 2)``, so the input is a product state with all amplitudes
    non-zero and the output has distinct magnitudes and phases (QFT of ``|0...0>`` is the uniform
    state, where every controlled phase acts trivially and a checksum would check nothing).
    Then the textbook QFT, most significant qubit first (as ``qiskit.circuit.library.QFT``)::

        for j = n-1 down to 0:
            h(j)
            for k = j-1 down to 0:  cp(pi / 2**(j-k)) control k, target j
        for i < n/2:  swap(i, n-1-i)

    Gates: ``n`` (ry) + ``n`` (h) + ``n(n-1)/2`` (cp) + ``floor(n/2)`` (swap); 336 at n = 24.

``random_circuit(n, depth, seed, entangler="cx")``
    ``rng = numpy.random.default_rng(seed)``; for each of ``depth`` layers:

    1. ``kinds = rng.integers(0, 4, size=n)``; for q = 0..n-1, gate ``("u3", "rx", "ry", "rz")[kinds[q]]``
       on qubit q with angles drawn in that order by ``rng.uniform(0, 2*pi, size=k)``
       (k = 3 for u3: theta, phi, lambda; k = 1 otherwise);
    2. ``perm = rng.permutation(n)``; for i = 0..n//2-1 the two-qubit gate on
       ``(perm[2i], perm[2i+1])`` (control, target): ``cx`` for ``entangler="cx"`` (default),
       ``cz`` for ``"cz"``; for ``"mixed"`` one more draw ``rng.integers(0, 2)`` per pair picks
       cx (0) or cz (1). With odd n one qubit idles in the entangling step.

    Gates per layer: ``n + n//2``; 720 at n = 24, depth 20.

``random_circuit_gates(n, num_gates, seed)``
    ``random_circuit(n, depth, seed)`` with just enough layers, cut after ``num_gates`` gates.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, _ROOT)

from qsim_dist import Circuit, library  # noqa: E402

CIRCUITS = ("qft", "random")
DEFAULT_DEPTH = 20
DEFAULT_SEED = 1234


# ---- generators ------------------------------------------------------------------------------

def qft(n: int, prepare: bool = True) -> Circuit:
    """The library's textbook QFT, after the optional input layer (see the module docstring)."""
    c = Circuit(n, name=f"qft_{n}")
    if prepare:
        for q in range(n):
            c.add("ry", q, params=(math.pi * (q + 1) / (n + 2),))
    for inst in library.qft(n):
        c.append(inst)
    return c


def random_circuit(n: int, depth: int = DEFAULT_DEPTH, seed: int = DEFAULT_SEED,
                   entangler: str = "cx") -> Circuit:
    """:func:`qsim_dist.library.random_circuit` with the benchmark's default seed."""
    return library.random_circuit(n, depth, seed, entangler)


def random_circuit_gates(n: int, num_gates: int, seed: int = DEFAULT_SEED) -> Circuit:
    """The first ``num_gates`` gates of a layered random circuit on ``n`` qubits."""
    per_layer = n + n // 2
    depth = -(-num_gates // per_layer)
    full = random_circuit(n, depth, seed)
    return Circuit(n, 0, full.instructions[:num_gates], name=f"random_{n}_g{num_gates}_s{seed}")


def build(name: str, n: int, depth: int = DEFAULT_DEPTH, seed: int = DEFAULT_SEED) -> Circuit:
    """The benchmark circuit called ``name`` ("qft" or "random") on ``n`` qubits."""
    if name == "qft":
        return qft(n)
    if name == "random":
        return random_circuit(n, depth, seed)
    raise ValueError(f"unknown circuit {name!r} (choose from {', '.join(CIRCUITS)})")


def _gates(circuit: Circuit):
    for inst in circuit:
        if inst.name == "barrier":
            continue
        if not inst.is_gate or inst.condition is not None:
            raise ValueError(f"benchmark translations take unitary gates only, got {inst.name}")
        yield inst


# ---- Qiskit ----------------------------------------------------------------------------------

def to_qiskit(circuit: Circuit):
    """A ``qiskit.QuantumCircuit`` with one Qiskit instruction per gate (same qubit numbering)."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(circuit.num_qubits, name=circuit.name)
    for inst in _gates(circuit):
        q, p = inst.qubits, inst.params
        name = inst.name
        if name in ("u3", "u"):
            qc.u(p[0], p[1], p[2], q[0])
        elif name in ("rx", "ry", "rz", "p"):
            getattr(qc, name)(p[0], q[0])
        elif name in ("h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx"):
            getattr(qc, name)(q[0])
        elif name in ("cx", "cz", "swap"):
            getattr(qc, name)(q[0], q[1])
        elif name == "cp":
            qc.cp(p[0], q[0], q[1])
        else:
            raise ValueError(f"to_qiskit: gate {name} not in the benchmark gate set")
    return qc


# ---- Cirq / qsim -----------------------------------------------------------------------------

def to_cirq(circuit: Circuit) -> tuple[Any, list]:
    """``(cirq.Circuit, qubit_order)``: one Cirq operation per gate, on ``cirq.LineQubit(q)``.

    Pass ``qubit_order`` to ``simulate`` so that qubit q is bit q of the state index (Cirq puts the
    first qubit of the order in the most significant bit, so the order is reversed).
    Conventions: ``rx/ry/rz(t)`` are ``cirq.rx/ry/rz(t)`` = exp(-i t P/2) exactly; ``cp(l)`` is
    ``CZ**(l/pi)`` = diag(1, 1, 1, e^{il}) exactly; ``u3`` is a 1-qubit ``cirq.MatrixGate`` with our
    matrix (qsim applies it natively).
    """
    import cirq

    from qsim_dist.gates import gate_matrix

    qs = cirq.LineQubit.range(circuit.num_qubits)
    ops = []
    for inst in _gates(circuit):
        q = [qs[i] for i in inst.qubits]
        p = inst.params
        name = inst.name
        if name in ("u3", "u"):
            ops.append(cirq.MatrixGate(gate_matrix("u3", p)).on(q[0]))
        elif name in ("rx", "ry", "rz"):
            ops.append(getattr(cirq, name)(p[0]).on(q[0]))
        elif name == "p":
            ops.append(cirq.ZPowGate(exponent=p[0] / math.pi).on(q[0]))
        elif name in ("h", "x", "y", "z", "s", "t"):
            ops.append(getattr(cirq, name.upper()).on(q[0]))
        elif name == "cx":
            ops.append(cirq.CNOT.on(q[0], q[1]))
        elif name == "cz":
            ops.append(cirq.CZ.on(q[0], q[1]))
        elif name == "cp":
            ops.append(cirq.CZPowGate(exponent=p[0] / math.pi).on(q[0], q[1]))
        elif name == "swap":
            ops.append(cirq.SWAP.on(q[0], q[1]))
        else:
            raise ValueError(f"to_cirq: gate {name} not in the benchmark gate set")
    # EARLIEST packs operations into moments; gate order on every qubit is unchanged.
    return cirq.Circuit(ops), list(reversed(qs))


# ---- qulacs ----------------------------------------------------------------------------------

def to_qulacs(circuit: Circuit):
    """A ``qulacs.QuantumCircuit`` with one qulacs gate per gate (same qubit numbering).

    qulacs 0.6's ``RX/RY/RZ(q, t)`` are exp(+i t P/2) (the inverse of Qiskit's); ``RotX/RotY/RotZ``
    are exp(-i t P/2) and are used here. ``cp`` is a 1-qubit ``DenseMatrix`` diag(1, e^{il}) with
    one control qubit (qulacs's ``CP`` is a completely-positive map, not a controlled phase).
    """
    import qulacs
    from qulacs import gate as qg

    qc = qulacs.QuantumCircuit(circuit.num_qubits)
    for inst in _gates(circuit):
        q, p = inst.qubits, inst.params
        name = inst.name
        if name in ("u3", "u"):
            g = qg.U3(q[0], p[0], p[1], p[2])
        elif name == "rx":
            g = qg.RotX(q[0], p[0])
        elif name == "ry":
            g = qg.RotY(q[0], p[0])
        elif name == "rz":
            g = qg.RotZ(q[0], p[0])
        elif name in ("h", "x", "y", "z", "s", "t"):
            g = getattr(qg, name.upper())(q[0])
        elif name == "cx":
            g = qg.CNOT(q[0], q[1])
        elif name == "cz":
            g = qg.CZ(q[0], q[1])
        elif name in ("cp", "p"):
            t = q[-1]
            g = qg.DenseMatrix(t, np.diag([1.0, np.exp(1j * p[0])]))
            if name == "cp":
                g.add_control_qubit(q[0], 1)
        elif name == "swap":
            g = qg.SWAP(q[0], q[1])
        else:
            raise ValueError(f"to_qulacs: gate {name} not in the benchmark gate set")
        qc.add_gate(g)
    return qc
