"""The network layer on the distributed backend, under ``mpiexec -n 1``, ``-n 2`` and ``-n 4``
(and plain pytest, one rank): a noisy, timed run of a circuit on a modelled network (and of node
programs) gives the same report, for one seed, as the one-device statevector run; ``qsim-dist
dqc`` under mpiexec picks the distributed backend and prints one report, from rank 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qsim_dist.backends import get_backend
from qsim_dist.io import load
from qsim_dist.dqc import run_nodes, run_program
from qsim_dist.network import load_network, naive_program

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CIRCUIT = EXAMPLES / "dqc_small.qasm"      # 4 data qubits, 8 with communication qubits
PAIR = EXAMPLES / "network_pair.toml"


@pytest.fixture(scope="module")
def dist():
    return get_backend("distributed", kernels="cpu")


def _same(a, b):
    assert a.counts == b.counts
    assert a.fidelity == pytest.approx(b.fidelity, abs=1e-9)
    assert a.fidelity_stderr == pytest.approx(b.fidelity_stderr, abs=1e-9)
    for key in ("epr_pairs", "classical_bits", "makespan_s", "physical_qubits", "seed"):
        assert getattr(a, key) == getattr(b, key), key


def test_run_program_distributed_equals_statevector(dist):
    net = load_network(PAIR)
    program = naive_program(load(CIRCUIT), net)
    one = run_program(program, net, shots=60, seed=11, backend="statevector")
    many = run_program(program, net, shots=60, seed=11, backend="distributed")
    assert many.backend == "distributed" and sum(many.counts.values()) == 60
    assert many.physical_qubits - 2 >= dist.comm.size.bit_length() - 1
    _same(many, one)


def test_seed_drawn_on_rank_zero_is_everyone_s(dist):
    net = load_network(PAIR)
    program = naive_program(load(CIRCUIT), net)
    report = run_program(program, net, shots=8, backend="distributed")
    assert dist.comm.comm.allgather(report.seed) == [report.seed] * dist.comm.size
    assert dist.comm.comm.allgather(report.counts) == [report.counts] * dist.comm.size


def _ghz_nodes():
    """A 3-node GHZ state made by node programs: A shares its qubit with B and C by
    cat-entangling over the links A-B and A-C (6 physical qubits at least)."""
    from qsim_dist.network.nodes import cat_entangle_recv, cat_entangle_send

    def a(node):
        q = node.qubit()
        node.gate("h", q)
        yield from cat_entangle_send(node, q, "B")
        yield from cat_entangle_send(node, q, "C")
        node.measure(q, output=True)
        return q

    def b(node):
        share = yield from cat_entangle_recv(node, "A")
        node.measure(share, output=True)
        return share

    def c(node):
        share = yield from cat_entangle_recv(node, "A")
        node.measure(share, output=True)
        return share

    return {"A": a, "B": b, "C": c}


def test_node_programs_distributed_equal_statevector():
    from qsim_dist.network import network_from_dict

    node = {"data_qubits": 1, "comm_qubits": 2, "t2": 2e-5, "gate_time": 1e-7,
            "measure_time": 1e-6}
    net = network_from_dict({"nodes": {"A": node, "B": node, "C": node}, "links": [
        {"between": ["A", "B"], "fidelity": 0.95, "success_probability": 0.3, "latency": 2e-6},
        {"between": ["A", "C"], "fidelity": 0.9, "success_probability": 0.3, "latency": 2e-6}]})
    one = run_nodes(_ghz_nodes(), net, shots=50, seed=4, backend="statevector")
    many = run_nodes(_ghz_nodes(), net, shots=50, seed=4, backend="distributed")
    _same(many, one)
    assert set(one.counts) <= {"000", "111", "001", "010", "100", "011", "101", "110"}
    assert one.counts.get("000", 0) + one.counts.get("111", 0) > 25


def test_dqc_cli_under_mpiexec_is_one_report(tmp_path, capsys, dist):
    """In-process ``qsim-dist dqc`` on every rank of this job: the distributed backend is the
    default under mpiexec -n P > 1, rank 0 alone prints and writes, the report equals the
    statevector run's."""
    from qsim_dist.cli import _main, mpi_world_size

    out = Path(dist.comm.bcast(str(tmp_path / "report.h5")))
    args = ["dqc", str(CIRCUIT), "--network", str(PAIR), "--shots", "40", "--seed", "9",
            "--json", "--out", str(out), "--compiler", "naive"]
    if mpi_world_size() == 1:
        args += ["--backend", "distributed"]
    assert _main(args) == 0
    text = capsys.readouterr().out
    dist.comm.comm.Barrier()
    if dist.comm.rank != 0:
        assert text == ""
        return
    summary = json.loads(text)
    assert summary["backend"] == "distributed" and summary["seed"] == 9
    net = load_network(PAIR)
    ref = run_program(naive_program(load(CIRCUIT), net), net, shots=40, seed=9)
    assert summary["counts"] == ref.counts
    assert summary["fidelity"] == pytest.approx(ref.fidelity, abs=1e-9)
    assert summary["epr_pairs"] == ref.epr_pairs and out.stat().st_size > 0


def _clean_env():
    # A child mpiexec must not think it runs inside this test's MPI job.
    prefixes = ("PMI_", "PMIX_", "MPI_", "HYDRA_", "OMPI_", "MPIR_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def test_dqc_command_under_mpiexec_2_equals_one_process(tmp_path, dist):
    if dist.comm.size > 1:
        pytest.skip("starts its own mpiexec: run from one rank only")
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        pytest.skip("no mpiexec next to this Python")
    cli = [sys.executable, "-m", "qsim_dist.cli", "dqc", str(CIRCUIT), "--network", str(PAIR),
           "--shots", "30", "--seed", "2", "--json"]
    one = subprocess.run(cli, capture_output=True, text=True, timeout=300, env=_clean_env())
    assert one.returncode == 0, one.stderr
    two = subprocess.run([mpiexec, "-n", "2", *cli, "--out", str(tmp_path / "r.h5")],
                         capture_output=True, text=True, timeout=300, env=_clean_env())
    assert two.returncode == 0, two.stderr
    a, b = json.loads(one.stdout), json.loads(two.stdout)   # one JSON document: rank 0 only
    assert (a["backend"], b["backend"]) == ("statevector", "distributed")
    assert a["counts"] == b["counts"] and a["compiler"] == b["compiler"] == "auto"
    assert b["fidelity"] == pytest.approx(a["fidelity"], abs=1e-9)
    assert (tmp_path / "r.h5").stat().st_size > 0
