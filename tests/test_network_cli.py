"""qsim-dist dqc (qsim_dist/cli/dqc.py, through the entry point qsim_dist.cli.main): outputs,
pictures, and one line with exit status 2 for every user mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qsim_dist.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CIRCUIT = str(EXAMPLES / "dqc_small.qasm")
PAIR = str(EXAMPLES / "network_pair.toml")


def test_dqc_json_hdf5_and_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out, plot, topo = tmp_path / "r.h5", tmp_path / "s.png", tmp_path / "t.svg"
    rc = main(["dqc", CIRCUIT, "--network", PAIR, "--shots", "40", "--seed", "3", "--json",
               "--out", str(out), "--plot", str(plot), "--topology-plot", str(topo)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("fidelity", "fidelity_stderr", "epr_pairs", "classical_bits", "makespan_s",
                "counts"):
        assert key in summary
    assert sum(summary["counts"].values()) == 40 and summary["seed"] == 3
    assert out.stat().st_size > 0 and plot.read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in topo.read_bytes()[:500]


def test_dqc_human_output_with_placement(capsys):
    rc = main(["dqc", CIRCUIT, "--network", str(EXAMPLES / "network_chain.toml"),
               "--placement", "0:A,1:B,2:A,3:B", "--shots", "20", "--seed", "1", "--ideal"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "fidelity   1.000000" in text and "placement  0:A, 1:B, 2:A, 3:B" in text


def test_dqc_observables_over_ideal_links_are_the_circuits_own(capsys):
    from qsim_dist.backends import get_backend
    from qsim_dist.cli.common import load_circuit

    rc = main(["dqc", CIRCUIT, "--network", PAIR, "--ideal", "--shots", "10", "--seed", "1",
               "--json", "--observable", "Z0 Z1", "--observable", "X2 - 0.5 Y3"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    circuit = load_circuit(Path(CIRCUIT))
    want = [get_backend("reference").expectation(circuit, h) for h in ("Z0 Z1", "X2 - 0.5 Y3")]
    assert summary["expectations"] == pytest.approx(want, abs=1e-10)
    rc = main(["dqc", CIRCUIT, "--network", PAIR, "--shots", "10", "--seed", "1",
               "--observable", "Z0 Z1"])
    assert rc == 0 and "(H = Z0 Z1)" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing circuit", "missing network", "bad network",
                                  "bad placement", "too big", "bad out dir", "bad plot suffix",
                                  "bad purify", "no network option", "bad qasm",
                                  "purify with one comm qubit", "purify rounds > comm qubits",
                                  "bad observable"])
def test_dqc_user_mistakes(tmp_path, capsys, case):
    bad_net = tmp_path / "bad.toml"
    bad_net.write_text("[nodes.A]\ndata_qubits = -1\n")
    tiny = tmp_path / "tiny.toml"
    tiny.write_text("[nodes.A]\ndata_qubits = 2\n")
    bad_qasm = tmp_path / "bad.qasm"
    bad_qasm.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nfoo q[0];\n')
    out = tmp_path / "r.h5"
    args = {
        "missing circuit": [str(tmp_path / "none.qasm"), "--network", PAIR],
        "missing network": [CIRCUIT, "--network", str(tmp_path / "none.toml")],
        "bad network": [CIRCUIT, "--network", str(bad_net)],
        "bad placement": [CIRCUIT, "--network", PAIR, "--placement", "0:A,1:A,2:A,3:B"],
        "too big": [CIRCUIT, "--network", str(tiny)],
        "bad out dir": [CIRCUIT, "--network", PAIR, "--out", str(tmp_path / "no" / "r.h5")],
        "bad plot suffix": [CIRCUIT, "--network", PAIR, "--plot", str(tmp_path / "s.txt")],
        "bad purify": [CIRCUIT, "--network", PAIR, "--purify", "magic"],
        "no network option": [CIRCUIT],
        "bad qasm": [str(bad_qasm), "--network", PAIR],
        # the chain's end nodes have comm_qubits = 1; a round holds two pairs at once
        "purify with one comm qubit": [CIRCUIT, "--network", str(EXAMPLES / "network_chain.toml"),
                                       "--purify", "bbpssw:2"],
        "purify rounds > comm qubits": [CIRCUIT, "--network", PAIR, "--purify", "dejmps:2"],
        "bad observable": [CIRCUIT, "--network", PAIR, "--observable", "Z0 + Q1"],
    }[case]
    rc = main(["dqc", *args, "--shots", "4", "--out", str(out)] if case != "bad out dir"
              else ["dqc", *args, "--shots", "4"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("qsim-dist: error: ")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_dqc_purification_counts_the_bits_of_every_round(capsys):
    """Each round attempt sends two bits (each side its outcome); with one round every raw pair
    is in exactly one attempt, so the purified run sends as many more bits as it made pairs."""
    common = [CIRCUIT, "--network", PAIR, "--shots", "16", "--seed", "2", "--schedules", "4"]
    plain = _dqc_json(capsys, *common)
    pure = _dqc_json(capsys, *common, "--purify", "dejmps:1")
    assert pure["epr_pairs_consumed"] == 2 * plain["epr_pairs"]
    assert pure["classical_bits"] == pytest.approx(plain["classical_bits"] + pure["epr_pairs"])
    assert pure["classical_bits"] >= plain["classical_bits"] + 2 * plain["epr_pairs"]
    rounds = sum(use["rounds"] for use in pure["links"].values())  # per link, in the report
    assert pure["classical_bits"] == pytest.approx(plain["classical_bits"] + 2 * rounds)
    assert all(use["rounds"] == 0 for use in plain["links"].values())


def test_dqc_purify_refusal_is_one_line_naming_the_node(capsys):
    chain = str(EXAMPLES / "network_chain.toml")
    rc = main(["dqc", CIRCUIT, "--network", chain, "--purify", "bbpssw:2", "--shots", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1
    assert "needs 3 communication qubits" in err and "node 'A' has comm_qubits = 1" in err


def _dqc_json(capsys, *args):
    assert main(["dqc", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_dqc_compiler_uses_no_more_epr_pairs_than_naive(capsys):
    """--compiler auto (the default without --placement) runs the distribution compiler; on a
    QFT over the 4-node ring it needs no more EPR pairs than the naive program."""
    ring = str(EXAMPLES / "network_ring.toml")
    qft = str(EXAMPLES / "qft4.qasm")
    common = [qft, "--network", ring, "--shots", "64", "--seed", "5", "--schedules", "2"]
    auto = _dqc_json(capsys, *common)
    naive = _dqc_json(capsys, *common, "--compiler", "naive")
    assert auto["compiler"] == "auto" and naive["compiler"] == "naive"
    assert 0 < auto["epr_pairs"] <= naive["epr_pairs"]
    assert auto["cost"]["epr_pairs"] <= naive["cost"]["epr_pairs"]
    # over ideal links both are the circuit: counts on multiples of 4 only
    for compiler in ("auto", "naive"):
        ideal = _dqc_json(capsys, *common, "--compiler", compiler, "--ideal")
        assert ideal["fidelity"] == pytest.approx(1.0, abs=1e-9)
        assert set(ideal["counts"]) <= {"0000", "0100", "1000", "1100"}


def test_dqc_compiler_shares_one_pair_for_a_burst(tmp_path, capsys):
    """Two gates with one control on A and targets on B: one burst, one pair (naive: two)."""
    qasm = tmp_path / "burst.qasm"
    qasm.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[4];\ncreg c[4];\n'
                    'h q[0];\ncx q[0], q[2];\ncp(0.3) q[0], q[3];\nmeasure q -> c;\n')
    common = [str(qasm), "--network", PAIR, "--shots", "16", "--seed", "1", "--ideal"]
    auto = _dqc_json(capsys, *common)
    naive = _dqc_json(capsys, *common, "--placement", "0:A,1:A,2:B,3:B")
    assert naive["compiler"] == "naive" and naive["epr_pairs"] == 2
    assert auto["epr_pairs"] == 1 and auto["fidelity"] == pytest.approx(1.0, abs=1e-9)
    explicit = _dqc_json(capsys, *common, "--placement", "0:A,1:A,2:B,3:B", "--compiler", "auto")
    assert explicit["compiler"] == "auto" and explicit["epr_pairs"] == 1
    assert explicit["placement"] == {"0": "A", "1": "A", "2": "B", "3": "B"}
