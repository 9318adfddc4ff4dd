"""Every backend against the reference, on seeded random circuits and on real circuits."""

import math

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import library as lib
from qsim_dist.backends import get_backend
from qsim_dist.gates import GATES
from qsim_dist.passes.fusion import fuse

REF = get_backend("reference")
FAST = [("cpu", "single"), ("cpu", "double"), ("jax", "single"), ("jax", "double")]
TOL = {"single": 2e-5, "double": 1e-11}


@pytest.fixture(params=FAST, ids=lambda p: f"{p[0]}-{p[1]}")
def fast(request):
    kernels, precision = request.param
    return get_backend("statevector", kernels=kernels), precision


random_gate_circuit = lib.random_gate_circuit


def assert_states_close(a, b, tol):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=tol * max(1, math.sqrt(a.size) / 64))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 3, 7, 11])
def test_random_circuits_match_reference(fast, n, seed):
    backend, precision = fast
    c = random_gate_circuit(n, 12 * n, seed)
    want = REF.statevector(c)
    got = backend.statevector(c, precision=precision)
    assert_states_close(got, want, TOL[precision])


STRUCTURED = {
    "table": lambda seed: random_gate_circuit(8, 150, seed),
    "layered": lambda seed: lib.random_circuit(8, 12, seed, entangler="mixed"),
    "qft": lambda seed: lib.qft(8),
    "qaoa": lambda seed: lib.qaoa_maxcut([(i, (i + 1 + seed % 7) % 8) for i in range(8)], 8,
                                         [0.3, 0.9], [0.4, 0.1]),
    "adder": lambda seed: lib.cuccaro_adder(3, 5, 3 + seed),
}


@pytest.mark.parametrize("kind", STRUCTURED)
@pytest.mark.parametrize("max_dense", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("max_diagonal", [1, 4, 12])
def test_fusion_preserves_the_circuit(kind, max_dense, max_diagonal):
    c = STRUCTURED[kind](max_dense * 7 + max_diagonal)
    backend = get_backend("statevector", kernels="cpu", max_dense=max_dense,
                          max_diagonal=max_diagonal)
    blocks = fuse(list(c), max_dense, max_diagonal)
    assert all(len(b.qubits) <= (max_diagonal if b.diagonal else max_dense)
               or b.num_gates == 1 for b in blocks)  # a lone gate may be wider
    assert sum(b.num_gates for b in blocks) == sum(1 for i in c if i.name != "id")
    assert_states_close(backend.statevector(c, precision="double"), REF.statevector(c), 1e-11)


def test_fusion_merges_qft_phases_into_few_passes():
    c = lib.qft(16)
    blocks = fuse(list(c), 3, 12)
    assert len(blocks) < len(c) / 4  # 136 gates; each pass must carry several


def test_qft_of_basis_state_is_the_dft(fast):
    backend, precision = fast
    n, x = 9, 0b101100111
    c = Circuit(n)
    for q in range(n):
        if (x >> q) & 1:
            c.add("x", q)
    for inst in lib.qft(n):
        c.append(inst)
    got = backend.statevector(c, precision=precision)
    k = np.arange(1 << n)
    want = np.exp(2j * np.pi * x * k / (1 << n)) / math.sqrt(1 << n)
    assert_states_close(got, want, TOL[precision])


def test_ghz_and_expectations(fast):
    backend, precision = fast
    c = lib.ghz(6)
    sv = backend.statevector(c, precision=precision)
    assert abs(sv[0] - 1 / math.sqrt(2)) < 1e-5 and abs(sv[-1] - 1 / math.sqrt(2)) < 1e-5
    assert backend.expectation(c, "XXXXXX", precision) == pytest.approx(1, abs=1e-5)
    assert backend.expectation(c, "Z0 Z5", precision) == pytest.approx(1, abs=1e-5)
    assert backend.expectation(c, "Z0", precision) == pytest.approx(0, abs=1e-5)
    assert backend.expectation(c, "YYXXXX", precision) == pytest.approx(-1, abs=1e-5)
    h = [(0.5, "X0 Z1 Y2"), (-1.25, "Z3 Z4"), (2.0, "YXZIXY")]
    r = random_gate_circuit(6, 40, seed=3)
    assert backend.expectation(r, h, precision) == pytest.approx(REF.expectation(r, h),
                                                                 abs=1e-4)


def test_qpe_finds_the_phase(fast):
    backend, precision = fast
    m, j = 6, 37
    probs = backend.probabilities(lib.qpe(m, j / 2 ** m), qubits=list(range(m)),
                                  precision=precision)
    assert np.argmax(probs) == j and probs[j] == pytest.approx(1, abs=1e-4)


def test_qaoa_matches_reference(fast):
    backend, precision = fast
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2), (5, 6), (6, 7), (7, 5), (1, 6)]
    c = lib.qaoa_maxcut(edges, 8, [0.3, 0.7], [0.5, 0.2])
    assert_states_close(backend.statevector(c, precision=precision), REF.statevector(c),
                        TOL[precision])
    cost = [(-0.5, f"Z{a} Z{b}") for a, b in edges]
    assert backend.expectation(c, cost, precision) == pytest.approx(REF.expectation(c, cost),
                                                                    abs=1e-4)


