"""Noise: channels, noise models (Python, TOML, Qiskit Aer), trajectories against the exact
density matrix, readout errors, and counts against qiskit-aer. Statistical checks are seeded and
use 3-sigma (or a computed total-variation) bounds."""

import math

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import library as lib
from qsim_dist import noise as N
from qsim_dist.backends import get_backend
from qsim_dist.backends.reference import density_matrix
from qsim_dist.noise import NoiseModel, NoiseModelError

BACKENDS = [("reference", {}, "double"), ("cpu", {"kernels": "cpu"}, "single")]


@pytest.fixture(params=BACKENDS, ids=lambda b: b[0])
def backend(request):
    _, options, precision = request.param
    return get_backend("statevector" if options else "reference", **options), precision


def random_kraus(rng, num_qubits, count):
    dim = 1 << num_qubits
    ops = rng.normal(size=(count, dim, dim)) + 1j * rng.normal(size=(count, dim, dim))
    s = sum(k.conj().T @ k for k in ops)
    w, v = np.linalg.eigh(s)
    inv_sqrt = v @ np.diag(w ** -0.5) @ v.conj().T
    return [k @ inv_sqrt for k in ops]


CHANNELS = {
    "depolarizing1": (lambda: N.depolarizing(0.1), True),
    "depolarizing2": (lambda: N.depolarizing(0.05, 2), True),
    "bit_flip": (lambda: N.bit_flip(0.2), True),
    "phase_flip": (lambda: N.phase_flip(0.3), True),
    "pauli": (lambda: N.pauli_channel({"XZ": 0.1, "YY": 0.05, "IX": 0.2}), True),
    "phase_damping": (lambda: N.phase_damping(0.4), True),
    "dephasing_only": (lambda: N.thermal_relaxation(math.inf, 50.0, 10.0), True),
    "amplitude_damping": (lambda: N.amplitude_damping(0.3), False),
    "thermal": (lambda: N.thermal_relaxation(50.0, 70.0, 10.0), False),
    "thermal_t2_small": (lambda: N.thermal_relaxation(50.0, 20.0, 10.0), False),
    "kraus": (lambda: N.kraus(random_kraus(np.random.default_rng(3), 2, 3)), False),
}


# ---- channels ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CHANNELS)
def test_channel_is_cptp_and_classified(name):
    make, pauli = CHANNELS[name]
    ch = make()
    dim = 1 << ch.num_qubits
    total = sum(k.conj().T @ k for k in ch.kraus)
    np.testing.assert_allclose(total, np.eye(dim), atol=1e-12)
    assert ch.is_pauli is pauli
    if pauli:
        assert ch.pauli_probabilities.min() >= 0
        assert ch.pauli_probabilities.sum() == pytest.approx(1.0)


def test_pauli_probabilities_follow_the_conventions():
    p = 0.12
    dep = N.depolarizing(p).pauli_probabilities  # Qiskit: (1-p) rho + p I/2
    np.testing.assert_allclose(dep, [1 - 3 * p / 4, p / 4, p / 4, p / 4])
    probs = N.pauli_channel({"XZ": 0.1}).pauli_probabilities  # Z on qubit 0, X on qubit 1
    assert probs[3 + 4 * 1] == pytest.approx(0.1) and probs[0] == pytest.approx(0.9)
    assert N.pauli_label(3 + 4 * 1, 2) == "XZ"
    np.testing.assert_allclose(N.pauli_matrix(3 + 4 * 1, 2),
                               np.kron([[0, 1], [1, 0]], np.diag([1, -1])))


def test_pauli_channel_in_any_kraus_basis_is_recognised():
    # a unitary mixing of Kraus operators is the same channel: still Pauli, same probabilities
    ch = N.depolarizing(0.3)
    u = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)) + 0j)[0]
    mixed = np.einsum("ij,jab->iab", u, np.array(ch.kraus))
    again = N.kraus(mixed)
    assert again.is_pauli
    np.testing.assert_allclose(again.pauli_probabilities, ch.pauli_probabilities, atol=1e-12)


