"""Gradients and batches through the JAX statevector: qsim_dist.autodiff and the gate table's
traced matrices (GateSpec.matrix(params, xp=JAX_OPS)) against finite differences and the numpy
statevector backend."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsim_dist import Circuit, Instruction
from qsim_dist.autodiff import JAX_OPS, expectation_fn, parameters, statevector_fn
from qsim_dist.backends import get_backend
from qsim_dist.errors import CircuitError
from qsim_dist.gates import GATES

BACKEND = get_backend("statevector", kernels="cpu")
OBSERVABLE = [(0.7, "Z0 Z1"), (-0.3, "X2"), (0.5, "Y1 X3"), (0.2, "Z3"), (0.1, "")]
PARAMETRISED = sorted(name for name, spec in GATES.items() if spec.num_params)


@pytest.fixture
def x64():
    """Double precision in JAX for one test, the setting restored after it."""
    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def ansatz() -> Circuit:
    """Four qubits: every kind of parametrised gate of the tests, on unsorted qubits, between
    fixed gates and a measurement (which the expectation leaves out, as Backend.expectation)."""
    c = Circuit(4, 1)
    for q in range(4):
        c.add("h", q)
    c.add("rx", 0, params=[0.3]).add("ry", 1, params=[-1.1]).add("rz", 2, params=[0.7])
    c.add("u3", 3, params=[0.4, 1.3, -0.6])
    c.add("cx", 2, 0).add("crz", 3, 1, params=[0.9]).add("cp", 0, 2, params=[-0.8])
    c.add("rzz", 1, 3, params=[0.5]).add("xx_plus_yy", 2, 1, params=[1.2, 0.3])
    c.add("cu", 1, 0, params=[0.2, -0.4, 0.6, 0.1]).add("ry", 3, params=[2.0])
    c.add("u2", 0, params=[0.25, -0.5])
    c.add("measure", 0, clbits=[0])
    return c


@functools.lru_cache(maxsize=None)
def ansatz_fn():
    """expectation_fn of the ansatz, one for every test, so that JAX compiles each
    transformation of it once (x64 on or off is part of JAX's cache key)."""
    return expectation_fn(ansatz(), OBSERVABLE)


def with_params(circuit: Circuit, values) -> Circuit:
    """``circuit`` with its gate parameters replaced by ``values`` (parameters() order)."""
    out = Circuit(circuit.num_qubits, circuit.num_clbits)
    k = 0
    for inst in circuit:
        n = len(inst.params)
        out.append(Instruction(inst.name, inst.qubits,
                               tuple(float(v) for v in values[k:k + n]), inst.clbits,
                               inst.condition))
        k += n
    return out


def numpy_expectation(circuit: Circuit, values) -> float:
    return BACKEND.expectation(with_params(circuit, values), OBSERVABLE, precision="double")


def test_value_matches_the_statevector_backend(x64):
    c = ansatz()
    f = ansatz_fn()
    p = parameters(c)
    assert p.shape == (18,)
    assert float(f(p)) == pytest.approx(BACKEND.expectation(c, OBSERVABLE, precision="double"),
                                        abs=1e-12)


def test_statevector_fn_is_the_backend_statevector(x64):
    c = ansatz()
    gates = Circuit(c.num_qubits, 0, [inst for inst in c if inst.is_gate])
    batch = parameters(c) + np.random.default_rng(5).uniform(-1, 1, (3, parameters(c).size))
    states = jax.vmap(statevector_fn(c))(batch)
    assert states.shape == (3, 16) and states.dtype == jnp.complex128
    for row, psi in zip(batch, states):
        want = BACKEND.statevector(with_params(gates, row), precision="double")
        np.testing.assert_allclose(psi, want, atol=1e-12)


def test_gradient_matches_central_finite_differences(x64):
    c = ansatz()
    f = ansatz_fn()
    p = parameters(c)
    grad = np.asarray(jax.grad(f)(p))
    h = 1e-5
    fd = np.array([(numpy_expectation(c, p + h * e) - numpy_expectation(c, p - h * e)) / (2 * h)
                   for e in np.eye(p.size)])
    np.testing.assert_allclose(grad, fd, atol=1e-6)
    assert np.abs(grad).max() > 0.05  # not trivially zero


def test_vmap_over_a_batch_matches_a_loop_of_numpy_runs(x64):
    c = ansatz()
    f = ansatz_fn()
    batch = np.random.default_rng(3).uniform(-math.pi, math.pi, (5, parameters(c).size))
    got = np.asarray(jax.vmap(f)(batch))
    want = [numpy_expectation(c, row) for row in batch]
    np.testing.assert_allclose(got, want, atol=1e-12)
    grads = jax.vmap(jax.grad(f))(batch)  # per-row gradients, as one batched computation
    np.testing.assert_allclose(grads[2], jax.grad(f)(batch[2]), atol=1e-12)


def test_jit_gives_the_same_value_and_gradient(x64):
    c = ansatz()
    f = ansatz_fn()
    p = parameters(c) + 0.1
    assert float(jax.jit(f)(p)) == pytest.approx(float(f(p)), abs=1e-13)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(p), jax.grad(f)(p), atol=1e-13)


def test_single_precision_without_x64():
    c = ansatz()
    value = ansatz_fn()(parameters(c))
    assert value.dtype == jnp.float32
    assert float(value) == pytest.approx(BACKEND.expectation(c, OBSERVABLE), abs=2e-5)