@pytest.mark.parametrize("a,b", [(0, 0), (5, 9), (15, 15), (11, 6)])
def test_adder_adds(fast, a, b):
    backend, precision = fast
    c = lib.cuccaro_adder(4, a, b)
    probs = backend.probabilities(c, precision=precision)
    assert probs[lib.adder_output(4, a, b)] == pytest.approx(1, abs=1e-5)


def test_grover_finds_the_marked_state(fast):
    backend, precision = fast
    n, marked = 5, 0b10110
    c = lib.grover(n, marked)
    probs = backend.probabilities(c, qubits=list(range(n)), precision=precision)
    theta = math.asin(1 / math.sqrt(2 ** n))
    want = math.sin((2 * lib.math.floor(math.pi / 4 * math.sqrt(2 ** n)) + 1) * theta) ** 2
    assert probs[marked] == pytest.approx(want, abs=1e-4)
    np.testing.assert_allclose(probs, REF.probabilities(c, qubits=list(range(n))), atol=1e-5)


def test_amplitudes_and_marginals(fast):
    backend, precision = fast
    c = random_gate_circuit(7, 60, seed=11)
    sv = REF.statevector(c)
    idx = [0, 5, 77, 127]
    np.testing.assert_allclose(backend.amplitudes(c, idx, precision), sv[idx], atol=1e-5)
    for qubits in ([3], [0, 6], [5, 1, 2]):
        np.testing.assert_allclose(backend.probabilities(c, qubits, precision),
                                   REF.probabilities(c, qubits), atol=1e-5)


def test_bit_order_little_endian(fast):
    backend, precision = fast
    c = Circuit(3)
    c.add("x", 0)
    sv = backend.statevector(c, precision=precision)
    assert abs(sv[1]) == pytest.approx(1)  # qubit 0 is the least significant bit
    c = Circuit(3)
    c.add("x", 2)
    assert abs(backend.statevector(c, precision=precision)[4]) == pytest.approx(1)


# ---- shots, measurement, reset and feed-forward ----------------------------------------------

def random_dynamic_circuit(n, steps, seed):
    rng = np.random.default_rng(seed)
    c = Circuit(n, n)
    names = ["h", "rx", "ry", "u3", "cx", "cz", "cp", "ccx", "swap", "t"]
    for _ in range(steps):
        r = rng.random()
        q = int(rng.integers(n))
        if r < 0.15:
            c.measure(q, int(rng.integers(n)))
        elif r < 0.2:
            c.add("reset", q)
        else:
            spec = GATES[names[rng.integers(len(names))]]
            qs = rng.choice(n, spec.num_qubits, replace=False)
            cond = None
            if rng.random() < 0.3:
                bits = tuple(int(b) for b in rng.choice(n, int(rng.integers(1, 3)), replace=False))
                cond = Condition(bits, int(rng.integers(1 << len(bits))))
            c.add(spec.name, *qs, params=rng.uniform(-3, 3, spec.num_params), condition=cond)
    for q in range(n):
        c.measure(q, q)
    return c


@pytest.mark.parametrize("seed", range(5))
def test_dynamic_circuits_same_counts_as_reference(seed):
    # Same seed, same draws, same probabilities to rounding: the counts must be identical.
    c = random_dynamic_circuit(5, 40, seed)
    assert c.is_dynamic()
    want = REF.run(c, shots=300, seed=seed)
    for kernels in ("cpu", "jax"):
        got = get_backend("statevector", kernels=kernels).run(c, shots=300, seed=seed,
                                                               precision="double")
        assert got.counts == want.counts
        assert sum(got.counts.values()) == 300


def test_teleportation_with_feed_forward(fast):
    backend, precision = fast
    c = lib.teleport_dynamic()
    shots = 4000
    r = backend.run(c, shots=shots, seed=7, precision=precision)
    p1 = sum(v for k, v in r.counts.items() if k[0] == "1") / shots
    want = math.sin(1.1 / 2) ** 2
    assert abs(p1 - want) < 4 * math.sqrt(want * (1 - want) / shots)
    # all four outcome pairs of the Bell measurement occur
    assert len({k[1:] for k in r.counts}) == 4


