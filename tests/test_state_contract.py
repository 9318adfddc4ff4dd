"""Every State implementation against the dense reference, on every member of the contract
(qsim_dist/backends/state.py), and its declared capabilities against what it does."""

import numpy as np
import pytest

from qsim_dist import library as lib
from qsim_dist import noise as Nz
from qsim_dist.backends import get_backend
from qsim_dist.backends.reference import ReferenceBackend, ReferenceState
from qsim_dist.backends.state import Capability, State, measurement_outcome
from qsim_dist.circuit import Circuit, Condition
from qsim_dist.io.checkpoint import Header
from qsim_dist.observables import as_pauli_sum

N = 4
KINDS = [("reference", {}), ("statevector", {"kernels": "cpu"}),
         ("statevector", {"kernels": "jax"}), ("distributed", {"kernels": "cpu"}),
         ("modulenet", {}), ("modulenet", {"modules": [0, 0, 1, 1]}), ("tensor", {})]


@pytest.fixture(scope="module", params=KINDS, ids=lambda k: f"{k[0]}-{k[1].get('kernels', '')}{len(set(k[1].get('modules', ())))}")
def backend(request):
    name, options = request.param
    return get_backend(name, **options)


def circuit(seed):
    return lib.random_circuit(N, 4, seed=seed)


def dense(seed):
    """The reference statevector (complex128) of circuit(seed)."""
    return get_backend("reference").statevector(circuit(seed))


def state_of(backend, seed=1) -> State:
    return backend.final_state(circuit(seed), precision="double")


def marginal(psi, qubits):
    p = np.abs(psi) ** 2
    idx = np.arange(p.size)
    out = np.zeros(1 << len(qubits))
    key = sum(((idx >> q) & 1) << j for j, q in enumerate(qubits))
    np.add.at(out, key, p)
    return out


def partial_trace(psi, qubits):
    k = len(qubits)
    rho = np.zeros((1 << k, 1 << k), dtype=complex)
    idx = np.arange(psi.size)
    key = sum(((idx >> q) & 1) << j for j, q in enumerate(qubits))
    rest = idx & ~sum(1 << q for q in qubits)
    for r in np.unique(rest):
        v = np.zeros(1 << k, dtype=complex)
        sel = rest == r
        v[key[sel]] = psi[sel]
        rho += np.outer(v, v.conj())
    return rho


@pytest.mark.parametrize("qubits", [[1], [2, 0], [3, 1, 0]])
def test_probabilities_of_given_qubits(backend, qubits):
    np.testing.assert_allclose(state_of(backend).probabilities(qubits), marginal(dense(1), qubits),
                               atol=1e-12)


@pytest.mark.parametrize("qubits", [[0, 1, 2, 3], [2], [0, 3]])
def test_samples_of_given_qubits_follow_their_distribution(backend, qubits):
    shots = 20_000
    draws = (np.arange(shots) + 0.5) / shots  # sorted quantiles: a deterministic sample
    got = np.asarray(state_of(backend).sample(qubits, draws))
    keys = sum(((got >> q) & 1) << j for j, q in enumerate(qubits))
    freq = np.bincount(keys, minlength=1 << len(qubits)) / shots
    np.testing.assert_allclose(freq, marginal(dense(1), qubits), atol=(1 << N) / shots + 1e-9)


def test_expectation_of_a_pauli_sum(backend):
    h = as_pauli_sum([(0.5, "Z0 Z1"), (-1.25, "X2"), (0.75, "Y0 X3"), (0.1, "Z3")], N)
    psi = dense(1)
    want = 0.0
    for c, x, z in h.terms:
        phi = np.array(psi)
        idx = np.arange(psi.size)
        for q in range(N):
            bit = (idx >> q) & 1
            if z >> q & 1 and x >> q & 1:  # Y = i X Z
                phi = 1j * np.where(bit, -phi, phi)[idx ^ (1 << q)]
            elif x >> q & 1:
                phi = phi[idx ^ (1 << q)]
            elif z >> q & 1:
                phi = np.where(bit, -phi, phi)
        want += (c * np.vdot(psi, phi)).real
    assert state_of(backend).expectation(h) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("qubits", [[0], [3, 1], [2, 0, 1]])
