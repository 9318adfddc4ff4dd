"""Generated ``qsim-dist`` command lines, good and bad, against the command line's contract:

- exit status 0, or 2 with exactly one line ``qsim-dist: error: ...`` on stderr and no traceback;
- after a failure nothing is written: no file at a new ``--out`` / ``--checkpoint`` / ``--plot``
  path, an existing file there untouched, a FIFO or directory still what it was, no temporary
  file left beside them;
- after a success every requested output file is a complete, readable file.

The command lines are drawn by :func:`random_command` from a vocabulary of options with good and
bad values (numbers out of range, non-finite, not numbers), circuit, noise and network files
(good, missing, empty, directories, malformed, non-finite parameters) and output targets
(new paths, existing files, directories, FIFOs, symlinks, paths in missing directories or under
/proc). ``python tests/test_cli_fuzz.py N`` runs N of them outside pytest and prints how many
broke the contract (the count the closing note of the hardening issue gives).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import stat
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qsim_dist.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\n'
CIRCUITS = {
    "good": HEADER + "h q[0];\ncx q[0],q[1];\nrz(0.3) q[2];\nmeasure q -> c;\n",
    "dynamic": HEADER + "h q[0];\nmeasure q[0] -> c[0];\nif(c==1) x q[1];\nmeasure q -> c;\n",
    "nan_angle": HEADER + "rz(nan) q[0];\nmeasure q -> c;\n",
    "inf_angle": HEADER + "rx(1e400) q[0];\nmeasure q -> c;\n",
    "overflow": HEADER + "ry(1e308*10) q[0];\nmeasure q -> c;\n",
    "negative_index": HEADER + "h q[-1];\nmeasure q -> c;\n",
    "out_of_range": HEADER + "h q[7];\n",
    "malformed": HEADER + "h q[0\n",
    "unknown_gate": HEADER + "frob q[0];\n",
    "empty": "",
    "binary": "\x00\x01\x02garbage\xff",
    "deep": HEADER + "rz(" + "(" * 5000 + "1" + ")" * 5000 + ") q[0];\n",
}
NOISE = {
    "good": (EXAMPLES / "noise.toml").read_text(),
    "nan_p": '[[gate]]\ngates = "h"\nchannel = "depolarizing"\np = nan\n',
    "negative_p": '[[gate]]\ngates = "h"\nchannel = "depolarizing"\np = -0.1\n',
    "inf_time": ('[[gate]]\ngates = "h"\nchannel = "thermal_relaxation"\nt1 = 1e-4\nt2 = 8e-5\n'
                 'time = inf\n'),
    "readout_big": "[[readout]]\np01 = 2.0\np10 = 0.1\n",
    "qubit_absent": '[[readout]]\nqubits = [9]\np01 = 0.1\np10 = 0.1\n',
    "not_toml": "[[gate\n",
}
NETWORKS = {
    "good": (EXAMPLES / "network_pair.toml").read_text(),
    "inf_attempt": (EXAMPLES / "network_pair.toml").read_text().replace(
        "[links.AB]", "[links.AB]\nattempt_time = inf", 1),
}
NUMBERS = ["0", "1", "3", "17", "-1", "-5", "1.5", "nan", "inf", "1e400", "abc", "",
           "99999999999999999999999", "0x10", " 2"]


def _file(workdir: Path, name: str, text: str | None) -> str:
    """``text`` written at ``workdir/name`` (None: a directory there; "missing": nothing)."""
    path = workdir / name
    if text is None:
        path.mkdir()
    elif text != "missing":
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return str(path)


def _output(rng: random.Random, workdir: Path, name: str, suffix: str) -> tuple[str, str]:
    """An output target for an option and its kind."""
    kind = rng.choice(["new", "new", "existing", "directory", "fifo", "symlink_fifo",
                       "symlink_new", "missing_dir", "proc"])
    path = workdir / f"{name}{suffix}"
    if kind == "existing":
        path.write_bytes(b"previous content")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink_fifo":
        os.mkfifo(workdir / f"{name}.fifo")
        path.symlink_to(workdir / f"{name}.fifo")
    elif kind == "symlink_new":
        path.symlink_to(workdir / f"{name}.target{suffix}")
    elif kind == "missing_dir":
        path = workdir / "no" / "such" / f"{name}{suffix}"
    elif kind == "proc":
        path = Path("/proc/self") / f"{name}{suffix}"
    return str(path), kind


def random_command(rng: random.Random, workdir: Path) -> tuple[list[str], dict[str, tuple]]:
    """A command line and its output targets (option -> (path, kind))."""
    outputs: dict[str, tuple] = {}
    if rng.random() < 0.2:
        argv = ["dqc", _file(workdir, "c.qasm", CIRCUITS[rng.choice(["good", "good",
                                                                       "nan_angle"])]),
                "--network", _file(workdir, "n.toml", rng.choice(
                    [NETWORKS["good"], NETWORKS["good"], NETWORKS["inf_attempt"], "missing"]))]
        argv += ["--shots", rng.choice(["3", "5", "-1", "nan"])]
        if rng.random() < 0.6:
            outputs["--out"] = _output(rng, workdir, "report", ".h5")
        if rng.random() < 0.1:
            outputs["--plot"] = _output(rng, workdir, "schedule", ".png")
        if rng.random() < 0.3:
            argv += ["--precision", "single"]   # dqc has no --precision: refused
    else:
        circuit = rng.choice(list(CIRCUITS) + ["good"] * 6 + ["missing", "directory"])
        text = {"missing": "missing", "directory": None}.get(circuit, CIRCUITS.get(circuit))
        argv = ["run", _file(workdir, "c.qasm", text)]
        argv += ["--shots", rng.choice(["5", "20"] * 4 + NUMBERS)]
        if rng.random() < 0.5:
            argv += ["--seed", rng.choice(["1", "7"] * 3 + NUMBERS)]
        if rng.random() < 0.3:
            argv += ["--precision", rng.choice(["single", "double", "half", ""])]
        if rng.random() < 0.3:
            argv += ["--backend", rng.choice(["statevector", "reference", "distributed",
                                               "gpu"])]
        if rng.random() < 0.25:
            argv += ["--noise", _file(workdir, "noise.toml", rng.choice(
                list(NOISE.values()) + ["missing", None]))]
        if rng.random() < 0.5:
            outputs["--out"] = _output(rng, workdir, "results", ".h5")
            if rng.random() < 0.3:
                argv.append("--save-state")
        if rng.random() < 0.2:
            outputs["--checkpoint"] = _output(rng, workdir, "run", ".ckpt")
            if rng.random() < 0.5:
                argv += ["--checkpoint-every", rng.choice(["0", "1", "-1", "nan", "inf"])]
        if rng.random() < 0.1:
            argv += ["--resume", rng.choice([str(workdir), str(workdir / "none.ckpt"),
                                             _file(workdir, "junk.ckpt", "not hdf5")])]
        if rng.random() < 0.1:
            argv += [rng.choice(["--checkpoint-gates", "--shot-block"]), rng.choice(NUMBERS)]
        if rng.random() < 0.1:
            argv.append(rng.choice(["--split-shots", "--json", "--stats", "--frobnicate"]))
    for option, (path, _) in outputs.items():
        argv += [option, path]
    return argv, outputs


def _snapshot(path: str):
    """What is at ``path`` now: its kind and, for a regular file, its bytes."""
    try:
        st_ = os.lstat(path)
    except OSError:
        return ("absent",)
    if stat.S_ISREG(st_.st_mode):
        return ("file", Path(path).read_bytes())
    if stat.S_ISLNK(st_.st_mode):
        return ("link", os.readlink(path), _snapshot(os.path.realpath(path))
                if os.path.realpath(path) != path else None)
    return ("other", stat.S_IFMT(st_.st_mode))


def check_contract(argv: list[str], outputs: dict[str, tuple], workdir: Path) -> str | None:
    """Run ``argv``; None if the contract holds, else what broke."""
    before = {option: _snapshot(path) for option, (path, _) in outputs.items()}
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
    except BaseException as exc:  # noqa: BLE001 - any escape breaks the contract
        return f"raised {type(exc).__name__}: {exc}"
    lines = err.getvalue().splitlines()
    if rc not in (0, 2):
        return f"exit status {rc}: {err.getvalue()[-300:]}"
    if rc == 2:
        if len(lines) != 1 or not lines[0].startswith("qsim-dist: error: ") \
                or "Traceback" in err.getvalue():
            return f"not one error line: {err.getvalue()[-300:]!r}"
        for option, (path, kind) in outputs.items():
            if _snapshot(path) != before[option]:
                return f"{option} {kind} changed by a failed run"
    else:
        if "Traceback" in err.getvalue():
            return f"traceback on success: {err.getvalue()[-300:]}"
        for option, (path, kind) in outputs.items():
            if kind not in ("new", "existing", "symlink_new"):
                return f"{option} accepted a {kind} target ({path})"
            if option == "--checkpoint" and kind != "existing" and not os.path.lexists(path):
                continue   # written only once --checkpoint-every seconds have passed
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                return f"{option} {path} not written"
    leftovers = [p.name for p in workdir.rglob("*") if ".tmp" in p.name]
    if leftovers:
        return f"temporary files left: {leftovers}"
    return None


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False))
def test_generated_command_lines_keep_the_contract(rng):
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        argv, outputs = random_command(rng, workdir)
        problem = check_contract(argv, outputs, workdir)
        assert problem is None, f"qsim-dist {' '.join(argv)}: {problem}"


@pytest.mark.parametrize("circuit", ["nan_angle", "inf_angle", "overflow", "negative_index",
                                     "deep"])
def test_numbers_a_circuit_must_not_hold(tmp_path, circuit):
    argv = ["run", _file(tmp_path, "c.qasm", CIRCUITS[circuit]), "--shots", "5"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 2
    assert err.getvalue().startswith("qsim-dist: error: ")


def _count(n: int) -> int:
    import signal

    def hang(*_):
        raise TimeoutError("no answer within 60 s")

    signal.signal(signal.SIGALRM, hang)
    broken = 0
    for seed in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            argv, outputs = random_command(random.Random(seed), Path(tmp))
            signal.alarm(60)
            problem = check_contract(argv, outputs, Path(tmp))
            signal.alarm(0)
            if problem is not None:
                broken += 1
                print(f"[{seed}] qsim-dist {' '.join(argv)}\n    {problem[:200]}",
                      file=sys.__stdout__)
    print(f"{broken} of {n} generated command lines broke the contract", file=sys.__stdout__)
    return broken


if __name__ == "__main__":
    _count(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
