"""Shot splitting on the distributed backend (``split_shots=True``), under ``mpiexec -n 1``,
``-n 2`` and ``-n 4`` (and plain pytest, one rank): the counts of a split run are those of its
blocks run one after the other in one process, whatever the rank count, and agree with the
reference statistically."""

from __future__ import annotations

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import noise as N
from qsim_dist.backends import get_backend
from qsim_dist.backends.distributed import block_seed
from qsim_dist.errors import OptionError


def noisy_circuit(n=4):
    c = Circuit(n, n)
    for q in range(n):
        c.add("ry", q, params=[0.3 + 0.4 * q])
    for q in range(n - 1):
        c.add("cx", q, q + 1)
    for q in range(n):
        c.measure(q, q)
    return c


def dynamic_circuit():
    c = Circuit(3, 3)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.measure(1, 1)
    c.add("x", 2, condition=Condition((1,), 1))
    c.add("reset", 1)
    c.add("ry", 1, params=[0.8])
    c.measure(0, 0)
    c.measure(1, 1)
    c.measure(2, 2)
    return c


def model():
    return (N.NoiseModel()
            .add_gate_error(N.depolarizing(0.05), ["ry", "h", "x"])
            .add_gate_error(N.depolarizing(0.08, 2), "cx")
            .add_gate_error(N.amplitude_damping(0.1), "ry")
            .add_readout_error(N.ReadoutError.from_flips(0.02, 0.03)))


def pauli_model():
    return (N.NoiseModel()
            .add_gate_error(N.depolarizing(0.05), "ry")
            .add_gate_error(N.depolarizing(0.08, 2), "cx"))


def blocks_in_one_process(circuit, shots, seed, block, noise):
    """The split run's counts computed without MPI: every block, one after the other."""
    local = get_backend("statevector", kernels="numba")
    total = {}
    for b in range(-(-shots // block)):
        r = local.run(circuit, shots=min(block, shots - b * block), seed=block_seed(seed, b),
                      noise=noise)
        for key, c in r.counts.items():
            total[key] = total.get(key, 0) + c
    return total


@pytest.mark.parametrize("circuit, noise", [(noisy_circuit(), pauli_model()),
                                            (noisy_circuit(), model()),
                                            (dynamic_circuit(), model()),
                                            (dynamic_circuit(), None)])
@pytest.mark.parametrize("shots, block", [(3000, 256), (700, 1000), (5, 1)])
def test_split_counts_do_not_depend_on_the_rank_count(circuit, noise, shots, block):
    dist = get_backend("distributed", kernels="numba", split_shots=True, shot_block=block)
    r = dist.run(circuit, shots=shots, seed=11, noise=noise)
    assert sum(r.counts.values()) == shots
    assert r.counts == blocks_in_one_process(circuit, shots, 11, block, noise)
    split = r.metadata["shot_split"]
    assert split["blocks"] == -(-shots // block) and split["ranks"] == dist.comm.size


def test_split_counts_agree_with_the_reference():
    c, shots = noisy_circuit(), 8000
    dist = get_backend("distributed", kernels="numba", split_shots=True, shot_block=500)
    got = dist.run(c, shots=shots, seed=3, noise=model()).counts
    want = get_backend("reference").run(c, shots=shots, seed=4, noise=model()).counts
    assert N.total_variation_distance(got, want) <= N.tvd_bound(16, shots, shots)


def test_saved_state_is_block_zero_trajectory_on_every_rank():
    c = noisy_circuit()
    dist = get_backend("distributed", kernels="numba", split_shots=True, shot_block=64)
    r = dist.run(c, shots=300, seed=2, noise=model(), save_state=True)
    want = get_backend("statevector", kernels="numba").run(
        c, shots=64, seed=block_seed(2, 0), noise=model(), save_state=True).statevector
    np.testing.assert_allclose(r.statevector, want, atol=1e-6)
    assert np.vdot(r.statevector, r.statevector).real == pytest.approx(1.0, abs=1e-5)


def test_runs_without_trajectories_are_not_split():
    c = noisy_circuit()
    dist = get_backend("distributed", kernels="numba", split_shots=True)
    r = dist.run(c, shots=100, seed=1)  # no noise: sampled from one (sharded) state
    assert "shot_split" not in r.metadata
    noisy = get_backend("distributed", kernels="numba").run(c, shots=100, seed=1, noise=model())
    assert "shot_split" not in noisy.metadata  # split_shots is opt-in


def test_bad_block_is_refused():
    with pytest.raises(OptionError):
        get_backend("distributed", kernels="numba", split_shots=True, shot_block=0)
