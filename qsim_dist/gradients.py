"""Gradients of expectation values on any backend by the parameter-shift rule: for the
backends that are not differentiable (the compiled CPU kernels, the distributed statevector,
the tensor network) and for sampled or noisy estimates.

::

    from qsim_dist.gradients import parameter_shift

    value, grad = parameter_shift(circuit, "Z0 Z1 + 0.5 X2")                  # exact, statevector
    value, grad, err = parameter_shift(circuit, h, shots=4000, seed=1, noise=model,
                                       return_stderr=True)                    # sampled, noisy

A parameter is a gate parameter of the circuit in instruction order (as
:func:`qsim_dist.autodiff.parameters` lists them). Every gate whose parameter enters as
``exp(-i theta G)`` with a generator of two eigenvalues one apart takes the two-term rule
``df/dtheta = (f(theta + pi/2) - f(theta - pi/2)) / 2``: ``rx``, ``ry``, ``rz``, ``rxx``,
``ryy``, ``rzz``, ``rzx``, ``p``, ``u1``, ``cp`` and each angle of ``u3``/``u`` (a product of
such rotations). Another parameterised gate is refused by name (decompose it first). Exact
values come from ``Backend.expectation``; with ``shots``, each Pauli term is measured in its
eigenbasis (``shots`` shots per term and shifted circuit, one seeded stream) and a noise model
(``noise``) applies to those runs; ``return_stderr`` adds the standard error of each gradient
entry. The JAX path (:mod:`qsim_dist.autodiff`) is exact and faster where it applies.

Through a distributed program: with ``network=`` (a :class:`~qsim_dist.network.Network` or a
network file) every shifted circuit is compiled onto the network
(:func:`qsim_dist.network.distribute.distribute`, one placement for all: the base circuit's, or
``placement=``) and run there by :func:`qsim_dist.dqc.run_program`, the observable read off the
output qubits of every trajectory. With ``ideal=True`` the links and nodes are perfect and the
gradient is exact (it equals the circuit's own); otherwise each evaluation averages ``shots``
trajectories of the noisy machine (its link fidelities, gate errors, decoherence over every
wait), so a variational algorithm can be optimised on the machine it will run on. The rule
stays exact in expectation under noise: the channels do not depend on the parameters, so the
expectation is still a trigonometric polynomial of degree one in each parameter.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from .backends import get_backend
from .circuit import Circuit
from .errors import CircuitError, OptionError
from .noise import NoiseModel
from .observables import PauliSum, as_pauli_sum

__all__ = ["SHIFTABLE", "parameter_shift"]

#: gates whose every parameter takes the two-term rule with shift pi/2
SHIFTABLE = frozenset({"rx", "ry", "rz", "rxx", "ryy", "rzz", "rzx", "p", "u1", "cp", "cphase",
                       "u3", "u"})


def _gates(circuit: Circuit) -> list:
    return [inst for inst in circuit if inst.is_gate and not inst.condition]


def _with_params(circuit: Circuit, values: np.ndarray) -> Circuit:
    """``circuit``'s gates with their parameters replaced by ``values`` (instruction order)."""
    out, k = [], 0
    for inst in _gates(circuit):
        n = len(inst.params)
        out.append(dataclasses.replace(inst, params=tuple(float(v) for v in values[k:k + n]))
                   if n else inst)
        k += n
    return Circuit(circuit.num_qubits, 0, out)


def _sampled(backend, circuit: Circuit, h: PauliSum, shots: int, rng: np.random.Generator,
             noise: NoiseModel | None, precision: str) -> tuple[float, float]:
    """An estimate of <H> and its standard error: each term measured in its eigenbasis."""
    value = variance = 0.0
    for coeff, x, z in h.terms:
        support = [q for q in range(h.num_qubits) if (x | z) >> q & 1]
        if not support:
            value += coeff.real
            continue
        c = Circuit(circuit.num_qubits, len(support), list(circuit.instructions))
        for q in support:
            if x >> q & 1 and z >> q & 1:   # Y: measured after S^dagger H
                c.add("sdg", q)
                c.add("h", q)
            elif x >> q & 1:
                c.add("h", q)
        for j, q in enumerate(support):
            c.measure(q, j)
        counts = backend.run(c, shots=shots, seed=int(rng.integers(2 ** 63)),
                             precision=precision, noise=noise).counts
        mean = sum(n * (-1) ** key.count("1") for key, n in counts.items()) / shots
        value += coeff.real * mean
        variance += coeff.real ** 2 * max(1.0 - mean ** 2, 0.0) / shots
    return value, variance


