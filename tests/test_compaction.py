"""Live-qubit compaction in the shared executor: measured-and-reset, not-yet-touched and
finished qubits leave the state; results are those of the full state for one seed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ---- measured qubits freed by a conditioned X leave the state; only live qubits are allocated --

def reset_by_measure_chain(n):
    """A chain where every qubit hands its value on, is measured and then freed by the
    reset-by-measure pattern (measure q -> c; if (c == 1) x q) before it is used again much
    later: each leaves the state once measured, so a few qubits are live at any time."""
    c = Circuit(n, n)
    c.add("h", 0)
    for q in range(n - 1):
        c.add("cx", q, q + 1)
        c.measure(q, q)
        c.add("x", q, condition=Condition((q,), 1))  # back to |0>: a known value
    for q in range(n - 1):  # the freed qubits come back (in |0>) at the end
        c.add("cx", n - 1, q)
    c.measure_all()
    return c


@pytest.fixture
def allocated(monkeypatch):
    """The widths of the reference states allocated (new states, then every add_qubit)."""
    widths = []
    init, add = ReferenceState.__init__, ReferenceState.add_qubit

    def spy_init(self, num_qubits, dtype=np.complex128):
        widths.append(num_qubits)
        init(self, num_qubits, dtype)

    def spy_add(self, slot, value):
        add(self, slot, value)
        widths.append(self.num_qubits)

    monkeypatch.setattr(ReferenceState, "__init__", spy_init)
    monkeypatch.setattr(ReferenceState, "add_qubit", spy_add)
    return widths


def test_a_measured_qubit_freed_by_a_conditioned_x_leaves_the_state(allocated):
    c = reset_by_measure_chain(8)
    want = reference(False).run(c, shots=500, seed=3)
    assert max(allocated) == 8
    allocated.clear()
    got = reference(True).run(c, shots=500, seed=3)
    assert got.counts == want.counts
    # only the prefix's qubits are allocated, not all 8; the chain holds a few at a time
    # until the fan-out at the end brings the freed ones back
    assert allocated[0] == 2 and max(allocated[:8]) <= 3
    assert cpu(True).run(c, shots=500, seed=3, precision="double").counts == want.counts


def test_a_long_measured_chain_holds_a_few_qubits_and_allocates_only_them(allocated):
    """40 qubits, at most 3 live at once: the old executor allocated 2^40 amplitudes."""
    n = 40
    c = Circuit(n, n)
    c.add("h", 0)
    for q in range(n - 1):
        c.add("cx", q, q + 1)
        c.measure(q, q)
        c.add("x", q, condition=Condition((q,), 1))
    c.measure(n - 1, n - 1)
    counts = reference(True).run(c, shots=300, seed=5).counts
    assert set(counts) == {"0" * n, "1" * n}  # a GHZ state, read qubit by qubit
    assert max(allocated) <= 3 and allocated[0] == 2
    assert cpu(True).run(c, shots=300, seed=5).counts == counts


def test_x_outside_the_state_flips_its_known_value():
    """Unconditioned and conditioned X on qubits that are not in the state (never touched,
    measured, reset), then used again: the same counts and saved state as the full state."""
    c = Circuit(5, 5)
    c.add("h", 0)
    c.add("x", 3)  # in the prefix
    c.measure(0, 0)
    c.add("x", 4)  # not yet touched: flips its known 0
    c.add("x", 0, condition=Condition((0,), 1))
    c.add("x", 0)
    c.add("reset", 1)
    c.add("x", 1)
    for j in range(10):
        c.add("ry", 2, params=[0.2 * j])
    c.add("cx", 0, 2)
    c.add("cx", 1, 4)
    c.measure(2, 1)
    c.measure(4, 2)
    c.measure(3, 3)
    c.measure(1, 4)
    want = reference(False).run(c, shots=400, seed=9, save_state=True)
    for sim in (reference(True), cpu(True)):
        got = sim.run(c, shots=400, seed=9, save_state=True, precision="double")
        assert got.counts == want.counts
        np.testing.assert_allclose(got.statevector, want.statevector, atol=1e-12)


def _dynamic_circuit(draw_ops, n):
    c = Circuit(n, n)
    for kind, q, r, theta in draw_ops:
        if kind == "h":
            c.add("h", q)
        elif kind == "ry":
            c.add("ry", q, params=[theta])
        elif kind == "cx" and q != r:
            c.add("cx", q, r)
        elif kind == "x":
            c.add("x", q)
        elif kind == "cond_x":
            c.add("x", q, condition=Condition((r,), 1))
        elif kind == "measure":
            c.measure(q, r)
        elif kind == "reset":
            c.add("reset", q)
        elif kind == "reset_by_measure":
            c.measure(q, q)
            c.add("x", q, condition=Condition((q,), 1))
    c.measure_all()
    return c


# generated dynamic circuits: (qubits, [(kind, qubit, other qubit, angle), ...])
DYNAMIC_CASES = st.integers(2, 5).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.tuples(
    st.sampled_from(["h", "ry", "cx", "x", "cond_x", "measure", "reset", "reset_by_measure"]),
    st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0, 3.1)), min_size=1, max_size=30)))


@settings(max_examples=40, deadline=None)
@given(DYNAMIC_CASES, st.integers(0, 2 ** 32 - 1))
def test_compaction_gives_the_counts_of_the_full_state(case, seed):
    """Generated dynamic circuits (measurements, resets, conditioned and plain X, freed
    qubits): one seed gives the same counts and saved state with and without compaction."""
    n, ops = case
    c = _dynamic_circuit(ops, n)
    want = reference(False).run(c, shots=64, seed=seed, save_state=True)
    got = reference(True).run(c, shots=64, seed=seed, save_state=True)
    assert got.counts == want.counts
    np.testing.assert_allclose(got.statevector, want.statevector, atol=1e-12)


# ---- gates hoisted ahead of noise: a state that holds every qubit shares more of the run -------

def _noise_for_generated():
    return (N.NoiseModel().add_gate_error(N.depolarizing(0.2, 1), "h")
            .add_gate_error(N.depolarizing(0.1, 2), "cx")
            .add_gate_error(N.amplitude_damping(0.3), "ry"))


@settings(max_examples=40, deadline=None)
@given(DYNAMIC_CASES, st.integers(0, 2 ** 32 - 1))
def test_gates_hoisted_past_noise_give_the_counts_of_program_order(case, seed):
    """With noise (Pauli and amplitude-damping channels), the non-compacting run moves gates
    ahead of channels on other qubits (planning.hoist_gates) and the compacting run does not:
    one seed still gives the same counts and saved state."""
    n, ops = case
    c = _dynamic_circuit(ops, n)
    model = _noise_for_generated()
    want = reference(True).run(c, shots=64, seed=seed, save_state=True, noise=model)
    got = reference(False).run(c, shots=64, seed=seed, save_state=True, noise=model)
    assert got.counts == want.counts
    np.testing.assert_allclose(got.statevector, want.statevector, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(DYNAMIC_CASES)
def test_hoisting_moves_gates_only_ahead_of_noise_on_other_qubits(case):
    """hoist_gates is a permutation that keeps each qubit's operations in order, keeps every
    other instruction in its order, and moves no gate past a measurement, reset or conditioned
    gate."""
    from qsim_dist.backends.planning import hoist_gates
    from qsim_dist.noise import NoiseOp

    n, ops = case
    c = _dynamic_circuit(ops, n)
    before = _noise_for_generated().lower(c).ops
    after = hoist_gates(before)
    assert sorted(map(id, after)) == sorted(map(id, before))
    for q in range(n):
        assert [id(op) for op in after if q in op.qubits] == \
            [id(op) for op in before if q in op.qubits]

    def movable(op):
        return not isinstance(op, NoiseOp) and op.is_gate and op.condition is None
    assert [id(op) for op in after if not movable(op)] == \
        [id(op) for op in before if not movable(op)]
    position = {id(op): k for k, op in enumerate(before)}
    barriers = [k for k, op in enumerate(before)
                if not movable(op) and not isinstance(op, NoiseOp)]
    for k, op in enumerate(after):
        if movable(op):   # the same barriers before it as in program order
            assert sum(position[id(o)] in barriers for o in after[:k]) == \
                sum(b < position[id(op)] for b in barriers)