def test_reduced_density_matrix_of_given_qubits(backend, qubits):
    np.testing.assert_allclose(state_of(backend).reduced_density_matrix(qubits),
                               partial_trace(dense(1), qubits), atol=1e-12)


def test_overlap_and_fidelity_with_a_state_of_the_same_kind(backend):
    a, b = state_of(backend, 1), state_of(backend, 2)
    want = np.vdot(dense(1), dense(2))
    assert a.overlap(b) == pytest.approx(want, abs=1e-12)
    assert a.fidelity(b) == pytest.approx(abs(want) ** 2, abs=1e-12)
    assert a.fidelity(a) == pytest.approx(1.0, abs=1e-12)


def test_copy_is_independent(backend):
    a = state_of(backend)
    b = a.copy()
    b.apply_gate(np.array([[0, 1], [1, 0]]), (2,))
    b.collapse(0, 1, float(b.probabilities([0])[1]))
    np.testing.assert_allclose(a.probabilities([0, 1, 2, 3]), marginal(dense(1), [0, 1, 2, 3]),
                               atol=1e-12)
    assert b.probabilities([0])[1] == pytest.approx(1.0)


@pytest.mark.parametrize("u", [0.05, 0.5, 0.95])
def test_measure_returns_outcomes_and_collapses(backend, u):
    st = state_of(backend)
    psi = dense(1)
    outcomes = st.measure([2, 0], [u, 1 - u])
    for q, uniform in zip([2, 0], [u, 1 - u]):  # the reference, one qubit after the other
        p1 = marginal(psi, [q])[1]
        o = measurement_outcome(p1, uniform)
        bit = (np.arange(psi.size) >> q) & 1
        psi = np.where(bit == o, psi, 0) / np.sqrt(p1 if o else 1 - p1)
        assert outcomes.pop(0) == o
    np.testing.assert_allclose(st.probabilities([0, 1, 2, 3]), marginal(psi, [0, 1, 2, 3]),
                               atol=1e-12)


def test_reset_puts_qubits_in_zero(backend):
    st = state_of(backend)
    st.reset([1, 3], [0.99, 0.01])
    p = st.probabilities([1, 3])
    assert p[0] == pytest.approx(1.0, abs=1e-12)


def test_apply_one_instruction(backend):
    st = state_of(backend)
    c = circuit(1)
    c.add("cx", 3, 0)
    st.apply(c.instructions[-1])
    np.testing.assert_allclose(st.probabilities([0, 1, 2, 3]),
                               marginal(get_backend("reference").statevector(c), [0, 1, 2, 3]),
                               atol=1e-12)


# -- capabilities: declared == what the state does -----------------------------------------------
def test_the_backend_declares_its_states_capabilities(backend):
    assert backend.state_capabilities == state_of(backend).capabilities


def test_statevector_capability(backend):
    st = state_of(backend)
    if Capability.STATEVECTOR not in st.capabilities:
        pytest.skip("not declared (modulenet: its contracted check is in test_modulenet.py)")
    np.testing.assert_allclose(st.statevector(), dense(1), atol=1e-12)
    np.testing.assert_allclose(st.amplitudes([0, 5, 15]), dense(1)[[0, 5, 15]], atol=1e-12)


def test_resize_capability(backend):
    st = state_of(backend)
    if Capability.RESIZE not in st.capabilities:
        pytest.skip("not declared")
    st.add_qubit(2, 1)
    assert st.num_qubits == N + 1
    assert st.probabilities([2])[1] == pytest.approx(1.0)
    st.remove_qubit(2, 1)
    assert st.num_qubits == N
    np.testing.assert_allclose(st.statevector(), dense(1), atol=1e-12)