def parameter_shift(circuit: Circuit, observable: PauliSum | str | Sequence,
                    params: Any = None, *, backend: str = "statevector",
                    shots: int | None = None, seed: int | None = None,
                    noise: NoiseModel | None = None, precision: str = "double",
                    return_stderr: bool = False, network: Any = None, ideal: bool = False,
                    placement: Sequence[str] | None = None, **backend_options):
    """``(value, gradient)`` of ``<H>`` at ``params`` (default: the circuit's own parameters),
    by the parameter-shift rule on ``backend`` (see the module docstring); with
    ``return_stderr`` also the standard errors ``(value_err, gradient_err)`` (zeros when
    exact). ``network``, ``ideal``, ``placement``: through a distributed program (see the
    module docstring); ``backend`` is then the network run's (``"auto"`` lets it choose)."""
    if not isinstance(circuit, Circuit):
        raise CircuitError(f"parameter_shift needs a Circuit, got {type(circuit).__name__}")
    h = as_pauli_sum(observable, circuit.num_qubits)
    if any(abs(c.imag) > 1e-12 for c, _, _ in h.terms):
        raise OptionError("parameter_shift: the observable must be Hermitian (real "
                          "coefficients)")
    gates = _gates(circuit)
    names = [inst.name for inst in gates for _ in inst.params]
    bad = sorted({n for n in names if n not in SHIFTABLE})
    if bad:
        raise CircuitError(f"parameter_shift: no two-term shift rule for {', '.join(bad)} "
                           f"(shiftable: {', '.join(sorted(SHIFTABLE))}); decompose first")
    base = np.array([p for inst in gates for p in inst.params], dtype=np.float64)
    if params is not None:
        values = np.asarray(params, dtype=np.float64).reshape(-1)
        if values.shape != base.shape or not np.all(np.isfinite(values)):
            raise OptionError(f"parameter_shift: params must be {base.size} finite numbers, "
                              f"got shape {np.shape(params)}")
        base = values
    if shots is not None and (not isinstance(shots, int) or isinstance(shots, bool) or
                              shots < 1):
        raise OptionError(f"parameter_shift: shots must be a positive integer, got {shots!r}")
    if noise is not None and shots is None:
        raise OptionError("parameter_shift: a noise model needs shots (a sampled estimate)")
    rng = np.random.default_rng(seed)
    if network is not None:
        evaluate = _on_network(circuit, h, network, placement=placement, ideal=ideal,
                               shots=shots, noise=noise, backend=backend, rng=rng)
    else:
        if ideal or placement is not None:
            raise OptionError("parameter_shift: ideal and placement apply to a network run "
                              "(network=)")
        evaluate = _on_backend(circuit, h, get_backend(backend, **backend_options),
                               shots=shots, noise=noise, precision=precision, rng=rng)
    value, value_var = evaluate(base)
    grad, grad_var = np.zeros(base.size), np.zeros(base.size)
    for k in range(base.size):
        shift = np.zeros(base.size)
        shift[k] = math.pi / 2
        plus, var_plus = evaluate(base + shift)
        minus, var_minus = evaluate(base - shift)
        grad[k] = (plus - minus) / 2
        grad_var[k] = (var_plus + var_minus) / 4
    if return_stderr:
        return value, grad, (math.sqrt(value_var), np.sqrt(grad_var))
    return value, grad


def _on_backend(circuit: Circuit, h: PauliSum, engine, *, shots, noise, precision, rng):
    """(value, variance of the estimate) of <H> at given parameters, on one backend."""
    def evaluate(values: np.ndarray) -> tuple[float, float]:
        c = _with_params(circuit, values)
        if shots is None:
            return float(engine.expectation(c, h, precision=precision)), 0.0
        return _sampled(engine, c, h, shots, rng, noise, precision)
    return evaluate


def _on_network(circuit: Circuit, h: PauliSum, network: Any, *, placement, ideal, shots, noise,
                backend, rng):
    """(value, variance of the estimate) of <H> at given parameters, the circuit compiled onto
    ``network`` and run there (exact over ideal links)."""
    from .dqc import run_program
    from .network import Network, load_network
    from .network.distribute import distribute

    if noise is not None:
        raise OptionError("parameter_shift: a network run takes its noise from the network "
                          "file, not noise=")
    if not isinstance(network, Network):
        network = load_network(network)
    if shots is None and not ideal:
        raise OptionError("parameter_shift: a run on a noisy network needs shots (trajectories "
                          "per evaluation), or ideal=True")
    if placement is None:
        placement = distribute(circuit, network).placement
    backend = "auto" if backend == "statevector" and not ideal else backend

    def evaluate(values: np.ndarray) -> tuple[float, float]:
        program = distribute(_with_params(circuit, values), network, placement=placement)
        report = run_program(program, network, shots=shots or 1, ideal=ideal, backend=backend,
                             seed=int(rng.integers(2 ** 63)), observables=[h])
        return report.expectations[0], 0.0 if ideal else report.expectations_stderr[0] ** 2
    return evaluate