def test_thermal_relaxation_populations_and_coherences():
    t1, t2, t = 40.0, 30.0, 7.0
    ch = N.thermal_relaxation(t1, t2, t)
    plus = np.full((2, 2), 0.5, dtype=complex)
    one = np.diag([0, 1]).astype(complex)
    out_plus = sum(k @ plus @ k.conj().T for k in ch.kraus)
    out_one = sum(k @ one @ k.conj().T for k in ch.kraus)
    assert out_one[1, 1].real == pytest.approx(math.exp(-t / t1))
    assert abs(out_plus[0, 1]) == pytest.approx(0.5 * math.exp(-t / t2))


@pytest.mark.parametrize("make, message", [
    (lambda: N.kraus([[[1, 0], [0, 0.5]]]), "not trace preserving"),
    (lambda: N.kraus([np.eye(3)]), "2^k x 2^k"),
    (lambda: N.depolarizing(1.5), "depolarizing: p must be in [0, 1.33333]"),
    (lambda: N.bit_flip(-0.1), "bit_flip: p must be in [0, 1]"),
    (lambda: N.pauli_channel({"X": 0.7, "Z": 0.6}), "sum to 1.3"),
    (lambda: N.pauli_channel({"X": 0.1, "XZ": 0.1}), "labels"),
    (lambda: N.thermal_relaxation(10.0, 25.0, 1.0), "t2 = 25 must be at most 2*t1 = 20"),
    (lambda: N.ReadoutError([[0.9, 0.2], [0.1, 0.9]]), "rows summing to 1"),
    (lambda: NoiseModel().add_gate_error(N.depolarizing(0.1), "cx"), "acts on 1 qubit"),
    (lambda: NoiseModel().add_gate_error(N.depolarizing(0.1), "nope"), "unknown gate 'nope'"),
])
def test_bad_channels_raise_one_line(make, message):
    with pytest.raises(NoiseModelError) as err:
        make()
    assert message in str(err.value) and "\n" not in str(err.value)


# ---- noise models and TOML -----------------------------------------------------------------

GOOD_TOML = """
[[gate]]
gates = ["h", "x"]
channel = "depolarizing"
p = 0.01

[[gate]]
gates = "cx"
channel = "pauli"
probabilities = { XX = 0.01, ZI = 0.02 }

[[gate]]
gates = "cx"
qubits = [[1, 2], [2, 1]]
channel = "depolarizing"
p = 0.2

[[gate]]
gates = "id"
channel = "thermal_relaxation"
t1 = 50e-6
t2 = 70e-6
time = 100e-9

[[gate]]
gates = "ry"
channel = "kraus"
kraus = [ { real = [[1, 0], [0, 0.8]] }, { real = [[0, 0], [0, 0]], imag = [[0, 0.6], [0, 0]] } ]

[[gate]]
gates = ["rx"]
qubits = [0]
channel = "amplitude_damping"
gamma = 0.1

[[gate]]
gates = "sx"
channel = "phase_damping"
lambda = 0.1

[[gate]]
gates = "y"
channel = "bit_flip"
p = 0.1

[[gate]]
gates = "z"
channel = "phase_flip"
p = 0.1

[[readout]]
p01 = 0.02
p10 = 0.05

[[readout]]
qubits = [2]
matrix = [[0.9, 0.1], [0.3, 0.7]]
"""


