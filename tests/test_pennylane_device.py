"""The PennyLane device qsim_dist.qubit (qsim_dist.pennylane_device) against PennyLane's own
default.qubit: expectation values, probabilities, states, samples and gradients."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

from qsim_dist.errors import QsimDistError


def circuit_fn(weights):
    for w in range(3):
        qml.RY(weights[w], wires=w)
    qml.CNOT(wires=[0, 1])
    qml.CRX(weights[3], wires=[1, 2])
    qml.IsingZZ(weights[4], wires=[0, 2])
    qml.Rot(weights[5], weights[6], weights[7], wires=1)   # decomposed by PennyLane


WEIGHTS = pnp.array([0.3, -0.7, 1.1, 0.4, 0.9, 0.2, -0.5, 1.3], requires_grad=True)


def make(dev, kind):
    @qml.qnode(dev, diff_method="parameter-shift" if dev.name == "qsim_dist.qubit"
               else "backprop")
    def f(weights):
        circuit_fn(weights)
        if kind == "expval":
            return qml.expval(qml.PauliZ(0) @ qml.PauliX(2) + 0.5 * qml.PauliY(1))
        if kind == "many":
            return qml.expval(qml.PauliZ(1)), qml.var(qml.PauliX(0)), qml.probs(wires=[2, 0])
        return qml.state()
    return f


@pytest.mark.parametrize("kind", ["expval", "many", "state"])
def test_exact_results_match_default_qubit(kind):
    got = make(qml.device("qsim_dist.qubit", wires=3), kind)(WEIGHTS)
    want = make(qml.device("default.qubit", wires=3), kind)(WEIGHTS)
    for g, w in zip(np.atleast_1d(got) if kind != "many" else got,
                    np.atleast_1d(want) if kind != "many" else want):
        np.testing.assert_allclose(g, w, atol=1e-10)


def test_gradients_by_parameter_shift_match_backprop():
    got = qml.grad(make(qml.device("qsim_dist.qubit", wires=3), "expval"))(WEIGHTS)
    want = qml.grad(make(qml.device("default.qubit", wires=3), "expval"))(WEIGHTS)
    np.testing.assert_allclose(got, want, atol=1e-8)


def test_samples_are_seeded_and_follow_the_distribution():
    def f(dev):
        @qml.qnode(dev)
        def g():
            qml.Hadamard(0)
            qml.CNOT(wires=[0, 1])
            qml.RY(0.8, wires=2)
            return qml.counts(wires=[0, 1]), qml.expval(qml.PauliZ(2))
        return g()

    a = f(qml.device("qsim_dist.qubit", wires=3, shots=4000, seed=5))
    b = f(qml.device("qsim_dist.qubit", wires=3, shots=4000, seed=5))
    assert a[0] == b[0] and set(a[0]) == {"00", "11"}
    assert abs(a[1] - np.cos(0.8)) < 4 * np.sqrt((1 - np.cos(0.8) ** 2) / 4000)


def test_wire_labels_and_other_backends():
    dev = qml.device("qsim_dist.qubit", wires=["a", "b"], backend="tensor")

    @qml.qnode(dev)
    def f():
        qml.Hadamard("a")
        qml.CNOT(wires=["a", "b"])
        return qml.probs(wires=["b", "a"])

    np.testing.assert_allclose(f(), [0.5, 0, 0, 0.5], atol=1e-12)


def test_bad_options_are_one_clear_error():
    with pytest.raises(QsimDistError):
        qml.device("qsim_dist.qubit", wires=2, seed=-3)
    with pytest.raises(QsimDistError):
        qml.device("qsim_dist.qubit", wires=2, backend="nope")


# ---- device derivatives: the adjoint method of qsim_dist.autodiff -----------------------------

def expvals(dev, diff, many=False):
    @qml.qnode(dev, diff_method=diff)
    def f(weights):
        circuit_fn(weights)
        qml.GlobalPhase(weights[2])   # no effect on any expectation value: a zero derivative
        qml.CRZ(weights[6], wires=[2, 0])
        if many:
            return (qml.expval(qml.PauliZ(0) @ qml.PauliX(2)),
                    qml.expval(qml.Hamiltonian([0.4, -1.2], [qml.PauliY(1) @ qml.PauliY(2),
                                                             qml.PauliX(0)])))
        return qml.expval(qml.PauliZ(0) @ qml.PauliX(2) + 0.5 * qml.PauliY(1)
                          - 0.3 * qml.PauliX(0) @ qml.PauliY(1) @ qml.PauliZ(2))
    return f


@pytest.fixture
def no_state_runs(monkeypatch):
    """Fail if the device runs a circuit on its backend: the derivatives must come from the
    adjoint method (parameter shift would run shifted circuits)."""
    from qsim_dist.pennylane_device import QsimDistDevice

    def refuse(self, tape):
        raise AssertionError("a circuit ran on the backend")
    monkeypatch.setattr(QsimDistDevice, "_simulate", refuse)


@pytest.mark.parametrize("diff", ["adjoint", "device", "best"])
def test_device_derivatives_by_the_adjoint_method(diff, no_state_runs):
    f = expvals(qml.device("qsim_dist.qubit", wires=3), diff)
    got = qml.grad(f)(WEIGHTS)
    want = qml.grad(expvals(qml.device("default.qubit", wires=3), "backprop"))(WEIGHTS)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.abs(got).max() > 0.05
    assert qml.workflow.get_best_diff_method(f)(WEIGHTS) == "adjoint"


def test_adjoint_jacobian_of_several_expectation_values_on_labelled_wires(no_state_runs):
    def on(dev):
        f = expvals(dev, "adjoint" if dev.name == "qsim_dist.qubit" else "backprop", many=True)
        return qml.jacobian(lambda w: qml.math.stack(f(w)))(WEIGHTS)
    got = on(qml.device("qsim_dist.qubit", wires=3))
    assert got.shape == (2, 8)
    np.testing.assert_allclose(got, on(qml.device("default.qubit", wires=3)), atol=1e-12)
    dev = qml.device("qsim_dist.qubit", wires=["a", "b"])

    @qml.qnode(dev, diff_method="adjoint")
    def g(t):
        qml.RY(t, wires="b")
        qml.CNOT(wires=["b", "a"])
        return qml.expval(qml.PauliZ("a") @ qml.PauliZ("b") + qml.PauliX("a"))
    assert float(qml.grad(g)(pnp.array(0.7, requires_grad=True))) == \
        pytest.approx(0.0, abs=1e-12)   # <ZZ> = 1 on a|00> + b|11>, <X_a> = 0


def test_the_compiled_function_is_kept_per_circuit_shape():
    dev = qml.device("qsim_dist.qubit", wires=3)
    f = expvals(dev, "adjoint")
    for shift in (0.0, 0.3, -1.1):
        got = qml.grad(f)(WEIGHTS + shift)
        want = qml.grad(expvals(qml.device("default.qubit", wires=3), "backprop"))(
            WEIGHTS + shift)
        np.testing.assert_allclose(got, want, atol=1e-12)
    assert len(dev._functions) == 1


def test_circuits_the_adjoint_method_cannot_take():
    f = expvals(qml.device("qsim_dist.qubit", wires=3, shots=100, seed=2), "best")
    assert qml.workflow.get_best_diff_method(f)(WEIGHTS) == "parameter-shift"
    dev = qml.device("qsim_dist.qubit", wires=1)

    @qml.qnode(dev, diff_method="adjoint")
    def probs(t):
        qml.RX(t, wires=0)
        return qml.probs(wires=0)
    with pytest.raises(qml.exceptions.QuantumFunctionError, match="does not support adjoint"):
        qml.jacobian(probs)(pnp.array(0.5, requires_grad=True))
