"""Network runtime: network-file validation, the naive distributor, ideal lowering (the
compiler's yardstick), schedules and resources, reports in JSON and HDF5."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qsim_dist import Circuit, Instruction
from qsim_dist import library as lib
from qsim_dist.dqc import ideal_state, program_fidelity, run_program, save_report
from qsim_dist.errors import OptionError
from qsim_dist.network import (DistributedProgram, LocalGate, NetworkError, ProgramError,
                               RemoteGate, Teleport, load_network, lower, lower_ideal,
                               naive_program, network_from_dict, parse_placement)
from qsim_dist.network.runtime import Runtime

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples"


def net3(**link):
    node = {"data_qubits": 2, "comm_qubits": 2}
    return network_from_dict({"nodes": {"A": node, "B": node, "C": node},
                              "links": [{"between": ["A", "B"], **link},
                                        {"between": ["B", "C"], **link}]})


# ---- network files --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pair", "ring", "chain"])
def test_example_networks_load(name):
    net = load_network(EXAMPLES / f"network_{name}.toml")
    assert net.name == name and net.data_capacity >= 4


BAD_NETWORKS = {
    "no nodes": ("links = []", "at least one"),
    "unknown key": ("[nodes.A]\ndata_qubits = 1\ncolour = 'red'", "unknown key 'colour'"),
    "bad fidelity": ("[nodes.A]\ndata_qubits = 1\n[nodes.B]\ndata_qubits = 1\n"
                     "[[links]]\nbetween = ['A', 'B']\nfidelity = 1.5", "fidelity"),
    "unknown node": ("[nodes.A]\ndata_qubits = 1\n[[links]]\nbetween = ['A', 'Z']", "'Z'"),
    "disconnected": ("[nodes.A]\ndata_qubits = 1\n[nodes.B]\ndata_qubits = 1", "not connected"),
    "t2 > 2 t1": ("[nodes.A]\ndata_qubits = 1\nt1 = 1e-3\nt2 = 3e-3", "unphysical"),
    "repeater data": ("[nodes.A]\ndata_qubits = 1\n[nodes.R]\nrepeater = true\ndata_qubits = 2"
                      "\n[[links]]\nbetween = ['A', 'R']", "repeater"),
    "bad toml": ("[nodes.A\n", "invalid TOML"),
    "latency and length": ("[nodes.A]\ndata_qubits = 1\n[nodes.B]\ndata_qubits = 1\n[[links]]\n"
                           "between = ['A', 'B']\nlatency = 1e-6\nlength_km = 3", "not both"),
}


@pytest.mark.parametrize("case", BAD_NETWORKS)
def test_bad_network_files_are_one_clear_error(tmp_path, case):
    text, fragment = BAD_NETWORKS[case]
    path = tmp_path / "net.toml"
    path.write_text(text)
    with pytest.raises(NetworkError) as err:
        load_network(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(NetworkError, match="no such network file"):
        load_network(tmp_path / "missing.toml")


# ---- naive distributor ----------------------------------------------------------------------

def test_placement_parsing():
    net = net3()
    assert parse_placement("0:A, 1:C,2:A", 3, net) == ("A", "C", "A")
    for text, fragment in [("0:A,1:A,2:A", "data qubits"), ("0:A,1:Q,2:B", "no node"),
                           ("0:A,2:B", "not placed"), ("0:A,0:B,1:B", "twice"),
                           ("0-A", "QUBIT:NODE"), ("0:A,1:B,7:C", "out of range")]:
        with pytest.raises(NetworkError, match=fragment):
            parse_placement(text, 3, net)


def test_circuit_too_big_for_the_network():
    with pytest.raises(NetworkError, match="7 qubits but network"):
        naive_program(Circuit(7), net3())


@pytest.mark.parametrize("circuit", [lib.qft(4), lib.random_gate_circuit(
    4, 14, seed=3, names=["h", "rx", "cx", "swap", "rxx", "ryy", "iswap", "cp", "ecr", "rzx",
                          "ccx", "cswap", "xx_plus_yy"]), lib.qaoa_maxcut(
    [(0, 1), (1, 2), (2, 3), (3, 0)], 4, [0.3], [0.7])], ids=["qft", "random", "qaoa"])
def test_naive_program_over_ideal_links_is_the_circuit(circuit):
    net = net3()
    program = naive_program(circuit, net, ("A", "C", "B", "C"))   # A-C is two hops
    assert any(isinstance(op, RemoteGate) for op in program.ops)
    assert program_fidelity(program, net, circuit, seeds=(0, 1)) >= 1 - 1e-9
    lowered = lower_ideal(program, net)
    assert not lowered.noisy.has_channels
    assert lowered.stats.epr_generated == program.cost(net).epr_pairs
    assert lowered.stats.classical_bits == program.cost(net).classical_bits


def test_ideal_state_is_in_logical_order_and_independent_of_outcomes():
    net = net3()
    c = Circuit(3)
    c.add("x", 0)
    c.add("h", 2)
    c.add("cx", 2, 1)
    program = naive_program(c, net, ("B", "A", "C"))
    for seed in range(3):
        psi = ideal_state(program, net, seed=seed)
        expected = np.zeros(8)
        expected[0b001] = expected[0b111] = 1 / math.sqrt(2)
        assert np.allclose(psi, expected, atol=1e-12)


def test_program_errors():
    net = net3()
    with pytest.raises(ProgramError, match="data qubits"):
        DistributedProgram(3, 0, ("A", "A", "A"), []).validate(net)
    one_comm = network_from_dict({"nodes": {"A": {"data_qubits": 1, "comm_qubits": 1},
                                            "R": {"repeater": True, "comm_qubits": 1},
                                            "B": {"data_qubits": 1, "comm_qubits": 1}},
                                  "links": [{"between": ["A", "R"]}, {"between": ["R", "B"]}]})
    program = DistributedProgram(2, 0, ("A", "B"),
                                 [RemoteGate(0, "B", (Instruction("cz", (0, 1)),))])
    with pytest.raises(ProgramError, match="communication qubits"):
        lower(program, one_comm)       # the repeater must hold two halves to swap


# ---- schedules, resources, noise --------------------------------------------------------------

def test_communication_capacity_limits_concurrency():
    # two independent remote gates A->B: with one comm qubit per node they run one after the
    # other, with two they overlap
    def makespan(comm):
        node = {"data_qubits": 2, "comm_qubits": comm, "gate_time": 1e-7, "measure_time": 1e-6}
        net = network_from_dict({"nodes": {"A": node, "B": node}, "links": [
            {"between": ["A", "B"], "attempt_time": 1e-5, "latency": 1e-6}]})
        program = DistributedProgram(4, 0, ("A", "A", "B", "B"), [
            RemoteGate(0, "B", (Instruction("cx", (0, 2)),)),
            RemoteGate(1, "B", (Instruction("cx", (1, 3)),))])
        return lower(program, net).makespan

    assert makespan(1) > makespan(2) + 5e-6


def test_same_seed_same_report_and_noise_lowers_fidelity():
    net = load_network(EXAMPLES / "network_pair.toml")
    program = naive_program(lib.ghz(4, measure=True), net)
    a = run_program(program, net, shots=64, seed=11)
    b = run_program(program, net, shots=64, seed=11)
    assert a.summary() | {"wall_time_s": 0} == b.summary() | {"wall_time_s": 0}
    assert sum(a.counts.values()) == 64
    assert a.fidelity < 1 and 0 < a.fidelity_stderr < 0.2
    ideal = run_program(program, net, shots=64, seed=11, ideal=True)
    assert ideal.fidelity == pytest.approx(1, abs=1e-9) and ideal.makespan_s == 0
    assert set(ideal.counts) == {"0000", "1111"}
    assert a.makespan_s > 0 and a.idle_s["A"] > 0 and a.links["A-B"]["attempts"] >= 1


def test_purification_costs_pairs_and_raises_link_fidelity():
    node = {"data_qubits": 1, "comm_qubits": 3}       # two rounds hold 3 pairs at once
    net = network_from_dict({"nodes": {"A": node, "B": node},
                             "links": [{"between": ["A", "B"], "fidelity": 0.8,
                                        "attempt_time": 1e-6}]})
    program = DistributedProgram(2, 0, ("A", "B"), [
        LocalGate(Instruction("h", (0,))), RemoteGate(0, "B", (Instruction("cx", (0, 1)),))])
    plain = run_program(program, net, shots=2000, seed=1, backend="reference")
    pure = run_program(program, net, shots=2000, seed=1, backend="reference",
                       purification=("dejmps", 2))
    assert pure.fidelity > plain.fidelity + 0.05
    assert pure.epr_pairs >= 4 and pure.epr_pairs_consumed == 4
    assert pure.epr_pairs == pure.epr_pairs_consumed + pure.epr_pairs_discarded
    # the outcome bits of every round attempt are counted: 2 per attempt; with one round every
    # raw pair is in exactly one attempt, so the extra bits are the raw pairs
    one = run_program(program, net, shots=200, seed=1, backend="reference",
                      purification=("dejmps", 1))
    assert plain.classical_bits == 2
    assert one.classical_bits == pytest.approx(plain.classical_bits + one.epr_pairs)


def _pair_net(fidelity=0.8, comm=2, **link):
    node = {"data_qubits": 1, "comm_qubits": comm, "gate_time": 1e-7, "measure_time": 5e-7}
    return network_from_dict({"nodes": {"A": node, "B": node},
                              "links": [{"between": ["A", "B"], "fidelity": fidelity, **link}]})


@pytest.mark.parametrize("protocol,rounds", [("bbpssw", 1), ("dejmps", 1), ("dejmps", 2)])
def test_purification_rounds_send_two_bits_each(protocol, rounds):
    """Every round attempt, failed ones included, ends with each side sending its outcome bit."""
    rt = Runtime(_pair_net(0.7, comm=rounds + 1, attempt_time=1e-6, latency=2e-6),
                 np.random.default_rng(3), purification=(protocol, rounds))
    for _ in range(6):
        a, b = rt.epr("A", "B")
        rt.release(a)
        rt.release(b)
    use = rt.stats.links["A-B"]
    assert use.pairs == 6 and use.rounds >= 6 * (2 ** rounds - 1)
    assert use.rounds > 6 * (2 ** rounds - 1)             # some rounds failed (F = 0.7)
    assert rt.stats.classical_bits == 2 * use.rounds and rt.stats.messages == 2 * use.rounds
    if rounds == 1:
        assert use.rounds == use.generated // 2
        assert use.discarded == 2 * (use.rounds - use.pairs)


def test_a_purified_pair_waits_for_the_exchange_of_outcomes():
    """F = 1: every round succeeds; one round = two raw pairs one after the other, two gates
    (rotation or twirl, CNOT), the measurement and the one-way latency of the outcomes."""
    t, g, m, latency = 3e-6, 1e-7, 5e-7, 7e-6
    for rounds, raw in ((1, 2), (2, 4)):
        rt = Runtime(_pair_net(1.0, comm=rounds + 1, attempt_time=t, latency=latency),
                     np.random.default_rng(0), purification=("bbpssw", rounds))
        a, _ = rt.epr("A", "B")
        assert a.ready == pytest.approx(raw * t + (raw - 1) * (2 * g + m + latency), rel=1e-12)
        assert rt.stats.classical_bits == 2 * (raw - 1)


def test_purification_holds_its_communication_qubits_until_delivery():
    """Three comm qubits, one round: a distillation holds two; a second pair asked for while
    the first is held starts only when the first one's borrowed qubit is free again."""
    rt = Runtime(_pair_net(1.0, comm=3, attempt_time=1e-6), np.random.default_rng(0),
                 purification=("dejmps", 1))
    first, _ = rt.epr("A", "B")
    assert rt.free_comm_qubits("A") == 1      # two free, one of them borrowed by a new pair
    second, _ = rt.epr("A", "B")
    one = 2e-6 + 2e-7 + 5e-7            # two raw pairs, two gates, the measurement
    assert first.ready == pytest.approx(one) and second.ready == pytest.approx(2 * one)
    assert rt.free_comm_qubits("A") == 0
    with pytest.raises(ProgramError, match="needs 2 free communication qubits"):
        rt.epr("A", "B")                       # one left: not enough to distil
    # without purification the same three pairs are made side by side
    plain = Runtime(_pair_net(1.0, comm=3, attempt_time=1e-6), np.random.default_rng(0))
    assert [plain.epr("A", "B")[0].ready for _ in range(3)] == [1e-6] * 3