def test_toml_model_lowers_onto_a_circuit(tmp_path):
    path = tmp_path / "noise.toml"
    path.write_text(GOOD_TOML)
    model = N.load_noise_model(path)
    c = Circuit(3, 3)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.add("cx", 1, 2)  # local rule replaces the all-qubit pauli rule
    c.add("rx", 0, params=[0.1])
    c.add("rx", 1, params=[0.1])  # no rule on qubit 1
    c.add("ry", 2, params=[0.2])
    c.add("id", 2)
    c.add("barrier", 0, 1)
    for q in range(3):
        c.measure(q, q)
    noisy = model.lower(c)
    summary = [(op.channel.name, op.qubits) if isinstance(op, N.NoiseOp) else op.name
               for op in noisy.ops]
    assert summary == ["h", ("depolarizing", (0,)), "cx", ("pauli", (0, 1)), "cx",
                       ("depolarizing", (1, 2)), "rx", ("amplitude_damping", (0,)), "rx", "ry",
                       ("kraus", (2,)), "id", ("thermal_relaxation", (2,)),
                       "measure", "measure", "measure"]
    np.testing.assert_allclose(noisy.readout[0], [[0.98, 0.02], [0.05, 0.95]])
    np.testing.assert_allclose(noisy.readout[2], [[0.9, 0.1], [0.3, 0.7]])


BAD_TOML = {
    "unknown channel": ('[[gate]]\ngates = "x"\nchannel = "amplitude"\ngamma = 0.1\n',
                        "[[gate]] #1: unknown channel 'amplitude' (choose from"),
    "probability out of range": ('[[gate]]\ngates = "x"\nchannel = "bit_flip"\np = 1.5\n',
                                 "[[gate]] #1 (bit_flip): p must be in [0, 1], got 1.5"),
    "T2 > 2 T1": ('[[gate]]\ngates = "id"\nchannel = "thermal_relaxation"\nt1 = 1.0\n'
                  't2 = 3.0\ntime = 0.1\n', "t2 = 3 must be at most 2*t1 = 2"),
    "missing field": ('[[gate]]\ngates = "x"\nchannel = "depolarizing"\n',
                      "[[gate]] #1 (depolarizing): missing field 'p'"),
    "missing channel": ('[[gate]]\ngates = "x"\np = 0.1\n', "missing field 'channel'"),
    "missing gates": ('[[gate]]\nchannel = "bit_flip"\np = 0.1\n', "missing field 'gates'"),
    "unknown field": ('[[gate]]\ngates = "x"\nchannel = "bit_flip"\np = 0.1\nq = 2\n',
                      "unknown field 'q'"),
    "unknown gate": ('[[gate]]\ngates = "foo"\nchannel = "bit_flip"\np = 0.1\n',
                     "unknown gate 'foo'"),
    "arity mismatch": ('[[gate]]\ngates = "cx"\nchannel = "bit_flip"\np = 0.1\n',
                       "bit_flip acts on 1 qubit(s) but gate 'cx' on 2"),
    "mixed arity": ('[[gate]]\ngates = ["x", "cx"]\nchannel = "depolarizing"\np = 0.1\n',
                    "act on different numbers of qubits"),
    "bad qubits": ('[[gate]]\ngates = "x"\nqubits = "0"\nchannel = "bit_flip"\np = 0.1\n',
                   "'qubits' must be a list"),
    "p not a number": ('[[gate]]\ngates = "x"\nchannel = "bit_flip"\np = "0.1"\n',
                       "p must be a finite real number"),
    "kraus not CPTP": ('[[gate]]\ngates = "x"\nchannel = "kraus"\n'
                       'kraus = [{ real = [[1, 0], [0, 0.5]] }]\n', "not trace preserving"),
    "pauli not a table": ('[[gate]]\ngates = "x"\nchannel = "pauli"\nprobabilities = 0.1\n',
                          "probabilities must be a table"),
    "readout missing": ("[[readout]]\np01 = 0.1\n", "[[readout]] #1: missing field 'p10'"),
    "readout range": ("[[readout]]\np01 = 0.1\np10 = 2\n", "p10 must be in [0, 1]"),
    "readout both": ("[[readout]]\np01 = 0.1\np10 = 0.1\nmatrix = [[1, 0], [0, 1]]\n",
                     "not both"),
    "unknown section": ("[[gates]]\n", "unknown section 'gates'"),
    "not an array": ('gate = "x"\n', "'gate' must be an array of tables"),
    "TOML syntax": ("[[gate]\n", "invalid TOML"),
}


