"""The module network state (qsim_dist/backends/modulenet.py) against the dense reference on
every member of the contract, its bonds against the entanglement they must follow, and the
network layer run on it against the statevector backend and the analytic results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qsim_dist import library as lib
from qsim_dist.backends import get_backend
from qsim_dist.backends.modulenet import ModuleNetBackend, ModuleNetState, overlap_on
from qsim_dist.circuit import Circuit
from qsim_dist.dqc import AUTO_DENSE_QUBITS, run_nodes, run_program
from qsim_dist.errors import BackendError
from qsim_dist.network import load_network, naive_program, physics
from qsim_dist.network.distribute import distribute
from qsim_dist.network.workloads import ghz_modules, repeater_chain
from qsim_dist.observables import as_pauli_sum

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
REF = get_backend("reference")


def marginal(psi, qubits):
    p = np.abs(psi) ** 2
    idx = np.arange(p.size)
    out = np.zeros(1 << len(qubits))
    np.add.at(out, sum(((idx >> q) & 1) << j for j, q in enumerate(qubits)), p)
    return out


def partial_trace(psi, qubits):
    n = int(np.log2(psi.size))
    t = psi.reshape((2,) * n)
    keep = [n - 1 - q for q in reversed(qubits)]
    rest = [a for a in range(n) if a not in keep]
    m = np.transpose(t, keep + rest).reshape(1 << len(qubits), -1)
    return m @ m.conj().T


# -- the state against the dense reference ----------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 7), depth=st.integers(1, 5), seed=st.integers(0, 10**6),
       modules=st.data())
def test_random_circuits_on_random_modules_equal_the_reference(n, depth, seed, modules):
    """Any assignment of qubits to modules (one module, one per qubit, anything between)
    gives the reference's state, marginals, reduced density matrices and expectations."""
    module_of = modules.draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n))
    circuit = lib.random_circuit(n, depth, seed=seed)
    psi = REF.statevector(circuit)
    state = ModuleNetBackend(modules=module_of).final_state(circuit, "double")
    np.testing.assert_allclose(state.statevector(), psi, atol=1e-10)
    qubits = list(np.random.default_rng(seed).permutation(n)[:min(n, 3)])
    np.testing.assert_allclose(state.probabilities(qubits), marginal(psi, qubits), atol=1e-10)
    np.testing.assert_allclose(state.reduced_density_matrix(qubits), partial_trace(psi, qubits),
                               atol=1e-10)
    h = as_pauli_sum([(0.7, f"Z0 X{n - 1}"), (0.2, "Y1"), (1.3, " ".join(f"Z{q}" for q in
                                                                          range(n)))], n)
    assert state.expectation(h) == pytest.approx(REF.final_state(circuit, "double")
                                                 .expectation(h), abs=1e-10)
    # bonds never exceed the Schmidt rank bound 2^min(side qubits): at most 2^(n//2)
    assert all(d <= 2 ** (n // 2) for d in state.bonds().values())


@pytest.mark.parametrize("modules", [None, [0, 0, 1, 1, 2, 2], ["a"] * 6, [0, 1, 2, 0, 1, 2]])
def test_overlap_and_fidelity_on_the_tensors(modules):
    c1, c2 = lib.random_circuit(6, 4, seed=1), lib.random_circuit(6, 4, seed=2)
    be = ModuleNetBackend(modules=modules)
    a, b = be.final_state(c1, "double"), be.final_state(c2, "double")
    expected = np.vdot(REF.statevector(c1), REF.statevector(c2))
    assert a.overlap(b) == pytest.approx(expected, abs=1e-10)
    assert a.fidelity(a) == pytest.approx(1.0, abs=1e-10)


def test_a_bell_pair_is_one_bond_of_two_and_measuring_removes_it():
    c = Circuit(4, 2)
    c.add("h", 0)
    c.add("cx", 0, 2)
    state = ModuleNetBackend(modules=["A", "A", "B", "B"]).final_state(c, "double")
    assert state.bonds() == {("A", "B"): 2} or state.bonds() == {("B", "A"): 2}
    assert state.live[1] == 0 and state.live[3] == 0   # untouched qubits hold no axis
    p1 = state.probabilities([0])[1]
    assert p1 == pytest.approx(0.5)
    state.collapse(0, 1, p1)
    assert state.bonds() == {}   # a product again: the bond is gone
    assert state.probabilities([2])[1] == pytest.approx(1.0)


def test_a_module_whose_qubits_are_all_measured_is_absorbed():
    """A - R - B, pairs A-R and R-B, Bell measurement at R: R's tensor is gone and A, B share
    one bond of 2 (entanglement swapping)."""
    c = Circuit(4, 0)
    for a, b in ((0, 1), (2, 3)):
        c.add("h", a)
        c.add("cx", a, b)
    c.add("cx", 1, 2)
    c.add("h", 1)
    state = ModuleNetBackend(modules=["A", "R", "R", "B"]).final_state(c, "double")
    for q in (1, 2):
        p = state.probabilities([q])[0]
        state.collapse(q, 0, p)
    assert "R" not in state.tensors
    assert set(map(frozenset, state.bonds())) == {frozenset({"A", "B"})}
    rho = state.reduced_density_matrix([0, 3])
    bell = np.array([1, 0, 0, 1]) / np.sqrt(2)
    assert np.real(bell @ rho @ bell) == pytest.approx(1.0)


def test_a_gate_between_modules_that_are_not_neighbours_never_closes_a_cycle():
    """A - B - C bonded in a line, then a CX from A to C: the index travels along A-B-C, the
    bonds stay a tree, and the state is the reference's."""
    c = Circuit(3, 0)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.add("h", 1)
    c.add("cx", 1, 2)
    c.add("ry", 0, params=(0.3,))
    c.add("cx", 0, 2)
    c.add("rz", 2, params=(0.7,))
    c.add("cx", 2, 0)
    state = ModuleNetBackend(modules=["A", "B", "C"]).final_state(c, "double")
    bonds = state.bonds()
    assert len(bonds) <= 2   # a tree over three modules
    np.testing.assert_allclose(state.statevector(), REF.statevector(c), atol=1e-12)


def test_ghz_over_many_modules_has_bonds_of_two():
    n = 40
    c = Circuit(n, 0)
    c.add("h", 0)
    for q in range(n - 1):
        c.add("cx", q, q + 1)
    state = ModuleNetBackend(modules=list(range(n))).final_state(c, "double")
    assert set(state.bonds().values()) == {2}
    assert state.nbytes() < 100 * 1024
    assert state.expectation(as_pauli_sum(" ".join(f"X{q}" for q in range(n)), n)) == \
        pytest.approx(1.0)
    assert state.expectation(as_pauli_sum(f"Z0 Z{n - 1}", n)) == pytest.approx(1.0)
    draws = np.sort(np.random.default_rng(1).random(200))
    outcomes = set(int(x) for x in state.sample(list(range(n)), draws))
    assert outcomes == {0, (1 << n) - 1}


def test_lossy_truncation_reports_the_weight_it_drops():
    c = lib.random_circuit(8, 6, seed=3)
    psi = REF.statevector(c)
    exact = ModuleNetBackend(modules=list(range(8))).final_state(c, "double")
    lossy = ModuleNetBackend(modules=list(range(8)), max_bond=2).final_state(c, "double")
    assert exact.discarded == 0 and max(exact.bonds().values()) > 2
    assert max(lossy.bonds().values()) <= 2
    assert lossy.discarded > 0
    f = abs(np.vdot(psi, lossy.statevector())) ** 2 / np.vdot(lossy.statevector(),
                                                              lossy.statevector()).real
    assert f < 1 - 1e-6
    assert 1 - f <= 2 * lossy.discarded + 1e-9   # the discarded weight bounds the loss


def test_bad_options_are_one_clear_error():
    with pytest.raises(BackendError, match="cutoff"):
        ModuleNetBackend(cutoff=2.0)
    with pytest.raises(BackendError, match="max_bond"):
        ModuleNetBackend(max_bond=0)
    with pytest.raises(BackendError, match="not expanded"):
        ModuleNetState(40, list(range(40))).statevector()


def test_overlap_on_refuses_an_unpaired_live_qubit():
    c = Circuit(2, 0)
    c.add("h", 0)
    c.add("cx", 0, 1)
    state = ModuleNetBackend(modules=[0, 1]).final_state(c, "double")
    with pytest.raises(ValueError, match="not paired"):
        overlap_on(state, [0], state, [0])


# -- the network layer on modulenet ----------------------------------------------------------
def _circuit(name):
    from qsim_dist.cli.common import load_circuit

    return load_circuit(EXAMPLES / name)


WORKLOADS = [("dqc_small.qasm", "network_pair.toml", "auto"),
             ("dqc_small.qasm", "network_chain.toml", "auto"),
             ("dqc_small.qasm", "network_ring.toml", "auto"),
             ("qft4.qasm", "network_chain.toml", "auto"),
             ("qft4.qasm", "network_pair.toml", "naive")]


@pytest.mark.parametrize("circuit,network,compiler", WORKLOADS)
@pytest.mark.parametrize("ideal", [True, False])
def test_programs_give_the_statevector_report(circuit, network, compiler, ideal):
    """The distribution compiler's programs on the example networks: the same fidelity over
    ideal links (to 1e-9) and within 3 sigma with noise; the same resources."""
    net = load_network(EXAMPLES / network)
    c = _circuit(circuit)
    program = distribute(c, net) if compiler == "auto" else naive_program(c, net)
    dense = run_program(program, net, shots=300, seed=5, backend="statevector", ideal=ideal)
    tensors = run_program(program, net, shots=300, seed=5, backend="modulenet", ideal=ideal)
    assert tensors.backend == "modulenet"
    if dense.fidelity is not None:
        if ideal:
            assert tensors.fidelity == pytest.approx(dense.fidelity, abs=1e-9)
            assert tensors.fidelity > 1 - 1e-9
        else:
            sigma = np.hypot(dense.fidelity_stderr, tensors.fidelity_stderr)
            assert abs(tensors.fidelity - dense.fidelity) <= 3 * sigma + 1e-9
    assert tensors.epr_pairs == dense.epr_pairs
    assert tensors.classical_bits == dense.classical_bits
    assert tensors.makespan_s == dense.makespan_s
    assert sum(tensors.counts.values()) == sum(dense.counts.values())
    assert tensors.state_stats["largest_bond"] >= 1


def test_purification_gives_the_statevector_fidelity():
    net = load_network(EXAMPLES / "network_pair.toml")
    program = distribute(_circuit("dqc_small.qasm"), net)
    kw = dict(shots=200, seed=2, purification=("dejmps", 1))
    dense = run_program(program, net, backend="statevector", **kw)
    tensors = run_program(program, net, backend="modulenet", **kw)
    sigma = np.hypot(dense.fidelity_stderr, tensors.fidelity_stderr)
    assert abs(tensors.fidelity - dense.fidelity) <= 3 * sigma + 1e-9
    assert tensors.epr_pairs == dense.epr_pairs


@pytest.mark.parametrize("repeaters", [2, 3])
def test_a_noisy_repeater_chain_on_both_backends(repeaters):
    net, programs = repeater_chain(repeaters, fidelity=0.9, t2=2e-4)
    dense = run_nodes(programs, net, shots=400, seed=3, backend="statevector")
    tensors = run_nodes(programs, net, shots=400, seed=3, backend="modulenet")
    sigma = np.hypot(dense.fidelity_stderr, tensors.fidelity_stderr)
    assert abs(tensors.fidelity - dense.fidelity) <= 3 * sigma + 1e-9


def test_a_long_repeater_chain_gives_the_swapped_fidelity():
    """40 repeaters (83 physical qubits: far beyond a statevector): the end-to-end teleport
    fidelity is (2F'+1)/3 of the chain's swapped Werner fidelity."""
    k, f = 40, 0.995
    net, programs = repeater_chain(k, fidelity=f)
    report = run_nodes(programs, net, shots=300, seed=4)
    assert report.backend == "modulenet" and "auto: modulenet" in report.backend_choice
    expected = physics.teleport_fidelity(physics.chain_fidelity([f] * (k + 1)))
    assert abs(report.fidelity - expected) < 4 * report.fidelity_stderr + 1e-9
    assert report.state_stats["largest_bond"] == 2
    assert report.epr_pairs == k + 1


@pytest.mark.parametrize("topology", ["line", "star"])
def test_ghz_over_many_modules_is_exact_on_the_tensors(topology):
    """GHZ over 20 modules (an output of 20 qubits: the target is the ideal run's tensors,
    never a 2^20 vector) has fidelity 1 over ideal links, and its outcomes are all-0/all-1."""
    net, programs = ghz_modules(20, topology)
    report = run_nodes(programs, net, shots=50, seed=1, backend="modulenet")
    assert report.fidelity == pytest.approx(1.0, abs=1e-9)
    net, programs = ghz_modules(20, topology, measure=True)
    report = run_nodes(programs, net, shots=200, seed=1, backend="modulenet")
    assert set(report.counts) == {"0" * 20, "1" * 20}


def test_the_statevector_reads_a_wide_output_off_its_compacted_state():
    """GHZ over 16 modules: 33 physical qubits, 17 live at once. The statevector's target and
    fidelities come from the branch states, not from the whole machine expanded (2^33)."""
    net, programs = ghz_modules(16, "line")
    report = run_nodes(programs, net, shots=40, seed=2, backend="statevector")
    assert report.fidelity == pytest.approx(1.0, abs=1e-9)


def test_ghz_with_noisy_links_matches_the_statevector():
    net, programs = ghz_modules(4, "line", fidelity=0.9)
    dense = run_nodes(programs, net, shots=400, seed=6, backend="statevector")
    tensors = run_nodes(programs, net, shots=400, seed=6, backend="modulenet")
    sigma = np.hypot(dense.fidelity_stderr, tensors.fidelity_stderr)
    assert abs(tensors.fidelity - dense.fidelity) <= 3 * sigma + 1e-9
    assert tensors.fidelity < 0.99


def test_auto_picks_the_statevector_for_a_small_machine_and_says_so():
    net, programs = repeater_chain(1, fidelity=0.95)
    report = run_nodes(programs, net, shots=50, seed=1)
    assert report.backend == "statevector"
    assert report.backend_choice.startswith("auto: statevector")
    assert str(AUTO_DENSE_QUBITS) in report.backend_choice


def test_cli_dqc_runs_on_modulenet(tmp_path):
    cmd = [sys.executable, "-m", "qsim_dist.cli", "dqc", str(EXAMPLES / "dqc_small.qasm"),
           "--network", str(EXAMPLES / "network_chain.toml"), "--shots", "200", "--seed", "3", "--json"]
    import json

    out = {}
    for backend in ("statevector", "modulenet"):
        done = subprocess.run(cmd + ["--backend", backend], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr
        out[backend] = json.loads(done.stdout)
    assert out["modulenet"]["backend"] == "modulenet"
    a, b = out["modulenet"], out["statevector"]
    sigma = np.hypot(a["fidelity_stderr"], b["fidelity_stderr"])
    assert abs(a["fidelity"] - b["fidelity"]) <= 3 * sigma + 1e-9


def test_amplitude_damping_while_waiting_matches_the_statevector():
    """T1 and T2 on the waiting qubits (general Kraus channels: branch weights from the
    reduced density matrix on the tensors)."""
    from qsim_dist.network import network_from_dict

    sys.path.insert(0, str(EXAMPLES))
    from node_programs import alice, bob

    node = {"data_qubits": 1, "t1": 3e-5, "t2": 2e-5}
    net = network_from_dict({"nodes": {"A": node, "B": node},
                             "links": [{"between": ["A", "B"], "fidelity": 0.97,
                                        "latency": 1e-5}]})
    dense = run_nodes({"A": alice, "B": bob}, net, shots=600, seed=9, backend="statevector")
    tensors = run_nodes({"A": alice, "B": bob}, net, shots=600, seed=9, backend="modulenet")
    sigma = np.hypot(dense.fidelity_stderr, tensors.fidelity_stderr)
    assert dense.fidelity < 0.95   # the waits cost fidelity
    assert abs(tensors.fidelity - dense.fidelity) <= 3 * sigma + 1e-9


@pytest.mark.parametrize("kind", ["all", "ring"])
def test_all_to_all_and_ring_networks(kind):
    from qsim_dist.network.distribute import simple_network

    net = simple_network(kind, 4, 2, fidelity=0.98, success_probability=1.0)
    program = distribute(lib.random_circuit(8, 3, seed=2), net)
    ideal = [run_program(program, net, shots=40, seed=1, backend=b, ideal=True)
             for b in ("statevector", "modulenet")]
    assert ideal[1].fidelity == pytest.approx(ideal[0].fidelity, abs=1e-9)
    noisy = [run_program(program, net, shots=150, seed=1, backend=b)
             for b in ("statevector", "modulenet")]
    sigma = np.hypot(noisy[0].fidelity_stderr, noisy[1].fidelity_stderr)
    assert abs(noisy[1].fidelity - noisy[0].fidelity) <= 3 * sigma + 1e-9


def test_modules_with_many_data_qubits_and_a_tensor_target():
    """3 modules of 5 data qubits (15 logical qubits: the modulenet target is the ideal run's
    tensors, the statevector's a dense vector): both exact over ideal links."""
    from qsim_dist.network.distribute import simple_network

    net = simple_network("line", 3, 5, success_probability=1.0)
    program = distribute(lib.random_circuit(15, 2, seed=4), net)
    for backend in ("statevector", "modulenet"):
        report = run_program(program, net, shots=10, seed=2, backend=backend, ideal=True)
        assert report.fidelity == pytest.approx(1.0, abs=1e-9), backend
