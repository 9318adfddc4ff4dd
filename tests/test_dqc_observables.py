"""Observables read off a network run's output qubits (run_program(observables=...), qsim-dist
dqc --observable) and gradients through a distributed program (parameter_shift(network=...)):
exact over ideal links on every network backend, and the analytic values over Werner links
and depolarizing gates."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsim_dist import Circuit
from qsim_dist import library as lib
from qsim_dist.backends import get_backend
from qsim_dist.dqc import run_program
from qsim_dist.errors import OptionError
from qsim_dist.gradients import parameter_shift
from qsim_dist.network import load_network, network_from_dict
from qsim_dist.network.distribute import distribute
from qsim_dist.observables import ObservableError

OBSERVABLES = ["Z0 Z1", "X0 Y2 + 0.5 Z3", "Y1 X3 - 0.25 X2"]


def _pair(fidelity=1.0, **node):
    return network_from_dict({
        "nodes": {"A": {"data_qubits": 2, "comm_qubits": 2, **node},
                  "B": {"data_qubits": 2, "comm_qubits": 2, **node}},
        "links": [{"between": ["A", "B"], "fidelity": fidelity}]})


def _gates_only(circuit):
    return Circuit(circuit.num_qubits, 0, [i for i in circuit if i.name != "measure"],
                   name=circuit.name)


@pytest.mark.parametrize("backend", ["statevector", "modulenet", "reference"])
@pytest.mark.parametrize("network", ["examples/network_pair.toml", "examples/network_ring.toml"])
def test_ideal_links_give_the_circuits_own_expectations(backend, network):
    net = load_network(network)
    c = _gates_only(lib.random_circuit(4, 3, seed=2))
    exact = [get_backend("reference").expectation(c, h) for h in OBSERVABLES]
    report = run_program(distribute(c, net), net, shots=50, seed=1, ideal=True, backend=backend,
                         observables=OBSERVABLES)
    np.testing.assert_allclose(report.expectations, exact, atol=1e-10)
    assert max(report.expectations_stderr) < 1e-12


@pytest.mark.parametrize("fidelity", [0.8, 0.95])
def test_a_remote_cx_over_a_werner_pair_scales_z_by_the_flip_probability(fidelity):
    """ry(theta) on A, CX to B by cat-entanglement over one Werner pair: an X-type error of
    the pair (probability 2(1-F)/3) flips the target, so <Z1> = (1 - 4(1-F)/3) cos(theta);
    its parameter-shift gradient through the network follows the same law."""
    theta = 0.9
    c = Circuit(2)
    c.add("ry", 0, params=[theta])
    c.add("cx", 0, 1)
    net = _pair(fidelity)
    scale = 1 - 4 * (1 - fidelity) / 3
    value, grad, (v_err, g_err) = parameter_shift(
        c, "Z1", network=net, placement=["A", "B"], shots=3000, seed=4, return_stderr=True)
    assert abs(value - scale * math.cos(theta)) < 4 * v_err + 1e-9
    assert abs(grad[0] + scale * math.sin(theta)) < 4 * g_err[0] + 1e-9
    assert 0 < v_err < 0.05 and 0 < g_err[0] < 0.05


def _depolarized_rotation(p):
    c = Circuit(1)
    c.add("ry", 0, params=[0.7])
    net = _pair(gate_error_1q=p)
    return distribute(c, net, placement=["A"]), net


class _Unobserving:
    """A backend whose runs show the observer no branch state (as a run without per-branch
    states does): the report falls back to one saved trajectory per run."""

    def __init__(self, engine):
        self.engine = engine

    def run(self, *args, observer=None, **kwargs):
        return self.engine.run(*args, **kwargs)


@pytest.mark.parametrize("observed", [True, False])
def test_depolarizing_gates_scale_the_expectation(observed, monkeypatch):
    """One qubit on one node with a depolarizing error p after its gate: <Z> = (1-p) cos,
    <X> = (1-p) sin, whether read off the branch states or off one saved trajectory per run."""
    import qsim_dist.dqc as dqc

    p, theta = 0.3, 0.7
    if not observed:
        engine = dqc._engine
        monkeypatch.setattr(dqc, "_engine", lambda *a, **k: _Unobserving(engine(*a, **k)))
        backend = "modulenet"   # an engine made per lowering (the statevector is shared)
    else:
        backend = "statevector"
    prog, net = _depolarized_rotation(p)
    report = run_program(prog, net, shots=1500, seed=2, backend=backend,
                         observables=["Z0", "X0"])
    for value, err, want in zip(report.expectations, report.expectations_stderr,
                                (math.cos(theta), math.sin(theta))):
        assert abs(value - (1 - p) * want) < 4 * err + 1e-9
        assert err > 0.005


def test_gradients_through_an_ideal_network_are_the_circuits_own():
    c = Circuit(4)
    for q in range(4):
        c.add("ry", q, params=[0.3 + q])
    c.add("cx", 0, 2)
    c.add("rzz", 1, 3, params=[0.7])
    c.add("cx", 1, 2)
    c.add("rx", 2, params=[0.2])
    h = "Z0 Z2 + 0.5 X1 + Y3 Z2"
    want = parameter_shift(c, h, backend="reference")
    for backend in ("statevector", "modulenet"):
        value, grad = parameter_shift(c, h, network=_pair(0.9), ideal=True, backend=backend,
                                      placement=["A", "B", "A", "B"])
        assert value == pytest.approx(want[0], abs=1e-10)
        np.testing.assert_allclose(grad, want[1], atol=1e-10)


def test_network_gradient_options_are_refused_in_one_line():
    c = Circuit(2)
    c.add("ry", 0, params=[0.1])
    with pytest.raises(OptionError, match="needs shots"):
        parameter_shift(c, "Z0", network=_pair(0.9))
    with pytest.raises(OptionError, match="network="):
        parameter_shift(c, "Z0", ideal=True)
    from qsim_dist import noise as N
    with pytest.raises(OptionError, match="noise"):
        parameter_shift(c, "Z0", network=_pair(0.9), shots=10, noise=N.NoiseModel())
    prog = distribute(c, _pair())
    with pytest.raises(OptionError, match="a list"):
        run_program(prog, _pair(), shots=10, observables="Z0")


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="XYZI0123456789 +-.", max_size=12))
def test_generated_observables_are_read_or_refused_in_one_line(text):
    c = Circuit(2)
    c.add("h", 0)
    net = _pair()
    prog = distribute(c, net)
    try:
        report = run_program(prog, net, shots=5, seed=1, ideal=True, observables=[text])
    except ObservableError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert len(report.expectations) == 1 and math.isfinite(report.expectations[0])