def test_reset_returns_to_zero(fast):
    backend, precision = fast
    c = Circuit(2, 2)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.add("reset", 0)
    c.measure(0, 0)
    c.measure(1, 1)
    r = backend.run(c, shots=500, seed=3, precision=precision)
    assert set(r.counts) <= {"00", "10"} and len(r.counts) == 2


def test_static_circuit_samples_from_final_state(fast):
    backend, precision = fast
    c = lib.ghz(4, measure=True)
    r = backend.run(c, shots=2000, seed=5, precision=precision, save_state=True)
    assert set(r.counts) == {"0000", "1111"}
    assert abs(r.counts["0000"] - 1000) < 4 * math.sqrt(500)
    assert abs(r.statevector[0]) == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    again = backend.run(c, shots=2000, seed=5, precision=precision)
    assert again.counts == r.counts  # seeded
    assert r.counts == REF.run(c, shots=2000, seed=5).counts


def test_measure_order_into_clbits(fast):
    backend, precision = fast
    c = Circuit(3, 2)
    c.add("x", 2)
    c.measure(2, 0)
    c.measure(0, 1)
    r = backend.run(c, shots=10, seed=0, precision=precision)
    assert r.counts == {"01": 10}  # clbit 0 (rightmost) holds qubit 2


# -- run options, a ready noisy circuit, the branch observer ------------------------------------
def test_run_options_are_resolved_once_with_todays_messages():
    from qsim_dist.errors import OptionError
    from qsim_dist.options import RunOptions

    opts = RunOptions.resolve(10, None, None, default_precision="double")
    assert (opts.shots, opts.precision) == (10, "double") and 0 <= opts.seed < 1 << 63
    assert RunOptions.resolve(0, None, "single", resume=True).seed is None  # the checkpoint's
    for kwargs, message in [({"precision": "half"}, "unknown precision 'half'"),
                            ({"shots": -1}, "shots must be an integer in"),
                            ({"seed": -2}, "seed must be a non-negative integer, got -2"),
                            ({"seed": 1.5}, "seed must be a non-negative integer")]:
        with pytest.raises(OptionError, match=message):
            RunOptions.resolve(**{"shots": 1, **kwargs})
        with pytest.raises(OptionError, match=message):
            REF.run(lib.ghz(2, measure=True), **{"shots": 1, **kwargs})

    class Rank0:  # a communicator: every rank takes rank 0's seed
        def bcast(self, value):
            return 1234

    assert RunOptions.resolve(1, None, comm=Rank0()).seed == 1234
    assert RunOptions.resolve(1, 7, comm=Rank0()).seed == 7


def noisy_dynamic():
    from qsim_dist import noise as N

    c = Circuit(3, 3)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.measure(0, 0)
    c.add("x", 2, condition=Condition((0,), 1))
    c.add("h", 1)
    c.measure(1, 1)
    c.measure(2, 2)
    model = (N.NoiseModel().add_gate_error(N.amplitude_damping(0.2), "h")
             .add_readout_error(N.ReadoutError.from_flips(0.05, 0.05)))
    return c, model


@pytest.mark.parametrize("kernels", [None, "cpu"])
def test_run_takes_a_noisy_circuit(kernels):
    from qsim_dist.errors import OptionError

    sim = REF if kernels is None else get_backend("statevector", kernels=kernels)
    c, model = noisy_dynamic()
    want = sim.run(c, shots=500, seed=3, noise=model).counts
    assert sim.run(model.lower(c), shots=500, seed=3).counts == want
    with pytest.raises(OptionError, match="already holds its noise"):
        sim.run(model.lower(c), shots=1, noise=model)


@pytest.mark.parametrize("kernels", [None, "cpu"])
def test_observer_sees_every_branch_end(kernels):
    sim = REF if kernels is None else get_backend("statevector", kernels=kernels)
    c, model = noisy_dynamic()
    seen = []

    class Observer:
        def on_branch_end(self, state, shots, qubits, known):
            probs = state.probabilities([list(qubits).index(0)]) if 0 in qubits else None
            seen.append((shots, tuple(qubits), dict(known), probs))

    counts = sim.run(c, shots=800, seed=5, noise=model, observer=Observer()).counts
    assert counts == sim.run(c, shots=800, seed=5, noise=model).counts  # it changes nothing
    assert sum(s for s, *_ in seen) == 800 and len(seen) > 1
    for _, qubits, known, probs in seen:
        assert sorted(set(qubits) | set(known)) == [0, 1, 2]
        if probs is not None:  # qubit 0 was measured in every branch: a basis state
            assert max(probs) == pytest.approx(1.0)
    seen.clear()
    sim.run(lib.ghz(3, measure=True), shots=100, seed=1, observer=Observer())
    assert [(s, q) for s, q, *_ in seen] == [(100, (0, 1, 2))]  # a static run: one branch