def test_batched_trajectories_capability(backend):
    st = state_of(backend)
    if Capability.BATCHED_TRAJECTORIES not in st.capabilities:
        pytest.skip("not declared")
    rows = st.rows(2)
    draws = np.array([0.25, 0.75])
    got = st.sample_rows(rows, np.array([0, 1]), draws)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(st.sample_indices(draws)))


def test_trajectory_walk_capability(backend):
    st = state_of(backend)
    walks = Capability.TRAJECTORY_WALK in st.capabilities
    assert walks == (backend.name == "statevector" and backend.kernels.name == "cpu")


def test_checkpoint_capability(backend, tmp_path):
    st = state_of(backend)
    if Capability.CHECKPOINT not in st.capabilities:
        pytest.skip("not declared")
    header = Header(fingerprint="f" * 16, circuit="c", num_qubits=N, precision="double",
                    seed=1, shots=1, position=0, total=0, clbits=())
    st.write_checkpoint(tmp_path / "c.h5", header)
    other = state_of(backend, 2)
    other.load_checkpoint(tmp_path / "c.h5", header)
    np.testing.assert_allclose(other.statevector(), dense(1), atol=1e-12)


def test_sharded_capability(backend):
    assert (Capability.SHARDED in state_of(backend).capabilities) == (backend.name == "distributed")


# -- a state that is not one vector: the executor needs only the contract ------------------------
class Opaque(ReferenceState):
    """A state that declares no capability: the whole vector, all 2^n probabilities and whole
    basis indices are refused, so a run may use only the contract's core and given qubits."""

    capabilities = Capability(0)

    def statevector(self):
        raise AssertionError("the executor asked for the whole statevector")

    def probabilities(self, qubits=None):
        assert qubits is not None, "the executor asked for the probabilities of every qubit"
        return super().probabilities(qubits)

    def sample_indices(self, draws):
        raise AssertionError("the executor asked for basis indices of the whole register")

    def sample(self, qubits, draws):
        cdf = np.cumsum(self.probabilities(qubits))
        joint = np.minimum(np.searchsorted(cdf, draws * cdf[-1], side="right"), cdf.size - 1)
        return sum(((joint >> j) & 1) << q for j, q in enumerate(qubits))

    def reduced_density_matrix(self, qubits):
        return partial_trace(self.vec, qubits)

    def copy(self):
        other = Opaque.__new__(Opaque)
        other.num_qubits, other.vec = self.num_qubits, self.vec.copy()
        return other


class OpaqueBackend(ReferenceBackend):
    state_capabilities = Capability(0)

    def new_state(self, num_qubits, precision):
        return Opaque(num_qubits, np.complex128)


def dynamic_noisy():
    c = Circuit(3, 3)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.measure(0, 0)
    c.add("x", 2, condition=Condition((0,), 1))
    c.add("ry", 1, params=[0.9])
    c.add("reset", 0)
    c.add("h", 0)
    c.measure(1, 1)
    c.measure(2, 2)
    c.measure(0, 0)
    return c


def models():
    yield None
    yield (Nz.NoiseModel().add_gate_error(Nz.amplitude_damping(0.3), ["h", "x"])
           .add_gate_error(Nz.depolarizing(0.1), "ry")
           .add_readout_error(Nz.ReadoutError.from_flips(0.02, 0.05)))
    yield (Nz.NoiseModel().add_gate_error(Nz.depolarizing(0.1), "h")  # Pauli only
           .add_gate_error(Nz.depolarizing(0.05, 2), "cx"))


@pytest.mark.parametrize("model", list(models()), ids=["ideal", "kraus", "pauli"])
def test_the_executor_runs_a_state_that_is_not_one_vector(model):
    shots = 4000
    for c in (dynamic_noisy(), lib.ghz(3, measure=True)):
        got = OpaqueBackend().run(c, shots=shots, seed=4, noise=model).counts
        want = get_backend("reference").run(c, shots=shots, seed=4, noise=model).counts
        tvd = 0.5 * sum(abs(got.get(k, 0) - want.get(k, 0)) for k in set(got) | set(want))
        assert tvd / shots < 0.06
