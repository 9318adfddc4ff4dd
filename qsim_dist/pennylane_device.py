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
seeded stream per device, ``seed=``).

Gradients: ``diff_method="adjoint"`` (or ``"device"``, or ``"best"``, which picks it where it
applies: no shots, expectation values of observables with a Pauli representation) are device
derivatives by the adjoint method of :mod:`qsim_dist.autodiff` (``expectation_fn``: on the
compiled CPU kernels from 14 qubits on, on the JAX ones below and on a GPU, whatever
``backend=``), the value and the
Jacobian from one forward and one backward sweep; its compiled function is kept per circuit
shape and observable, so an optimisation loop compiles once. Other circuits take PennyLane's
device-independent methods (``"parameter-shift"``, what ``"best"`` picks for them).

Needs the ``pennylane`` extra.
"""

from __future__ import annotations

from dataclasses import replace

import jax
import numpy as np

from .autodiff import expectation_fn, parameters
from .backends import get_backend
from .circuit import Circuit
from .errors import OptionError

try:
    from pennylane.devices import Device, ExecutionConfig
    from pennylane.devices.modifiers import single_tape_support
    from pennylane.devices.preprocess import decompose, no_sampling, \
        validate_adjoint_trainable_params, validate_device_wires, validate_measurements, \
        validate_observables
    from pennylane.measurements import ExpectationMP
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


#: the gradient methods answered by the device's adjoint method
ADJOINT_METHODS = ("adjoint", "device", "best")
_CACHED_FUNCTIONS = 32  # compiled value-and-gradient functions a device keeps


def _adjoint_measurement(mp) -> bool:
    return isinstance(mp, ExpectationMP) and mp.obs is not None and mp.obs.pauli_rep is not None


def _pauli_terms(obs, index) -> tuple[tuple[complex | float, str], ...]:
    """``obs`` as qsim_dist's (coefficient, sparse label) pairs, wires as device indices."""
    terms = []
    for word, c in obs.pauli_rep.items():
        c = complex(c)
        label = " ".join(f"{p}{index[w]}" for w, p in word.items())
        terms.append((c.real if c.imag == 0 else c, label))
    return tuple(terms)


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

    def supports_derivatives(self, execution_config=None, circuit=None) -> bool:
        """Device derivatives (the adjoint method) for ``"adjoint"``, ``"device"`` and
        ``"best"``: first order, no shots, expectation values of observables with a Pauli
        representation."""
        if execution_config is None:
            return True
        if execution_config.gradient_method not in ADJOINT_METHODS or \
                execution_config.derivative_order != 1:
            return False
        if circuit is None:
            return True
        return not circuit.shots and all(_adjoint_measurement(mp)
                                         for mp in circuit.measurements)

    def preprocess(self, execution_config: ExecutionConfig | None = None):
        config = execution_config if execution_config is not None else ExecutionConfig()
        program = CompilePipeline()
        program.add_transform(validate_device_wires, wires=self.wires, name=self.name)
        if config.gradient_method in ADJOINT_METHODS:
            # the measurements stay as they are: the adjoint method reads the observable whole
            config = replace(config, gradient_method="adjoint", use_device_gradient=True,
                             grad_on_execution=True, use_device_jacobian_product=False)
            program.add_transform(no_sampling, name="adjoint + " + self.name)
            program.add_transform(decompose, stopping_condition=_supported,
                                  skip_initial_state_prep=False, name=self.name)
            program.add_transform(validate_observables,
                                  lambda obs: obs.pauli_rep is not None, name=self.name)
            program.add_transform(validate_measurements, analytic_measurements=
                                  _adjoint_measurement, name=self.name)
            program.add_transform(broadcast_expand)
            program.add_transform(validate_adjoint_trainable_params)
            return program, config
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

    def compute_derivatives(self, circuits, execution_config: ExecutionConfig | None = None):
        return tuple(self._adjoint(tape)[1] for tape in circuits)

    def execute_and_compute_derivatives(self, circuits,
                                        execution_config: ExecutionConfig | None = None):
        both = [self._adjoint(tape) for tape in circuits]
        return tuple(r for r, _ in both), tuple(j for _, j in both)

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

    def _value_and_grad(self, circuit: Circuit, terms):
        """``jax.jit(jax.value_and_grad(expectation_fn(circuit, terms)))``, one per circuit
        shape (gates and qubits, not angles) and observable, the oldest dropped past
        :data:`_CACHED_FUNCTIONS`."""
        key = (circuit.num_qubits, tuple((i.name, i.qubits) for i in circuit), terms)
        cache = self.__dict__.setdefault("_functions", {})
        if key not in cache:
            if len(cache) >= _CACHED_FUNCTIONS:
                cache.pop(next(iter(cache)))
            cache[key] = jax.jit(jax.value_and_grad(expectation_fn(circuit, list(terms))))
        return cache[key]

    def _adjoint(self, tape):
        """``(result, jacobian)`` of one tape of expectation values, by the adjoint method, in
        PennyLane's shapes (a measurement's value, or a tuple of them; the Jacobian squeezed
        as default.qubit's)."""
        circuit, wires = self._circuit(tape)
        index = {w: k for k, w in enumerate(wires)}
        slots = []  # each operation parameter's place in parameters(circuit); None: no effect
        for op in tape.operations:
            for _ in op.parameters:
                slots.append(None if op.name == "GlobalPhase" else
                             sum(s is not None for s in slots))
        values, grads = [], []
        with jax.enable_x64(self._precision == "double"):
            p = parameters(circuit)
            for mp in tape.measurements:
                value, grad = self._value_and_grad(circuit, _pauli_terms(mp.obs, index))(p)
                values.append(float(value))
                grads.append(np.asarray(grad, dtype=np.float64))
        jac = np.array([[g[slots[t]] if t < len(slots) and slots[t] is not None else 0.0
                         for t in tape.trainable_params] for g in grads]).squeeze()
        result = np.float64(values[0]) if len(values) == 1 else tuple(map(np.float64, values))
        if jac.ndim == 0:
            return result, np.array(jac)
        if jac.ndim == 1:
            return result, tuple(np.array(j) for j in jac)
        return result, tuple(tuple(np.array(j) for j in row) for row in jac)

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
