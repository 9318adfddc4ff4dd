"""The yardstick (qsim_dist/yardstick.py) against results known in closed form: it checks every
backend (tests/test_against_yardstick.py), so it is checked by analysis, not by a backend."""

import math

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import library as lib
from qsim_dist.errors import CircuitError
from qsim_dist.noise import (NoiseModel, ReadoutError, amplitude_damping, depolarizing,
                             thermal_relaxation)
from qsim_dist.yardstick import MAX_QUBITS, exact


def assert_distribution(got, want, tol=1e-12):
    """Same registers, same probabilities (registers of probability 0 may be absent)."""
    assert set(got) <= set(want), f"impossible registers {set(got) - set(want)}"
    for key, p in want.items():
        assert got.get(key, 0.0) == pytest.approx(p, abs=tol), key


def pure(psi):
    psi = np.asarray(psi, dtype=complex)
    return np.outer(psi, psi.conj())


def test_bell_pair_distribution_and_state():
    c = Circuit(2, 2)
    c.add("h", 0)
    c.add("cx", 0, 1)
    psi = np.array([1, 0, 0, 1]) / math.sqrt(2)
    np.testing.assert_allclose(exact(c).density_matrix, pure(psi), atol=1e-15)
    c.measure(0, 0)
    c.measure(1, 1)
    got = exact(c)
    assert_distribution(got.distribution, {"00": 0.5, "11": 0.5})
    # measured: the coherence is gone, the populations stay
    np.testing.assert_allclose(got.density_matrix, np.diag([0.5, 0, 0, 0.5]), atol=1e-15)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_ghz_distribution_state_and_parities(n):
    got = exact(lib.ghz(n, measure=True))
    assert_distribution(got.distribution, {"0" * n: 0.5, "1" * n: 0.5})
    state = exact(lib.ghz(n))
    psi = np.zeros(1 << n)
    psi[0] = psi[-1] = 1 / math.sqrt(2)
    np.testing.assert_allclose(state.density_matrix, pure(psi), atol=1e-14)
    assert state.expectation("X" * n) == pytest.approx(1)
    assert state.expectation("Z" * n) == pytest.approx(1 if n % 2 == 0 else 0, abs=1e-14)
    if n >= 2:
        assert state.expectation("I" * (n - 2) + "ZZ") == pytest.approx(1)


def test_bit_order_of_registers_and_states():
    """Qubit q is bit q of a basis index; clbit 0 is the rightmost character of a register."""
    c = Circuit(3, 3)
    c.add("x", 1)
    got = exact(c)
    assert got.density_matrix[2, 2] == pytest.approx(1)
    c.measure(1, 0)
    assert_distribution(exact(c).distribution, {"001": 1.0})
    assert exact(c).expectation("IZI") == pytest.approx(-1)


def test_teleportation_with_feed_forward():
    """Every Bell outcome is equally likely, and after the corrections qubit 2 is ry(1.1)|0>
    whatever the outcomes: the final state is (uniform mixture on qubits 0, 1) x ry(1.1)|0>."""
    c = lib.teleport_dynamic()
    c.instructions.pop()  # the final measure of qubit 2: keep its state
    got = exact(c)
    keys = [f"0{a}{b}" for a in "01" for b in "01"]
    assert_distribution(got.distribution, {k: 0.25 for k in keys})
    rho = got.density_matrix.reshape(2, 4, 2, 4)  # (qubit 2, qubits 1-0) x (the same)
    target = np.array([math.cos(0.55), math.sin(0.55)])
    np.testing.assert_allclose(np.einsum("aibi->ab", rho), pure(target), atol=1e-14)
    np.testing.assert_allclose(np.einsum("iaib->ab", rho), np.eye(4) / 4, atol=1e-14)
    # and the full circuit: P(qubit 2 reads 1) = sin^2(0.55) on every branch
    full = exact(lib.teleport_dynamic()).distribution
    for k in keys:
        assert full["1" + k[1:]] == pytest.approx(0.25 * math.sin(0.55) ** 2)


