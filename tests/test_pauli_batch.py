"""Circuits whose only randomness is Pauli noise and terminal measurement: Paulis drawn up front,
shots sharing one state per distinct Pauli prefix, walked as a tree (any state) or level by
level on a batch of rows (CPU set). One seed gives one result on every backend and batch size."""

import numpy as np
import pytest

from qsim_dist import Circuit
from qsim_dist import noise as N
from qsim_dist.backends import get_backend, trajectories
from qsim_dist.backends.reference import density_matrix


def layered(n, layers, seed=0):
    rng = np.random.default_rng(seed)
    c = Circuit(n, n)
    for layer in range(layers):
        for q in range(n):
            c.add("ry", q, params=[float(rng.uniform(0, 3))])
        for q in range(layer % 2, n - 1, 2):
            c.add("cx", q, q + 1)
    c.add("barrier", *range(n))
    for q in range(n):
        c.measure(q, q)
    return c


def model():
    return (N.NoiseModel()
            .add_gate_error(N.depolarizing(0.08), "ry")
            .add_gate_error(N.pauli_channel({"XY": 0.05, "ZI": 0.05, "IY": 0.02}), "cx")
            .add_readout_error(N.ReadoutError.from_flips(0.02, 0.05)))


def test_rows_and_tree_give_one_result_and_the_density_matrix():
    c = layered(4, 3)
    shots = 6000
    want = get_backend("reference").run(c, shots=shots, seed=5, noise=model()).counts
    got = get_backend("statevector", kernels="cpu").run(c, shots=shots, seed=5, noise=model(),
                                                          precision="double").counts
    assert got == want
    single = get_backend("statevector", kernels="cpu").run(c, shots=shots, seed=5,
                                                             noise=model()).counts
    exact = np.real(np.diagonal(density_matrix(c, model())))
    # readout errors act on recorded bits: fold them into the exact distribution
    confusion = np.array([[0.98, 0.02], [0.05, 0.95]])
    probs = exact.reshape((2,) * 4)
    for axis in range(4):
        probs = np.moveaxis(np.tensordot(probs, confusion, axes=([axis], [0])), -1, axis)
    exact = {format(i, "04b"): p for i, p in enumerate(probs.reshape(-1))}
    for counts in (got, single):
        assert N.total_variation_distance(counts, exact) <= N.tvd_bound(16, shots)


def test_batch_size_does_not_change_the_result(monkeypatch):
    c = layered(6, 2)
    sim = get_backend("statevector", kernels="cpu")
    want = sim.run(c, shots=3000, seed=2, noise=model(), precision="double").counts
    monkeypatch.setattr(trajectories, "BATCH_AMPLITUDES", 64 * 7)  # chunks of 7 shots
    assert sim.run(c, shots=3000, seed=2, noise=model(), precision="double").counts == want


@pytest.mark.parametrize("name, options", [("reference", {}),
                                           ("statevector", {"kernels": "cpu"}),
                                           ("statevector", {"kernels": "jax"})])
def test_saved_state_is_one_trajectory(name, options):
    c = Circuit(2, 2)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.measure(0, 0)
    c.measure(1, 1)
    m = N.NoiseModel().add_gate_error(N.depolarizing(0.5, 2), "cx")
    r = get_backend(name, **options).run(c, shots=100, seed=1, noise=m, save_state=True,
                                         precision="double")
    psi = r.statevector
    assert np.vdot(psi, psi).real == pytest.approx(1.0)
    assert abs(abs(psi[0]) ** 2 + abs(psi[2]) ** 2 - 0.5) < 1e-9


def mixed(n=7, seed=3):
    """Every operation kind of the walk kernel on low and high qubits: real and complex
    one-qubit blocks, permutations with and without phases, dense and diagonal blocks."""
    rng = np.random.default_rng(seed)
    c = Circuit(n, n)
    for q in range(n):
        c.add("h", q)
    for layer in range(2):
        for q in range(n):
            c.add("ry", q, params=[float(rng.uniform(0, 3))])
            c.add("u", q, params=[float(x) for x in rng.uniform(0, 3, 3)])
        for a, b in ((0, 1), (2, 5), (6, 3), (4, 0), (1, 6)):
            c.add("cx", a, b)
            c.add("cz", b, a)
            c.add("swap", a, b)
            c.add("iswap", a, b)
            c.add("rxx", a, b, params=[0.4 + layer])
            c.add("cp", a, b, params=[0.7])
    for q in range(n):
        c.measure(q, q)
    return c


