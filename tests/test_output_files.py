"""Every file the package writes: only regular files, atomically, one line for every failure.

Generated inputs: the kind of thing at an output path (regular file, new name, directory,
missing directory, FIFO, device node, socket, symlinks to each, /proc and /sys paths, a symlink
loop, a name under a regular file) for every writer, through the API and the CLI; a full disk
at every write (the writes fail after a generated number of bytes); generated corruptions of a
checkpoint (non-finite amplitudes, wrong norm, wrong type, wrong size, truncated file, flipped
bytes, damaged header). The contract: a QsimDistError subclass (API) or exit status 2 with one
line on stderr and no traceback (CLI); whatever was at the path is untouched; no temporary file
is left; a valid path gets the complete file.

Device nodes are made with mknod inside the test's own directory (never /dev/null itself: code
without the check, run as root, would replace it for the whole machine). We run as root here,
so a read-only directory does not stop a write; the cases that do stop root (FIFO, device,
/proc, /sys) are the ones generated.

Set QSIM_COUNT_FAILURES=FILE to run every generated example to the end and append one line per
example ("test-name 1" held, "test-name 0" failed) to FILE, instead of failing (used to count
how many inputs the code before the fix got wrong).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qsim_dist import cli
from qsim_dist.backends import get_backend
from qsim_dist.circuit import Circuit
from qsim_dist.errors import QsimDistError
from qsim_dist.io.checkpoint import CheckpointError, Checkpointing
from qsim_dist.io.hdf5 import load_result, save_result
from qsim_dist.io.qasm import dump
from qsim_dist.results import Result

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BELL = str(EXAMPLES / "bell.qasm")
QFT = str(EXAMPLES / "qft.qasm")
NOISE = str(EXAMPLES / "noise.toml")
DQC = str(EXAMPLES / "dqc_small.qasm")
PAIR = str(EXAMPLES / "network_pair.toml")

COUNT = os.environ.get("QSIM_COUNT_FAILURES")
FAST = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def counted(fn):
    """Under QSIM_COUNT_FAILURES, record whether each example held instead of failing."""
    if not COUNT:
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        held = 1
        try:
            fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - any failure counts (pytest's are BaseException)
            held = 0
        with open(COUNT, "a") as f:
            f.write(f"{fn.__name__} {held}\n")

    return wrapper


# ---- what is at a path --------------------------------------------------------------------

BAD = ["dir", "missing_dir", "fifo", "symlink_fifo", "device", "symlink_device", "symlink_devnull",
       "symlink_dir", "socket", "symlink_loop", "under_file", "proc_new", "proc_file",
       "symlink_proc", "sys_new"]
GOOD = ["regular", "new", "symlink_regular", "dangling_symlink"]
OLD = b"previous contents\n"


def make_path(kind: str, d: Path, suffix: str) -> str:
    """Create a ``kind`` of thing in directory ``d``; return the path a writer is given."""
    p = d / f"target{suffix}"
    if kind == "regular":
        p.write_bytes(OLD)
    elif kind == "new":
        pass
    elif kind == "symlink_regular":
        (d / "real.bin").write_bytes(OLD)
        p.symlink_to(d / "real.bin")
    elif kind == "dangling_symlink":
        p.symlink_to(d / f"not-yet{suffix}")
    elif kind == "dir":
        p.mkdir()
        (p / "inside").write_bytes(OLD)
    elif kind == "missing_dir":
        p = d / "no-such-dir" / f"target{suffix}"
    elif kind in ("fifo", "symlink_fifo"):
        os.mkfifo(d / "fifo")
        if kind == "fifo":
            p = d / "fifo"
        else:
            p.symlink_to(d / "fifo")
    elif kind in ("device", "symlink_device"):
        try:  # a null device of our own, never /dev/null itself
            os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except (PermissionError, OSError):
            assume(False)
        if kind == "device":
            p = d / "null"
        else:
            p.symlink_to(d / "null")
    elif kind == "symlink_devnull":
        p.symlink_to("/dev/null")
    elif kind == "symlink_dir":
        (d / "adir").mkdir()
        p.symlink_to(d / "adir")
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        try:
            s.bind(str(d / "sock"))
        except OSError:
            assume(False)
        finally:
            s.close()
        p = d / "sock"
    elif kind == "symlink_loop":
        p.symlink_to(d / f"loop{suffix}")
        (d / f"loop{suffix}").symlink_to(p)
    elif kind == "under_file":
        (d / "afile").write_bytes(OLD)
        p = d / "afile" / f"target{suffix}"
    elif kind == "proc_new":
        return f"/proc/self/qsim-test{suffix}"
    elif kind == "proc_file":
        return "/proc/self/status"
    elif kind == "symlink_proc":
        p.symlink_to("/proc/self/status")
    elif kind == "sys_new":
        return f"/sys/qsim-test{suffix}"
    else:
        raise AssertionError(kind)
    return str(p)


def snapshot(path: str, d: Path):
    """What is at ``path`` and what ``d`` holds, to compare before and after."""
    def one(p: Path):
        try:
            st_ = os.lstat(p)
        except OSError:
            return None
        if stat.S_ISLNK(st_.st_mode):
            return ("link", os.readlink(p))
        if stat.S_ISREG(st_.st_mode) and not str(p).startswith(("/proc", "/sys")):
            return ("file", p.read_bytes())
        if stat.S_ISDIR(st_.st_mode) and not str(p).startswith(("/proc", "/sys")):
            return ("dir", sorted(os.listdir(p)))
        return (stat.S_IFMT(st_.st_mode), st_.st_rdev)

    return one(Path(path)), {name: one(d / name) for name in sorted(os.listdir(d))}


def leftovers(d: Path) -> list[str]:
    return sorted(n for n in os.listdir(d) if ".tmp" in n or ".probe" in n)


# ---- the writers ----------------------------------------------------------------------------

def _result(statevector: bool = True) -> Result:
    psi = np.array([1, 0, 0, 1], dtype=np.complex128) / np.sqrt(2)
    return Result(num_qubits=2, num_clbits=2, shots=10, seed=1, precision="double",
                  backend="reference", counts={"00": 6, "11": 4},
                  statevector=psi if statevector else None, wall_time=0.0, compile_time=0.0,
                  circuit_name="bell", metadata={})


def _circuit(n: int = 3) -> Circuit:
    c = Circuit(n, n)
    c.add("h", 0)
    for q in range(1, n):
        c.add("cx", q - 1, q)
    for q in range(n):
        c.measure(q, q)
    return c


def w_results(p):
    save_result(_result(), p)


def w_checkpoint(p):
    get_backend("statevector").run(_circuit(), shots=5, seed=1, precision="double",
                                   checkpoint=Checkpointing(path=Path(p), every=0, gates=1))


def w_dist_results(p):
    b = get_backend("distributed")
    b.save_result(b.run(_circuit(), shots=5, seed=1, save_state=True), p)


def w_dist_checkpoint(p):
    get_backend("distributed").run(_circuit(), shots=5, seed=1,
                                   checkpoint=Checkpointing(path=Path(p), every=0, gates=1))


def w_qasm(p):
    dump(_circuit(), p)


def w_picture(p):
    pytest.importorskip("matplotlib")
    from qsim_dist.network.plots import plot_topology
    from qsim_dist.network.topology import load_network

    plot_topology(load_network(PAIR), p)


WRITERS = {"results": (w_results, ".h5"), "checkpoint": (w_checkpoint, ".h5"),
           "dist_results": (w_dist_results, ".h5"), "dist_checkpoint": (w_dist_checkpoint, ".h5"),
           "qasm": (w_qasm, ".qasm"), "picture": (w_picture, ".png")}


def _is_written(path: str, writer: str) -> bool:
    real = Path(os.path.realpath(path))
    if not real.is_file() or real.read_bytes() == OLD:
        return False
    if writer in ("results", "dist_results"):
        return load_result(real).counts != {}
    if writer.endswith("checkpoint"):
        with h5py.File(real, "r") as f:
            return "state" in f
    if writer == "qasm":
        return real.read_text().startswith("OPENQASM")
    return real.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@settings(FAST, max_examples=60)
@given(writer=st.sampled_from(sorted(WRITERS)), kind=st.sampled_from(BAD + GOOD))
@counted
def test_api_writers_write_only_regular_files(writer, kind):
    fn, suffix = WRITERS[writer]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        path = make_path(kind, d, suffix)
        before = snapshot(path, d)
        if kind in BAD:
            with pytest.raises(QsimDistError) as info:
                fn(path)
            assert "\n" not in str(info.value)
            assert snapshot(path, d) == before
        else:
            fn(path)
            assert _is_written(path, writer)
            if kind.endswith("symlink") or kind.startswith("symlink"):
                assert os.path.islink(path)  # the link is kept, its target written
        assert leftovers(d) == []


# ---- the same through the CLI -------------------------------------------------------------

def _main(argv, capsys) -> tuple[object, str]:
    try:
        rc = cli.main(argv)
    except BaseException as exc:  # noqa: BLE001 - a traceback breaks the contract
        rc = f"raised {type(exc).__name__}"
    return rc, capsys.readouterr().err


CLI = {"run --out": (lambda p: ["run", BELL, "--shots", "8", "--seed", "1", "--out", p], ".h5"),
       "run --out --save-state": (lambda p: ["run", BELL, "--shots", "8", "--out", p,
                                             "--save-state"], ".h5"),
       "run --checkpoint": (lambda p: ["run", BELL, "--shots", "8", "--checkpoint", p,
                                       "--checkpoint-every", "0"], ".h5"),
       "run distributed --out": (lambda p: ["run", BELL, "--shots", "8", "--backend",
                                            "distributed", "--out", p], ".h5"),
       "dqc --out": (lambda p: ["dqc", DQC, "--network", PAIR, "--shots", "8", "--out", p],
                     ".h5"),
       "dqc --plot": (lambda p: ["dqc", DQC, "--network", PAIR, "--shots", "8", "--plot", p],
                      ".png")}


@settings(FAST, max_examples=45)
@given(command=st.sampled_from(sorted(CLI)), kind=st.sampled_from(BAD))
@counted
def test_cli_refuses_every_path_that_is_not_a_regular_file(command, kind, capsys):
    build, suffix = CLI[command]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        path = make_path(kind, d, suffix)
        before = snapshot(path, d)
        capsys.readouterr()
        rc, err = _main(build(path), capsys)
        assert rc == 2, (rc, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert snapshot(path, d) == before
        assert leftovers(d) == []


@pytest.mark.parametrize("command", sorted(CLI))
@counted
def test_cli_writes_through_a_symlink_to_a_regular_file(command, capsys, tmp_path):
    build, suffix = CLI[command]
    if command == "dqc --plot":
        pytest.importorskip("matplotlib")
    path = make_path("symlink_regular", tmp_path, suffix)
    rc, err = _main(build(path), capsys)
    assert rc == 0, err
    assert os.path.islink(path) and (tmp_path / "real.bin").read_bytes() != OLD
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory: the "
                    "cases that stop root (FIFO, device, /proc, /sys) are generated above")
def test_read_only_directory_is_refused(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    rc, err = _main(["run", BELL, "--out", str(ro / "x.h5")], capsys)
    assert rc == 2 and err.count("\n") == 1 and "not writable" in err
    assert os.listdir(ro) == []


# ---- a full disk at every write -------------------------------------------------------------

class _Disk:
    """os.pwrite that fails with ENOSPC (or EIO, EDQUOT) once ``budget`` bytes are written."""

    def __init__(self, budget: int, code: int):
        self.left, self.code, self.real = budget, code, os.pwrite

    def __call__(self, fd, data, offset):
        n = len(memoryview(data).cast("B"))
        if n > self.left:
            raise OSError(self.code, os.strerror(self.code))
        self.left -= n
        return self.real(fd, data, offset)


@settings(FAST, max_examples=40)
@given(writer=st.sampled_from(sorted(WRITERS)), budget=st.integers(0, 200_000),
       code=st.sampled_from([errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG]),
       existing=st.booleans())
@counted
def test_full_disk_at_any_write_is_one_error_and_keeps_the_previous_file(writer, budget, code,
                                                                        existing):
    fn, suffix = WRITERS[writer]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        path = d / f"out{suffix}"
        if existing:
            path.write_bytes(OLD)
        disk = _Disk(budget, code)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "pwrite", disk)
            try:
                fn(str(path))
            except QsimDistError as exc:
                assert "\n" not in str(exc)
                failed = True
            else:
                failed = False
        if failed and writer.endswith("checkpoint") and path.exists() \
                and path.read_bytes() != OLD:
            # a run writes a checkpoint after every chunk: the last complete one is kept
            from qsim_dist.io.checkpoint import read_header

            assert read_header(path).position > 0
        elif failed:
            assert path.read_bytes() == OLD if existing else not path.exists()
        else:  # everything fitted in the budget
            assert disk.left >= 0 and _is_written(str(path), writer)
        assert leftovers(d) == []


@pytest.mark.parametrize("where", ["fsync", "replace", "interrupt"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
@counted
def test_failure_after_the_data_keeps_the_previous_file(writer, where, tmp_path, monkeypatch):
    fn, suffix = WRITERS[writer]
    path = tmp_path / f"out{suffix}"
    path.write_bytes(OLD)

    def fail(*args, **kwargs):
        if where == "interrupt":
            raise KeyboardInterrupt
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync" if where != "replace" else "replace", fail)
    with pytest.raises(KeyboardInterrupt if where == "interrupt" else QsimDistError):
        fn(str(path))
    monkeypatch.undo()
    assert path.read_bytes() == OLD
    assert leftovers(tmp_path) == []


def _qasm(n: int) -> str:
    return ("OPENQASM 2.0;\ninclude \"qelib1.inc\";\n" + f"qreg q[{n}];\ncreg c[{n}];\n"
            + "".join(f"h q[{i}];\nrx(0.{i + 1}) q[{i}];\n" for i in range(n))
            + "".join(f"cx q[{i}],q[{i + 1}];\n" for i in range(n - 1))
            + "measure q -> c;\n")


# The kernel refuses writes past RLIMIT_FSIZE with EFBIG, as a full disk refuses them with
# ENOSPC: a real failing write under HDF5 (a segmentation fault before the fix).
_LIMITED = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0})); "
            "from qsim_dist.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("option", [["--checkpoint", "{}", "--checkpoint-every", "0"],
                                    ["--out", "{}", "--save-state"]])
@counted
def test_real_failing_write_under_hdf5_is_one_line(option, tmp_path):
    circuit = tmp_path / "c.qasm"
    circuit.write_text(_qasm(12))  # 64 KiB of double amplitudes
    target = tmp_path / "out.h5"
    target.write_bytes(OLD)
    argv = ["run", str(circuit), "--precision", "double", "--shots", "4"] + \
        [a.format(target) for a in option]
    env = dict(os.environ, OMP_NUM_THREADS="1", JAX_PLATFORMS="cpu", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", _LIMITED.format(16384)] + argv,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert target.read_bytes() == OLD
    assert leftovers(tmp_path) == []


# ---- checkpoints: noise channels, content, directories -------------------------------------

@counted
def test_checkpoint_and_resume_with_gate_noise_through_the_cli(tmp_path, capsys):
    ck = str(tmp_path / "ck.h5")
    common = ["run", QFT, "--noise", NOISE, "--shots", "60", "--json"]
    rc, err = _main(common + ["--seed", "5"], capsys)
    assert rc == 0, err
    rc, err = _main(common + ["--seed", "5", "--checkpoint", ck, "--checkpoint-every", "0"],
                    capsys)
    assert rc == 0, err
    rc, err = _main(common + ["--resume", ck], capsys)
    assert rc == 0, err


def test_resumed_noisy_run_gives_the_uninterrupted_counts(tmp_path):
    from qsim_dist.noise import load_noise_model
    from qsim_dist.io.qasm import load

    c, noise = load(QFT), load_noise_model(NOISE)
    b = get_backend("statevector")
    whole = b.run(c, shots=80, seed=9, noise=noise)
    ck = tmp_path / "ck.h5"
    b.run(c, shots=80, seed=9, noise=noise, checkpoint=Checkpointing(path=ck, every=0, gates=1))
    resumed = b.run(c, shots=80, noise=noise, checkpoint=Checkpointing(resume=ck))
    assert resumed.counts == whole.counts


@settings(FAST, max_examples=20)
@given(which=st.sampled_from(["depolarizing", "bit_flip", "phase_flip", "amplitude_damping",
                              "phase_damping", "thermal_relaxation", "pauli", "kraus"]),
       p=st.floats(0.01, 0.4))
@counted
def test_fingerprint_covers_every_channel_kind(which, p):
    from qsim_dist import noise as nz
    from qsim_dist.io.checkpoint import fingerprint

    def channel(p):
        if which == "thermal_relaxation":
            return nz.thermal_relaxation(1e-4, 8e-5, p * 1e-4)
        if which == "pauli":
            return nz.pauli_channel({"X": p, "Z": p / 2})
        if which == "kraus":
            k0 = np.sqrt(1 - p) * np.eye(2)
            return nz.kraus([k0, np.sqrt(p) * np.array([[0, 1], [1, 0]])])
        return getattr(nz, which)(p)

    c = _circuit(2)
    prints = []
    for q in (p, p / 2):
        model = nz.NoiseModel()
        model.add_gate_error(channel(q), ["h"])
        prints.append(fingerprint(2, 2, model.lower(c).ops))
    assert prints[0] != prints[1]  # another channel parameter is another run
    model = nz.NoiseModel()
    model.add_gate_error(channel(p), ["h"])
    assert fingerprint(2, 2, model.lower(c).ops) == prints[0]


def _corrupt(path: Path, how: str, x: float, precision: str) -> None:
    if how in ("truncate", "flip"):
        data = bytearray(path.read_bytes())
        if how == "truncate":
            path.write_bytes(bytes(data[:int(len(data) * x)]))
        else:
            i = int(len(data) * (0.5 + 0.5 * x)) % len(data)
            data[i] ^= 0xFF
            data[-1 - (i % 97)] ^= 0x55
            path.write_bytes(bytes(data))
        return
    with h5py.File(path, "r+") as f:
        psi = f["state"][()]
        attrs = dict(f.attrs)
        if how == "nan":
            psi[int(x * (psi.size - 1))] = np.nan
        elif how == "inf":
            psi[int(x * (psi.size - 1))] = complex(np.inf, 0)
        elif how == "scale":  # a norm clearly off 1
            psi = psi * (1.3 + 2 * x if x > 0.5 else 0.05 + 0.8 * x)
        elif how == "zero":
            psi = np.zeros_like(psi)
        elif how in ("dtype", "real"):
            del f["state"]
            other = np.complex128 if precision == "single" else np.complex64
            f.create_dataset("state", data=psi.real if how == "real" else psi.astype(other))
            return
        elif how in ("short", "long"):
            del f["state"]
            f.create_dataset("state", data=psi[: psi.size // 2] if how == "short"
                             else np.concatenate([psi, psi]))
            return
        elif how == "missing":
            del f["state"]
            return
        elif how == "qubits":
            f.attrs["num_qubits"] = np.int64(-3 if x < 0.5 else 99)
            return
        elif how == "precision":
            f.attrs["precision"] = "quad"
            return
        elif how == "format":
            f.attrs["format_version"] = np.int64(7)
            return
        del attrs
        f["state"][...] = psi


CORRUPTIONS = ["nan", "inf", "scale", "zero", "dtype", "real", "short", "long", "missing",
               "truncate", "flip", "qubits", "precision", "format"]


@settings(FAST, max_examples=50)
@given(how=st.sampled_from(CORRUPTIONS), x=st.floats(0.0, 0.999),
       precision=st.sampled_from(["single", "double"]),
       backend=st.sampled_from(["statevector", "distributed"]), through_cli=st.booleans())
@counted
def test_corrupted_checkpoint_is_refused_in_one_line(how, x, precision, backend, through_cli):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        circuit = d / "c.qasm"
        circuit.write_text(_qasm(6))
        ck = d / "ck.h5"
        rc = cli.main(["run", str(circuit), "--shots", "10", "--seed", "3", "--precision",
                       precision, "--backend", backend, "--checkpoint", str(ck),
                       "--checkpoint-every", "0", "--checkpoint-gates", "4"])
        assert rc == 0 and ck.is_file()
        _corrupt(ck, how, x, precision)
        if through_cli:
            out = io.StringIO()
            with contextlib.redirect_stderr(out):
                try:
                    rc = cli.main(["run", str(circuit), "--shots", "10", "--precision",
                                   precision, "--backend", backend, "--resume", str(ck)])
                except BaseException as exc:  # noqa: BLE001
                    rc = f"raised {type(exc).__name__}"
            err = out.getvalue()
            assert rc == 2, (rc, err)
            assert err.count("\n") == 1 and "Traceback" not in err, err
        else:
            from qsim_dist.io.qasm import load

            with pytest.raises(CheckpointError):
                get_backend(backend).run(load(circuit), shots=10, precision=precision,
                                         checkpoint=Checkpointing(resume=ck))


@counted
def test_resume_from_a_directory_says_it_is_a_directory(tmp_path, capsys):
    rc, err = _main(["run", BELL, "--resume", str(tmp_path)], capsys)
    assert rc == 2 and err.count("\n") == 1 and "is a directory" in err, err


@counted
def test_resume_from_a_fifo_does_not_block(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo")
    signal.alarm(20)  # h5py opening a FIFO would wait for a writer for ever
    try:
        rc, err = _main(["run", BELL, "--resume", str(tmp_path / "fifo")], capsys)
    finally:
        signal.alarm(0)
    assert rc == 2 and err.count("\n") == 1, err


@pytest.mark.parametrize("precision", ["single", "double"])
def test_a_valid_checkpoint_still_resumes(tmp_path, precision):
    from qsim_dist.library import random_circuit

    c = random_circuit(8, 40, seed=4)
    c.measure_all()
    b = get_backend("statevector")
    whole = b.run(c, shots=100, seed=2, precision=precision)
    ck = tmp_path / "ck.h5"
    b.run(c, shots=100, seed=2, precision=precision,
          checkpoint=Checkpointing(path=ck, every=0, gates=50))
    resumed = b.run(c, shots=100, precision=precision, checkpoint=Checkpointing(resume=ck))
    assert resumed.counts == whole.counts and resumed.metadata["resumed_at_gate"] > 0


# ---- the distributed backend writes the state only when asked --------------------------------

@settings(FAST, max_examples=8)
@given(save_state=st.booleans(), n=st.integers(2, 6))
@counted
def test_distributed_out_has_a_statevector_only_with_save_state(save_state, n):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.h5"
        b = get_backend("distributed")
        result = b.run(_circuit(n), shots=16, seed=1, save_state=save_state)
        b.save_result(result, path)
        with h5py.File(path, "r") as f:
            assert ("statevector" in f) == save_state
        back = load_result(path)
        assert back.counts == result.counts
        if save_state:
            np.testing.assert_allclose(back.statevector, result.statevector, atol=1e-6)


@pytest.mark.parametrize("save_state", [False, True])
def test_distributed_cli_out_has_a_statevector_only_with_save_state(save_state, tmp_path,
                                                                     capsys):
    path = tmp_path / "out.h5"
    rc, err = _main(["run", BELL, "--backend", "distributed", "--out", str(path)]
                    + (["--save-state"] if save_state else []), capsys)
    assert rc == 0, err
    with h5py.File(path, "r") as f:
        assert ("statevector" in f) == save_state


# ---- a full disk on one MPI rank only ------------------------------------------------------

_ONE_RANK_FULL = r'''
import errno, os, sys
from pathlib import Path
from mpi4py import MPI
from qsim_dist.backends import get_backend
from qsim_dist.circuit import Circuit
from qsim_dist.errors import QsimDistError
from qsim_dist.io.checkpoint import Checkpointing

rank, d = MPI.COMM_WORLD.Get_rank(), Path(sys.argv[1])
c = Circuit(6, 6)
for q in range(6):
    c.add("h", q)
for q in range(6):
    c.measure(q, q)
b = get_backend("distributed")
if rank == int(sys.argv[2]):  # this rank's disk is full
    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.pwrite = full
for what, call in (
        ("out", lambda: b.save_result(b.run(c, shots=4, seed=1, save_state=True), d / "out.h5")),
        ("ckpt", lambda: b.run(c, shots=4, seed=1, checkpoint=Checkpointing(
            path=d / "ck.h5", every=0, gates=2)))):
    try:
        call()
        line = "written"
    except QsimDistError as exc:
        line = f"{type(exc).__name__} {' '.join(str(exc).split())}"
    with open(d / f"rank{rank}.log", "a") as f:  # one file per rank: no interleaving
        f.write(f"{rank} {what} {line}\n")
'''


@pytest.mark.parametrize("full_rank", [0, 1])
@counted
def test_full_disk_on_one_rank_fails_every_rank_together(full_rank, tmp_path):
    import shutil

    if shutil.which("mpiexec") is None:
        pytest.skip("needs mpiexec (the mpi extra)")
    pytest.importorskip("mpi4py")
    (tmp_path / "out.h5").write_bytes(OLD)
    (tmp_path / "ck.h5").write_bytes(OLD)
    script = tmp_path / "job.py"
    script.write_text(_ONE_RANK_FULL)
    env = dict(os.environ, OMP_NUM_THREADS="1", JAX_PLATFORMS="cpu")
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(script), str(tmp_path),
                           str(full_rank)], capture_output=True, text=True, timeout=60,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = sorted(line for r in (0, 1) for line in
                   (tmp_path / f"rank{r}.log").read_text().splitlines())
    assert len(lines) == 4, (proc.stdout, proc.stderr[-2000:])
    for what, error in (("out", "ResultsFileError"), ("ckpt", "CheckpointError")):
        mine = [line.split(" ", 2)[2] for line in lines if line.split()[1] == what]
        assert len(mine) == 2 and mine[0] == mine[1] and mine[0].startswith(error), lines
    assert (tmp_path / "out.h5").read_bytes() == OLD
    assert (tmp_path / "ck.h5").read_bytes() == OLD
    assert leftovers(tmp_path) == []
