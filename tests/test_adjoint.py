"""The adjoint method of qsim_dist.autodiff (expectation_fn's default gradient) against the JAX
backprop gradient of the same function and central finite differences of the numpy statevector
backend: every parametrised gate of the table, on both kernel sets (cpu through
jax.pure_callback, jax), multi-qubit Pauli observables, vmap, jit, single precision; and the
block plan it sweeps (runs of one-qubit gates, controlled and diagonal blocks)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsim_dist import Circuit
from qsim_dist.autodiff import HOST_FROM_QUBITS, _kernel_set, controlled_target, \
    expectation_fn, parameters, plan
from qsim_dist.errors import CircuitError
from qsim_dist.gates import GATES
from test_jax_autodiff import BACKEND, PARAMETRISED, with_params, x64  # noqa: F401 (a fixture)

KERNELS = ["cpu", "jax"]
# X, Y and Z on several qubits at once, a string with all three, a constant term, a complex
# coefficient (its Hermitian part counts, as the function's real part)
OBSERVABLE = [(0.7, "Z0 Z1"), (-0.3, "X2 Y0"), (0.5, "Y1 X3 Z2"), (0.2, "Z3"), (0.1, ""),
              (0.4, "X0 X1 X2 X3"), (0.25 + 0.5j, "Y3 Y2")]


def sandwich(name: str) -> Circuit:
    """Gate ``name`` twice, on unsorted qubits in two orders, among fixed and other trainable
    gates on four qubits, so that every block kind meets it (runs before and after it, a
    controlled gate, a diagonal one)."""
    spec = GATES[name]
    k = spec.num_qubits
    rng = np.random.default_rng(len(name) + 7 * k)
    c = Circuit(4)
    for q in range(4):
        c.add("h", q).add("ry", q, params=[0.3 + 0.2 * q])
    c.add(name, *[2, 0, 3, 1][:k], params=list(rng.uniform(-2, 2, spec.num_params)))
    c.add("cx", 1, 2).add("rz", 2, params=[0.4]).add("cp", 3, 0, params=[-0.6])
    c.add(name, *[1, 3, 0, 2][:k], params=list(rng.uniform(-2, 2, spec.num_params)))
    c.add("rx", 0, params=[1.1]).add("crx", 0, 3, params=[0.8])
    return c


def numpy_expectation(circuit: Circuit, values, observable) -> float:
    return BACKEND.expectation(with_params(circuit, values), observable, precision="double")


def central_differences(circuit, p, observable, h=1e-5):
    return np.array([(numpy_expectation(circuit, p + h * e, observable) -
                      numpy_expectation(circuit, p - h * e, observable)) / (2 * h)
                     for e in np.eye(p.size)])


@functools.lru_cache(maxsize=None)
def backprop_grad(name):
    c = sandwich(name)
    return np.asarray(jax.jit(jax.grad(expectation_fn(c, OBSERVABLE, gradient="backprop")))(
        parameters(c)))


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", PARAMETRISED)
def test_every_parametrised_gate_against_backprop_and_differences(x64, name, kernels):
    c = sandwich(name)
    p = parameters(c)
    f = expectation_fn(c, OBSERVABLE, kernels=kernels)
    value, grad = jax.value_and_grad(f)(p)
    assert float(value) == pytest.approx(numpy_expectation(c, p, OBSERVABLE), abs=1e-12)
    np.testing.assert_allclose(grad, backprop_grad(name), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grad, central_differences(c, p, OBSERVABLE), rtol=0, atol=1e-9)
    assert np.abs(grad).max() > 0.05  # not trivially zero


def hardware_efficient(n: int, layers: int) -> Circuit:
    c = Circuit(n)
    for _ in range(layers):
        for q in range(n):
            c.add("ry", q, params=[0.0]).add("rz", q, params=[0.0])
        for q in range(n - 1):
            c.add("cx", q, q + 1)
    return c


@pytest.mark.parametrize("kernels", KERNELS)
def test_hardware_efficient_ansatz_and_a_long_pauli_sum(x64, kernels):
    n = 6
    c = hardware_efficient(n, 3)
    h = [(1.0, f"Z{i} Z{i + 1}") for i in range(n - 1)] + [(0.5, f"X{i}") for i in range(n)]
    h += [(0.3, "Y0 Y5"), (-0.2, "X1 Y2 Z3 X4")]
    p = np.random.default_rng(1).uniform(0, 2 * np.pi, parameters(c).size)
    grad = jax.jit(jax.grad(expectation_fn(c, h, kernels=kernels)))(p)
    np.testing.assert_allclose(grad, central_differences(c, p, h), rtol=0, atol=1e-9)


@pytest.mark.parametrize("kernels", KERNELS)
def test_vmap_of_value_and_gradient_is_a_loop(x64, kernels):
    c = sandwich("u3")
    f = expectation_fn(c, OBSERVABLE, kernels=kernels)
    batch = parameters(c) + np.random.default_rng(3).uniform(-1, 1, (3, parameters(c).size))
    values, grads = jax.vmap(jax.value_and_grad(f))(batch)
    for row, v, g in zip(batch, values, grads):
        assert float(v) == pytest.approx(numpy_expectation(c, row, OBSERVABLE), abs=1e-12)
        np.testing.assert_allclose(g, jax.grad(f)(row), rtol=0, atol=1e-13)
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.grad(f)))(batch), grads, atol=1e-13)


@pytest.mark.parametrize("kernels", KERNELS)
def test_composed_parameters_and_a_jacobian(x64, kernels):
    # one angle shared by every gate, a function of the gradient's own making: <Z> = cos(2t)
    c = Circuit(1).add("rx", 0, params=[0.0]).add("rx", 0, params=[0.0])
    f = expectation_fn(c, "Z", kernels=kernels)
    assert float(jax.grad(lambda t: f(jnp.stack([t, t])))(0.4)) == \
        pytest.approx(-2 * math.sin(0.8), abs=1e-12)
    # reverse-mode Jacobian of several expectation values at once
    g = jax.jacrev(lambda v: jnp.stack([f(v), 2 * f(v[::-1])]))(jnp.array([0.1, 0.7]))
    np.testing.assert_allclose(g, [[-math.sin(0.8)] * 2, [-2 * math.sin(0.8)] * 2], atol=1e-12)


@pytest.mark.parametrize("kernels", KERNELS)
def test_single_precision_follows_jax(kernels):
    c = sandwich("rzz")
    p = parameters(c)
    value, grad = jax.value_and_grad(expectation_fn(c, OBSERVABLE, kernels=kernels))(p)
    assert value.dtype == jnp.float32 and grad.dtype == jnp.float32
    jax.config.update("jax_enable_x64", True)
    try:
        want = np.asarray(jax.grad(expectation_fn(c, OBSERVABLE, kernels=kernels))(p))
    finally:
        jax.config.update("jax_enable_x64", False)
    np.testing.assert_allclose(grad, want, atol=2e-5)


@pytest.mark.parametrize("kernels", KERNELS)
def test_circuits_without_parameters_or_gates(x64, kernels):
    c = Circuit(2).add("h", 0).add("cx", 0, 1)
    f = expectation_fn(c, "X0 X1", kernels=kernels)
    value, grad = jax.value_and_grad(f)(np.zeros(0))
    assert float(value) == pytest.approx(1.0, abs=1e-14) and grad.shape == (0,)
    constant = expectation_fn(Circuit(3), [(1, "Z1"), (0.5, "")], kernels=kernels)
    assert float(constant(np.zeros(0))) == pytest.approx(1.5, abs=1e-14)


def test_backprop_still_gives_forward_mode(x64):
    c = sandwich("ry")
    p = parameters(c)
    adjoint = jax.grad(expectation_fn(c, OBSERVABLE))(p)
    forward = jax.jacfwd(expectation_fn(c, OBSERVABLE, gradient="backprop"))(p)
    np.testing.assert_allclose(forward, adjoint, atol=1e-12)


def test_bad_options_are_refused():
    c = Circuit(1).add("rx", 0, params=[0.0])
    with pytest.raises(CircuitError, match="gradient must be"):
        expectation_fn(c, "Z", gradient="shift")
    with pytest.raises(CircuitError, match="kernels must be"):
        expectation_fn(c, "Z", kernels="gpu")
    with pytest.raises(CircuitError, match="backprop"):
        expectation_fn(c, "Z", gradient="backprop", kernels="cpu")


def test_auto_takes_the_compiled_kernels_for_large_states_on_a_cpu():
    if jax.default_backend() != "cpu":
        pytest.skip("JAX runs on an accelerator: auto is the JAX kernels")
    assert _kernel_set("auto", HOST_FROM_QUBITS - 1) == "jax"
    assert _kernel_set("auto", HOST_FROM_QUBITS) == "cpu"
    assert _kernel_set("jax", 30) == "jax" and _kernel_set("cpu", 2) == "cpu"


# ---- the plan ---------------------------------------------------------------------------------

def test_plan_fuses_runs_and_keeps_controlled_and_diagonal_gates():
    c = Circuit(3)
    c.add("ry", 0, params=[0.1]).add("rz", 0, params=[0.2]).add("rz", 1, params=[0.3])
    c.add("s", 1).add("cx", 0, 1).add("h", 2).add("crz", 2, 0, params=[0.4])
    c.add("cry", 2, 1, params=[0.5]).add("swap", 0, 2).add("x", 1)
    got = [(b.kind, b.qubits, b.controls, [s[0].name for s in b.steps], b.trainable)
           for b in plan(c)[0]]
    assert got == [
        ("dense", (0,), (), ["ry", "rz"], True),
        ("diagonal", (1,), (), ["rz", "s"], True),
        ("controlled", (1,), (0,), ["cx"], False),
        ("dense", (2,), (), ["h"], False),
        ("diagonal", (0, 2), (), ["crz"], True),
        ("controlled", (1,), (2,), ["cry"], True),
        ("dense", (0, 2), (), ["swap"], False),
        ("dense", (1,), (), ["x"], False),
    ]
    assert plan(c)[1] == 5


def test_controlled_target_of_known_gates():
    assert {name: controlled_target(name) for name in
            ["cx", "crx", "cu", "cu3", "ccx", "c3sqrtx", "c4x", "swap", "rzx", "rxx", "crz",
             "cswap", "h"]} == {"cx": 1, "crx": 1, "cu": 1, "cu3": 1, "ccx": 2, "c3sqrtx": 3,
                                 "c4x": 4, "swap": None, "rzx": None, "rxx": None,
                                 "crz": None, "cswap": None, "h": None}


@pytest.mark.parametrize("name", sorted(GATES))
def test_controlled_target_holds_at_other_parameters(name):
    """What controlled_target read from two parameter points, at five more: the identity where
    a control reads 0, a 2 x 2 block where they all read 1."""
    p = controlled_target(name)
    if p is None:
        return
    spec = GATES[name]
    k = spec.num_qubits
    on = ((1 << k) - 1) & ~(1 << p)
    block = [on, on | 1 << p]
    rng = np.random.default_rng(11)
    for _ in range(5):
        m = spec.matrix(tuple(rng.uniform(-7, 7, spec.num_params)))
        want = np.eye(1 << k, dtype=complex)
        want[np.ix_(block, block)] = m[np.ix_(block, block)]
        np.testing.assert_allclose(m, want, atol=1e-13)
