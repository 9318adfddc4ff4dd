"""A PennyLane device on qsim_dist: ``qml.device("qsim_dist.qubit", wires=...)``.

::

    import pennylane as qml

    dev = qml.device("qsim_dist.qubit", wires=4, backend="statevector", seed=1)

    @qml.qnode(dev, diff_method="parameter-shift")
    def energy(theta):
        qml.RY(theta, wires=0)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(1))

    qml.grad(energy)(qml.numpy.array(0.3, requires_grad=True))

PennyLane decomposes each circuit to the gates of :data:`GATE_NAMES` (those of qsim_dist's gate
table), then the device runs it on a qsim_dist backend (``backend=``, any registry name, with
its options): without shots the final state once, every measurement processed from it by
PennyLane's own measurement code (``expval``, ``var``, ``probs``, ``state``, ...); with shots,
the circuit measured on every wire, the samples handed to PennyLane's sample processing (one
seeded stream per device, ``seed=``). Gradients come from PennyLane's device-independent methods
(``diff_method="parameter-shift"``, or ``"best"``, which picks it); the JAX gradients of
:mod:`qsim_dist.autodiff` are the differentiable path within qsim_dist itself.

Needs the ``pennylane`` extra.
"""

from __future__ import annotations

import numpy as np

from .backends import get_backend
from .circuit import Circuit
from .errors import OptionError

try:
    from pennylane.devices import Device, ExecutionConfig
    from pennylane.devices.modifiers import single_tape_support
    from pennylane.devices.preprocess import decompose, validate_device_wires, \
        validate_measurements
    from pennylane.transforms import (broadcast_expand, defer_measurements,
                                      diagonalize_measurements, split_non_commuting)
    from pennylane.transforms.core import CompilePipeline
    from pennylane.wires import Wires
except ImportError as exc:   # pragma: no cover - exercised only without the extra
    raise ImportError("qsim_dist.pennylane_device needs pennylane (pip install "
                      "'qsim_dist[pennylane]')") from exc

__all__ = ["GATE_NAMES", "QsimDistDevice"]

#: PennyLane operation name -> qsim_dist gate name (wires in the same order)
GATE_NAMES = {
    "Identity": "id", "PauliX": "x", "PauliY": "y", "PauliZ": "z", "Hadamard": "h", "S": "s",
    "T": "t", "SX": "sx", "CNOT": "cx", "CZ": "cz", "CY": "cy", "SWAP": "swap",
    "Toffoli": "ccx", "CSWAP": "cswap", "RX": "rx", "RY": "ry", "RZ": "rz",
    "PhaseShift": "p", "ControlledPhaseShift": "cp", "CRX": "crx", "CRY": "cry", "CRZ": "crz",
    "IsingXX": "rxx", "IsingYY": "ryy", "IsingZZ": "rzz", "U3": "u3",
}


def _supported(op) -> bool:
    return op.name in GATE_NAMES or op.name == "GlobalPhase"


@single_tape_support
class QsimDistDevice(Device):
    """``qsim_dist.qubit``: PennyLane circuits on a qsim_dist backend (see the module
    docstring). ``backend``: a registry name (default ``statevector``); ``seed``: the device's
    stream of shot seeds; other keyword arguments go to the backend."""

    name = "qsim_dist.qubit"

    def __init__(self, wires=None, shots=None, *, backend: str = "statevector",
                 seed: int | None = None, precision: str = "double", **backend_options):
        super().__init__(wires=wires, shots=shots)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or
                                 isinstance(seed, bool) or seed < 0):
            raise OptionError(f"seed must be a non-negative integer or None, got {seed!r}")
        self._backend = get_backend(backend, **backend_options)
        self._seeds = np.random.SeedSequence(seed)
        self._precision = precision

    def preprocess(self, execution_config: ExecutionConfig | None = None):
        config = execution_config if execution_config is not None else ExecutionConfig()
        program = CompilePipeline()
        program.add_transform(validate_device_wires, wires=self.wires, name=self.name)
        program.add_transform(defer_measurements, allow_postselect=False)
        # PennyLane processes a measurement from a state in its observable's eigenbasis:
        # commuting groups, each rotated by its diagonalising gates (which are then decomposed)
        program.add_transform(split_non_commuting)
        program.add_transform(diagonalize_measurements)
        program.add_transform(decompose, stopping_condition=_supported,
                              skip_initial_state_prep=False, name=self.name)
        program.add_transform(validate_measurements, name=self.name)
        program.add_transform(broadcast_expand)
        return program, config

    def execute(self, circuits, execution_config: ExecutionConfig | None = None):
        return tuple(self._simulate(tape) for tape in circuits)

    # -- one tape --------------------------------------------------------------------------
    def _circuit(self, tape) -> tuple[Circuit, "Wires"]:
        wires = tape.wires if self.wires is None else self.wires
        index = {w: k for k, w in enumerate(wires)}
        c = Circuit(max(len(wires), 1))
        for op in tape.operations:
            if op.name == "GlobalPhase":
                continue   # no observable effect
            params = [float(np.real(p)) for p in op.parameters]
            c.add(GATE_NAMES[op.name], *[index[w] for w in op.wires], params=params)
        return c, wires

    def _simulate(self, tape):
        circuit, wires = self._circuit(tape)
        n = circuit.num_qubits
        if not tape.shots:
            psi = self._backend.statevector(circuit, precision=self._precision)
            # qsim_dist: qubit k = bit k (little-endian); PennyLane: wire 0 most significant
            state = np.asarray(psi, dtype=np.complex128).reshape((2,) * n) \
                .transpose(tuple(reversed(range(n)))).reshape(-1)
            results = tuple(mp.process_state(state, wires) for mp in tape.measurements)
            return results[0] if len(results) == 1 else results
        measured = Circuit(n, n, list(circuit.instructions))
        for q in range(n):
            measured.measure(q, q)
        seed = int(self._seeds.spawn(1)[0].generate_state(1)[0])
        counts = self._backend.run(measured, shots=tape.shots.total_shots, seed=seed,
                                   precision=self._precision).counts
        keys = np.array([[int(key[-1 - k]) for k in range(n)] for key in counts],
                        dtype=np.int64)
        samples = np.repeat(keys, list(counts.values()), axis=0)
        np.random.default_rng(seed).shuffle(samples)   # independent shots, in random order
        out = []
        for lower, upper in tape.shots.bins():
            part = tuple(mp.process_samples(samples[lower:upper], wires)
                         for mp in tape.measurements)
            out.append(part[0] if len(part) == 1 else part)
        return tuple(out) if tape.shots.has_partitioned_shots else out[0]