def mixed_model():
    return (N.NoiseModel()
            .add_gate_error(N.depolarizing(0.03), ["ry", "u", "h"])
            .add_gate_error(N.depolarizing(0.04, 2), ["cx", "swap", "iswap", "rxx"])
            .add_gate_error(N.pauli_channel({"ZZ": 0.02, "XI": 0.02}), ["cz", "cp"])
            .add_readout_error(N.ReadoutError.from_flips(0.01, 0.02)))


def test_walk_equals_tree_and_rows_on_every_operation_kind(monkeypatch):
    c = mixed()
    shots = 4000
    want = get_backend("reference").run(c, shots=shots, seed=9, noise=mixed_model(),
                                        save_state=True).counts
    sim = get_backend("statevector", kernels="cpu")
    walk = sim.run(c, shots=shots, seed=9, noise=mixed_model(), precision="double",
                   save_state=True)
    assert walk.counts == want
    monkeypatch.setattr(trajectories, "WALK_QUBITS", 0)  # the level-by-level rows instead
    rows = sim.run(c, shots=shots, seed=9, noise=mixed_model(), precision="double",
                   save_state=True)
    assert rows.counts == want
    np.testing.assert_allclose(walk.statevector, rows.statevector, atol=1e-12)


@pytest.mark.parametrize("batch", [64 * 3, 64 * 50])
def test_walk_pieces_do_not_change_the_result(monkeypatch, batch):
    c = mixed()
    sim = get_backend("statevector", kernels="cpu")
    want = sim.run(c, shots=2000, seed=4, noise=mixed_model()).counts
    monkeypatch.setattr(trajectories, "BATCH_AMPLITUDES", batch)  # pieces of at most 1 and 25 shots
    assert sim.run(c, shots=2000, seed=4, noise=mixed_model()).counts == want


# -- one row per distinct Pauli sequence, vectorised over the batch (the JAX path) ----------
@pytest.mark.parametrize("precision", ["double", "single"])
def test_jax_rows_give_the_cpu_result(precision):
    c = layered(5, 2)
    want = get_backend("statevector", kernels="cpu").run(
        c, shots=3000, seed=7, noise=model(), precision=precision).counts
    got = get_backend("statevector", kernels="jax").run(
        c, shots=3000, seed=7, noise=model(), precision=precision).counts
    assert got == want
    if precision == "double":
        assert got == get_backend("reference").run(c, shots=3000, seed=7, noise=model()).counts


def test_vector_batch_size_does_not_change_the_result(monkeypatch):
    c = layered(4, 2)
    sim = get_backend("statevector", kernels="jax")
    want = sim.run(c, shots=1000, seed=4, noise=model(), precision="double").counts
    monkeypatch.setattr(trajectories, "BATCH_AMPLITUDES", 16 * 300)  # chunks of 300 shots
    got = sim.run(c, shots=1000, seed=4, noise=model(), precision="double").counts
    assert got == want


def test_cpu_rows_on_a_small_state(monkeypatch):
    """The level-by-level rows with the CPU set (forced: on a small state it prefers the
    walk), in several chunks."""
    c = mixed()
    sim = get_backend("statevector", kernels="cpu")
    want = sim.run(c, shots=2000, seed=9, noise=mixed_model(), precision="double").counts
    calls = []
    original = trajectories._pauli_rows

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(trajectories, "WALK_QUBITS", 0)
    monkeypatch.setattr(trajectories, "_pauli_rows", spy)
    monkeypatch.setattr(trajectories, "BATCH_AMPLITUDES", 128 << 7)  # several batches of rows
    assert sim.run(c, shots=2000, seed=9, noise=mixed_model(),
                   precision="double").counts == want
    assert calls

