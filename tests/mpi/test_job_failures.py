"""Every way out of ``qsim-dist`` under ``mpiexec -n 2`` and ``-n 4`` ends the whole job within
seconds, with one error line: a mistake found on one rank only before MPI is up (a missing or
malformed circuit, an unwritable output, a bad option), ranks started with different arguments
(MPMD jobs), and failures in the middle of a run on one rank or on all of them.

Each test starts its own ``mpiexec`` (from the one-rank pass of ``tests/run_all.sh``; skipped
at more ranks), with the failure on the last rank, and asserts the job's exit status, its time,
the single ``qsim-dist: error`` line, no traceback for a user mistake and no results file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qsim_dist.library import random_circuit
from qsim_dist.io.qasm import dumps

MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")
CLI = [sys.executable, "-m", "qsim_dist.cli"]
LAUNCH = [sys.executable, "-m", "qsim_dist.mpi_launch"]
JOB_SECONDS = 10.0


def _one_rank_only():
    if not os.path.exists(MPIEXEC):
        pytest.skip("no mpiexec next to this Python")
    if int(os.environ.get("PMI_SIZE", "1")) > 1:
        pytest.skip("starts its own mpiexec: run from one rank only")


def _clean_env():
    # A child mpiexec must not think it runs inside this test's MPI job.
    prefixes = ("PMI_", "PMIX_", "MPI_", "HYDRA_", "OMPI_", "MPIR_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _job(tmp_path: Path, ranks: int, good: list[str], bad: list[str] | None = None,
         wdirs: tuple[Path, Path] | None = None) -> subprocess.CompletedProcess:
    """``mpiexec`` with ``good`` on ranks 0..ranks-2 and ``bad`` (default ``good``) on the last
    rank, each in its working directory ``wdirs`` (default ``tmp_path``)."""
    a, b = wdirs or (tmp_path, tmp_path)
    cmd = [MPIEXEC, "-n", str(ranks - 1), "-wdir", str(a), *good, ":",
           "-n", "1", "-wdir", str(b), *(bad if bad is not None else good)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_clean_env())
    proc.elapsed = time.monotonic() - start
    return proc


def _error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("qsim-dist: error")]


def _assert_user_error(proc, pattern: str, *outputs: Path) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.elapsed < JOB_SECONDS, f"the job took {proc.elapsed:.1f} s"
    lines = _error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    for path in outputs:
        assert not path.exists(), path


@pytest.fixture
def files(tmp_path):
    """Two working directories with the same names: ``a`` holds a good circuit, ``b`` another
    one (same size) or a broken one, as a test needs."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    text = dumps(random_circuit(6, 4, seed=1).measure_all())
    (a / "c.qasm").write_text(text)
    (b / "c.qasm").write_text(text)
    (a / "out").mkdir()
    return a, b, text


RANKS = [2, 4]


@pytest.mark.parametrize("ranks", RANKS)
def test_missing_circuit_on_one_rank(tmp_path, files, ranks):
    _one_rank_only()
    a, b, _ = files
    (b / "c.qasm").unlink()
    proc = _job(tmp_path, ranks, [*CLI, "run", "c.qasm", "--shots", "10"], wdirs=(a, b))
    _assert_user_error(proc, f"no such file (rank {ranks - 1} of {ranks})")


@pytest.mark.parametrize("ranks", RANKS)
def test_malformed_circuit_on_one_rank(tmp_path, files, ranks):
    _one_rank_only()
    a, b, text = files
    (b / "c.qasm").write_text(text.replace("qreg q[6];", "qreg q[6]"))
    proc = _job(tmp_path, ranks, [*CLI, "run", "c.qasm", "--shots", "10"], wdirs=(a, b))
    _assert_user_error(proc, f"(rank {ranks - 1} of {ranks})")


@pytest.mark.parametrize("option", ["--out", "--checkpoint"])
@pytest.mark.parametrize("ranks", RANKS)
def test_unwritable_output_on_one_rank(tmp_path, files, ranks, option):
    """``out/`` exists in rank 0's working directory only: the last rank cannot write there."""
    _one_rank_only()
    a, b, _ = files
    proc = _job(tmp_path, ranks, [*CLI, "run", "c.qasm", "--shots", "10", option,
                                  "out/r.h5"], wdirs=(a, b))
    _assert_user_error(proc, f"(rank {ranks - 1} of {ranks})", a / "out" / "r.h5")


@pytest.mark.parametrize("ranks", RANKS)
def test_bad_option_on_one_rank(tmp_path, files, ranks):
    _one_rank_only()
    a, _, _ = files
    good = [*CLI, "run", str(a / "c.qasm"), "--shots", "10"]
    proc = _job(tmp_path, ranks, good, [*good[:-1], "-3"])
    _assert_user_error(proc, f"shots must be a non-negative integer, got '-3' (rank {ranks - 1}")


@pytest.mark.parametrize("ranks", RANKS)
@pytest.mark.parametrize("extra,field", [(["--out", "r.h5"], "out"), (["--seed", "5"], "seed"),
                                         (["--precision", "double"], "precision"),
                                         (["--json"], "json")])