@pytest.mark.parametrize("case", BAD_TOML)
def test_bad_toml_raises_one_clear_line(tmp_path, case):
    text, message = BAD_TOML[case]
    path = tmp_path / "noise.toml"
    path.write_text(text)
    with pytest.raises(NoiseModelError) as err:
        N.load_noise_model(path)
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(NoiseModelError, match="no such noise model file"):
        N.load_noise_model(tmp_path / "absent.toml")


# ---- trajectories against the density matrix -----------------------------------------------

def mixed_noise_model():
    return (NoiseModel()
            .add_gate_error(N.depolarizing(0.15, 2), "cx")
            .add_gate_error(N.amplitude_damping(0.3), "ry")
            .add_gate_error(N.thermal_relaxation(30.0, 20.0, 8.0), ["x", "rx"])
            .add_gate_error(N.pauli_channel({"Y": 0.1, "Z": 0.05}), "sx")
            .add_gate_error(N.kraus(random_kraus(np.random.default_rng(7), 2, 3)), "cz",
                            qubits=(2, 3)))


def noisy_test_circuit(basis: str) -> Circuit:
    """Four qubits, every kind of noise, a mid-circuit measurement (clbit 4) and reset; measured
    in the Z or X basis into clbits 0-3."""
    c = Circuit(4, 5)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.add("ry", 2, params=[2.2])
    c.add("x", 3)
    c.add("cz", 2, 3)
    c.add("sx", 1)
    c.measure(2, 4)
    c.add("reset", 3)
    c.add("rx", 3, params=[1.0])
    c.add("cx", 1, 2)
    c.add("cx", 2, 3)
    if basis == "x":
        for q in range(4):
            c.add("h", q)
    for q in range(4):
        c.measure(q, q)
    return c


def parity_observable(z_mask: int, n: int) -> np.ndarray:
    idx = np.arange(1 << n)
    return np.array([1 - 2 * (bin(i & z_mask).count("1") & 1) for i in idx], dtype=float)


def count_average(counts: dict[str, int], z_mask: int) -> float:
    total = sum(counts.values())
    return sum(n * (1 - 2 * (bin(int(k, 2) & z_mask).count("1") & 1))
               for k, n in counts.items()) / total


@pytest.mark.parametrize("basis", ["z", "x"])
def test_trajectory_averages_match_density_matrix(backend, basis):
    sim, precision = backend
    c = noisy_test_circuit(basis)
    model = mixed_noise_model()
    shots = 20000
    exact = np.real(np.diagonal(density_matrix(c, model)))
    counts = N.marginal_counts(
        sim.run(c, shots=shots, seed=11, precision=precision, noise=model).counts, range(4))
    # <Z_q> (or <X_q>), two-qubit parities (<ZZ>, <XX>), and every outcome's population
    for mask in (1, 2, 4, 8, 0b11, 0b110, 0b1100, 0b1111):
        m = float(exact @ parity_observable(mask, 4))
        sigma = math.sqrt(max(1 - m * m, 1e-12) / shots)
        assert abs(count_average(counts, mask) - m) <= 3 * sigma + 1e-9, (mask, m)
    for index, p in enumerate(exact):
        f = counts.get(format(index, "04b"), 0) / shots
        assert abs(f - p) <= 3 * math.sqrt(p * (1 - p) / shots) + 1e-9, (index, p, f)


