"""The tensor backend against the dense reference on the shared test circuits, and on circuits
too wide for any statevector against closed forms (GHZ-200, QAOA p=1 on 100 qubits)."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsim_dist import Circuit
from qsim_dist import library as lib
from qsim_dist import noise as Nz
from qsim_dist.backends import get_backend
from qsim_dist.backends.tensor import light_cone
from qsim_dist.errors import BackendError, QsimDistError
from qsim_dist.observables import as_pauli_sum
from test_state_contract import dynamic_noisy   # the shared dynamic circuit

REF = get_backend("reference")
TOL = 1e-10


def shared_circuits():
    """The circuits every backend is checked on (tests/test_backends.py's kinds)."""
    yield "random5", lib.random_circuit(5, 6, seed=3)
    yield "random7-cz", lib.random_circuit(7, 4, seed=1, entangler="cz")
    yield "gates6", lib.random_gate_circuit(6, 40, seed=2)
    yield "qft5", lib.qft(5)
    yield "ghz6", lib.ghz(6)
    yield "qpe", lib.qpe(4, 0.3125)
    yield "qaoa", lib.qaoa_maxcut([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)], 4, [0.4, 0.7],
                                  [0.3, 0.2])
    yield "adder", lib.cuccaro_adder(2, 3, 1)
    yield "grover", lib.grover(4, 11)


CIRCUITS = dict(shared_circuits())


@pytest.fixture(scope="module")
def tensor():
    return get_backend("tensor")


@pytest.mark.parametrize("name", CIRCUITS)
def test_every_readout_matches_the_reference(tensor, name):
    c = CIRCUITS[name]
    n = c.num_qubits
    want = REF.statevector(c)
    np.testing.assert_allclose(tensor.statevector(c), want, atol=TOL)
    idx = [0, 1, (1 << n) - 1, 5 % (1 << n)]
    np.testing.assert_allclose(tensor.amplitudes(c, idx), want[idx], atol=TOL)
    for qubits in ([0], [n - 1, 0], [1, n - 1, 0]):
        np.testing.assert_allclose(tensor.probabilities(c, qubits),
                                   REF.probabilities(c, qubits), atol=TOL)
    h = as_pauli_sum([(0.5, "Z0 Z1"), (-1.25, f"X{n - 1}"), (0.75, "Y0 X1"), (0.3, "Y1")], n)
    assert tensor.expectation(c, h) == pytest.approx(REF.expectation(c, h), abs=TOL)


@pytest.mark.parametrize("name", ["random5", "qft5", "ghz6", "grover"])
def test_samples_are_the_dense_inverse_transform(name):
    """Every qubit measured: the chain rule from the top qubit down maps each uniform to the
    outcome the dense cumulative sum maps it to, so one seed gives the reference's counts."""
    c = CIRCUITS[name]
    m = Circuit(c.num_qubits, c.num_qubits, list(c.instructions))
    for q in range(c.num_qubits):
        m.measure(q, q)
    for joint in (True, False):
        got = get_backend("tensor", joint_sample_qubits=None if joint else 0).run(
            m, shots=3000, seed=11).counts
        assert got == REF.run(m, shots=3000, seed=11).counts


@pytest.mark.parametrize("noisy", [False, True])
def test_dynamic_and_noisy_runs_follow_the_reference(noisy):
    model = (Nz.NoiseModel().add_gate_error(Nz.amplitude_damping(0.3), ["h", "x"])
             .add_gate_error(Nz.depolarizing(0.1), "ry")) if noisy else None
    shots = 4000
    got = get_backend("tensor").run(dynamic_noisy(), shots=shots, seed=5, noise=model).counts
    want = REF.run(dynamic_noisy(), shots=shots, seed=5, noise=model).counts
    tvd = 0.5 * sum(abs(got.get(k, 0) - want.get(k, 0)) for k in set(got) | set(want)) / shots
    assert tvd < 0.05


def test_ghz_200_amplitudes_expectations_and_samples(tensor):
    n = 200
    c = lib.ghz(n)
    ones = (1 << n) - 1
    np.testing.assert_allclose(tensor.amplitudes(c, [0, ones, 1, 1 << 199, ones ^ 4]),
                               [1 / math.sqrt(2), 1 / math.sqrt(2), 0, 0, 0], atol=TOL)
    h = as_pauli_sum([(1.0, "Z0 Z199"), (1.0, " ".join(f"X{q}" for q in range(n))),
                      (1.0, "Z100")], n)
    assert tensor.expectation(c, h) == pytest.approx(2.0, abs=TOL)
    m = Circuit(n, n, list(c.instructions))
    for q in range(n):
        m.measure(q, q)
    counts = tensor.run(m, shots=400, seed=3).counts
    assert set(counts) == {"0" * n, "1" * n}
    assert abs(counts["0" * n] - 200) < 3 * 10   # binomial(400, 1/2): sigma = 10