def test_ranks_with_different_arguments(tmp_path, files, ranks, extra, field):
    """An MPMD job whose last rank has one more option: refused before any collective (a
    results file only one rank writes would hang the others in the collective write)."""
    _one_rank_only()
    a, _, _ = files
    good = [*CLI, "run", str(a / "c.qasm"), "--shots", "10", "--seed", "4"]
    proc = _job(tmp_path, ranks, good, [*good, *extra])
    _assert_user_error(proc, f"rank {ranks - 1} differs from rank 0 in {field}",
                       tmp_path / "r.h5")


@pytest.mark.parametrize("ranks", RANKS)
def test_ranks_with_different_circuits_of_one_size(tmp_path, files, ranks):
    _one_rank_only()
    a, b, _ = files
    (b / "c.qasm").write_text(dumps(random_circuit(6, 4, seed=2).measure_all()))
    proc = _job(tmp_path, ranks, [*CLI, "run", "c.qasm", "--shots", "10"], wdirs=(a, b))
    _assert_user_error(proc, "differs from rank 0 in circuit")


def test_same_circuit_formatted_differently_is_one_job(tmp_path, files):
    _one_rank_only()
    a, b, text = files
    (b / "c.qasm").write_text("// the same circuit\n" + text.replace(";\n", ";\n\n"))
    proc = _job(tmp_path, 2, [*CLI, "run", "c.qasm", "--shots", "10", "--seed", "1"],
                wdirs=(a, b))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("ranks", RANKS)
def test_dqc_network_missing_on_one_rank(tmp_path, ranks):
    _one_rank_only()
    examples = Path(__file__).resolve().parents[2] / "examples"
    good = [*CLI, "dqc", str(examples / "dqc_small.qasm"), "--network",
            str(examples / "network_pair.toml"), "--shots", "5"]
    bad = [*good[:6], str(tmp_path / "nowhere.toml"), *good[7:]]
    proc = _job(tmp_path, ranks, good, bad)
    _assert_user_error(proc, f"no such file (rank {ranks - 1} of {ranks})")


def _script(tmp_path: Path, body: str, circuit: Path) -> list[str]:
    """A script run by ``python -m qsim_dist.mpi_launch`` that breaks something (``body``, run
    with ``rank`` and ``last`` defined) and then runs ``qsim-dist run`` on ``circuit``."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import os
        from mpi4py import MPI
        import qsim_dist.cli
        from qsim_dist.backends import distributed
        from qsim_dist.errors import BackendError
        rank, last = MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size - 1
        """) + textwrap.dedent(body) + textwrap.dedent(f"""
        raise SystemExit(qsim_dist.cli._main(["run", {str(circuit)!r}, "--shots", "50",
                                              "--out", {str(tmp_path / 'r.h5')!r}]))
        """))
    return [*LAUNCH, str(script)]


BREAK_ONE_RANK_MID_RUN = """
    original = distributed.DistributedState.execute
    def execute(self, program, progress=None):
        if rank == last:
            raise {error}
        return original(self, program, progress)
    distributed.DistributedState.execute = execute
"""


@pytest.mark.parametrize("ranks", RANKS)
@pytest.mark.parametrize("error,status", [("BackendError('out of luck')", 2),
                                          ("RuntimeError('a bug')", 1),
                                          ("KeyboardInterrupt()", 130)])
def test_failure_mid_run_on_one_rank(tmp_path, files, ranks, error, status):
    """The other ranks wait in the next exchange: the failing rank aborts them."""
    _one_rank_only()
    a, _, _ = files
    cmd = _script(tmp_path, BREAK_ONE_RANK_MID_RUN.format(error=error), a / "c.qasm")
    proc = _job(tmp_path, ranks, cmd)
    assert proc.returncode == status, proc.stderr
    assert proc.elapsed < JOB_SECONDS, f"the job took {proc.elapsed:.1f} s"
    assert not (tmp_path / "r.h5").exists()
    if status == 2:
        assert _error_lines(proc) == [f"qsim-dist: error (rank {ranks - 1}): out of luck"]
        assert "Traceback" not in proc.stderr
    elif status == 1:
        assert "RuntimeError: a bug" in proc.stderr


@pytest.mark.parametrize("ranks", RANKS)
def test_the_same_mistake_on_every_rank_mid_run_is_one_line(tmp_path, files, ranks):
    _one_rank_only()
    a, _, _ = files
    body = BREAK_ONE_RANK_MID_RUN.replace("if rank == last:", "if True:").format(
        error="BackendError('every rank refuses')")
    proc = _job(tmp_path, ranks, _script(tmp_path, body, a / "c.qasm"))
    assert proc.returncode == 2, proc.stderr
    assert proc.elapsed < JOB_SECONDS
    assert len(_error_lines(proc)) == 1, proc.stderr
    assert "every rank refuses" in proc.stderr


@pytest.mark.parametrize("ranks", RANKS)
def test_a_bug_before_mpi_starts_on_one_rank(tmp_path, ranks):
    """A rank that dies before it has started MPI (here: at import) still ends the job: it
    starts MPI to abort the others, which wait for it in MPI_Init."""
    _one_rank_only()
    script = tmp_path / "early.py"
    script.write_text("raise RuntimeError('broken before MPI')\n")
    good = tmp_path / "late.py"
    good.write_text("from mpi4py import MPI\nMPI.COMM_WORLD.Barrier()\n")
    proc = _job(tmp_path, ranks, [*LAUNCH, str(good)], [*LAUNCH, str(script)])
    assert proc.returncode == 1, proc.stderr
    assert proc.elapsed < JOB_SECONDS
    assert "broken before MPI" in proc.stderr
