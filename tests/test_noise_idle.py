"""Idle noise: channels on waiting qubits from an as-soon-as-possible schedule (per idle layer,
or thermal relaxation over durations); trajectories against the density-matrix reference."""

import math

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import noise as N
from qsim_dist.backends import get_backend
from qsim_dist.backends.reference import density_matrix
from qsim_dist.noise import NoiseModel, NoiseModelError


def summary(model, c):
    return [(op.channel.name, op.qubits) if isinstance(op, N.NoiseOp) else (op.name, op.qubits)
            for op in model.lower(c).ops]


def test_idle_layers_get_one_channel_each_and_none_before_first_use_or_reset():
    c = Circuit(3, 1)
    c.add("h", 0)
    c.add("x", 0)
    c.add("x", 0)
    c.add("cx", 0, 1)  # qubit 1 first used here: no idle noise before
    c.add("x", 2)
    c.add("h", 2)
    c.add("h", 2)
    c.add("h", 2)
    c.add("h", 2)
    c.add("reset", 0)  # qubit 0 waited, but a reset erases it
    c.add("cx", 1, 2)  # qubit 1 waited 1 layer (3 -> 4)... until qubit 2 is free at 5
    c.measure(1, 0)
    dep = N.depolarizing(0.1)
    model = NoiseModel().add_idle_error(dep)
    ops = model.lower(c).ops
    idle = [(op.qubits, op.channel) for op in ops if isinstance(op, N.NoiseOp)]
    assert [q for q, _ in idle] == [(1,)]
    # qubit 1 idles from 4 to 5: one layer
    np.testing.assert_allclose(idle[0][1].pauli_probabilities, dep.pauli_probabilities)


def test_durations_and_conditions_set_the_idle_time():
    c = Circuit(2, 1)
    c.add("x", 1)
    c.add("h", 0)
    c.measure(0, 0)
    c.add("x", 1, condition=Condition((0,), 1))  # waits for the measurement: t = 1 + 10
    model = NoiseModel().set_durations({"measure": 10, "x": 2}).add_idle_relaxation(50.0, 40.0)
    (op,) = [op for op in model.lower(c).ops if isinstance(op, N.NoiseOp)]
    assert op.qubits == (1,) and op.condition is None
    want = N.thermal_relaxation(50.0, 40.0, 9.0)  # free at 2, starts at 11
    for a, b in zip(op.channel.kraus, want.kraus):
        np.testing.assert_allclose(a, b)


def test_channel_power_is_the_repeated_channel():
    ad = N.amplitude_damping(0.2)
    c = Circuit(1, 1)
    c.add("ry", 0, params=[2.0])
    for _ in range(3):
        c.add("id", 0)
    exact = density_matrix(c, NoiseModel().add_gate_error(ad, "id"))
    power = N._channel_power(ad, 3)
    assert not power.is_pauli and len(power.kraus) <= 4
    c2 = Circuit(1, 1)
    c2.add("ry", 0, params=[2.0])
    c2.add("id", 0)
    np.testing.assert_allclose(density_matrix(c2, NoiseModel().add_gate_error(power, "id")),
                               exact, atol=1e-12)
    dep = N._channel_power(N.depolarizing(0.1), 4)
    assert dep.is_pauli
    np.testing.assert_allclose(dep.pauli_probabilities,
                               N.depolarizing(1 - 0.9 ** 4).pauli_probabilities, atol=1e-12)


def idle_circuit():
    """Qubits wait for each other and for a measurement; a barrier before the final block."""
    c = Circuit(3, 4)
    c.add("h", 0)
    c.add("ry", 1, params=[1.1])
    c.add("x", 2)
    c.add("cx", 0, 1)
    c.add("cx", 0, 1)
    c.add("h", 0)
    c.measure(0, 3)
    c.add("sx", 1)
    c.add("cx", 1, 2)
    c.add("barrier", 0, 1, 2)
    c.add("h", 1)
    for q in range(3):
        c.measure(q, q)
    return c