def qaoa_zz(graph: nx.Graph, u: int, v: int, gamma: float, beta: float) -> float:
    """<Z_u Z_v> after p=1 QAOA (library.qaoa_maxcut: rzz(2 gamma), rx(2 beta)), the closed form
    of Wang, Hadfield, Jiang and Rieffel (PRA 97, 022304, 2018) in its cost-angle convention
    (their gamma is -2 gamma here)."""
    g = -2 * gamma
    d, e = graph.degree(u) - 1, graph.degree(v) - 1
    lam = len(set(graph[u]) & set(graph[v]))
    cut = 0.5 + 0.25 * math.sin(4 * beta) * math.sin(g) * (math.cos(g) ** d + math.cos(g) ** e) \
        - 0.25 * math.sin(2 * beta) ** 2 * math.cos(g) ** (d + e - 2 * lam) * \
        (1 - math.cos(2 * g) ** lam)
    return 1 - 2 * cut


def test_the_qaoa_closed_form_is_read_in_this_convention():
    graph = nx.random_regular_graph(3, 8, seed=4)
    graph.add_edge(0, 1 if not graph.has_edge(0, 1) else 2)   # degrees differ, triangles
    gamma, beta = 0.37, 0.61
    c = lib.qaoa_maxcut(list(graph.edges), 8, [gamma], [beta])
    for u, v in graph.edges:
        want = qaoa_zz(graph, u, v, gamma, beta)
        assert REF.expectation(c, f"Z{u} Z{v}") == pytest.approx(want, abs=1e-12)


def test_qaoa_100_qubits_zz_matches_the_closed_form(tensor):
    graph = nx.random_regular_graph(3, 100, seed=7)
    gamma, beta = 0.41, 0.23
    c = lib.qaoa_maxcut(list(graph.edges), 100, [gamma], [beta])
    edges = list(graph.edges)[:40]
    for u, v in edges:
        got = tensor.expectation(c, f"Z{u} Z{v}")
        assert got == pytest.approx(qaoa_zz(graph, u, v, gamma, beta), abs=TOL)


def test_light_cone_keeps_only_the_past_of_the_qubits():
    t = get_backend("tensor").final_state(lib.ghz(6))
    # ghz: h 0, cx 0 1, cx 1 2, cx 2 3, ...: qubit 2 reads what reached it and what it touched
    assert [op.qubits for op in light_cone(t.ops, [2])] == [(0,), (0, 1), (1, 2), (2, 3)]
    t.collapse(5, 0, 0.5)   # a projector never cancels against its conjugate
    assert (5,) in [op.qubits for op in light_cone(t.ops, [0])]


def test_a_batch_varying_in_few_qubits_is_one_contraction():
    backend = get_backend("tensor")
    c = CIRCUITS["gates6"]
    idx = list(range(0, 64, 3))   # varies in every qubit: 2^6 outputs for 22 amplitudes
    np.testing.assert_allclose(backend.amplitudes(c, idx), REF.amplitudes(c, idx), atol=TOL)
    assert backend.stats.contractions == 1
    wide = lib.random_circuit(30, 3, seed=2)   # 40 amplitudes varying in qubits 3..7 only
    idx = [(1 << 29) | (k << 3) | 5 for k in range(32)] + [1 << 29] * 8
    one = get_backend("tensor")
    np.testing.assert_allclose(one.amplitudes(wide, idx),
                               [get_backend("tensor").amplitudes(wide, [i])[0] for i in idx],
                               atol=TOL)
    assert one.stats.contractions == 1


@pytest.mark.parametrize("options", [{"optimize": "cotengra", "path_time": 0.2},
                                     {"optimize": "random-greedy", "path_time": 0.2},
                                     {"optimize": "optimal"}, {"array": "jax"},
                                     {"precision": "single"}])
