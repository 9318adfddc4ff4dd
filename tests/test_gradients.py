"""Parameter-shift gradients (qsim_dist.gradients) on the non-differentiable backends against
the JAX gradient of qsim_dist.autodiff; sampled and noisy estimates within their errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from qsim_dist import Circuit
from qsim_dist import noise as Nz
from qsim_dist.autodiff import expectation_fn, parameters
from qsim_dist.errors import QsimDistError
from qsim_dist.gradients import parameter_shift

H = [(0.7, "Z0 Z1"), (-0.4, "X2"), (0.25, "Y1 Z2"), (0.1, "Z3")]


def ansatz():
    rng = np.random.default_rng(3)
    c = Circuit(4)
    for layer in range(2):
        for q in range(4):
            c.add("ry", q, params=[float(rng.uniform(0, 6))])
            c.add("rz", q, params=[float(rng.uniform(0, 6))])
        for q in range(3):
            c.add("cx", q, q + 1)
        c.add("rzz", 0, 3, params=[float(rng.uniform(0, 6))])
    c.add("u3", 2, params=[0.4, -1.1, 0.8])
    c.add("p", 1, params=[0.6])
    return c


@pytest.fixture(scope="module")
def jax_reference():
    with jax.enable_x64(True):
        c = ansatz()
        f = expectation_fn(c, H)
        value, grad = jax.value_and_grad(f)(parameters(c))
        return float(value), np.asarray(grad)


@pytest.mark.parametrize("backend", ["statevector", "reference", "tensor"])
def test_exact_shift_gradients_equal_the_jax_gradient(backend, jax_reference):
    value, grad = parameter_shift(ansatz(), H, backend=backend)
    assert value == pytest.approx(jax_reference[0], abs=1e-10)
    np.testing.assert_allclose(grad, jax_reference[1], atol=1e-9)


def test_sampled_and_noisy_estimates_are_within_their_errors(jax_reference):
    value, grad, (v_err, g_err) = parameter_shift(ansatz(), H, shots=4000, seed=2,
                                                  return_stderr=True)
    assert abs(value - jax_reference[0]) < 5 * v_err
    assert np.all(np.abs(grad - jax_reference[1]) < 5 * g_err + 1e-12)
    again = parameter_shift(ansatz(), H, shots=4000, seed=2)
    np.testing.assert_array_equal(again[1], grad)   # one seed, one estimate
    # a depolarising channel after every rotation shrinks every term: |<H>| goes down
    model = Nz.NoiseModel().add_gate_error(Nz.depolarizing(0.05), ["ry", "rz"])
    noisy, _ = parameter_shift(ansatz(), [(1.0, "Z3")], shots=4000, seed=2, noise=model)
    exact, _ = parameter_shift(ansatz(), [(1.0, "Z3")])
    assert abs(noisy) < abs(exact)


def test_other_params_and_refusals():
    c = ansatz()
    p = parameters(c) + 0.1
    with jax.enable_x64(True):
        want = np.asarray(jax.grad(expectation_fn(c, H))(p))
    np.testing.assert_allclose(parameter_shift(c, H, p)[1], want, atol=1e-9)
    bad = Circuit(2)
    bad.add("crx", 0, 1, params=[0.3])
    for call in (lambda: parameter_shift(bad, "Z1"),
                 lambda: parameter_shift(c, H, p[:3]),
                 lambda: parameter_shift(c, H, shots=0),
                 lambda: parameter_shift(c, H, noise=Nz.NoiseModel()),
                 lambda: parameter_shift(c, [(1j, "Z0")])):
        with pytest.raises(QsimDistError) as info:
            call()
        assert "\n" not in str(info.value)
