"""Circuits whose only randomness is Pauli noise and terminal measurement: Paulis drawn up front,
shots sharing one state per distinct Pauli prefix, walked as a tree (any state) or level by
level on a batch of rows (numba). One seed gives one result on every backend and batch size."""

import numpy as np
import pytest

from qsim_dist import Circuit
from qsim_dist import noise as N
from qsim_dist.backends import base, get_backend
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
    got = get_backend("statevector", kernels="numba").run(c, shots=shots, seed=5, noise=model(),
                                                          precision="double").counts
    assert got == want
    single = get_backend("statevector", kernels="numba").run(c, shots=shots, seed=5,
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
    sim = get_backend("statevector", kernels="numba")
    want = sim.run(c, shots=3000, seed=2, noise=model(), precision="double").counts
    monkeypatch.setattr(base, "_BATCH_AMPLITUDES", 64 * 7)  # chunks of 7 shots
    assert sim.run(c, shots=3000, seed=2, noise=model(), precision="double").counts == want


@pytest.mark.parametrize("name, options", [("reference", {}),
                                           ("statevector", {"kernels": "numba"})])
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