def test_every_path_finder_and_array_backend_gives_the_reference(options):
    options = dict(options)
    precision = options.pop("precision", "double")
    backend = get_backend("tensor", **options)
    c = CIRCUITS["qft5"] if options.get("optimize") == "optimal" else CIRCUITS["random7-cz"]
    n = c.num_qubits
    tol = 2e-6 if precision == "single" else TOL
    np.testing.assert_allclose(backend.amplitudes(c, [0, 3, (1 << n) - 1], precision=precision),
                               REF.amplitudes(c, [0, 3, (1 << n) - 1]), atol=tol)
    assert backend.expectation(c, "Z0 X1 + 0.5 Y2", precision=precision) == pytest.approx(
        REF.expectation(c, "Z0 X1 + 0.5 Y2"), abs=tol)


def test_auto_searches_longer_only_for_a_costly_contraction(monkeypatch):
    import qsim_dist.backends.tensor as T

    c = lib.random_circuit(14, 8, seed=4)
    quick = get_backend("tensor")
    want = quick.amplitudes(c, [0])
    monkeypatch.setattr(T, "SEARCH_FLOPS", 0.0)   # every contraction counts as costly
    searched = get_backend("tensor", path_time=0.3)
    np.testing.assert_allclose(searched.amplitudes(c, [0]), want, atol=TOL)
    assert searched.stats.path_seconds >= 0.25 > quick.stats.path_seconds
    assert searched.stats.flops <= quick.stats.flops


def _grid_circuit(r: int, cycles: int, seed: int = 1) -> Circuit:
    """A random circuit on an r x r grid (benchmarks/tensor_peers.py's ``grid`` row): each
    cycle sx / ry(pi/2) / t at random on every qubit, then cz on one of four grid patterns."""
    rng = np.random.default_rng(seed)
    c = Circuit(r * r)
    patterns = [[(i * r + j, i * r + j + 1) for i in range(r) for j in range(s, r - 1, 2)]
                for s in (0, 1)] + \
        [[(i * r + j, (i + 1) * r + j) for i in range(s, r - 1, 2) for j in range(r)]
         for s in (0, 1)]
    for q in range(r * r):
        c.add("h", q)
    for cycle in range(cycles):
        for q in range(r * r):
            kind = int(rng.integers(0, 3))
            c.add(*(("sx", q), ("ry", q), ("t", q))[kind],
                  **({"params": [math.pi / 2]} if kind == 1 else {}))
        for a, b in patterns[cycle % 4]:
            c.add("cz", a, b)
    return c


def test_a_cotengra_path_is_never_costlier_than_the_greedy_one():
    """The hyper-optimised path of a grid circuit's amplitude (hyperedges from every cz and t)
    is at most the greedy path's flops, found within its budget (plus one trial's overrun)."""
    pytest.importorskip("cotengra")
    c = _grid_circuit(5, 10)
    greedy = get_backend("tensor", optimize="greedy")
    searched = get_backend("tensor", optimize="cotengra", path_time=0.5)
    want = greedy.amplitudes(c, [0])
    np.testing.assert_allclose(searched.amplitudes(c, [0]), want, atol=TOL)
    assert searched.stats.flops <= greedy.stats.flops
    assert searched.stats.path_seconds < 3.0   # loose: a loaded CI machine runs trials slower


def test_overlap_of_two_tensor_states(tensor):
    a, b = tensor.final_state(CIRCUITS["random5"]), tensor.final_state(lib.random_circuit(5, 6, 4))
    want = np.vdot(REF.statevector(CIRCUITS["random5"]), REF.statevector(lib.random_circuit(5, 6, 4)))
    assert a.overlap(b) == pytest.approx(want, abs=TOL)


def test_a_contraction_over_max_memory_is_refused_with_its_cost():
    backend = get_backend("tensor", max_memory=1 << 16)
    c = lib.random_circuit(24, 8, seed=1)
    with pytest.raises(BackendError, match=r"largest intermediate needs .*flops.*max_memory"):
        backend.statevector(c)
    assert backend.stats.contractions == 0


def test_single_precision_and_stats():
    backend = get_backend("tensor")
    c = CIRCUITS["qft5"]
    psi = backend.statevector(c, precision="single")
    assert psi.dtype == np.complex64
    np.testing.assert_allclose(psi, REF.statevector(c), atol=2e-6)
    s = backend.stats
    assert s.contractions == 1 and s.paths_found == 1 and s.flops > 0


