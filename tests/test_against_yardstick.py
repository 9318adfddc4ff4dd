"""Every backend against the yardstick (qsim_dist/yardstick.py) on dynamic and noisy circuits.

The reference backend shares the executor with the others (backends/base.py), so comparing them
with one another cannot catch a mistake in branching, conditions, noise or readout; the
yardstick can. Counts are compared with its exact distribution by a chi-square test at a
false-alarm probability of about 1e-7 (fixed seeds, so a run is also reproducible); the test is
shown to reject near misses (:func:`test_the_check_rejects_near_misses`). Where a backend exposes
something exactly (the statevector and expectation values of a unitary circuit, the reference's
density matrix of a noisy circuit) it is compared to rounding.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from qsim_dist import Circuit, Condition
from qsim_dist import library as lib
from qsim_dist.backends import BACKENDS, get_backend
from qsim_dist.noise import (NoiseModel, ReadoutError, amplitude_damping, depolarizing,
                             load_noise_model, pauli_channel, phase_damping, thermal_relaxation)
from qsim_dist.yardstick import exact

EXAMPLE_NOISE = Path(__file__).resolve().parents[1] / "examples" / "noise.toml"
SHOTS = 20_000


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    """Every backend of the registry, as ``get_backend`` makes it (the distributed one in this
    single process: one rank), so that a new backend is checked here without a new line."""
    return get_backend(request.param)


# ---- the statistical check ---------------------------------------------------------------------

Z_FALSE_ALARM = 5.2  # one-sided normal quantile of a 1e-7 false alarm


def chi_square_limit(df: int, z: float = Z_FALSE_ALARM) -> float:
    """The chi-square quantile with ``df`` degrees of freedom at normal quantile ``z``
    (Wilson-Hilferty: the cube root of chi2/df is nearly normal; conservative at small df)."""
    a = 2 / (9 * df)
    return df * (1 - a + z * math.sqrt(a)) ** 3


def chi_square(counts: dict[str, int], probabilities: dict[str, float]) -> tuple[float, int]:
    """Pearson's statistic of ``counts`` against ``probabilities`` and its degrees of freedom.
    Outcomes expected fewer than 10 times are pooled into one bin, so that the chi-square law
    holds; an outcome of probability 0 that was sampled is reported by the caller."""
    shots = sum(counts.values())
    observed, expected = [], []
    pooled_observed = pooled_expected = 0.0
    for key, p in probabilities.items():
        if shots * p < 10:
            pooled_observed += counts.get(key, 0)
            pooled_expected += shots * p
        else:
            observed.append(counts.get(key, 0))
            expected.append(shots * p)
    if pooled_expected >= 10 or (pooled_expected and not expected):
        observed.append(pooled_observed)
        expected.append(pooled_expected)
    elif pooled_expected and expected:  # too few to stand alone: join the least likely bin
        j = int(np.argmin(expected))
        observed[j] += pooled_observed
        expected[j] += pooled_expected
    o, e = np.array(observed), np.array(expected)
    return float(np.sum((o - e) ** 2 / e)), len(e) - 1


def sampled_from(counts: dict[str, int], probabilities: dict[str, float]) -> bool:
    """Whether ``counts`` pass for a sample of ``probabilities`` (no impossible outcome, and the
    chi-square statistic below its 1e-7 quantile)."""
    if set(counts) - set(probabilities):
        return False
    statistic, df = chi_square(counts, probabilities)
    return statistic == 0 if df == 0 else statistic < chi_square_limit(df)


def assert_sampled_from(counts, probabilities, what):
    assert sum(counts.values()) == SHOTS
    impossible = set(counts) - set(probabilities)
    assert not impossible, f"{what}: outcomes the yardstick gives probability 0: {impossible}"
    statistic, df = chi_square(counts, probabilities)
    assert sampled_from(counts, probabilities), (
        f"{what}: chi-square {statistic:.1f} on {df} degrees of freedom (limit "
        f"{chi_square_limit(df) if df else 0:.1f})")


# ---- the shared circuits -------------------------------------------------------------------------

def registers_and_resets() -> Circuit:
    """Conditions on one bit and on a two-bit register, a reset, a qubit measured twice and a
    clbit written twice (the later measurement wins)."""
    c = Circuit(3, 4, name="registers")
    c.add("h", 0)
    c.add("ry", 1, params=[0.7])
    c.measure(0, 0)
    c.measure(1, 1)
    c.add("x", 2, condition=Condition((0, 1), 3))
    c.add("ry", 2, params=[1.3], condition=Condition((0, 1), 1))
    c.add("reset", 0)
    c.add("h", 0, condition=Condition((1,), 1))
    c.add("cx", 2, 1)
    c.measure(1, 1)
    c.measure(0, 2)
    c.measure(2, 3)
    return c


def idle_circuit() -> Circuit:
    """A qubit that waits while the others work, so that idle noise is inserted."""
    c = Circuit(3, 3, name="idle")
    c.add("h", 0)
    c.add("x", 1)
    for _ in range(3):
        c.add("sx", 2)
    c.add("cx", 0, 2)
    for q in range(3):
        c.measure(q, q)
    return c


def damped_qft() -> Circuit:
    c = Circuit(3, 3, name="qft-in")
    c.add("x", 0)
    c.add("h", 2)
    for inst in lib.qft(3):
        c.append(inst)
    for q in range(3):
        c.measure(q, q)
    return c


def noisy_teleport(gamma: float = 0.25) -> NoiseModel:
    return (NoiseModel()
            .add_gate_error(amplitude_damping(gamma), ["ry", "h"])
            .add_gate_error(depolarizing(0.15, 2), "cx")
            .add_gate_error(phase_damping(0.3), ["x", "z"])  # on the conditioned corrections
            .add_readout_error(ReadoutError.from_flips(0.05, 0.1)))


CASES = {
    # dynamic, no noise
    "teleport": (lib.teleport_dynamic(), None),
    "registers": (registers_and_resets(), None),
    "cat-chain": (lib.cat_entangler_chain(2, 1), None),
    # noise: general (Kraus) channels, conditioned noise, readout errors
    "teleport-noisy": (lib.teleport_dynamic(), noisy_teleport()),
    "registers-noisy": (registers_and_resets(), NoiseModel()
                        .add_gate_error(thermal_relaxation(50, 40, 20), ["h", "ry"])
                        .add_gate_error(pauli_channel({"XX": 0.1, "ZI": 0.2}), "cx")
                        .add_readout_error(ReadoutError.from_flips(0.1, 0.0), qubits=[1])),
    "qft-damped": (damped_qft(), NoiseModel()
                   .add_gate_error(amplitude_damping(0.2), "h")
                   .add_gate_error(depolarizing(0.2, 2), ["cp", "swap"])),
    # Pauli channels only on a static circuit: the Pauli-trajectory path
    "ghz-pauli": (lib.ghz(4, measure=True), NoiseModel()
                  .add_gate_error(depolarizing(0.3), "h")
                  .add_gate_error(depolarizing(0.2, 2), "cx")
                  .add_readout_error(ReadoutError.from_flips(0.05, 0.15))),
    "idle": (idle_circuit(), NoiseModel().set_durations({"cx": 2})
             .add_idle_relaxation(t1=4, t2=3).add_idle_error(depolarizing(0.1), qubits=[1])),
    # the repository's example noise file on a dynamic distributed-computing circuit
    "cat-chain-example-noise": (lib.cat_entangler_chain(2, 2), load_noise_model(EXAMPLE_NOISE)),
}


def exact_of(circuit, noise):
    return exact(noise.lower(circuit) if noise is not None else circuit)


@pytest.mark.parametrize("case", list(CASES))
def test_counts_follow_the_exact_distribution(backend, case):
    circuit, noise = CASES[case]
    want = exact_of(circuit, noise).distribution
    seed = 1000 + list(CASES).index(case)
    got = backend.run(circuit, shots=SHOTS, seed=seed, noise=noise, precision="double")
    assert_sampled_from(got.counts, want, f"{backend.name} on {case}")


@pytest.mark.parametrize("case", ["teleport", "registers", "ghz-pauli", "idle"])
def test_jax_kernel_set_in_single_precision(case):
    """The GPU path's kernel set and usual precision, on the cases it runs in about a second on
    the CPU (each case with general Kraus noise takes it 10-20 s there)."""
    circuit, noise = CASES[case]
    got = get_backend("statevector", kernels="jax").run(circuit, shots=SHOTS, seed=7,
                                                        noise=noise, precision="single")
    assert_sampled_from(got.counts, exact_of(circuit, noise).distribution, f"jax on {case}")


def test_the_check_rejects_near_misses():
    """The check above cannot pass by accident: the reference's counts of a case fail it against
    the exact distribution of a slightly different circuit or model (the expected statistic is
    then about twice the limit)."""
    ref = get_backend("reference")
    near = [
        ("teleport", lib.teleport_dynamic(), noisy_teleport(gamma=0.18), noisy_teleport()),
        ("ghz", lib.ghz(4, measure=True), NoiseModel().add_gate_error(depolarizing(0.3), "h")
         .add_gate_error(depolarizing(0.2, 2), "cx")
         .add_readout_error(ReadoutError.from_flips(0.05, 0.12)), CASES["ghz-pauli"][1]),
    ]
    for what, circuit, wrong, right in near:
        counts = ref.run(circuit, shots=SHOTS, seed=5, noise=right).counts
        assert sampled_from(counts, exact_of(circuit, right).distribution), what
        assert not sampled_from(counts, exact_of(circuit, wrong).distribution), what
    # dropping the feed-forward is caught without noise too
    counts = ref.run(lib.teleport_dynamic(), shots=SHOTS, seed=6).counts
    open_loop = lib.teleport_dynamic()
    open_loop.instructions = [i for i in open_loop.instructions if i.condition is None]
    assert not sampled_from(counts, exact(open_loop).distribution)


def test_chi_square_limit_is_the_quantile():
    """Wilson-Hilferty against the chi-square quantiles of a 1e-7 tail (tables): never below
    (no more false alarms than promised) and at most 20% above (at 1 degree of freedom; 1% from
    15 on)."""
    for df, quantile in ((1, 28.37), (3, 35.41), (7, 45.70), (15, 62.33), (63, 139.58)):
        assert quantile < chi_square_limit(df) < 1.2 * quantile


# ---- what backends expose exactly ------------------------------------------------------------

UNITARY = {
    "ghz5": lib.ghz(5),
    "qft4": lib.qft(4),
    "random": lib.random_circuit(5, 4, seed=3),
    "qaoa": lib.qaoa_maxcut([(0, 1), (1, 2), (2, 3), (3, 0)], 4, [0.4, 0.9], [0.7, 0.2]),
}
OBSERVABLES = ["ZZIII", "XXXXX", "IYZXI", "ZIIIZ"]


@pytest.mark.parametrize("case", list(UNITARY))
def test_statevector_and_expectations_are_exact(backend, case):
    circuit = UNITARY[case]
    want = exact(circuit)
    psi = backend.statevector(circuit, precision="double")
    np.testing.assert_allclose(np.outer(psi, psi.conj()), want.density_matrix, atol=1e-12)
    n = circuit.num_qubits
    for label in OBSERVABLES:
        label = label[-n:].rjust(n, "I")
        assert backend.expectation(circuit, label, precision="double") == pytest.approx(
            want.expectation(label), abs=1e-12), label


@pytest.mark.parametrize("case", ["qft-damped", "ghz-pauli", "cat-chain-example-noise", "idle"])
def test_reference_density_matrix_is_exact(case):
    """The reference's density matrix (measurements and resets as channels, no conditions)
    against the yardstick's mixture over branches."""
    from qsim_dist.backends.reference import density_matrix

    circuit, noise = CASES[case]
    if any(i.condition is not None for i in circuit):
        circuit = Circuit(circuit.num_qubits, circuit.num_clbits,
                          [i for i in circuit if i.condition is None])
    np.testing.assert_allclose(density_matrix(circuit, noise),
                               exact_of(circuit, noise).density_matrix, atol=1e-12)