def idle_model():
    return (NoiseModel()
            .set_durations({"cx": 2, "measure": 3, "h": 1}, default=1)
            .add_idle_error(N.depolarizing(0.05))
            .add_idle_relaxation(8.0, 6.0, qubits=[2])
            .add_gate_error(N.depolarizing(0.05, 2), "cx"))


@pytest.mark.parametrize("name, options, precision",
                         [("reference", {}, "double"), ("statevector", {"kernels": "cpu"},
                                                        "single")])
def test_idle_noise_trajectories_match_the_density_matrix(name, options, precision):
    c = idle_circuit()
    model = idle_model()
    assert any(op.channel.name == "thermal_relaxation" for op in model.lower(c).ops
               if isinstance(op, N.NoiseOp))
    exact = np.real(np.diagonal(density_matrix(c, model)))
    shots = 20000
    counts = N.marginal_counts(get_backend(name, **options).run(
        c, shots=shots, seed=3, precision=precision, noise=model).counts, range(3))
    for index, p in enumerate(exact):
        f = counts.get(format(index, "03b"), 0) / shots
        assert abs(f - p) <= 3 * math.sqrt(p * (1 - p) / shots) + 1e-9, (index, p, f)
    # the idle noise is really there: without it the distribution differs
    plain = np.real(np.diagonal(density_matrix(c, NoiseModel().add_gate_error(
        N.depolarizing(0.05, 2), "cx"))))
    assert np.abs(plain - exact).max() > 0.02


IDLE_TOML = """
[durations]
default = 1
cx = 2
measure = 3

[[idle]]
channel = "depolarizing"
p = 0.05

[[idle]]
channel = "thermal_relaxation"
qubits = [2]
t1 = 8.0
t2 = 6.0

[[gate]]
gates = "cx"
channel = "depolarizing"
p = 0.05
"""


def test_toml_idle_noise_is_the_python_model(tmp_path):
    path = tmp_path / "idle.toml"
    path.write_text(IDLE_TOML.replace("measure = 3", "measure = 3\nh = 1"))
    model = N.load_noise_model(path)
    c = idle_circuit()
    np.testing.assert_allclose(density_matrix(c, model), density_matrix(c, idle_model()),
                               atol=1e-12)
    assert model.duration("cx") == 2 and model.duration("rz") == 1


@pytest.mark.parametrize("text, message", [
    ('[[idle]]\nchannel = "depolarizing"\n', "[[idle]] #1 (depolarizing): missing field 'p'"),
    ('[[idle]]\nchannel = "thermal_relaxation"\nt1 = 1.0\nt2 = 1.0\ntime = 2.0\n',
     "unknown field 'time'"),
    ('[[idle]]\nchannel = "thermal_relaxation"\nt1 = 1.0\nt2 = 3.0\n', "must be at most"),
    ('[[idle]]\nchannel = "depolarizing"\np = 0.1\nqubits = "x"\n', "'qubits' must be"),
    ('[durations]\ncx = -1\n', "[durations]: cx must be a non-negative number"),
    ('[durations]\nfoo = 1\n', "unknown instruction 'foo'"),
    ('durations = 3\n', "'durations' must be a table"),
])
def test_bad_idle_toml_is_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(NoiseModelError) as err:
        N.load_noise_model(path)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_per_unit_idle_channel_needs_whole_idle_times():
    c = Circuit(2, 0)
    c.add("x", 0)
    c.add("h", 1)
    c.add("cx", 0, 1)
    c.add("x", 1)
    c.add("cx", 0, 1)
    model = NoiseModel().set_durations({"x": 1.5}).add_idle_error(N.depolarizing(0.1))
    with pytest.raises(NoiseModelError, match="whole"):
        model.lower(c)
    with pytest.raises(NoiseModelError, match="one-qubit"):
        NoiseModel().add_idle_error(N.depolarizing(0.1, 2))