def test_amplitude_damping_decay_is_exponential(backend):
    sim, precision = backend
    t1, dt, steps = 20.0, 5.0, 4
    c = Circuit(1, 1)
    c.add("x", 0)
    for _ in range(steps):
        c.add("id", 0)  # idle: fusion drops the gate, its noise stays
    c.measure(0, 0)
    model = NoiseModel().add_gate_error(N.amplitude_damping(1 - math.exp(-dt / t1)), "id")
    p1 = math.exp(-steps * dt / t1)
    assert np.real(density_matrix(c, model)[1, 1]) == pytest.approx(p1, abs=1e-12)
    shots = 20000
    counts = sim.run(c, shots=shots, seed=5, precision=precision, noise=model).counts
    assert abs(counts.get("1", 0) / shots - p1) <= 3 * math.sqrt(p1 * (1 - p1) / shots)


@pytest.mark.parametrize("make, expected", [
    (lambda p: N.depolarizing(p), lambda p: 1 - p),  # Qiskit's p
    (lambda p: N.pauli_channel({"X": p / 3, "Y": p / 3, "Z": p / 3}), lambda p: 1 - 4 * p / 3),
])
def test_depolarizing_z_expectation(backend, make, expected):
    sim, precision = backend
    p = 0.3
    c = Circuit(1, 1)
    c.add("id", 0)
    c.measure(0, 0)
    model = NoiseModel().add_gate_error(make(p), "id")
    rho = density_matrix(c, model)
    assert np.real(rho[0, 0] - rho[1, 1]) == pytest.approx(expected(p), abs=1e-12)
    shots = 20000
    counts = sim.run(c, shots=shots, seed=9, precision=precision, noise=model).counts
    z = count_average(counts, 1)
    assert abs(z - expected(p)) <= 3 * math.sqrt((1 - expected(p) ** 2) / shots)


@pytest.mark.parametrize("dynamic", [False, True])
def test_readout_error_flips_recorded_bits_at_the_rate(backend, dynamic):
    sim, precision = backend
    c = Circuit(2, 3)
    c.add("x", 0)
    c.measure(0, 0)
    c.measure(1, 1)
    if dynamic:  # feed-forward reads the recorded bit; the state is the true outcome's
        c.add("x", 1, condition=Condition((0,), 1))
        c.measure(1, 2)
    model = NoiseModel().add_readout_error(N.ReadoutError.from_flips(p01=0.1, p10=0.2))
    shots = 4000
    counts = sim.run(c, shots=shots, seed=3, precision=precision, noise=model).counts
    for clbit, p in ((0, 0.8), (1, 0.1)):  # P(read 1): was 1 -> 0.8, was 0 -> 0.1
        f = sum(n for k, n in counts.items() if k[-1 - clbit] == "1") / shots
        assert abs(f - p) <= 3 * math.sqrt(p * (1 - p) / shots), (clbit, f, p)
    if dynamic:  # qubit 1 flipped when clbit 0 read 1: P(1) = 0.8, then read with error
        p = 0.8 * 0.8 + 0.2 * 0.1
        f = sum(n for k, n in counts.items() if k[0] == "1") / shots
        assert abs(f - p) <= 3 * math.sqrt(p * (1 - p) / shots)


def test_noisy_runs_are_seeded(backend):
    sim, precision = backend
    c = noisy_test_circuit("z")
    model = mixed_noise_model()
    a = sim.run(c, shots=500, seed=21, precision=precision, noise=model).counts
    b = sim.run(c, shots=500, seed=21, precision=precision, noise=model).counts
    assert a == b and sum(a.values()) == 500


def test_one_seed_gives_one_result_on_every_backend():
    # every draw takes one uniform per shot, so rounding differences between backends do not
    # move a branch split
    c = noisy_test_circuit("x")
    model = mixed_noise_model()
    want = get_backend("reference").run(c, shots=3000, seed=8, noise=model).counts
    got = get_backend("statevector", kernels="cpu").run(c, shots=3000, seed=8,
                                                          precision="double", noise=model)
    assert got.counts == want


