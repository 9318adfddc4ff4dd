"""The simulated QPU as a resource a workload manager allocates: the lifecycle of a QRMI
resource (acquire, release, task start / status / result / stop, target, metadata) implemented
by qsim_dist.

::

    from qsim_dist.resource import QPUResource

    qpu = QPUResource(backend="statevector", ranks=1)      # or network="net.toml" for DQC runs
    token = qpu.acquire()
    task = qpu.task_start({"circuit": open("bell.qasm").read(), "shots": 1000, "seed": 1})
    while qpu.task_status(task) in ("queued", "running"):
        time.sleep(0.1)
    result = qpu.task_result(task)       # {"counts": {...}, "summary": {...}, "results_file": ...}
    qpu.release(token)

A task is one ``qsim-dist run`` (or, with a network file, ``qsim-dist dqc``) in its own process,
under ``mpiexec -n RANKS`` when ``ranks`` > 1, so that it can be stopped at any time and a
failure of the task never takes the caller down; its results are the HDF5 file of that run
(:mod:`qsim_dist.io.hdf5`) in the task's folder, read back by :meth:`QPUResource.task_result`.
The payload is OpenQASM 2 or 3 text (``"circuit"``) and its options: ``shots``, ``seed``,
``backend``, ``precision``, ``noise`` (a noise-model TOML path) — or a dict of them with a
``"qasm"`` file path instead of the text. A Qiskit primitive job is a payload too: the dict of
:func:`qsim_dist.qiskit_primitives.primitive_payload` (``"primitive"``, ``"pubs"``,
``"options"``; circuits in QPY, as the Qiskit Runtime service takes them), run by ``python -m
qsim_dist.qiskit_primitives`` on the resource's backend or network, in one process; its
:meth:`~QPUResource.task_result` has the primitive's result (per PUB: counts per register, or
``evs`` and ``stds``) as ``primitive_result``.

Statuses: ``queued`` (started, not yet running: more tasks than ``max_running``), ``running``,
``completed``, ``failed`` (the run's one-line error in :meth:`task_error`), ``cancelled``.
``acquire`` gives one token at a time (a second ``acquire`` before ``release`` is a
:class:`ResourceError`), as a QPU is held by one job.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import QsimDistError

__all__ = ["QPUResource", "ResourceError", "STATUSES"]

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
_PAYLOAD_KEYS = {"circuit", "qasm", "shots", "seed", "backend", "precision", "noise"}
_PRIMITIVE_KEYS = {"primitive", "pubs", "options"}


class ResourceError(QsimDistError):
    """A resource call that cannot be honoured (a wrong token, an unknown task, a bad
    payload)."""


@dataclass
class _Task:
    folder: Path
    argv: list[str]
    process: subprocess.Popen | None = None
    cancelled: bool = False
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class QPUResource:
    """A simulated QPU (``backend``, one process or ``ranks`` MPI ranks) or, with ``network``,
    a simulated multi-QPU machine (tasks run through the distribution compiler, ``qsim-dist
    dqc``). ``workdir``: where the tasks' folders go (a new temporary folder by default);
    ``max_running``: tasks run at once, the others queue."""

    def __init__(self, backend: str = "statevector", *, network: str | os.PathLike | None = None,
                 ranks: int = 1, workdir: str | os.PathLike | None = None,
                 max_running: int = 1) -> None:
        from .backends import BACKENDS

        if backend not in BACKENDS:
            raise ResourceError(f"unknown backend '{backend}' (choose from "
                                f"{', '.join(BACKENDS)})")
        for name, value in (("ranks", ranks), ("max_running", max_running)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ResourceError(f"{name} must be a positive integer, got {value!r}")
        if network is not None and not Path(network).is_file():
            raise ResourceError(f"network file '{network}' does not exist")
        if ranks > 1 and shutil.which("mpiexec", path=_venv_path()) is None:
            raise ResourceError("ranks > 1 needs mpiexec (pip install 'qsim_dist[mpi]')")
        self.backend, self.network, self.ranks = backend, network, ranks
        self.max_running = max_running
        self.workdir = Path(workdir) if workdir is not None else \
            Path(tempfile.mkdtemp(prefix="qsim_dist_qpu_"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._token: str | None = None
        self._key = uuid.uuid4().hex
        _LIVE[self._key] = self
        self._tasks: dict[str, _Task] = {}
        self._queue: list[str] = []
        self._lock = threading.Lock()

    def __reduce__(self):
        # a handle, not a copy: a task framework that pickles its arguments (Dask, Ray with
        # threads) hands the same live resource back in this process
        return _attach, (self._key, os.getpid())

    # -- allocation -----------------------------------------------------------------------
    def acquire(self) -> str:
        """A token for the caller's job; one holder at a time."""
        with self._lock:
            if self._token is not None:
                raise ResourceError("the QPU is already acquired (release its token first)")
            self._token = uuid.uuid4().hex
            return self._token

    def release(self, token: str) -> None:
        """Give the QPU back (``token`` from :meth:`acquire`)."""
        with self._lock:
            if token != self._token or token is None:
                raise ResourceError("release: not the token of the current holder")
            self._token = None

    # -- tasks ----------------------------------------------------------------------------
    def task_start(self, payload: Any) -> str:
        """Start a task (see the module docstring for the payload); returns its id."""
        if isinstance(payload, dict) and "primitive" in payload:
            argv, job = self._primitive_command(payload), json.dumps(payload)
        else:
            argv, circuit_text, qasm_path = self._command(payload)
        task_id = uuid.uuid4().hex[:12]
        folder = self.workdir / task_id
        folder.mkdir()
        circuit = folder / "circuit.qasm"
        if "primitive" in (payload if isinstance(payload, dict) else {}):
            circuit = folder / "job.json"
            circuit.write_text(job)
        elif circuit_text is not None:
            circuit.write_text(circuit_text)
        else:
            shutil.copyfile(qasm_path, circuit)
        argv = [a.replace("{circuit}", str(circuit)).replace("{out}", str(folder / "results.h5"))
                for a in argv]
        with self._lock:
            self._tasks[task_id] = _Task(folder, argv)
            self._queue.append(task_id)
            self._start_queued()
        return task_id

    def task_status(self, task_id: str) -> str:
        """One of :data:`STATUSES`."""
        task = self._task(task_id)
        with self._lock:
            self._start_queued()
            if task.cancelled:
                return "cancelled"
            if task.process is None:
                return "queued"
            rc = task.process.poll()
            if rc is None:
                return "running"
            if rc == 0 and (task.folder / "results.h5").exists():
                return "completed"
            if task.error is None:
                err = (task.folder / "stderr.txt").read_text().strip().splitlines()
                task.error = err[-1] if err else f"exit status {rc}"
            return "failed"

    def task_error(self, task_id: str) -> str | None:
        """The one-line error of a failed task (None otherwise)."""
        return self._task(task_id).error if self.task_status(task_id) == "failed" else None

    def task_result(self, task_id: str) -> dict[str, Any]:
        """The results of a completed task: ``counts``, the run's JSON ``summary`` and the
        path of its HDF5 ``results_file``."""
        status = self.task_status(task_id)
        if status != "completed":
            detail = f": {self._tasks[task_id].error}" if status == "failed" else ""
            raise ResourceError(f"task {task_id} is {status}{detail}")
        folder = self._tasks[task_id].folder
        summary = json.loads((folder / "stdout.txt").read_text())
        out = {"counts": summary.get("counts", {}), "summary": summary,
               "results_file": str(folder / "results.h5")}
        if "primitive" in summary:
            out["primitive_result"] = summary
        return out

    def task_stop(self, task_id: str) -> None:
        """Stop a queued or running task (its processes, every rank); a finished one stays as
        it is."""
        task = self._task(task_id)
        with self._lock:
            if task_id in self._queue:
                self._queue.remove(task_id)
                task.cancelled = True
                return
            if task.process is not None and task.process.poll() is None:
                os.killpg(task.process.pid, signal.SIGTERM)
                try:
                    task.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(task.process.pid, signal.SIGKILL)
                    task.process.wait()
                task.cancelled = True
            self._start_queued()

    # -- what the resource is -------------------------------------------------------------
    def target(self) -> dict[str, Any]:
        """The simulated machine: backend, ranks, the qubits that fit (one statevector of this
        host's free memory), the gates of the gate table and, for a network, its file."""
        from . import memory
        from .gates import GATES

        fits = max(1, int(memory.available_bytes() * self.ranks // 32).bit_length() - 1)
        out = {"backend": self.backend, "ranks": self.ranks,
               "num_qubits": fits, "gates": sorted(GATES)}
        if self.network is not None:
            out["network"] = Path(self.network).read_text()
            out["network_file"] = str(self.network)
        return out

    def metadata(self) -> dict[str, Any]:
        """What the resource is, for a workload manager's listing."""
        from .version import __version__

        return {"resource_type": "qsim_dist-simulated-qpu", "version": __version__,
                "backend": self.backend, "ranks": self.ranks,
                "network": None if self.network is None else str(self.network),
                "workdir": str(self.workdir), "statuses": list(STATUSES)}

    # -- inside ---------------------------------------------------------------------------
    def _task(self, task_id: str) -> _Task:
        if task_id not in self._tasks:
            raise ResourceError(f"unknown task '{task_id}'")
        return self._tasks[task_id]

    def _command(self, payload: Any) -> tuple[list[str], str | None, Path | None]:
        if isinstance(payload, str):
            payload = {"circuit": payload}
        if not isinstance(payload, dict):
            raise ResourceError(f"a payload is OpenQASM text or a dict, got "
                                f"{type(payload).__name__}")
        unknown = set(payload) - _PAYLOAD_KEYS
        if unknown:
            raise ResourceError(f"unknown payload keys: {', '.join(sorted(unknown))} "
                                f"(known: {', '.join(sorted(_PAYLOAD_KEYS))})")
        text, path = payload.get("circuit"), payload.get("qasm")
        if (text is None) == (path is None):
            raise ResourceError("a payload names its circuit once: 'circuit' (OpenQASM text) "
                                "or 'qasm' (a file path)")
        if text is not None and not isinstance(text, str):
            raise ResourceError("'circuit' must be OpenQASM text")
        if path is not None and not Path(path).is_file():
            raise ResourceError(f"circuit file '{path}' does not exist")
        args = ["dqc", "{circuit}", "--network", str(self.network)] if self.network else \
            ["run", "{circuit}"]
        args += ["--json", "--out", "{out}", "--backend", str(payload.get("backend",
                                                                          self.backend))]
        for key in ("shots", "seed", "precision", "noise"):
            if payload.get(key) is not None:
                args += [f"--{key}", str(payload[key])]
        command = [sys.executable, "-m", "qsim_dist.cli", *args]
        if self.ranks > 1:
            command = [shutil.which("mpiexec", path=_venv_path()), "-n", str(self.ranks),
                       sys.executable, "-m", "mpi4py", "-m", "qsim_dist.cli", *args]
        return command, text, Path(path) if path is not None else None

    def _primitive_command(self, payload: dict) -> list[str]:
        """The command of a Qiskit primitive job (checked here: one line for a bad one)."""
        unknown = set(payload) - _PRIMITIVE_KEYS
        if unknown:
            raise ResourceError(f"unknown primitive payload keys: {', '.join(sorted(unknown))} "
                                f"(known: {', '.join(sorted(_PRIMITIVE_KEYS))})")
        if payload.get("primitive") not in ("sampler", "estimator") or \
                not isinstance(payload.get("pubs"), list):
            raise ResourceError("a primitive payload has 'primitive' ('sampler' or "
                                "'estimator') and a list of 'pubs' (see "
                                "qsim_dist.qiskit_primitives.primitive_payload)")
        if self.ranks > 1:
            raise ResourceError("primitive jobs run in one process (ranks = 1)")
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise ResourceError(f"a primitive payload must be JSON: {exc}") from None
        command = [sys.executable, "-m", "qsim_dist.qiskit_primitives", "{circuit}", "--out",
                   "{out}", "--backend", self.backend]
        if self.network is not None:
            command += ["--network", str(self.network)]
        return command

    def _start_queued(self) -> None:
        """Start queued tasks while fewer than ``max_running`` run (caller holds the lock)."""
        running = sum(1 for t in self._tasks.values()
                      if t.process is not None and t.process.poll() is None)
        while self._queue and running < self.max_running:
            task = self._tasks[self._queue.pop(0)]
            with open(task.folder / "stdout.txt", "w") as out, \
                    open(task.folder / "stderr.txt", "w") as err:
                task.process = subprocess.Popen(task.argv, stdout=out, stderr=err,
                                                start_new_session=True)
            running += 1


_LIVE: "weakref.WeakValueDictionary[str, QPUResource]" = weakref.WeakValueDictionary()


def _attach(key: str, pid: int) -> QPUResource:
    """The live resource a pickled handle names (same process only)."""
    resource = _LIVE.get(key)
    if resource is None or pid != os.getpid():
        raise ResourceError("a QPUResource handle is valid only in the process that made it "
                            "(use a thread-based worker, or one resource per process)")
    return resource


def _venv_path() -> str:
    """PATH with this interpreter's folder first (the venv's mpiexec, from the mpich wheel)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