@pytest.mark.parametrize("comm,rounds", [(1, 1), (2, 2), (1, 3)])
def test_purification_without_enough_communication_qubits_is_refused(comm, rounds):
    net = _pair_net(0.8, comm=comm)
    with pytest.raises(OptionError) as err:
        Runtime(net, purification=("bbpssw", rounds))
    message = str(err.value)
    assert f"needs {rounds + 1} communication qubits" in message and "\n" not in message
    assert "node 'A' has comm_qubits = " + str(comm) in message
    program = DistributedProgram(2, 0, ("A", "B"), [
        RemoteGate(0, "B", (Instruction("cx", (0, 1)),))])
    with pytest.raises(OptionError, match="communication qubits"):
        run_program(program, net, shots=4, seed=0, purification=("dejmps", rounds))
    # an ideal run does not purify; no purification needs one comm qubit only
    assert run_program(program, net, shots=4, seed=0, ideal=True,
                       purification=("dejmps", rounds)).fidelity == pytest.approx(1)
    run_program(program, net, shots=4, seed=0)


def test_a_repeater_cannot_hold_a_half_and_distil_with_two_comm_qubits():
    """A - R - B with purification: R keeps its half towards A while it distils the pair
    towards B, so it needs 3 communication qubits (2 is refused, 3 works)."""
    def chain(comm_r):
        node = {"data_qubits": 1, "comm_qubits": 2}
        return network_from_dict({"nodes": {"A": node, "R": {"repeater": True,
                                                               "comm_qubits": comm_r},
                                            "B": node},
                                  "links": [{"between": ["A", "R"], "fidelity": 0.9},
                                            {"between": ["R", "B"], "fidelity": 0.9}]})
    program = DistributedProgram(2, 0, ("A", "B"),
                                 [RemoteGate(0, "B", (Instruction("cz", (0, 1)),))])
    with pytest.raises(ProgramError, match="'R' needs 2 free communication qubits"):
        lower(program, chain(2), purification=("dejmps", 1))
    low = lower(program, chain(3), purification=("dejmps", 1))
    rounds = sum(u.rounds for u in low.stats.links.values())
    assert rounds >= 2 and low.stats.classical_bits == 2 + 2 + 2 * rounds   # swap, gate, rounds