def test_jax_kernels_give_the_cpu_result():
    c = Circuit(2, 2)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.add("x", 1)
    c.measure(0, 0)
    c.measure(1, 1)
    model = (NoiseModel().add_gate_error(N.amplitude_damping(0.3), "x")
             .add_gate_error(N.depolarizing(0.2, 2), "cx"))
    runs = [get_backend("statevector", kernels=k).run(c, shots=5000, seed=3, noise=model,
                                                      precision="double").counts
            for k in ("cpu", "jax")]
    assert runs[0] == runs[1]
    exact = np.real(np.diagonal(density_matrix(c, model)))
    tvd = N.total_variation_distance(runs[0], {format(i, "02b"): p for i, p in enumerate(exact)})
    assert tvd <= N.tvd_bound(4, 5000)


def test_noisy_run_keeps_the_state_of_one_trajectory(backend):
    sim, precision = backend
    c = Circuit(2, 1)
    c.add("h", 0)
    c.add("cx", 0, 1)
    c.measure(0, 0)
    model = NoiseModel().add_gate_error(N.depolarizing(0.5, 2), "cx")
    r = sim.run(c, shots=0, seed=1, precision=precision, save_state=True, noise=model)
    assert r.counts == {}
    psi = r.statevector
    assert np.vdot(psi, psi).real == pytest.approx(1.0, abs=1e-5)
    # a Pauli applied to a Bell state leaves a maximally entangled state: |<Z0>| = 0
    assert abs(abs(psi[0]) ** 2 + abs(psi[2]) ** 2 - 0.5) < 1e-5


def test_noise_free_model_changes_nothing():
    c = lib.teleport_dynamic()
    sim = get_backend("reference")
    assert sim.run(c, shots=300, seed=4).counts == sim.run(c, shots=300, seed=4,
                                                           noise=NoiseModel()).counts


# ---- the cat-entangler workload and qiskit-aer ---------------------------------------------

def data_marginal(counts, modules, d):
    return N.marginal_counts(counts, range(2 * (modules - 1), 2 * (modules - 1) + modules * d))


def test_remote_cnot_over_ideal_links_is_the_local_cnot():
    k, d = 2, 2
    c = lib.cat_entangler_chain(k, d)
    local = Circuit(k * (d + 2), k * d)
    data = [m * (d + 2) + j for m in range(k) for j in range(d)]
    for m in range(k):
        local.add("h", m * (d + 2))
        local.add("cx", m * (d + 2), m * (d + 2) + 1)
    local.add("cx", d - 1, d + 2)
    for i, q in enumerate(data):
        local.add("rx", q, params=[0.3 * (i + 1)])
    probs = get_backend("reference").probabilities(local, data)
    exact = {format(i, f"0{k * d}b"): p for i, p in enumerate(probs)}
    shots = 3000
    counts = get_backend("statevector", kernels="cpu").run(c, shots=shots, seed=2).counts
    tvd = N.total_variation_distance(data_marginal(counts, k, d), exact)
    assert tvd <= N.tvd_bound(len(exact), shots)


def aer_link_noise(k, d, p):
    from qiskit_aer.noise import NoiseModel as AerNoiseModel
    from qiskit_aer.noise import depolarizing_error

    aer = AerNoiseModel()
    for near, far in lib.cat_entangler_epr_pairs(k, d):
        aer.add_quantum_error(depolarizing_error(p, 2), "cx", [near, far])
    return aer


