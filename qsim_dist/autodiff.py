"""Expectation values as pure JAX functions of a circuit's gate parameters (jit, grad, vmap).

A parametrised circuit is an ordinary :class:`~qsim_dist.circuit.Circuit`: its parameters are the
gate parameters of its instructions, in instruction order, and the numbers written in it are
only where it stands now (:func:`parameters` lists them). ``expectation_fn(circuit, observable)``
gives ``f(params)``, the expectation value with every gate parameter replaced by ``params``; tie
or fix parameters by composing, e.g. ``f(jnp.repeat(theta, 2))`` or ``f(base.at[k].set(t))``::

    >>> import jax
    >>> from qsim_dist import Circuit
    >>> from qsim_dist.autodiff import expectation_fn, parameters
    >>> c = Circuit(1).add("rx", 0, params=[0.0])
    >>> f = expectation_fn(c, "Z")                 # f([t]) = <Z> after rx(t) = cos(t)
    >>> round(float(jax.grad(f)(parameters(c) + 0.5)[0]), 5)  # -sin(0.5)
    -0.47943

``f`` runs the JAX statevector of :mod:`qsim_dist.kernels.jax_xla` (``apply_dense``,
``apply_diagonal``, ``pauli_expectation``) on matrices the gate table builds from the traced
parameters (``GateSpec.matrix(params, xp=JAX_OPS)``, no ``float()`` on the way), so it is one JAX
function that ``jax.jit``, ``jax.grad`` and ``jax.vmap`` accept; :func:`statevector_fn` gives the
state itself as such a function. Both read a circuit as ``Backend.expectation`` does: its
unconditioned gates (measurements, resets and barriers are left out). They are double precision
when JAX's ``jax_enable_x64`` is on, single otherwise.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import validation as check
from .circuit import Circuit, Instruction
from .errors import CircuitError
from .gates import ArrayOps, gate_spec
from .kernels import jax_xla
from .observables import PauliSum, as_pauli_sum, pauli_phase

JAX_OPS = ArrayOps.of(jnp, is_traced=lambda value: isinstance(value, jax.core.Tracer))


def _gates(circuit: Circuit) -> list[Instruction]:
    # what Backend.expectation evolves the state by
    return [inst for inst in circuit if inst.is_gate and not inst.condition]


def _circuit(circuit: Any) -> Circuit:
    if not isinstance(circuit, Circuit):
        raise CircuitError(f"expected a Circuit, got {check.describe(circuit)}")
    return circuit


def parameters(circuit: Circuit) -> np.ndarray:
    """The gate parameters of ``circuit`` in instruction order (float64): the point at which the
    function of :func:`expectation_fn` is the circuit's own expectation value."""
    return np.array([p for inst in _gates(_circuit(circuit)) for p in inst.params],
                    dtype=np.float64)


def _checked(params: Any, count: int) -> jax.Array:
    """``params`` as a JAX vector of ``count`` reals; a concrete one must be finite (a tracer's
    values are not known while tracing, only its shape and dtype)."""
    try:
        values = jnp.asarray(params)
    except (TypeError, ValueError):
        raise CircuitError(f"params must be {count} real number(s), got "
                           f"{check.describe(params)}") from None
    if values.shape != (count,) or values.dtype.kind not in ("f", "i", "u"):
        raise CircuitError(f"params must be a vector of {count} real number(s), got shape "
                           f"{values.shape}, dtype {values.dtype}")
    if values.dtype.kind != "f":
        values = values.astype(float)
    if not isinstance(values, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(values))):
        raise CircuitError(f"params must be finite real numbers, got {check.describe(params)}")
    return values


def _evolution(circuit: Circuit) -> tuple[int, Callable[[jax.Array], jax.Array]]:
    """How many parameters ``circuit`` has, and ``evolve(values)``: its state from |0...0> with
    those gate parameters, a JAX function (not yet jitted) of a checked vector."""
    steps = []  # (gate, qubits, index of its first parameter in the vector)
    count = 0
    for inst in _gates(_circuit(circuit)):
        spec = gate_spec(inst.name)
        steps.append((spec, inst.qubits, count))
        count += spec.num_params
    num_qubits = circuit.num_qubits

    def evolve(values):
        state = jax_xla.zero_state(num_qubits, complex)  # complex128 under jax_enable_x64
        for spec, qubits, first in steps:
            m = spec.matrix(tuple(values[first + j] for j in range(spec.num_params)), xp=JAX_OPS)
            if spec.diagonal:
                state = jax_xla.apply_diagonal(state, jnp.diagonal(m), qubits)
            else:
                state = jax_xla.apply_dense(state, m, qubits)
        return state

    return count, evolve


def _public(count: int, fn: Callable[[jax.Array], jax.Array]) -> Callable[[Any], jax.Array]:
    # One jit around the whole function: the kernels donate their state buffer, which a grad
    # outside any jit would still need for its backward pass; inside a jit XLA owns the buffers.
    # The parameters are checked outside it, where a concrete vector can still be read.
    jitted = jax.jit(fn)
    return lambda params: jitted(_checked(params, count))


def statevector_fn(circuit: Circuit) -> Callable[[Any], jax.Array]:
    """``f(params)``: the statevector (little-endian, as ``Backend.statevector``) of ``circuit``
    from ``|0...0>`` with its gate parameters replaced by the vector ``params``
    (:func:`parameters` order); a pure JAX function, as :func:`expectation_fn`."""
    return _public(*_evolution(circuit))


def expectation_fn(circuit: Circuit,
                   observable: PauliSum | str | Sequence) -> Callable[[Any], jax.Array]:
    """``f(params)``: the real expectation value ``<psi(params)|H|psi(params)>`` of the Hermitian
    Pauli sum ``observable`` (as :func:`qsim_dist.observables.as_pauli_sum` reads it), where
    ``psi(params)`` is ``circuit`` from ``|0...0>`` with its gate parameters replaced by the
    vector ``params`` (:func:`parameters` order). ``f`` is a pure JAX function: ``jax.jit``,
    ``jax.grad`` and ``jax.vmap`` (over a batch of parameter vectors) accept it."""
    h = as_pauli_sum(observable, _circuit(circuit).num_qubits)
    count, evolve = _evolution(circuit)

    def expectation(values):
        state = evolve(values)
        # the kernel's sum leaves out the string's constant phase (-i)^#Y
        total = sum(c * pauli_phase(x, z) * jax_xla.pauli_expectation(state, x, z)
                    for c, x, z in h.terms)
        return jnp.real(total)

    return _public(count, expectation)