def test_without_feed_forward_the_teleported_qubit_is_mixed():
    """A check that conditions are evaluated per branch: dropping the corrections leaves qubit
    2 with <Z> = 0 (its Bloch vector averaged over the four Pauli frames)."""
    c = lib.teleport_dynamic()
    c.instructions = [i for i in c.instructions if i.condition is None][:-1]
    assert exact(c).expectation("ZII") == pytest.approx(0, abs=1e-14)
    corrected = lib.teleport_dynamic()
    corrected.instructions.pop()
    assert exact(corrected).expectation("ZII") == pytest.approx(math.cos(1.1))


def test_conditions_on_registers_read_their_bits_little_endian():
    """A condition on clbits (0, 1) == 2 fires when clbit 1 is 1 and clbit 0 is 0."""
    c = Circuit(3, 3)
    c.add("x", 1)
    c.measure(0, 0)
    c.measure(1, 1)
    c.add("x", 2, condition=Condition((0, 1), 2))
    c.add("h", 0, condition=Condition((0, 1), 1))  # does not fire
    c.measure(2, 2)
    assert_distribution(exact(c).distribution, {"110": 1.0})


def test_mid_circuit_measurement_collapses_and_reset_restores_zero():
    c = Circuit(1, 2)
    c.add("h", 0)
    c.measure(0, 0)
    c.add("h", 0)  # after a collapse, H gives 50/50 again whatever the first outcome
    c.measure(0, 1)
    assert_distribution(exact(c).distribution, {k: 0.25 for k in ("00", "01", "10", "11")})
    c = Circuit(2, 2)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.add("reset", 0)
    got = exact(c)
    np.testing.assert_allclose(got.density_matrix, np.diag([0.5, 0, 0.5, 0]), atol=1e-15)
    c.measure(0, 0)
    c.measure(1, 1)
    assert_distribution(exact(c).distribution, {"00": 0.5, "10": 0.5})


def test_conditioned_measure_and_reset_act_only_on_their_branch():
    c = Circuit(2, 2)
    c.add("h", 0)
    c.measure(0, 0)
    c.add("x", 1)
    c.add("reset", 1, condition=Condition((0,), 1))
    c.add("measure", 1, clbits=(1,), condition=Condition((0,), 0))
    # clbit 0 = 0: qubit 1 is 1 and measured; clbit 0 = 1: qubit 1 reset, clbit 1 never written
    assert_distribution(exact(c).distribution, {"10": 0.5, "01": 0.5})


@pytest.mark.parametrize("p", [0.0, 0.1, 0.75])
def test_depolarising_channel_closed_form(p):
    """rho -> (1-p) rho + p I/2: <Z> of |0> becomes 1-p, P(1) = p/2; two-qubit depolarising
    of |00> leaves 1 - 3p/4 on 00."""
    c = Circuit(1, 1)
    c.add("id", 0)
    model = NoiseModel().add_gate_error(depolarizing(p), "id")
    got = exact(model.lower(c))
    np.testing.assert_allclose(got.density_matrix, np.diag([1 - p / 2, p / 2]), atol=1e-14)
    assert got.expectation("Z") == pytest.approx(1 - p)
    c.measure(0, 0)
    assert_distribution(exact(model.lower(c)).distribution,
                        {"0": 1 - p / 2, "1": p / 2} if p else {"0": 1.0})
    c = Circuit(2, 0)
    c.add("cx", 0, 1)
    rho = exact(NoiseModel().add_gate_error(depolarizing(p, 2), "cx").lower(c)).density_matrix
    assert rho[0, 0].real == pytest.approx(1 - 3 * p / 4)
    np.testing.assert_allclose(np.diag(rho).real[1:], [p / 4] * 3, atol=1e-14)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
def test_amplitude_damping_closed_form(gamma):
    """From |+>: the |1> population decays to (1-gamma)/2, the coherence to sqrt(1-gamma)/2."""
    c = Circuit(1, 0)
    c.add("h", 0)
    rho = exact(NoiseModel().add_gate_error(amplitude_damping(gamma), "h").lower(c)).density_matrix
    want = np.array([[1 - (1 - gamma) / 2, math.sqrt(1 - gamma) / 2],
                     [math.sqrt(1 - gamma) / 2, (1 - gamma) / 2]])
    np.testing.assert_allclose(rho, want, atol=1e-14)