def test_from_qiskit_noise_model_matches_the_native_model():
    pytest.importorskip("qiskit_aer")
    from qiskit_aer.noise import NoiseModel as AerNoiseModel
    from qiskit_aer.noise import ReadoutError, amplitude_damping_error, depolarizing_error

    aer = AerNoiseModel()
    aer.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["h", "x"])
    aer.add_quantum_error(depolarizing_error(0.05, 2), "cx", [0, 1])
    aer.add_quantum_error(amplitude_damping_error(0.2), "rx", [2])
    aer.add_readout_error(ReadoutError([[0.9, 0.1], [0.2, 0.8]]), [0])
    aer.add_all_qubit_readout_error(ReadoutError([[0.95, 0.05], [0.1, 0.9]]))
    model = N.from_qiskit_noise_model(aer)
    (h,) = model.gate_errors("h", (3,))
    np.testing.assert_allclose(h.pauli_probabilities, N.depolarizing(0.1).pauli_probabilities,
                               atol=1e-12)
    (cx,) = model.gate_errors("cx", (0, 1))
    np.testing.assert_allclose(cx.pauli_probabilities,
                               N.depolarizing(0.05, 2).pauli_probabilities, atol=1e-12)
    assert model.gate_errors("cx", (1, 0)) == []
    (ad,) = model.gate_errors("rx", (2,))
    assert not ad.is_pauli
    rho = np.diag([0, 1]).astype(complex)
    assert sum(k @ rho @ k.conj().T for k in ad.kraus)[0, 0].real == pytest.approx(0.2)
    np.testing.assert_allclose(model.readout_error(0).matrix, [[0.9, 0.1], [0.2, 0.8]])
    np.testing.assert_allclose(model.readout_error(5).matrix, [[0.95, 0.05], [0.1, 0.9]])


def test_from_qiskit_noise_model_refuses_what_it_cannot_express():
    pytest.importorskip("qiskit_aer")
    from qiskit_aer.noise import NoiseModel as AerNoiseModel
    from qiskit_aer.noise import depolarizing_error

    aer = AerNoiseModel()
    aer.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), "measure")
    with pytest.raises(NoiseModelError, match="error on 'measure' is not expressible"):
        N.from_qiskit_noise_model(aer)


def test_counts_agree_with_qiskit_aer_on_the_cat_entangler(backend):
    pytest.importorskip("qiskit_aer")
    from qiskit_aer import AerSimulator

    from qsim_dist.io.convert import to_qiskit

    sim, precision = backend
    k, d, shots = 3, 2, 10000
    c = lib.cat_entangler_chain(k, d)
    aer_noise = aer_link_noise(k, d, 0.05)
    model = N.from_qiskit_noise_model(aer_noise)
    ours = sim.run(c, shots=shots, seed=13, precision=precision, noise=model).counts
    aer = AerSimulator(noise_model=aer_noise, seed_simulator=13)
    theirs = aer.run(to_qiskit(c), shots=shots).result().get_counts()
    a, b = data_marginal(ours, k, d), data_marginal(theirs, k, d)
    assert N.total_variation_distance(a, b) <= N.tvd_bound(1 << (k * d), shots, shots)
    # and the link noise is really there: the native model gives the same channel
    (ch,) = model.gate_errors("cx", lib.cat_entangler_epr_pairs(k, d)[0])
    np.testing.assert_allclose(ch.pauli_probabilities, N.depolarizing(0.05, 2).pauli_probabilities,
                               atol=1e-12)


def test_example_noise_file_loads():
    from pathlib import Path

    model = N.load_noise_model(Path(__file__).parent.parent / "examples" / "noise.toml")
    (cx,) = model.gate_errors("cx", (0, 1))
    assert cx.is_pauli and cx.num_qubits == 2
    (idle,) = model.gate_errors("id", (4,))
    assert not idle.is_pauli
    np.testing.assert_allclose(model.readout_error(7).matrix, [[0.99, 0.01], [0.03, 0.97]])


@pytest.mark.parametrize("fires", [False, True])
def test_noise_after_a_conditioned_gate_only_when_it_fires(backend, fires):
    sim, precision = backend
    c = Circuit(2, 2)
    if fires:
        c.add("x", 0)
    c.measure(0, 0)
    c.add("id", 1, condition=Condition((0,), 1))
    c.measure(1, 1)
    model = NoiseModel().add_gate_error(N.bit_flip(1.0), "id")
    counts = sim.run(c, shots=50, seed=1, precision=precision, noise=model).counts
    assert counts == ({"11": 50} if fires else {"00": 50})