def test_teleport_and_fidelity_none_for_mid_circuit_measurement():
    net = net3()
    c = Circuit(2, 2)
    c.add("h", 0)
    c.measure(0, 0)
    c.add("h", 0)
    c.measure(0, 1)
    report = run_program(naive_program(c, net), net, shots=50, seed=0)
    assert report.fidelity is None and report.fidelity_stderr is None
    program = DistributedProgram(1, 0, ("A",), [LocalGate(Instruction("h", (0,))),
                                                Teleport(0, "C")])
    report = run_program(program, net, shots=0, trajectories=8, seed=0, ideal=True)
    assert report.fidelity == pytest.approx(1, abs=1e-9) and report.counts == {}


def test_report_json_and_hdf5(tmp_path):
    from qsim_dist.io.hdf5 import load_result

    net = load_network(EXAMPLES / "network_ring.toml")
    program = naive_program(lib.ghz(4, measure=True), net)
    report = run_program(program, net, shots=32, seed=5)
    summary = json.loads(json.dumps(report.summary()))
    for key in ("fidelity", "fidelity_stderr", "epr_pairs", "classical_bits", "makespan_s",
                "counts", "links", "idle_s", "epr_pairs_discarded"):
        assert key in summary
    path = save_report(report, tmp_path / "r.h5")
    back = load_result(path)
    assert back.counts == report.counts
    assert back.metadata["fidelity"] == pytest.approx(report.fidelity)
    assert back.metadata["kind"] == "dqc_report" and back.metadata["schedule"]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_runtime_rejects_bits_that_never_arrived():
    net = net3()
    rt = Runtime(net)
    qa, qb = rt.data_qubit("A"), rt.data_qubit("B")
    bit = rt.measure("A", qa)
    with pytest.raises(ProgramError, match="neither measured there nor sent"):
        rt.correct("B", "x", qb, (bit,))
    rt.send("A", "B", (bit,))
    rt.correct("B", "x", qb, (bit,))