def test_tied_parameters_compose():
    # one angle shared by two gates: the function of the circuit's parameters, composed
    c = Circuit(1).add("rx", 0, params=[0.0]).add("rx", 0, params=[0.0])
    f = expectation_fn(c, "Z")
    shared = jax.grad(lambda t: f(jnp.stack([t, t])))(0.4)  # <Z> = cos(2t)
    assert float(shared) == pytest.approx(-2 * math.sin(0.8), abs=1e-5)


@pytest.mark.parametrize("name", PARAMETRISED)
def test_traced_matrix_of_every_parametrised_gate_is_the_numpy_matrix(x64, name):
    spec = GATES[name]
    p = np.random.default_rng(len(name)).uniform(-3, 3, spec.num_params)
    want = spec.matrix(tuple(p))
    np.testing.assert_allclose(spec.matrix(tuple(p), xp=JAX_OPS), want, atol=1e-14)
    traced = jax.jit(lambda v: spec.matrix(tuple(v), xp=JAX_OPS))(jnp.asarray(p))
    np.testing.assert_allclose(traced, want, atol=1e-14)
    # the derivative in each parameter, against central differences of the numpy matrix
    jac = jax.jacfwd(lambda v: spec.matrix(tuple(v), xp=JAX_OPS))(jnp.asarray(p))
    h = 1e-6
    for k in range(spec.num_params):
        e = h * np.eye(spec.num_params)[k]
        fd = (spec.matrix(tuple(p + e)) - spec.matrix(tuple(p - e))) / (2 * h)
        np.testing.assert_allclose(jac[..., k], fd, atol=1e-8)


@pytest.mark.parametrize("bad", [[math.nan], [math.inf], [True], ["0.5"], [1j], [[0.1, 0.2]]])
def test_traced_path_still_refuses_bad_numbers(bad):
    with pytest.raises(CircuitError, match="gate 'rx': theta must be a finite real number"):
        GATES["rx"].matrix(bad, xp=JAX_OPS)
    with pytest.raises(CircuitError, match="gate 'rx': theta must be a finite real number"):
        GATES["rx"].matrix([jnp.asarray(bad[0])] if not isinstance(bad[0], (str, list)) else bad,
                           xp=JAX_OPS)


def test_a_tracer_that_is_not_a_real_scalar_is_refused():
    with pytest.raises(CircuitError, match="theta must be a finite real number"):
        jax.jit(lambda z: GATES["rx"].matrix([z], xp=JAX_OPS))(jnp.asarray(1j))
    with pytest.raises(CircuitError, match="theta must be a finite real number"):
        jax.jit(lambda v: GATES["rx"].matrix([v], xp=JAX_OPS))(jnp.zeros(2))


def test_expectation_fn_refuses_bad_parameters():
    f = ansatz_fn()
    with pytest.raises(CircuitError, match="vector of 18 real number"):
        f(np.zeros(3))
    with pytest.raises(CircuitError, match="vector of 18 real number"):
        f(np.zeros(18, dtype=bool))
    with pytest.raises(CircuitError, match="must be finite"):
        f(np.full(18, np.nan))
    with pytest.raises(CircuitError, match="18 real number"):
        f(["x"] * 18)
    with pytest.raises(CircuitError, match="expected a Circuit"):
        expectation_fn("h q[0];", "Z")


# ---- an OpenQASM 3 program with input parameters ------------------------------------------

def test_a_qasm_programs_inputs_are_the_functions_arguments():
    from qsim_dist.autodiff import qasm_expectation_fn
    from qsim_dist.io.qasm import loads

    jax.config.update("jax_enable_x64", True)
    source = """OPENQASM 3.0;
include "stdgates.inc";
input float[64] theta;
input angle phi;
qubit[3] q;
ry(2*theta) q[0];
cx q[0], q[1];
rz(-phi/2 + theta) q[1];
rx(phi) q[2];
crx(theta - pi/3) q[1], q[2];
"""
    h = "Z0 Z1 + X1 + 0.5 Y2 Z1"
    f, names = qasm_expectation_fn(source, h)
    assert names == ["theta", "phi"]
    x = np.array([0.3, 0.7])
    value, grad = jax.value_and_grad(f)(jnp.asarray(x))
    bound = loads(source, inputs={"theta": 0.3, "phi": 0.7})
    assert float(value) == pytest.approx(get_backend("reference").expectation(bound, h),
                                         abs=1e-12)
    fd = [(float(f(x + 1e-6 * e)) - float(f(x - 1e-6 * e))) / 2e-6 for e in np.eye(2)]
    np.testing.assert_allclose(np.asarray(grad), fd, atol=1e-8)
    np.testing.assert_allclose(jax.vmap(f)(jnp.asarray([x, 2 * x])),
                               [float(f(x)), float(f(2 * x))], atol=1e-12)


@pytest.mark.parametrize("line,message", [
    ("rx(phi * phi) q[2];", "non-linearly"),
    ("rx(sin(theta)) q[2];", "non-linearly"),
])
def test_a_non_affine_input_is_refused_in_one_line(line, message):
    from qsim_dist.autodiff import qasm_expectation_fn

    source = ('OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float theta;\ninput angle phi;\n'
              "qubit[3] q;\nry(theta) q[0];\n" + line + "\n")
    with pytest.raises(CircuitError, match=message) as err:
        qasm_expectation_fn(source, "Z0")
    assert "\n" not in str(err.value)