def test_thermal_relaxation_closed_form():
    """T1/T2 decay of |+> over time t: P(1) = e^{-t/T1}/2, |coherence| = e^{-t/T2}/2."""
    t1, t2, t = 100.0, 80.0, 30.0
    c = Circuit(1, 0)
    c.add("h", 0)
    model = NoiseModel().add_gate_error(thermal_relaxation(t1, t2, t), "h")
    rho = exact(model.lower(c)).density_matrix
    assert rho[1, 1].real == pytest.approx(math.exp(-t / t1) / 2)
    assert abs(rho[0, 1]) == pytest.approx(math.exp(-t / t2) / 2)


def test_readout_flips_confuse_recorded_bits_not_the_state():
    """P(read 1 | 0) = a, P(read 0 | 1) = b: |0> reads 1 with a; |1> reads 0 with b; the state
    is untouched, and a condition reads the recorded (confused) bit."""
    a, b = 0.1, 0.25
    model = NoiseModel().add_readout_error(ReadoutError.from_flips(a, b))
    c = Circuit(2, 2)
    c.add("x", 1)
    c.measure(0, 0)
    c.measure(1, 1)
    got = exact(model.lower(c))
    assert_distribution(got.distribution, {"10": (1 - a) * (1 - b), "11": a * (1 - b),
                                           "00": (1 - a) * b, "01": a * b})
    np.testing.assert_allclose(got.density_matrix, np.diag([0, 0, 1, 0]), atol=1e-15)
    c = Circuit(2, 2)
    c.measure(0, 0)  # true 0, recorded 1 with probability a
    c.add("x", 1, condition=Condition((0,), 1))
    c.measure(1, 1)
    model = NoiseModel().add_readout_error(ReadoutError.from_flips(a, 0.0), qubits=[0])
    assert_distribution(exact(model.lower(c)).distribution, {"00": 1 - a, "11": a})


def test_noise_on_a_conditioned_gate_applies_only_where_it_fires():
    c = Circuit(2, 1)
    c.add("x", 0)
    c.measure(0, 0)
    c.add("x", 1, condition=Condition((0,), 0))  # never fires: its bit-flip error neither
    model = NoiseModel().add_gate_error(depolarizing(1.0), "x", qubits=[1])
    rho = exact(model.lower(c)).density_matrix
    assert rho[1, 1].real == pytest.approx(1)


def test_a_density_matrix_is_a_state_for_random_noisy_dynamic_circuits():
    """Hermitian, trace 1, positive, and the distribution sums to 1."""
    c = Circuit(4, 4, [i for i in lib.random_circuit(4, 4, seed=2) if i.is_gate])
    c.measure(1, 0)
    c.add("rx", 2, params=[0.4], condition=Condition((0,), 1))
    c.add("reset", 1)
    c.add("h", 1)
    model = (NoiseModel().add_gate_error(amplitude_damping(0.2), ["h", "u3", "rx", "ry", "rz"])
             .add_gate_error(depolarizing(0.1, 2), "cx")
             .add_readout_error(ReadoutError.from_flips(0.05, 0.1)))
    got = exact(model.lower(c))
    rho = got.density_matrix
    np.testing.assert_allclose(rho, rho.conj().T, atol=1e-14)
    assert np.trace(rho).real == pytest.approx(1)
    assert np.linalg.eigvalsh(rho).min() > -1e-12
    assert sum(got.distribution.values()) == pytest.approx(1)


def test_refuses_what_it_cannot_hold():
    with pytest.raises(CircuitError, match="at most"):
        exact(Circuit(MAX_QUBITS + 1, 0))
    with pytest.raises(CircuitError, match="Circuit or NoisyCircuit"):
        exact("h q[0];")
    with pytest.raises(CircuitError, match="one of I, X, Y, Z"):
        exact(Circuit(2)).expectation("Z")


def test_imports_no_backend_kernel_or_pass():
    """What makes it a yardstick: nothing of what it checks but the gate table and the IR."""
    import ast
    import inspect

    from qsim_dist import yardstick

    tree = ast.parse(inspect.getsource(yardstick))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert imported <= {"__future__", "dataclasses", "typing", "numpy", "circuit", "errors",
                        "gates", "noise"}, imported
