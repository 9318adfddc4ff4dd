"""Qiskit's V2 primitives on qsim_dist (qsim_dist.qiskit_primitives) against Qiskit's own
reference primitives (StatevectorSampler, StatevectorEstimator) on the same PUBs."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp

from qsim_dist.errors import QsimDistError
from qsim_dist.qiskit_primitives import Estimator, Sampler


def ansatz(n=4, reps=2):
    qc = efficient_su2(n, reps=reps)
    return transpile(qc, basis_gates=["rx", "ry", "rz", "cx", "h"], optimization_level=0)


def test_estimator_matches_qiskits_reference_with_broadcasting():
    qc = ansatz()
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 2 * np.pi, size=(3, qc.num_parameters))
    obs = [[SparsePauliOp(["ZZII", "IXXI"], [0.5, -1.0])], [SparsePauliOp("YIIZ")],
           [SparsePauliOp.from_sparse_list([("Z", [3], 2.0)], 4)]]   # shape (3, 1) x (3,)
    got = Estimator().run([(qc, obs, values)]).result()[0]
    want = StatevectorEstimator().run([(qc, obs, values)]).result()[0]
    assert got.data.evs.shape == want.data.evs.shape == (3, 3)
    np.testing.assert_allclose(got.data.evs, want.data.evs, atol=1e-10)
    assert np.all(got.data.stds == 0)


def test_estimator_precision_adds_seeded_noise_of_that_size():
    qc = ansatz(3, 1)
    values = np.zeros(qc.num_parameters)
    exact = Estimator().run([(qc, "ZZZ", values)]).result()[0].data.evs
    noisy = [Estimator(seed=s).run([(qc, ["ZZZ"] * 400, values)], precision=0.05)
             .result()[0].data.evs for s in (1, 1, 2)]
    np.testing.assert_array_equal(noisy[0], noisy[1])
    assert not np.array_equal(noisy[0], noisy[2])
    assert abs(noisy[0].mean() - exact) < 4 * 0.05 / 20 and 0.04 < noisy[0].std() < 0.06


def test_sampler_registers_and_bindings_follow_qiskit():
    theta = Parameter("t")
    qc = QuantumCircuit(3)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.x(2)
    from qiskit.circuit import ClassicalRegister

    a, b = ClassicalRegister(2, "a"), ClassicalRegister(1, "b")
    qc.add_register(a)
    qc.add_register(b)
    qc.measure([0, 1], a)
    qc.measure(2, b)
    values = np.array([[0.0], [np.pi], [np.pi / 2]])
    shots = 4000
    got = Sampler(seed=3).run([(qc, values)], shots=shots).result()[0]
    assert got.data.a.shape == (3,) and got.data.a.num_shots == shots
    assert got.data.a[0].get_counts() == {"00": shots}
    assert got.data.a[1].get_counts() == {"11": shots}
    assert got.data.b[2].get_counts() == {"1": shots}
    half = got.data.a[2].get_counts()
    assert set(half) == {"00", "11"} and abs(half["11"] - shots / 2) < 4 * np.sqrt(shots) / 2
    want = StatevectorSampler(seed=3).run([(qc, values)], shots=shots).result()[0]
    assert set(want.data.a[2].get_counts()) == set(half)


def test_sampler_is_seeded_and_runs_noise_and_other_backends():
    from qsim_dist import noise as Nz

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    one = Sampler(seed=5).run([qc], shots=500).result()[0].data.meas.get_counts()
    assert one == Sampler(seed=5).run([qc], shots=500).result()[0].data.meas.get_counts()
    tensor = Sampler("tensor", seed=5).run([qc], shots=500).result()[0].data.meas.get_counts()
    assert set(tensor) == {"00", "11"}
    model = Nz.NoiseModel().add_readout_error(Nz.ReadoutError.from_flips(0.2, 0.2))
    noisy = Sampler(seed=5, noise=model).run([qc], shots=2000).result()[0].data.meas
    assert set(noisy.get_counts()) == {"00", "01", "10", "11"}


@pytest.mark.parametrize("make", [lambda: Sampler(default_shots=0), lambda: Sampler(seed=-1),
                                  lambda: Sampler(noise="x"), lambda: Sampler("nope"),
                                  lambda: Estimator(default_precision=float("nan")),
                                  lambda: Estimator(seed=1.5)])
def test_bad_options_are_one_clear_error(make):
    with pytest.raises(QsimDistError) as info:
        make()
    assert "\n" not in str(info.value)


def test_backend_v2_transpiles_runs_and_feeds_qiskits_backend_primitives():
    from qiskit import ClassicalRegister
    from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2

    from qsim_dist.qiskit_primitives import QsimDistBackend

    backend = QsimDistBackend(num_qubits=8)
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ccx(0, 1, 2)
    qc.add_register(ClassicalRegister(2, "a"))
    qc.add_register(ClassicalRegister(1, "b"))
    qc.measure([0, 1], [0, 1])
    qc.measure(2, 2)
    tqc = transpile(qc, backend)
    counts = backend.run(tqc, shots=2000, seed_simulator=4).result().get_counts()
    assert set(counts) == {"0 00", "1 11"} and sum(counts.values()) == 2000
    again = backend.run([tqc], shots=2000, seed_simulator=4).result().get_counts()
    assert again == counts
    # Qiskit's own backend primitives on it
    sampled = BackendSamplerV2(backend=backend).run([tqc], shots=500).result()[0]
    assert set(sampled.data.a.get_counts()) == {"00", "11"}
    est = ansatz(3, 1)
    values = np.linspace(0, 1, est.num_parameters)
    want = StatevectorEstimator().run([(est, "ZZI", values)]).result()[0].data.evs
    got = BackendEstimatorV2(backend=backend, options={"default_precision": 0.02}).run(
        [(est, "ZZI", values)]).result()[0].data.evs
    assert abs(got - want) < 5 * 0.02


def test_backend_v2_runs_feed_forward():
    from qsim_dist.qiskit_primitives import QsimDistBackend

    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    qc.measure(1, 1)
    counts = QsimDistBackend(num_qubits=2).run(qc, shots=1000, seed_simulator=1).result() \
        .get_counts()
    assert set(counts) == {"00", "11"}


# ---- on a modelled network (network=): the circuit compiled onto modules, run with its links ----

PAIR = "examples/network_pair.toml"


def _werner_pair(fidelity):
    from qsim_dist.network import network_from_dict

    return network_from_dict({
        "nodes": {"A": {"data_qubits": 2, "comm_qubits": 2},
                  "B": {"data_qubits": 2, "comm_qubits": 2}},
        "links": [{"between": ["A", "B"], "fidelity": fidelity}]})


def test_estimator_on_an_ideal_network_gives_qiskits_values():
    qc = ansatz()
    values = np.random.default_rng(3).uniform(-1, 1, size=(3, qc.num_parameters))
    obs = [SparsePauliOp.from_list([("ZZII", 1.0), ("IXXI", 0.5)]), "YIIZ"]
    pub = (qc, [[o] for o in obs], values)   # broadcast to (2, 3)
    want = StatevectorEstimator().run([pub]).result()[0].data.evs
    got = Estimator(network=PAIR, ideal=True).run([pub]).result()[0]
    np.testing.assert_allclose(got.data.evs, want, atol=1e-10)
    assert got.data.stds.shape == want.shape and np.all(got.data.stds < 1e-12)


def test_estimator_on_werner_links_follows_the_flip_law():
    """ry(theta) on A and CX to B over one Werner pair: <Z1> = (1 - 4(1-F)/3) cos(theta)."""
    theta, fidelity = 0.9, 0.85
    qc = QuantumCircuit(2)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    est = Estimator(network=_werner_pair(fidelity), placement=["A", "B"], shots=3000, seed=2)
    data = est.run([(qc, "ZI")]).result()[0].data
    want = (1 - 4 * (1 - fidelity) / 3) * np.cos(theta)
    assert 0 < data.stds < 0.05 and abs(data.evs - want) < 4 * data.stds


def test_sampler_on_an_ideal_network_gives_ghz_outcomes_only():
    qc = QuantumCircuit(4)
    qc.h(0)
    for q in range(3):
        qc.cx(q, q + 1)
    qc.measure_all()
    run = Sampler(network=PAIR, ideal=True, seed=5).run([qc], shots=400).result()
    counts = run[0].data.meas.get_counts()
    assert set(counts) == {"0000", "1111"} and abs(counts["0000"] - 200) < 60
    again = Sampler(network=PAIR, ideal=True, seed=5).run([qc], shots=400).result()
    assert again[0].data.meas.get_counts() == counts


def test_network_options_are_refused_in_one_line():
    from qsim_dist import noise as N

    with pytest.raises(QsimDistError, match="network="):
        Sampler(ideal=True)
    with pytest.raises(QsimDistError, match="noise"):
        Sampler(network=PAIR, noise=N.NoiseModel())
    with pytest.raises(QsimDistError, match="shots"):
        Estimator(network=PAIR, shots=0)