@settings(max_examples=40, deadline=None)
@given(st.one_of(
    st.fixed_dictionaries({"optimize": st.text(max_size=8).filter(
        lambda s: s not in ("auto", "greedy", "optimal", "auto-hq", "random-greedy",
                            "cotengra"))}),
    st.fixed_dictionaries({"path_time": st.one_of(st.floats(max_value=0.0), st.just(math.nan),
                                                  st.just(math.inf), st.booleans(),
                                                  st.text(max_size=3))}),
    st.fixed_dictionaries({"max_memory": st.one_of(st.integers(max_value=0), st.floats(),
                                                   st.booleans(), st.text(max_size=3))}),
    st.fixed_dictionaries({"array": st.text(max_size=6).filter(
        lambda s: s not in ("numpy", "jax"))}),
    st.fixed_dictionaries({"spread_flops": st.one_of(st.floats(max_value=-1e-9),
                                                     st.just(math.nan), st.just(math.inf),
                                                     st.booleans(), st.text(max_size=3))}),
    st.fixed_dictionaries({"joint_sample_qubits": st.one_of(
        st.integers(max_value=-1), st.integers(min_value=31), st.floats(), st.text(max_size=3))})))
def test_bad_options_are_one_clear_error(options):
    with pytest.raises(QsimDistError) as info:
        get_backend("tensor", **options)
    assert "\n" not in str(info.value) and list(options)[0] in str(info.value)


# -- the command line ---------------------------------------------------------------------------
def _ghz_file(tmp_path, n):
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n}];", "h q[0];"] + \
        [f"cx q[{i}],q[{i + 1}];" for i in range(n - 1)]
    path = tmp_path / f"ghz{n}.qasm"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_amplitudes_and_observable_of_a_wide_circuit(tmp_path, capsys):
    import json

    from qsim_dist.cli import main

    n = 120
    rc = main(["run", str(_ghz_file(tmp_path, n)), "--backend", "tensor", "--json", "--stats",
               "--shots", "0", "--amplitude", "1" * n, "0" * (n - 1) + "1",
               "--observable", "Z0 Z119 - 0.5 X3 + 2e-1 " + "X" * n])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(summary["amplitudes"]["1" * n], [1 / math.sqrt(2), 0], atol=TOL)
    np.testing.assert_allclose(summary["amplitudes"]["0" * (n - 1) + "1"], [0, 0], atol=TOL)
    assert summary["expectation"] == pytest.approx(1.2, abs=TOL)
    assert {"contractions", "flops", "largest_intermediate", "slices"} <= set(summary["contraction"])


def test_cli_writes_amplitudes_and_expectation_to_the_results_file(tmp_path):
    import h5py

    from qsim_dist.cli import main
    from qsim_dist.io.hdf5 import load_result

    out = tmp_path / "r.h5"
    assert main(["run", str(_ghz_file(tmp_path, 70)), "--backend", "tensor", "--shots", "10",
                 "--seed", "1", "--amplitude", "1" * 70, "--observable", "Z0 Z69",
                 "--out", str(out)]) == 0
    meta = load_result(out).metadata
    assert meta["amplitudes"]["1" * 70] == pytest.approx([1 / math.sqrt(2), 0.0], abs=TOL)
    assert meta["expectation"] == pytest.approx(1.0, abs=TOL)
    with h5py.File(out) as f:
        assert "meta_json.amplitudes" in f.attrs or "meta_json.amplitudes" in f


@pytest.mark.parametrize("argv, message", [
    (["--amplitude", "012"], "--amplitude '012': a bitstring of 3"),
    (["--amplitude", "01"], "a bitstring of 3 characters"),
    (["--observable", "Z0 +"], "a sign with no term"),
    (["--observable", "Z7"], "qubit 7 out of range (0..2)"),
    (["--backend", "statevector", "--optimize", "greedy"], "options of the tensor backend"),
    (["--backend", "tensor", "--max-memory", "16", "--observable", "X0 X9", "--shots", "0"],
     "even cut in 65536 slices, over max_memory 16 B"),
])
def test_cli_refusals_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    from qsim_dist.cli import main

    path = _ghz_file(tmp_path, 3)
    if "--max-memory" in argv:   # a GHZ network slices down to scalars: a random circuit does not
        from qsim_dist.io.qasm import dump

        path = tmp_path / "random.qasm"
        dump(lib.random_circuit(10, 8, seed=1), path)
    rc = main(["run", str(path), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and message in err


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="XYZI0123+-*. e", max_size=14))
def test_a_written_pauli_sum_is_read_or_refused_in_one_line(text):
    from qsim_dist.observables import ObservableError, as_pauli_sum

    try:
        h = as_pauli_sum(text, 4)
    except ObservableError as exc:
        assert "\n" not in str(exc)
        return
    assert h.terms and all(math.isfinite(abs(c)) for c, _, _ in h.terms)
