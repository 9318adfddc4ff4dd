"""The examples run and print what examples/expected/ shows: each example's main() is run with
its default seed (fewer shots where that keeps the suite short) and its figures are checked
against the analytic values it prints beside them."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_expected_outputs_are_the_default_runs(capsys):
    """The committed expected output is what the default arguments print (same seed)."""
    _example("repeat_until_success").main([])
    assert capsys.readouterr().out == (EXAMPLES / "expected" /
                                       "repeat_until_success.txt").read_text()


def test_repeat_until_success_example_is_exact_over_ideal_links():
    reports = _example("repeat_until_success").main(["--shots", "100"])
    ideal = reports["ideal links"]
    assert ideal.fidelity == pytest.approx(1.0, abs=1e-9)
    assert abs(ideal.epr_pairs - 2) <= 3 * math.sqrt(2 / 100)
    assert reports["network_pair.toml"].fidelity < 0.97


def test_purified_chain_example_meets_its_analytic_fidelity():
    out = _example("purified_chain").main(["--repeaters", "2", "--shots", "200"])
    ideal = out["ideal local gates"]
    assert abs(ideal.fidelity - out["analytic"]) <= 3 * ideal.fidelity_stderr


def test_qpu_pilot_example_drives_the_resource_from_dask(capsys):
    results = _example("qpu_pilot").main([])
    assert capsys.readouterr().out == (EXAMPLES / "expected" / "qpu_pilot.txt").read_text()
    for r in results:
        assert r["zz"] == 1.0   # the two qubits always agree
        sigma = math.sqrt(r["p11_exact"] * (1 - r["p11_exact"]) / 2000)
        assert abs(r["p11"] - r["p11_exact"]) <= 3 * sigma + 1e-12


def test_variational_example_reaches_its_exact_optima_and_pays_for_distribution(capsys):
    out = _example("variational").main([])
    assert capsys.readouterr().out == (EXAMPLES / "expected" / "variational.txt").read_text()
    energy, exact = out["vqe"]
    assert abs(energy - exact) < 1e-8   # the ansatz reaches H2's ground state
    expected_cut, best = out["qaoa"]
    assert 2.5 < expected_cut <= best   # p=1 QAOA: above a random cut's 2.5, below the optimum
    cut_net, cut_ideal, fidelity, stderr, _ = out["network"]
    assert abs(cut_ideal - expected_cut) < 4 * 1.2 / math.sqrt(2000)   # ideal network = QPU
    assert fidelity + 3 * stderr < 1.0 and cut_net < cut_ideal          # the noisy network pays
