"""The distributed backend against the reference, under ``mpiexec -n 1``, ``-n 2`` and ``-n 4``
(and plain pytest, one rank). Every rank compares the gathered logical state, so a rank count
that changes any amplitude, count or expectation value fails on every rank."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import library as lib
from qsim_dist import comm as comm_module
from qsim_dist.backends import get_backend
from qsim_dist.comm import check_memory, format_bytes, validate_ranks
from qsim_dist.errors import BackendError, OptionError
from qsim_dist.gates import GATES
from qsim_dist.passes.fusion import fuse
from qsim_dist.passes.layout import (Layout, exchange_bytes, mixing_qubits, plan_swaps,
                                     relabel_swaps, renamed, restrict)

REF = get_backend("reference")
TOL = {"single": 2e-5, "double": 1e-12}


@pytest.fixture(scope="module")
def dist():
    return get_backend("distributed", kernels="cpu")


random_gate_circuit = lib.random_gate_circuit


def close(a, b, tol):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=tol * max(1, math.sqrt(a.size) / 64))


# ---- whole circuits ---------------------------------------------------------------------------

@pytest.mark.parametrize("n,seed", [(6, 0), (7, 1), (8, 2), (9, 3), (10, 4)])
def test_random_gate_table_circuits(dist, n, seed):
    c = random_gate_circuit(n, 10 * n, seed)
    close(dist.statevector(c, precision="double"), REF.statevector(c), TOL["double"])


@pytest.mark.parametrize("max_dense", [1, 2])
def test_without_fusion_and_single_precision(max_dense):
    backend = get_backend("distributed", kernels="cpu", max_dense=max_dense)
    c = random_gate_circuit(8, 60, seed=10 + max_dense)
    close(backend.statevector(c, precision="single"), REF.statevector(c), TOL["single"])


@pytest.mark.parametrize("circuit", [
    lib.qft(9), lib.ghz(8), lib.qpe(6, 37 / 64), lib.grover(4, 0b1011), lib.cuccaro_adder(3, 5, 6),
    lib.qaoa_maxcut([(0, 1), (1, 2), (2, 3), (3, 0), (1, 5), (4, 5)], 6, [0.3, 0.7], [0.5, 0.2]),
], ids=lambda c: c.name)
def test_real_circuits(dist, circuit):
    close(dist.statevector(circuit, precision="double"), REF.statevector(circuit),
          TOL["double"])


def test_adder_adds(dist):
    probs = dist.probabilities(lib.cuccaro_adder(3, 7, 5), precision="double")
    assert probs[lib.adder_output(3, 7, 5)] == pytest.approx(1, abs=1e-12)


# ---- gates over global bits -------------------------------------------------------------------

def _prepared(backend, n):
    """A generic state (every qubit in superposition and entangled) and its circuit; on more than
    one rank its layout has moved away from the identity."""
    c = lib.random_circuit(n, 3, seed=7)
    return backend.final_state(c, precision="double"), c


GLOBAL_CASES = {  # name -> (gate, roles); "g"/"l" = a qubit global/local in the current layout
    "ccx controls global": ("ccx", "ggl"),
    "ccx target global": ("ccx", "llg"),
    "ccx control and target global": ("ccx", "glg"),
    "c3x controls global": ("c3x", "ggll"),
    "c3x target and control global": ("c3x", "lglg"),
    "c4x target global": ("c4x", "glllg"),
    "cswap all global but one": ("cswap", "ggl"),
    "swap global-local": ("swap", "gl"),
    "swap global-global": ("swap", "gg"),
    "rxx over two global bits": ("rxx", "gg"),
    "u3 global": ("u3", "g"),
    "cx control global": ("cx", "gl"),
    "cy target global": ("cy", "lg"),
    "cz global": ("cz", "gg"),
    "cp global-local": ("cp", "gl"),
    "rzz global": ("rzz", "gg"),
    "ccz global": ("ccz", "ggl"),
    "rz global": ("rz", "g"),
    "rc3x target global": ("rc3x", "llgg"),
}
# Diagonal gates, gates mixing only local qubits, and SWAP (a renaming) need no exchange.
NO_TRAFFIC = {"ccx controls global", "c3x controls global", "cx control global", "cz global",
              "cp global-local", "rzz global", "ccz global", "rz global", "swap global-local",
              "swap global-global"}


@pytest.mark.parametrize("case", list(GLOBAL_CASES))
def test_gates_over_global_bits(dist, case):
    n = 7
    state, prefix = _prepared(dist, n)
    layout = state.layout
    glob = [q for q in range(n) if layout.is_global(q)]
    # On fewer ranks than needed global qubits, the highest local qubits stand in.
    loc = sorted((q for q in range(n) if not layout.is_global(q)), key=lambda q: -layout.phys[q])
    glob += loc[: max(0, 2 - len(glob))]
    loc = [q for q in loc if q not in glob]
    name, roles = GLOBAL_CASES[case]
    pick = {"g": iter(glob), "l": iter(loc)}
    qubits = [next(pick[r]) for r in roles]
    params = [0.3, -1.1, 0.7][: GATES[name].num_params]
    gate = Circuit(n).add(name, *qubits, params=params)
    before = dist.comm.exchanges
    state.execute(state.prepare(list(gate)))
    if dist.comm.size == 4:
        assert all(layout.is_global(q) for q, r in zip(qubits, roles) if r == "g")
    if case in NO_TRAFFIC or dist.comm.size == 1:
        assert dist.comm.exchanges == before
    elif dist.comm.size == 4:
        assert dist.comm.exchanges == before + 1
    want = REF.statevector(Circuit(n, 0, list(prefix) + list(gate)))
    close(state.statevector(), want, TOL["double"])


def test_measure_reset_and_feed_forward_on_global_qubits(dist):
    n = 7
    c = Circuit(n, 4, list(lib.random_circuit(n, 2, seed=3)))
    c.measure(n - 1, 0)  # the top qubits start global
    c.add("reset", n - 2)
    c.add("x", n - 2, condition=Condition((0,), 1))
    c.add("h", n - 1, condition=Condition((0,), 0))
    c.add("swap", n - 1, 1, condition=Condition((0,), 1))  # a renaming, only in some shots
    c.add("ry", n - 1, params=[0.4])
    c.measure(n - 2, 1)
    c.add("cx", n - 1, 0)
    c.measure(0, 2)
    c.measure(n - 1, 3)
    got = dist.run(c, shots=40, seed=11, precision="double")
    want = REF.run(c, shots=40, seed=11, precision="double")
    assert got.counts == want.counts
    assert sum(got.counts.values()) == 40 and len(got.counts) > 2


def test_noise_trajectories_on_global_qubits(dist):
    from qsim_dist import noise as N

    n = 6  # the noisy gates act on the top qubits, global at the start
    model = (N.NoiseModel()
             .add_gate_error(N.depolarizing(0.2, 2), "cx")
             .add_gate_error(N.amplitude_damping(0.4), "ry")
             .add_gate_error(N.pauli_channel({"Y": 0.2, "X": 0.1}), "h"))
    c = Circuit(n, 3)
    c.add("h", n - 1)
    c.add("ry", n - 2, params=[2.0])
    c.add("cx", n - 1, 0)
    c.add("cx", n - 2, n - 1)
    c.add("h", 1)
    for j, q in enumerate((0, n - 2, n - 1)):
        c.measure(q, j)
    got = dist.run(c, shots=60, seed=8, precision="double", noise=model)
    assert got.counts == REF.run(c, shots=60, seed=8, precision="double", noise=model).counts
    assert len(got.counts) > 2


def test_teleport_to_a_global_qubit(dist):
    n = 6
    c = Circuit(n, 3)  # teleport qubit 0 to qubit n-1 through qubit n-2
    c.add("ry", 0, params=[1.1])
    c.add("h", n - 2)
    c.add("cx", n - 2, n - 1)
    c.add("cx", 0, n - 2)
    c.add("h", 0)
    c.measure(0, 0)
    c.measure(n - 2, 1)
    c.add("x", n - 1, condition=Condition((1,), 1))
    c.add("z", n - 1, condition=Condition((0,), 1))
    c.measure(n - 1, 2)
    got = dist.run(c, shots=60, seed=5, precision="double", save_state=True)
    assert got.counts == REF.run(c, shots=60, seed=5, precision="double").counts
    ones = sum(v for k, v in got.counts.items() if k[0] == "1")
    assert 0 < ones < 60  # ry(1.1)|0> reads 1 with probability sin^2(0.55) ~ 0.27


def test_hdf5_written_from_every_rank(dist, tmp_path):
    from qsim_dist.io.hdf5 import ResultsFileError, load_result

    c = lib.random_circuit(8, 3, seed=6)
    c.measure_all()
    result = dist.run(c, shots=100, seed=3, precision="double", save_state=True)
    path = dist.comm.bcast(str(tmp_path / "run.h5"))  # rank 0's directory, for every rank
    dist.save_result(result, path)
    back = load_result(path)
    assert back.counts == result.counts == REF.run(c, shots=100, seed=3).counts
    assert back.metadata["exchanges"] == result.metadata["exchanges"]
    close(back.statevector, REF.statevector(c), TOL["double"])
    assert [p.name for p in tmp_path.iterdir()] == ["run.h5"] or dist.comm.rank
    with pytest.raises(ResultsFileError, match="does not exist"):
        dist.save_result(result, dist.comm.bcast(str(tmp_path / "missing" / "run.h5")))


# ---- checkpoint / resume ----------------------------------------------------------------------

class _Killed(Exception):
    pass


def _interrupt_after(monkeypatch, writes: int) -> None:
    """Make the run stop (on every rank at once) right after its ``writes``-th checkpoint."""
    from qsim_dist.backends.distributed import DistributedState

    original = DistributedState.write_checkpoint
    done = [0]

    def write_then_stop(self, path, header):
        original(self, path, header)
        done[0] += 1
        if done[0] == writes:
            raise _Killed

    monkeypatch.setattr(DistributedState, "write_checkpoint", write_then_stop)


@pytest.mark.parametrize("dynamic", [False, True])
def test_checkpoint_and_resume_give_the_same_run(dist, tmp_path, monkeypatch, dynamic):
    from qsim_dist.io.checkpoint import Checkpointing, read_header

    c = Circuit(9, 9, list(lib.random_circuit(9, 12, seed=21)))
    if dynamic:  # a mid-circuit measurement: checkpoints cover the gates before it
        c.measure(0, 0)
        c.add("x", 3, condition=Condition((0,), 1))
    for q in range(1 if dynamic else 0, 9):
        c.measure(q, q)
    whole = dist.run(c, shots=300, seed=4, precision="double", save_state=True)
    path = dist.comm.bcast(tmp_path / "run.ckpt")
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(_Killed):
        dist.run(c, shots=300, seed=4, precision="double",
                 checkpoint=Checkpointing(path=path, every=0, gates=13))
    monkeypatch.undo()
    header = read_header(path)
    assert header.position == 26 and header.ranks == dist.comm.size and header.seed == 4
    resumed = dist.run(c, shots=300, precision="double", save_state=True,
                       checkpoint=Checkpointing(resume=path, path=path, every=0, gates=13))
    assert resumed.seed == 4 and resumed.metadata["resumed_at_gate"] == 26
    assert resumed.metadata["checkpoints_written"] >= 1
    assert resumed.counts == whole.counts
    close(resumed.statevector, whole.statevector, TOL["double"])


def test_resume_refuses_another_run(dist, tmp_path):
    from qsim_dist.io.checkpoint import CheckpointError, Checkpointing

    c = lib.random_circuit(8, 4, seed=2)
    c.measure_all()
    path = dist.comm.bcast(tmp_path / "run.ckpt")
    dist.run(c, shots=50, seed=1, checkpoint=Checkpointing(path=path, every=0, gates=10))
    other = lib.random_circuit(8, 4, seed=3)
    other.measure_all()
    cases = [(dict(circuit=other), "another circuit"), (dict(precision="double"), "precision"),
             (dict(shots=51), "shots"), (dict(seed=2), "seed 1")]
    for changes, message in cases:
        with pytest.raises(CheckpointError, match=message):
            dist.run(changes.pop("circuit", c), shots=changes.pop("shots", 50),
                     checkpoint=Checkpointing(resume=path), **changes)
    damaged = dist.comm.bcast(tmp_path / "damaged.ckpt")
    if dist.comm.rank == 0:
        data = bytearray(path.read_bytes())
        data[-200] ^= 0xFF  # inside the state: its chunk's checksum no longer matches
        damaged.write_bytes(bytes(data))
    dist.comm.barrier()
    with pytest.raises(CheckpointError, match="damaged"):
        dist.run(c, shots=50, checkpoint=Checkpointing(resume=damaged))
    with pytest.raises(CheckpointError, match="no such file"):
        dist.run(c, shots=50, checkpoint=Checkpointing(resume=tmp_path / "none.ckpt"))


def test_sigkill_then_resume_with_other_rank_counts(tmp_path, dist):
    """A run killed with SIGKILL at 2 ranks resumes at 1 and at 4 to the uninterrupted result."""
    if dist.comm.size > 1:
        pytest.skip("starts its own mpiexec: run from one rank only")
    import json
    import signal
    import time

    from qsim_dist.io.qasm import dumps

    c = lib.random_circuit(14, 40, seed=8)
    c.measure_all()
    qasm = tmp_path / "c.qasm"
    qasm.write_text(dumps(c))
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    cli = [sys.executable, "-m", "qsim_dist.cli", "run", str(qasm), "--shots", "200", "--json"]
    ckpt = tmp_path / "run.ckpt"

    def run(ranks, *extra):
        proc = subprocess.run([mpiexec, "-n", str(ranks), *cli, *extra], capture_output=True,
                              text=True, timeout=120, env=_clean_env())
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    whole = run(1, "--seed", "5")
    proc = subprocess.Popen([mpiexec, "-n", "2", *cli, "--seed", "5", "--checkpoint", str(ckpt),
                             "--checkpoint-every", "0", "--checkpoint-gates", "15"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_clean_env(), start_new_session=True)
    deadline = time.monotonic() + 60
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "no checkpoint was written"
    for ranks in (1, 4):
        resumed = run(ranks, "--resume", str(ckpt))
        assert resumed["seed"] == 5 and resumed["counts"] == whole["counts"]
        assert resumed["resumed_at_gate"] > 0


def test_restore_identity_after_arbitrary_exchanges(dist):
    n = 8
    state, c = _prepared(dist, n)
    g, nl = state.layout.num_global, state.layout.num_local
    rng = np.random.default_rng(4)  # the same swaps on every rank
    for _ in range(6):
        m = int(rng.integers(1, g + 1)) if g else 0
        glob = rng.choice(np.arange(nl, n), m, replace=False)
        loc = rng.choice(nl, m, replace=False)
        if m:
            state._swap(tuple((int(a), int(b)) for a, b in zip(glob, loc)))
    state._restore_identity()
    assert state.layout == Layout(n, g)
    close(state.statevector(), REF.statevector(c), TOL["double"])


def test_sampling_matches_reference_counts(dist):
    c = lib.random_circuit(9, 3, seed=2)
    c.measure_all()
    got = dist.run(c, shots=3000, seed=42, precision="double", save_state=True)
    want = REF.run(c, shots=3000, seed=42, precision="double", save_state=True)
    assert got.counts == want.counts
    close(got.statevector, want.statevector, TOL["double"])


def test_amplitudes_probabilities_and_expectations(dist):
    n = 7
    c = random_gate_circuit(n, 50, seed=9)
    sv = REF.statevector(c)
    idx = [0, 5, 64, 127, 100, 3]
    close(dist.amplitudes(c, idx, precision="double"), sv[idx], TOL["double"])
    for qubits in ([n - 1], [n - 1, 0], [2, n - 2, n - 1], [0, 1]):
        close(dist.probabilities(c, qubits, precision="double"),
              REF.probabilities(c, qubits), TOL["double"])
    close(dist.probabilities(c, precision="double"), np.abs(sv) ** 2, TOL["double"])
    h = [(0.5, "X0 Z1 Y6"), (-1.25, "Z5 Z6"), (2.0, "YXZIXYX"), (0.75, "X5 X6"), (1.0, "Y6"),
         (0.3, "Z0 X3")]
    for label in [h] + [[term] for term in h]:
        assert dist.expectation(c, label, "double") == pytest.approx(
            REF.expectation(c, label), abs=1e-12)


def test_reduced_density_matrix_of_global_qubits(dist):
    n = 7
    c = random_gate_circuit(n, 50, seed=12)
    ref = REF.final_state(c)
    for qubits in ([n - 1], [n - 1, 0], [2, n - 2, n - 1]):
        state = dist.final_state(c, precision="double")
        close(state.reduced_density_matrix(qubits), ref.reduced_density_matrix(qubits),
              TOL["double"])


def test_pauli_exchange_in_small_pieces():
    backend = get_backend("distributed", kernels="cpu", buffer_bytes=64)
    c = lib.ghz(6)
    assert backend.expectation(c, "XXXXXX", "double") == pytest.approx(1, abs=1e-12)
    assert backend.expectation(c, "YYXXXX", "double") == pytest.approx(-1, abs=1e-12)


def test_small_buffers_and_short_messages(monkeypatch):
    # 64-byte buffers and 4-element messages: every exchange goes in many pieces.
    monkeypatch.setattr(comm_module, "MAX_MESSAGE_ELEMENTS", 4)
    backend = get_backend("distributed", kernels="cpu", buffer_bytes=64)
    assert backend.comm._piece(1, 8) == 4 and backend.comm._piece(4, 16) == 1
    c = random_gate_circuit(8, 60, seed=21)
    res = backend.run(Circuit(8, 0, list(c)), shots=0, seed=1, precision="double",
                      save_state=True)
    close(res.statevector, REF.statevector(c), TOL["double"])


def test_statistics_count_the_planned_traffic(dist):
    c = lib.qft(10)
    res = dist.run(c, shots=0, seed=0, precision="single")
    size, g = dist.comm.size, dist.comm.size.bit_length() - 1
    blocks = fuse(relabel_swaps(list(c), 10)[0], min(dist.max_dense, 10 - g), dist.max_diagonal)
    plan, _ = plan_swaps(Layout(10, g), [mixing_qubits(b.matrix, b.qubits, b.diagonal)
                                         for b in blocks])
    shard = 8 << (10 - g)
    assert res.metadata["exchanges"] == sum(1 for p in plan if p)
    assert res.metadata["bytes_sent"] == sum(exchange_bytes(len(p), shard, size) for p in plan)
    assert (res.metadata["exchanges"] > 0) == (size > 1)
    assert len(res.metadata["comm_time_s"]) == len(res.metadata["compute_time_s"]) == size
    assert res.metadata["ranks"] == size


def test_same_seed_without_seed_is_shared(dist):
    c = lib.ghz(6, measure=True)
    res = dist.run(c, shots=50)
    seeds = dist.comm.allgather(res.seed)
    assert len(set(seeds)) == 1
    assert set(res.counts) <= {"000000", "111111"}


@pytest.mark.parametrize("precision", ["single", "double"])
def test_jax_kernels(precision):
    # The XLA set through the same shards: host staging for the exchanges, x64 for double.
    backend = get_backend("distributed", kernels="jax")
    c = random_gate_circuit(7, 40, seed=3)
    close(backend.statevector(c, precision=precision), REF.statevector(c), TOL[precision])
    assert backend.expectation(lib.ghz(6), "YYXXXX", precision) == pytest.approx(
        -1, abs=TOL[precision])
    if precision == "double":
        test_teleport_to_a_global_qubit(backend)


# ---- the planner (pure functions; the same on every rank) ---------------------------------------

def test_plan_keeps_mixed_qubits_local_and_batches():
    n, g = 12, 3
    c = lib.qft(n)
    blocks = fuse(list(c), 3, 12)
    needs = [mixing_qubits(b.matrix, b.qubits, b.diagonal) for b in blocks]
    layout = Layout(n, g)
    plan, end = plan_swaps(layout, needs)
    for pairs, need in zip(plan, needs):
        layout = layout.swapped(pairs)
        assert not any(layout.is_global(q) for q in need)
    assert layout == end
    # QFT on the top 3 global qubits: they are needed first and all come in together.
    assert plan[0] and len(plan[0]) == g
    assert sum(1 for p in plan if p) <= 3


def test_swaps_become_a_renaming():
    c = Circuit(4).add("swap", 0, 3).add("h", 0).add("swap", 3, 1).add("cx", 1, 2)
    gates, where = relabel_swaps(list(c), 4)
    assert [(g.name, g.qubits) for g in gates] == [("h", (3,)), ("cx", (0, 2))]
    assert where == (3, 0, 2, 1)  # logical 0 ends in start-qubit 3, logical 1 in 0, 3 in 1
    end = renamed(Layout(4, 1), where)
    assert end.phys == (3, 0, 2, 1)


def test_plan_rejects_a_block_mixing_more_qubits_than_are_local():
    with pytest.raises(BackendError, match="only 2 are local"):
        plan_swaps(Layout(4, 2), [frozenset({0, 1, 2})])


def test_mixing_and_restrict():
    ccx = GATES["ccx"].matrix()
    assert mixing_qubits(ccx, (4, 7, 9)) == {9}
    assert mixing_qubits(GATES["swap"].matrix(), (1, 2)) == {1, 2}
    assert mixing_qubits(GATES["cp"].matrix([0.3]), (0, 1)) == set()
    # ccx with both controls fixed to 1 leaves X on the target; a control at 0 leaves identity.
    sub, bits = restrict(ccx, (5, 2, 0), False, {5: 1, 2: 1})
    assert bits == (0,) and np.allclose(sub, [[0, 1], [1, 0]])
    sub, _ = restrict(ccx, (5, 2, 0), False, {5: 0, 2: 1})
    assert np.allclose(sub, np.eye(2))
    # Reordering: cx(control=3, target=1) written on bits (3, 1) becomes a matrix on (1, 3).
    sub, bits = restrict(GATES["cx"].matrix(), (3, 1), False, {})
    assert bits == (1, 3) and np.allclose(sub, [[1, 0, 0, 0], [0, 1, 0, 0],
                                                [0, 0, 0, 1], [0, 0, 1, 0]])
    table, bits = restrict(np.array([1, 2, 3, 4]), (6, 2), True, {6: 1})
    assert bits == (2,) and list(table) == [2, 4]


def test_layout_index_maps():
    layout = Layout(4, 1).swapped(((3, 0),))
    phys = layout.to_physical(np.arange(16))
    assert sorted(phys) == list(range(16))
    assert list(layout.to_logical(phys)) == list(range(16))
    assert phys[1] == 8 and phys[8] == 1


# ---- guards -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,ranks,message", [
    (10, 3, "power-of-two"), (10, 6, "power-of-two"), (10, 0, "power-of-two"),
    (3, 4, "too many for 3 qubits"), (5, 16, "at most 8 ranks"), (1, 2, "at most 1 rank"),
])
def test_rank_count_guard(n, ranks, message):
    with pytest.raises(BackendError, match=message):
        validate_ranks(n, ranks)


def test_rank_count_accepted():
    assert validate_ranks(10, 1) == 0 and validate_ranks(1, 1) == 0
    assert validate_ranks(10, 256) == 8


def test_too_many_ranks_for_the_circuit(dist):
    n = 1 if dist.comm.size == 2 else 3
    if dist.comm.size == 1:
        pytest.skip("one rank holds any circuit")
    with pytest.raises(BackendError, match="too many"):
        dist.statevector(lib.ghz(n))


def test_memory_guard_with_numbers():
    backend = get_backend("distributed", kernels="cpu", memory_limit=1000)
    with pytest.raises(BackendError, match=r"needs .* per rank, 1000 B available"):
        backend.statevector(lib.ghz(10))
    with pytest.raises(BackendError, match=r"needs 16\.0 TiB per rank, 23\.4 GiB available"):
        check_memory(16 << 40, int(23.4 * (1 << 30)))
    assert format_bytes(1536) == "1.5 KiB"


def test_option_guard():
    with pytest.raises(OptionError, match="at least 64 bytes"):
        get_backend("distributed", kernels="cpu", buffer_bytes=8)


# ---- launcher -----------------------------------------------------------------------------------

def _clean_env():
    # A child mpiexec must not think it runs inside this test's MPI job.
    prefixes = ("PMI_", "PMIX_", "MPI_", "HYDRA_", "OMPI_", "MPIR_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@pytest.mark.parametrize("error,status", [("RuntimeError('bug')", 1),
                                          ("BackendError('user mistake')", 2)])
def test_an_exception_on_one_rank_ends_all(tmp_path, dist, error, status):
    if dist.comm.size > 1:
        pytest.skip("starts its own mpiexec: run from one rank only")
    script = tmp_path / "boom.py"
    script.write_text(textwrap.dedent(f"""
        from mpi4py import MPI
        from qsim_dist.errors import BackendError
        if MPI.COMM_WORLD.rank == 1:
            raise {error}
        MPI.COMM_WORLD.Barrier()  # ranks 0 and 2 would wait here for ever
    """))
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    proc = subprocess.run([mpiexec, "-n", "3", sys.executable, "-m", "qsim_dist.mpi_launch",
                           str(script)], capture_output=True, text=True, timeout=60,
                          env=_clean_env())
    assert proc.returncode == status, proc.stderr
    if status == 2:
        assert "qsim-dist: error (rank 1): user mistake" in proc.stderr
        assert "Traceback" not in proc.stderr
    else:
        assert "RuntimeError: bug" in proc.stderr


def test_gpu_binding_by_local_rank():
    from qsim_dist.mpi_launch import bind_local_gpu

    env = {"SLURM_LOCALID": "3"}
    assert bind_local_gpu(env, num_gpus=2) == "1" and env["CUDA_VISIBLE_DEVICES"] == "1"
    env = {"OMPI_COMM_WORLD_LOCAL_RANK": "2", "CUDA_VISIBLE_DEVICES": "4,5,6,7"}
    assert bind_local_gpu(env) == "6"
    assert bind_local_gpu({"MPI_LOCALRANKID": "1"}, num_gpus=0) is None
    assert bind_local_gpu({}, num_gpus=4) is None
