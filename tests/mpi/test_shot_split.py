"""Shot splitting on the distributed backend (``split_shots=True``), under ``mpiexec -n 1``,
``-n 2`` and ``-n 4`` (and plain pytest, one rank): the counts of a split run are those of its
blocks run one after the other in one process, whatever the rank count and group size (a memory
limit makes groups of 2 or 4 ranks shard the state), and agree with the reference
statistically."""

from __future__ import annotations

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import noise as N
from qsim_dist.backends import get_backend
from qsim_dist.backends.distributed import block_seed
from qsim_dist.errors import BackendError, OptionError


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
    local = get_backend("statevector", kernels="cpu")
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
    dist = get_backend("distributed", kernels="cpu", split_shots=True, shot_block=block)
    r = dist.run(circuit, shots=shots, seed=11, noise=noise)
    assert sum(r.counts.values()) == shots
    assert r.counts == blocks_in_one_process(circuit, shots, 11, block, noise)
    split = r.metadata["shot_split"]
    assert split["blocks"] == -(-shots // block) and split["ranks"] == dist.comm.size


def test_split_counts_agree_with_the_reference():
    c, shots = noisy_circuit(), 8000
    dist = get_backend("distributed", kernels="cpu", split_shots=True, shot_block=500)
    got = dist.run(c, shots=shots, seed=3, noise=model()).counts
    want = get_backend("reference").run(c, shots=shots, seed=4, noise=model()).counts
    assert N.total_variation_distance(got, want) <= N.tvd_bound(16, shots, shots)


def test_saved_state_is_block_zero_trajectory_on_every_rank():
    c = noisy_circuit()
    dist = get_backend("distributed", kernels="cpu", split_shots=True, shot_block=64)
    r = dist.run(c, shots=300, seed=2, noise=model(), save_state=True)
    want = get_backend("statevector", kernels="cpu").run(
        c, shots=64, seed=block_seed(2, 0), noise=model(), save_state=True).statevector
    np.testing.assert_allclose(r.statevector, want, atol=1e-6)
    assert np.vdot(r.statevector, r.statevector).real == pytest.approx(1.0, abs=1e-5)


def test_runs_without_trajectories_are_not_split():
    c = noisy_circuit()
    dist = get_backend("distributed", kernels="cpu", split_shots=True)
    r = dist.run(c, shots=100, seed=1)  # no noise: sampled from one (sharded) state
    assert "shot_split" not in r.metadata
    noisy = get_backend("distributed", kernels="cpu").run(c, shots=100, seed=1, noise=model())
    assert "shot_split" not in noisy.metadata  # split_shots is opt-in


def test_bad_block_is_refused():
    with pytest.raises(OptionError):
        get_backend("distributed", kernels="cpu", split_shots=True, shot_block=0)


# ---- groups of ranks sharding the state ---------------------------------------------------------
# Six qubits in single precision: a full state is 512 B; with a 64 B exchange buffer one rank of
# two needs 256 + 64 B and one rank of four 128 + 64 B.
FITS_TWO, FITS_FOUR, BUFFER = 400, 200, 64


def dynamic_circuit6():
    c = Circuit(6, 6)
    for q in range(6):
        c.add("ry", q, params=[0.5 + 0.3 * q])
    c.add("cx", 5, 0)
    c.measure(0, 0)
    c.add("x", 4, condition=Condition((0,), 1))
    c.add("reset", 0)
    c.add("cx", 4, 1)
    c.add("h", 5)
    for q in range(6):
        c.measure(q, q)
    return c


def grouped(memory_limit, block=100):
    return get_backend("distributed", kernels="cpu", split_shots=True, shot_block=block,
                       buffer_bytes=BUFFER, memory_limit=memory_limit)


GROUP_CASES = [(noisy_circuit(6), pauli_model()), (noisy_circuit(6), model()),
               (dynamic_circuit6(), model()), (dynamic_circuit6(), None)]


@pytest.mark.parametrize("circuit, noise", GROUP_CASES)
@pytest.mark.parametrize("limit, size", [(FITS_TWO, 2), (FITS_FOUR, 4)])
def test_groups_shard_the_state_and_give_the_same_counts(circuit, noise, limit, size):
    dist = grouped(limit)
    if dist.comm.size < size:  # no group size fits: sharded as usual, which refuses
        with pytest.raises(BackendError, match="needs"):
            dist.run(circuit, shots=750, seed=5, noise=noise)
        return
    r = dist.run(circuit, shots=750, seed=5, noise=noise)
    split = r.metadata["shot_split"]
    assert split == {"blocks": 8, "block_shots": 100, "ranks": dist.comm.size,
                     "group_ranks": size, "groups": dist.comm.size // size}
    whole = grouped(None).run(circuit, shots=750, seed=5, noise=noise)  # a full state per rank
    assert whole.metadata["shot_split"]["group_ranks"] == 1
    assert r.counts == whole.counts
    assert r.counts == blocks_in_one_process(circuit, 750, 5, 100, noise)
    # the statistics count every group: the groups' exchanges, the bytes of all ranks
    assert r.metadata["ranks"] == dist.comm.size
    assert r.metadata["exchanges"] > 0 and r.metadata["bytes_sent"] > 0
    assert len(r.metadata["compute_time_s"]) == dist.comm.size
    assert whole.metadata["exchanges"] == whole.metadata["bytes_sent"] == 0


def test_group_traffic_does_not_depend_on_the_number_of_groups():
    """The same blocks sharded over groups of two: the total traffic is the blocks' traffic,
    whether one group runs them all or several share them."""
    c, noise = noisy_circuit(6), model()
    dist = grouped(FITS_TWO)
    if dist.comm.size < 2:
        pytest.skip("needs at least 2 ranks")
    r = dist.run(c, shots=800, seed=8, noise=noise)
    one_group = get_backend("distributed", kernels="cpu",
                            comm=dist.comm.split(dist.comm.rank // 2, dist.comm.rank % 2))
    assert one_group.comm.size == 2 and one_group.comm.buffer_bytes == BUFFER
    exchanges = bytes_sent = 0
    for b in range(8):  # every rank runs all the blocks in its own pair of ranks
        s = one_group.run(c, shots=100, seed=block_seed(8, b), noise=noise).metadata
        exchanges += s["exchanges"]
        bytes_sent += s["bytes_sent"]
    assert r.metadata["exchanges"] == exchanges
    assert r.metadata["bytes_sent"] == bytes_sent


def test_group_saved_state_and_results_file(tmp_path):
    c = noisy_circuit(6)
    dist = grouped(FITS_TWO, block=64)
    if dist.comm.size < 2:
        pytest.skip("needs at least 2 ranks")
    r = dist.run(c, shots=300, seed=2, noise=model(), save_state=True)
    assert r.metadata["shot_split"]["group_ranks"] == 2
    want = get_backend("statevector", kernels="cpu").run(
        c, shots=64, seed=block_seed(2, 0), noise=model(), save_state=True).statevector
    np.testing.assert_allclose(r.statevector, want, atol=1e-6)
    from qsim_dist.io.hdf5 import load_result

    path = dist.comm.bcast(str(tmp_path / "split.h5"))  # rank 0's directory
    dist.save_result(r, path)
    back = load_result(path)
    assert back.counts == r.counts and back.metadata["shot_split"]["group_ranks"] == 2
    np.testing.assert_allclose(back.statevector, want, atol=1e-6)
    dist.comm.barrier()  # no rank leaves (and removes its tmp_path) while another reads


def test_no_group_fits_falls_back_to_the_sharded_refusal():
    dist = grouped(100)  # below one rank of four (192 B) and of any more ranks: 6 qubits
    with pytest.raises(BackendError, match="needs"):
        dist.run(noisy_circuit(6), shots=10, seed=1, noise=model())
