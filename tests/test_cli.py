"""The qsim-dist command line: happy paths, and one clean line with exit status 2 for every mistake.

Tests that run without ``--backend`` use the default backend ("statevector"); the others use the
reference backend.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import qsim_dist
from qsim_dist.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BELL = EXAMPLES / "bell.qasm"

HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
BAD_CIRCUITS = {
    "malformed": HEADER + "h q[0\n",
    "empty": "",
    "blank": "\n   \n",
    "unknown_gate": HEADER + "frobnicate q[0];\n",
    "qubit_out_of_range": HEADER + "h q[5];\n",
    "repeated_qubit": HEADER + "cx q[0], q[0];\n",
}


def _assert_one_line_error(rc: int, err: str, out_file: Path | None = None) -> str:
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("qsim-dist: error: "), err
    assert "Traceback" not in err
    if out_file is not None:
        assert not out_file.exists()
        assert not [p for p in out_file.parent.iterdir() if ".tmp-" in p.name]
    return lines[0]


def _cli_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m qsim_dist.cli``."""
    script = Path(sys.executable).parent / "qsim-dist"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "qsim_dist.cli"]


def _subprocess(args: list[str], cwd: Path, command: list[str] | None = None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("JAX_PLATFORMS", "cpu")
    return subprocess.run((command or _cli_command()) + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ---- happy paths ------------------------------------------------------------------------------

def _run_bell_json(capsys, tmp_path, backend_args):
    out = tmp_path / "bell.h5"
    rc = main(["run", str(BELL), "--json", "--seed", "1", "--shots", "100", "--out", str(out),
               *backend_args])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    assert sum(summary["counts"].values()) == 100
    assert set(summary["counts"]) <= {"00", "11"}
    assert summary["shots"] == 100 and summary["seed"] == 1
    assert summary["num_qubits"] == 2 and summary["num_clbits"] == 2
    assert summary["results_file"] == str(out)
    with h5py.File(out) as f:
        a = f.attrs
        assert a["format"] == "qsim_dist.result"
        assert a["num_qubits"] == 2 and a["num_clbits"] == 2
        assert a["shots"] == 100 and a["seed"] == 1
        assert a["backend"] == summary["backend"] and a["precision"] == summary["precision"]
        assert a["version"] == qsim_dist.__version__
        assert a["wall_time_s"] >= 0 and a["compile_time_s"] >= 0
        assert isinstance(a["circuit"], str) and a["created"]
        assert "statevector" not in f
        counts = dict(zip(f["counts/bitstrings"].asstr()[()], f["counts/values"][()].tolist()))
    assert counts == summary["counts"]
    return summary


def test_run_bell_json_reference(capsys, tmp_path):
    summary = _run_bell_json(capsys, tmp_path, ["--backend", "reference"])
    assert summary["backend"] == "reference" and summary["precision"] == "double"


def test_run_bell_json_default_backend(capsys, tmp_path):
    """Needs the default backend (statevector)."""
    summary = _run_bell_json(capsys, tmp_path, [])
    assert summary["backend"] == "statevector"


@pytest.mark.parametrize("backend_args", [["--backend", "reference"], []],
                         ids=["reference", "default"])
@pytest.mark.parametrize("precision", ["single", "double"])
def test_save_state(capsys, tmp_path, backend_args, precision):
    out = tmp_path / "state.h5"
    rc = main(["run", str(BELL), "--save-state", "--out", str(out), "--shots", "10",
               "--seed", "5", "--precision", precision, *backend_args])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "with statevector" in captured.out
    with h5py.File(out) as f:
        psi = f["statevector"][()]
        assert psi.dtype == (np.complex64 if precision == "single" else np.complex128)
        assert f.attrs["precision"] == precision
    np.testing.assert_allclose(psi, np.array([1, 0, 0, 1]) / np.sqrt(2), atol=1e-6)


def test_same_seed_same_counts(capsys):
    args = ["run", str(BELL), "--json", "--seed", "123", "--shots", "500", "--backend", "reference"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)["counts"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == first
    assert first.keys() == {"00", "11"}


def test_human_summary(capsys):
    rc = main(["run", str(EXAMPLES / "qft.qasm"), "--seed", "2", "--shots", "1000",
               "--backend", "reference"])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == ""
    out = captured.out
    assert "5 qubits" in out and "reference" in out and "seed 2" in out
    assert "1000" in out
    for key in ("00000", "01000", "10000", "11000"):
        assert key in out
    assert "{" not in out  # not JSON


def test_examples_run(capsys):
    expected = {"bell.qasm": {"00", "11"}, "ghz.qasm": {"00000", "11111"},
                "qft.qasm": {"00000", "01000", "10000", "11000"}}
    for name, keys in expected.items():
        assert main(["run", str(EXAMPLES / name), "--json", "--seed", "0", "--shots", "400",
                     "--backend", "reference"]) == 0
        counts = json.loads(capsys.readouterr().out)["counts"]
        assert set(counts) == keys, name
        assert sum(counts.values()) == 400


def test_zero_shots(capsys, tmp_path):
    out = tmp_path / "r.h5"
    assert main(["run", str(BELL), "--shots", "0", "--json", "--backend", "reference",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shots"] == 0 and summary["counts"] == {}
    assert out.exists()


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert qsim_dist.__version__ in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--shots", "--seed", "--precision", "--backend", "--save-state", "--out",
                   "--json"):
        assert option in help_text


def test_info_without_optional_modules(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails: "not installed"
    monkeypatch.setitem(sys.modules, "jax", None)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert qsim_dist.__version__ in out
    assert re.search(r"^mpi4py +not installed$", out, re.M)
    assert re.search(r"^jax +not installed$", out, re.M)
    assert "numpy" in out and "h5py" in out and "cpus" in out
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mpi4py"] == {"version": "not installed"}



def test_backend_registry_matches_the_backends():
    """The registry names each backend's class, its default precision and whether it shards as
    the class itself does."""
    from qsim_dist.backends import BACKENDS, get_backend
    from qsim_dist.backends.state import Capability
    from qsim_dist.options import PRECISIONS

    for name, info in BACKENDS.items():
        backend = get_backend(name)
        assert type(backend).__name__ == info.cls and backend.name == name
        assert backend.default_precision == info.default_precision
        assert (Capability.SHARDED in backend.state_capabilities) == info.sharded
        assert set(info.precisions) <= set(PRECISIONS)


def test_both_commands_list_the_registry(capsys):
    """run and dqc take their --backend choices and help from one registry; info lists it."""
    from qsim_dist.backends import BACKENDS

    for command in ("run", "dqc"):
        assert main([command, "--help"]) == 0
        help_text = " ".join(capsys.readouterr().out.split())
        for name, info in BACKENDS.items():
            assert f"{name}: {info.description}" in help_text
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backends"] == list(BACKENDS)

# ---- mistakes: one line, exit 2, no results file ------------------------------------------------

@pytest.mark.parametrize("kind", sorted(BAD_CIRCUITS))
def test_bad_circuit(capsys, tmp_path, kind):
    src = tmp_path / f"{kind}.qasm"
    src.write_text(BAD_CIRCUITS[kind])
    out = tmp_path / "out.h5"
    rc = main(["run", str(src), "--backend", "reference", "--out", str(out)])
    _assert_one_line_error(rc, capsys.readouterr().err, out)


def test_bad_circuit_default_backend(capsys, tmp_path):
    src = tmp_path / "bad.qasm"
    src.write_text(BAD_CIRCUITS["unknown_gate"])
    out = tmp_path / "out.h5"
    _assert_one_line_error(main(["run", str(src), "--out", str(out)]), capsys.readouterr().err,
                           out)


BAD_OPTIONS = {
    "missing_file": (["run", "{tmp}/nope.qasm"], "no such file"),
    "directory_as_circuit": (["run", "{tmp}"], "not a file"),
    "negative_shots": (["run", "{bell}", "--shots", "-1"], "shots"),
    "negative_shots_eq": (["run", "{bell}", "--shots=-5"], "shots"),
    "non_integer_shots": (["run", "{bell}", "--shots", "1.5"], "shots"),
    "negative_seed": (["run", "{bell}", "--seed", "-3"], "seed"),
    "huge_seed": (["run", "{bell}", "--seed", str(1 << 64)], "seed"),
    "unknown_precision": (["run", "{bell}", "--precision", "quad"], "precision"),
    "unknown_backend": (["run", "{bell}", "--backend", "warp-drive"], "backend"),
    "unknown_option": (["run", "{bell}", "--frobnicate"], "--frobnicate"),
    "missing_circuit": (["run"], "CIRCUIT"),
    "no_command": ([], "missing command"),
    "unknown_command": (["explode"], "explode"),
    "out_dir_missing": (["run", "{bell}", "--out", "{tmp}/no/such/dir/r.h5"], "does not exist"),
    "out_is_directory": (["run", "{bell}", "--out", "{tmp}"], "directory"),
    "save_state_without_out": (["run", "{bell}", "--save-state"], "--out"),
    "out_overwrites_circuit": (["run", "{tmp}/copy.qasm", "--out", "{tmp}/copy.qasm"],
                               "overwrite"),
    "checkpoint_dir_missing": (["run", "{bell}", "--checkpoint", "{tmp}/no/c.ckpt"],
                               "does not exist"),
    "checkpoint_every_negative": (["run", "{bell}", "--checkpoint", "{tmp}/c.ckpt",
                                   "--checkpoint-every", "-1"], "seconds"),
    "checkpoint_gates_zero": (["run", "{bell}", "--checkpoint", "{tmp}/c.ckpt",
                               "--checkpoint-gates", "0"], "positive integer"),
    "checkpoint_gates_alone": (["run", "{bell}", "--checkpoint-gates", "5"], "--checkpoint"),
    "resume_missing": (["run", "{bell}", "--resume", "{tmp}/none.ckpt"], "no such file"),
    "resume_not_a_checkpoint": (["run", "{bell}", "--resume", "{bell}"], "damaged"),
    "split_shots_on_statevector": (["run", "{bell}", "--split-shots"], "distributed backend"),
    "split_shots_on_reference": (["run", "{bell}", "--split-shots", "--backend", "reference"],
                                 "distributed backend"),
    "shot_block_zero": (["run", "{bell}", "--split-shots", "--shot-block", "0"], "positive integer"),
    "shot_block_negative": (["run", "{bell}", "--split-shots", "--shot-block", "-2"],
                            "shot block"),
    "shot_block_not_integer": (["run", "{bell}", "--split-shots", "--shot-block", "1e3"],
                               "shot block"),
    "shot_block_alone": (["run", "{bell}", "--shot-block", "64"], "--split-shots"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_options(capsys, tmp_path, case):
    args, needle = BAD_OPTIONS[case]
    out = tmp_path / "out.h5"
    (tmp_path / "copy.qasm").write_text(BELL.read_text())
    args = [a.format(tmp=tmp_path, bell=BELL) for a in args]
    if args and args[0] == "run" and "--out" not in args and "--save-state" not in args:
        args += ["--out", str(out)]
    line = _assert_one_line_error(main(args), capsys.readouterr().err)
    assert needle in line
    assert not out.exists()


def test_error_keeps_existing_results_file(capsys, tmp_path):
    out = tmp_path / "out.h5"
    assert main(["run", str(BELL), "--backend", "reference", "--out", str(out), "--seed", "1"]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    src = tmp_path / "bad.qasm"
    src.write_text(BAD_CIRCUITS["repeated_qubit"])
    _assert_one_line_error(main(["run", str(src), "--backend", "reference", "--out", str(out)]),
                           capsys.readouterr().err)
    assert out.read_bytes() == before


def test_keyboard_interrupt(capsys, tmp_path, monkeypatch):
    from qsim_dist.backends.reference import ReferenceBackend

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ReferenceBackend, "run", interrupted)
    out = tmp_path / "out.h5"
    rc = main(["run", str(BELL), "--backend", "reference", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 130
    assert err.splitlines() == ["qsim-dist: interrupted"]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_out_of_memory_is_one_line(capsys, tmp_path, monkeypatch):
    from qsim_dist.backends.reference import ReferenceBackend

    def too_big(self, *args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(ReferenceBackend, "run", too_big)
    out = tmp_path / "out.h5"
    rc = main(["run", str(BELL), "--backend", "reference", "--out", str(out)])
    assert "memory" in _assert_one_line_error(rc, capsys.readouterr().err, out)


# ---- the real console script ------------------------------------------------------------------

def test_console_script_happy_path(tmp_path):
    out = tmp_path / "bell.h5"
    proc = _subprocess(["run", str(BELL), "--json", "--seed", "1", "--shots", "100",
                        "--backend", "reference", "--save-state", "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert sum(summary["counts"].values()) == 100 and set(summary["counts"]) <= {"00", "11"}
    with h5py.File(out) as f:
        assert f.attrs["shots"] == 100 and f.attrs["seed"] == 1
        np.testing.assert_allclose(f["statevector"][()], np.array([1, 0, 0, 1]) / np.sqrt(2),
                                   atol=1e-12)


def test_console_script_errors(tmp_path):
    bad = tmp_path / "bad.qasm"
    bad.write_text(BAD_CIRCUITS["malformed"])
    out = tmp_path / "out.h5"
    cases = [
        ["run", str(bad), "--out", str(out)],
        ["run", str(tmp_path / "missing.qasm"), "--out", str(out)],
        ["run", str(BELL), "--shots", "-1", "--out", str(out)],
        ["run", str(BELL), "--precision", "half", "--out", str(out)],
        ["run", str(BELL), "--backend", "nope", "--out", str(out)],
    ]
    for args in cases:
        proc = _subprocess(args, tmp_path)
        _assert_one_line_error(proc.returncode, proc.stderr, out)
        assert proc.stdout == ""


def test_errors_do_not_import_jax(tmp_path):
    """A mistake is reported before any heavy import (the CLI answers at once)."""
    bad = tmp_path / "bad.qasm"
    bad.write_text(BAD_CIRCUITS["unknown_gate"])
    code = ("import sys; from qsim_dist.cli import main; "
            f"rc = main(['run', {str(bad)!r}]); "
            "print(rc, 'jax' in sys.modules, 'numba' in sys.modules, 'mpi4py' in sys.modules)")
    proc = _subprocess(["-c", code], tmp_path, command=[sys.executable])
    assert proc.stdout.split() == ["2", "False", "False", "False"], proc.stderr


def test_console_script_info_json(tmp_path):
    proc = _subprocess(["info", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["qsim_dist"] == qsim_dist.__version__
    for key in ("python", "numpy", "jax", "cpu_kernels", "numba", "h5py", "mpi4py", "cpu_count"):
        assert key in info
    assert info["jax"]["version"] != "not installed"
    assert info["jax"]["devices"] and info["jax"]["default_backend"]
    assert info["cpu_count"] >= 1
    assert info["cpu_kernels"].startswith("compiled, ")
    if info["mpi4py"]["version"] != "not installed":
        assert info["mpi4py"]["library"]


# ---- under mpiexec ----------------------------------------------------------------------------

GHZ_GLOBAL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[8];
creg c[8];
h q[7];
cx q[7],q[0];
cx q[0],q[3];
ry(0.7) q[6];
ccx q[6],q[7],q[1];
measure q -> c;
"""


def _mpiexec(ranks: int, args: list[str], cwd: Path):
    mpiexec = Path(sys.executable).parent / "mpiexec"
    assert mpiexec.exists(), "the MPI extra (mpich wheel) provides mpiexec in the venv"
    return _subprocess(["-n", str(ranks)] + _cli_command() + args, cwd,
                       command=[str(mpiexec)])


def test_stats_on_one_process(capsys):
    assert main(["run", str(BELL), "--json", "--stats", "--seed", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["exchanges"] == 0 and summary["bytes_sent"] == 0 and summary["ranks"] == 1
    assert main(["run", str(BELL), "--json", "--seed", "3"]) == 0
    assert "bytes_sent" not in json.loads(capsys.readouterr().out)


def test_mpiexec_picks_distributed_and_reports_once(tmp_path):
    circuit = tmp_path / "ghz.qasm"
    circuit.write_text(GHZ_GLOBAL)
    args = ["run", str(circuit), "--json", "--stats", "--seed", "11", "--shots", "300"]
    single = json.loads(_subprocess(args, tmp_path).stdout)
    proc = _mpiexec(4, args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # one JSON document: rank 0 alone prints
    assert summary["backend"] == "distributed" and summary["ranks"] == 4
    assert summary["counts"] == single["counts"]
    assert summary["exchanges"] > 0 and summary["bytes_sent"] > 0
    assert len(summary["comm_time_s"]) == len(summary["compute_time_s"]) == 4


DYNAMIC = HEADER + """h q[0];
measure q[0] -> c[0];
if(c==1) x q[1];
ry(0.4) q[0];
measure q -> c;
"""


def test_split_shots_counts_do_not_depend_on_the_rank_count(tmp_path):
    circuit = tmp_path / "dynamic.qasm"
    circuit.write_text(DYNAMIC)
    common = ["run", str(circuit), "--json", "--stats", "--seed", "5", "--shots", "1000",
              "--backend", "distributed", "--noise", str(EXAMPLES / "noise.toml")]
    args = common + ["--split-shots", "--shot-block", "64", "--out", "r.h5"]
    one = _subprocess(args, tmp_path)
    assert one.returncode == 0, one.stderr
    single = json.loads(one.stdout)
    assert single["shot_split"] == {"blocks": 16, "block_shots": 64, "ranks": 1,
                                    "group_ranks": 1, "groups": 1}
    proc = _mpiexec(2, args[:-1] + ["r2.h5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["counts"] == single["counts"] and sum(single["counts"].values()) == 1000
    assert summary["shot_split"] == {"blocks": 16, "block_shots": 64, "ranks": 2,
                                     "group_ranks": 1, "groups": 2}
    assert len(summary["compute_time_s"]) == 2
    with h5py.File(tmp_path / "r2.h5") as f:
        assert f.attrs["shots"] == 1000
    # a different block size is a different run; without --split-shots the run is not split
    other = json.loads(_subprocess(common + ["--split-shots", "--shot-block", "100"],
                                   tmp_path).stdout)
    assert other["shot_split"]["blocks"] == 10 and other["counts"] != single["counts"]
    plain = json.loads(_subprocess(common, tmp_path).stdout)
    assert "shot_split" not in plain


def test_mpiexec_user_error_ends_every_rank(tmp_path):
    bad = tmp_path / "bad.qasm"
    bad.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncx q[0],q[0];\n')
    proc = _mpiexec(2, ["run", str(bad), "--out", str(tmp_path / "r.h5")], tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "more than once" in proc.stderr
    assert not (tmp_path / "r.h5").exists()
    proc = _mpiexec(2, ["run", str(bad), "--backend", "statevector"], tmp_path)
    assert proc.returncode == 2 and "--backend distributed" in proc.stderr


# ---- noise ------------------------------------------------------------------------------------

def test_noise_model_changes_the_counts(capsys):
    args = ["run", str(BELL), "--json", "--seed", "2", "--shots", "4000"]
    assert main(args) == 0
    clean = json.loads(capsys.readouterr().out)["counts"]
    assert set(clean) == {"00", "11"}
    assert main(args + ["--noise", str(EXAMPLES / "noise.toml")]) == 0
    noisy = json.loads(capsys.readouterr().out)
    assert noisy["noise_model"].endswith("noise.toml")
    # readout errors of 1% and 3% alone give ~80 of 4000 shots in 01/10
    odd = noisy["counts"].get("01", 0) + noisy["counts"].get("10", 0)
    assert 30 < odd < 250, noisy["counts"]


@pytest.mark.parametrize("text", [None, "not = [valid toml", "[[gate]]\ngates='h'\nchannel='bogus'\n",
                                  "[[gate]]\ngates='h'\nchannel='depolarizing'\np=1.5\n"])
def test_bad_noise_model(capsys, tmp_path, text):
    noise = tmp_path / "noise.toml"
    if text is not None:
        noise.write_text(text)
    out = tmp_path / "r.h5"
    rc = main(["run", str(BELL), "--noise", str(noise), "--out", str(out)])
    _assert_one_line_error(rc, capsys.readouterr().err, out)


# ---- checkpoint / resume ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["statevector", "reference"])
def test_sigkill_then_resume(tmp_path, backend):
    """A run killed with SIGKILL right after a checkpoint resumes to the same state and counts."""
    import signal
    import time

    from qsim_dist import library
    from qsim_dist.io.hdf5 import load_result
    from qsim_dist.io.qasm import dumps

    c = library.random_circuit(12, 60, seed=3)
    c.measure_all()
    (tmp_path / "c.qasm").write_text(dumps(c))
    common = ["run", "c.qasm", "--shots", "300", "--backend", backend, "--save-state"]
    whole = _subprocess(common + ["--seed", "9", "--out", "whole.h5"], tmp_path)
    assert whole.returncode == 0, whole.stderr
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(_cli_command() + common + [
        "--seed", "9", "--out", "never.h5", "--checkpoint", "c.ckpt", "--checkpoint-every", "0",
        "--checkpoint-gates", "20"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (tmp_path / "c.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "c.ckpt").exists() and not (tmp_path / "never.h5").exists()
    resumed = _subprocess(common + ["--resume", "c.ckpt", "--out", "resumed.h5", "--json"],
                          tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["seed"] == 9 and summary["resumed_at_gate"] >= 20
    a, b = load_result(tmp_path / "whole.h5"), load_result(tmp_path / "resumed.h5")
    assert a.counts == b.counts
    np.testing.assert_allclose(a.statevector, b.statevector, atol=1e-5)


def test_resume_of_another_circuit_is_refused(capsys, tmp_path):
    ckpt = tmp_path / "c.ckpt"
    assert main(["run", str(BELL), "--checkpoint", str(ckpt), "--checkpoint-every", "0"]) == 0
    capsys.readouterr()
    other = tmp_path / "other.qasm"
    other.write_text(HEADER + "x q[0];\nmeasure q -> c;\n")
    line = _assert_one_line_error(main(["run", str(other), "--resume", str(ckpt)]),
                                  capsys.readouterr().err)
    assert "another circuit" in line
