"""The step-by-step API (Backend.stepper) against the whole-circuit run on dynamic circuits."""

import numpy as np
import pytest

from qsim_dist import noise as N
from qsim_dist.backends import get_backend
from qsim_dist.circuit import Circuit, Condition, Instruction
from qsim_dist.errors import CircuitError, OptionError

BACKENDS = [("reference", {}), ("statevector", {"kernels": "cpu"})]


@pytest.fixture(params=BACKENDS, ids=[name for name, _ in BACKENDS])
def backend(request):
    name, options = request.param
    return get_backend(name, **options)


def feed_forward() -> Circuit:
    """Mid-circuit measurements, conditions and resets, and no terminal measurement (so that
    one shot of a run draws exactly what the stepper draws, one outcome at a time)."""
    c = Circuit(3, 3)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.measure(0, 0)
    c.add("x", 2, condition=Condition((0,), 1))
    c.add("h", 1)
    c.measure(1, 1)
    c.add("reset", 0)
    c.add("ry", 2, params=[0.7])
    c.measure(2, 2)
    c.add("x", 0, condition=Condition((2,), 1))
    c.add("h", 0)
    c.add("reset", 1)
    return c


def noise_model():
    return (N.NoiseModel()
            .add_gate_error(N.depolarizing(0.1), ["h", "ry"])
            .add_gate_error(N.amplitude_damping(0.2), "x")
            .add_readout_error(N.ReadoutError.from_flips(0.05, 0.1)))


def key(bits):
    return "".join(str(b) for b in reversed(bits))


def step_through(backend, ops, num_qubits, num_clbits, seed, readout=None):
    st = backend.stepper(num_qubits, num_clbits, seed=seed, precision="double")
    for op in ops:
        q = op.qubits[0] if op.qubits else None
        st.apply(op, readout=(readout or {}).get(q) if getattr(op, "name", "") == "measure"
                 else None)
    return st


@pytest.mark.parametrize("seed", range(40))
def test_one_shot_equals_one_shot_of_a_run(backend, seed):
    c = feed_forward()
    st = step_through(backend, c.instructions, 3, 3, seed)
    run = backend.run(c, shots=1, seed=seed, precision="double")
    assert run.counts == {key(st.clbits): 1}


@pytest.mark.parametrize("seed", range(25))
def test_one_noisy_shot_equals_one_shot_of_a_noisy_run(backend, seed):
    c = feed_forward()
    noisy = noise_model().lower(c)
    st = step_through(backend, noisy.ops, 3, 3, seed, noisy.readout)
    run = backend.run(c, shots=1, seed=seed, precision="double", noise=noise_model())
    assert run.counts == {key(st.clbits): 1}


def test_many_steppers_sample_the_run_distribution(backend):
    c = feed_forward()
    c.measure(0, 0)  # terminal measurements: sampled by the run, measured by the stepper
    c.measure(2, 1)
    shots = 1500
    want = backend.run(c, shots=shots, seed=3, precision="double").counts
    got: dict[str, int] = {}
    for s in range(shots):
        k = key(step_through(backend, c.instructions, 3, 3, 1000 + s).clbits)
        got[k] = got.get(k, 0) + 1
    tvd = 0.5 * sum(abs(want.get(k, 0) - got.get(k, 0)) for k in set(want) | set(got)) / shots
    assert tvd < 0.08


def test_teleported_state_is_the_input(backend):
    theta = 1.1
    for seed in range(6):
        st = backend.stepper(3, 2, seed=seed, precision="double")
        for op in [Instruction("ry", (0,), (theta,)), Instruction("h", (1,)),
                   Instruction("cx", (1, 2)), Instruction("cx", (0, 1)), Instruction("h", (0,))]:
            assert st.apply(op) is None
        m0 = st.apply(Instruction("measure", (0,), clbits=(0,)))
        m1 = st.apply(Instruction("measure", (1,), clbits=(1,)))
        assert [m0, m1] == st.clbits
        st.apply(Instruction("x", (2,), condition=Condition((1,), 1)))
        st.apply(Instruction("z", (2,), condition=Condition((0,), 1)))
        p1 = st.state.probabilities([2])[1]
        assert p1 == pytest.approx(np.sin(theta / 2) ** 2, abs=1e-12)
        assert st.measure([0, 1]) == [m0, m1]  # collapsed: they read again what they read


def test_measure_and_reset(backend):
    st = backend.stepper(2, seed=7, precision="double")
    st.apply(Instruction("x", (1,)))
    assert st.measure([0, 1]) == [0, 1]
    st.reset([1])
    assert st.measure([1]) == [0]
    assert st.seed == 7


def test_stepper_refuses_what_it_cannot_do(backend):
    st = backend.stepper(2, 1, seed=1)
    with pytest.raises(CircuitError, match="clbit 3"):
        st.apply(Instruction("measure", (0,), clbits=(3,)))
    with pytest.raises(OptionError, match="seed"):
        backend.stepper(2, seed=-1)
    with pytest.raises(OptionError, match="precision"):
        backend.stepper(2, precision="half")
