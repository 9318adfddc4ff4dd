"""Live-qubit compaction in the shared executor: measured-and-reset, not-yet-touched and
finished qubits leave the state; results are those of the full state for one seed."""

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import library as lib
from qsim_dist import noise as N
from qsim_dist.backends import get_backend
from qsim_dist.backends.reference import ReferenceState


def link_noise(k, d, p=0.1):
    model = N.NoiseModel()
    for near, far in lib.cat_entangler_epr_pairs(k, d):
        model.add_gate_error(N.depolarizing(p, 2), "cx", (near, far))
    return model.add_gate_error(N.amplitude_damping(0.1), "rx")


def reference(compaction):
    sim = get_backend("reference")
    sim.compaction = compaction
    return sim


def cpu(compaction):
    sim = get_backend("statevector", kernels="cpu")
    sim.compaction = compaction
    return sim


@pytest.fixture
def widest(monkeypatch):
    """The most qubits a reference state held while applying gates."""
    seen = [0]
    apply = ReferenceState.apply_gate

    def spy(self, matrix, qubits):
        seen[0] = max(seen[0], self.num_qubits)
        apply(self, matrix, qubits)

    monkeypatch.setattr(ReferenceState, "apply_gate", spy)
    return seen


def test_cat_entangler_counts_are_those_of_the_full_state(widest):
    k, d = 3, 2
    c = lib.cat_entangler_chain(k, d)
    model = link_noise(k, d)
    want = reference(False).run(c, shots=2000, seed=4, noise=model).counts
    assert widest[0] == c.num_qubits
    widest[0] = 0
    assert reference(True).run(c, shots=2000, seed=4, noise=model).counts == want
    # data qubits and one link pair at a time
    assert widest[0] == k * d + 2
    for compaction in (True, False):
        got = cpu(compaction).run(c, shots=2000, seed=4, noise=model, precision="double")
        assert got.counts == want


def mid_circuit_circuit():
    """Qubit 0 measured, then idle long enough to leave the state, then used again (it comes
    back in its measured value); qubit 3 is reset before any use and measured; qubit 4 is
    never touched but measured."""
    c = Circuit(5, 5)
    c.add("h", 0)
    c.add("ry", 1, params=[0.7])
    c.measure(0, 0)
    for j in range(10):
        c.add("rx", 1, params=[0.1 * j])
        c.add("cx", 1, 2)
    c.add("reset", 3)
    c.add("cx", 0, 2)
    c.add("x", 3, condition=Condition((0,), 1))
    for q in range(1, 5):
        c.measure(q, q)
    return c


@pytest.mark.parametrize("noisy", [False, True])
def test_qubits_leave_and_come_back_in_their_measured_value(widest, noisy):
    c = mid_circuit_circuit()
    model = N.NoiseModel().add_gate_error(N.depolarizing(0.1), "rx") if noisy else None
    want = reference(False).run(c, shots=1000, seed=2, noise=model).counts
    widest[0] = 0
    assert reference(True).run(c, shots=1000, seed=2, noise=model).counts == want
    assert widest[0] < c.num_qubits
    assert cpu(True).run(c, shots=1000, seed=2, noise=model, precision="double").counts == want
    for key, n in want.items():  # qubit 3 copies clbit 0; qubit 4 reads 0
        assert key[-4] == key[-1] and key[0] == "0"


def test_saved_state_is_the_full_state():
    c = Circuit(4, 2)
    c.add("h", 0)
    c.add("x", 3)
    c.measure(0, 0)  # leaves the state: never used again
    c.add("ry", 1, params=[0.4])
    c.add("cx", 1, 2)
    c.measure(2, 1)
    want = reference(False).run(c, shots=50, seed=7, save_state=True)
    for sim in (reference(True), cpu(True)):
        got = sim.run(c, shots=50, seed=7, save_state=True, precision="double")
        assert got.counts == want.counts
        np.testing.assert_allclose(got.statevector, want.statevector, atol=1e-12)


def test_a_circuit_that_starts_dynamic_starts_from_an_empty_state():
    c = Circuit(2, 2)
    c.add("reset", 0)
    c.measure(1, 1)
    c.add("h", 0)
    c.measure(0, 0)
    counts = cpu(True).run(c, shots=4000, seed=1).counts
    assert set(counts) == {"00", "01"} and abs(counts["01"] - 2000) < 200
    assert counts == reference(False).run(c, shots=4000, seed=1).counts
