"""Checkpoints of long runs: what is written, how it is checked, when a resume is refused.

A run with checkpointing applies the gates before the circuit's first measurement, reset,
condition or noise channel (the deterministic part, which is where the time of a large
statevector run goes) in chunks of at most ``gates`` instructions; after a chunk, when ``every``
seconds have passed since the last checkpoint, the state is written. A resumed run reads the
state, skips the instructions already applied and goes on: it ends in the same state and, with
the seed stored in the checkpoint, the same counts. After the deterministic part no more
checkpoints are taken (a run killed there resumes from the last one).

Layout (``format`` = ``"qsim_dist.checkpoint"``, ``format_version`` = 1)::

    /               attributes:
        format, format_version, version (qsim_dist that wrote it), created (UTC, ISO 8601)
        fingerprint     SHA-256 of the circuit and its noise (instructions, parameters,
                        conditions, channels): a checkpoint is resumed by the same run only
        circuit         circuit name (for messages)
        num_qubits      int64
        precision       "single" | "double"
        seed            int64: the run's seed (the random stream is not advanced before the
                        first random step, so seed and position fix the random state)
        shots           int64
        position        int64: instructions of the deterministic part already applied
        total           int64: instructions in the deterministic part
        clbits          JSON list: classical bits (all 0 before the first measurement)
        ranks           int64: ranks that wrote it (any rank count may resume it)
    /state          (2^n,) complex64 or complex128 in logical order (qubit q = bit q of the
                    index), chunked with HDF5's Fletcher-32 checksum on every chunk, so a damaged
                    file is detected when it is read

The file is written under a temporary name and renamed (:mod:`qsim_dist.io.files`), so a run
killed at any moment, even by SIGKILL, or a full disk leaves the previous checkpoint (or none)
in place, never a half-written one; a write that fails is a :class:`CheckpointError`.

A resume reads only a regular file, and refuses a state that is not what the header says:
2^n amplitudes of the precision's type, all finite, squared norm 1 to within
:func:`norm_tolerance` (bytes damaged inside a chunk are caught by its checksum).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import OptionError, QsimDistError
from . import files
from .files import shown

FORMAT = "qsim_dist.checkpoint"
FORMAT_VERSION = 1
DEFAULT_CHUNK_GATES = 256
_STATE_CHUNK = 1 << 20  # amplitudes per HDF5 chunk (one checksum each)
_DTYPES = {"single": np.complex64, "double": np.complex128}  # the state's type per precision


class CheckpointError(QsimDistError):
    """A checkpoint cannot be written, or cannot be resumed by this run."""


@dataclass(frozen=True)
class Checkpointing:
    """What a run asks for: write to ``path`` every ``every`` seconds (checked between chunks of
    at most ``gates`` instructions), and/or resume from ``resume``."""

    path: Path | None = None
    every: float = 600.0
    resume: Path | None = None
    gates: int = DEFAULT_CHUNK_GATES

    def __post_init__(self) -> None:
        if not (self.every >= 0):
            raise OptionError(f"checkpoint interval must be >= 0 seconds, got {self.every!r}")
        if not isinstance(self.gates, int) or self.gates < 1:
            raise OptionError(f"checkpoint chunk must be a positive number of gates, "
                              f"got {self.gates!r}")


@dataclass(frozen=True)
class Header:
    fingerprint: str
    circuit: str
    num_qubits: int
    precision: str
    seed: int
    shots: int
    position: int
    total: int
    clbits: tuple[int, ...]
    ranks: int = 1


def fingerprint(num_qubits: int, num_clbits: int, ops: Iterable[Any]) -> str:
    """SHA-256 over everything that decides a run's state: instructions (name, qubits, exact
    parameters, clbits, condition) and noise channels (:class:`~qsim_dist.noise.NoiseOp`: its
    qubits, condition and the channel's Kraus operators, which define every channel kind)."""
    h = hashlib.sha256(f"{num_qubits},{num_clbits};".encode())
    for op in ops:
        channel = getattr(op, "channel", None)
        if channel is not None:
            h.update(f"noise {op.qubits} {op.condition};".encode())
            for k in channel.kraus:
                k = np.ascontiguousarray(k, dtype=np.complex128)
                h.update(f"{k.shape};".encode() + k.tobytes())
            continue
        params = b"".join(struct.pack("<d", float(p)) for p in op.params)
        h.update(f"{op.name} {op.qubits} {op.clbits} {op.condition};".encode() + params)
    return h.hexdigest()


def write_header(f, header: Header) -> None:
    """Root attributes of an open h5py file."""
    from ..version import __version__

    a = f.attrs
    a["format"] = FORMAT
    a["format_version"] = np.int64(FORMAT_VERSION)
    a["version"] = __version__
    a["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    a["fingerprint"] = header.fingerprint
    a["circuit"] = header.circuit
    for key in ("num_qubits", "seed", "shots", "position", "total", "ranks"):
        a[key] = np.int64(getattr(header, key))
    a["precision"] = header.precision
    a["clbits"] = json.dumps(list(header.clbits))


def create_state_dataset(f, num_qubits: int, dtype: Any):
    """The ``/state`` dataset, chunked with a Fletcher-32 checksum per chunk."""
    size = 1 << num_qubits
    return f.create_dataset("state", shape=(size,), dtype=dtype,
                            chunks=(min(size, _STATE_CHUNK),), fletcher32=True)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_source(path: Path) -> None:
    """Refuse, before h5py opens it (a FIFO would block it for ever), anything but a regular
    file."""
    where = f"cannot resume from {shown(path)}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such file") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise CheckpointError(f"{where}: {' '.join(str(reason).split())}") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"{where}: it is a directory, not a checkpoint file")
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{where}: not a regular file")


def read_header(path: str | os.PathLike) -> Header:
    """The header of checkpoint ``path``; :class:`CheckpointError` when it is missing, not a
    regular file, not HDF5, not a checkpoint, incomplete, or its state is not the size and type
    the header says (2^n amplitudes, complex64 for single precision, complex128 for double)."""
    import h5py

    path = Path(path)
    _check_source(path)
    where = f"cannot resume from {shown(path)}"
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            if _str(a.get("format", "")) != FORMAT:
                raise CheckpointError(f"{where}: not a qsim_dist checkpoint")
            if int(a["format_version"]) != FORMAT_VERSION:
                raise CheckpointError(f"{where}: checkpoint format "
                                      f"{int(a['format_version'])}, this version reads "
                                      f"{FORMAT_VERSION}")
            header = Header(
                fingerprint=_str(a["fingerprint"]), circuit=_str(a["circuit"]),
                num_qubits=int(a["num_qubits"]), precision=_str(a["precision"]),
                seed=int(a["seed"]), shots=int(a["shots"]), position=int(a["position"]),
                total=int(a["total"]), clbits=tuple(json.loads(_str(a["clbits"]))),
                ranks=int(a["ranks"]))
            if header.precision not in _DTYPES or not 0 <= header.num_qubits < 64:
                raise CheckpointError(f"{where}: damaged checkpoint (precision "
                                      f"{header.precision!r}, {header.num_qubits} qubits)")
            state = f.get("state")
            if not isinstance(state, h5py.Dataset) or state.shape != (1 << header.num_qubits,):
                raise CheckpointError(f"{where}: the state is missing or has the wrong size "
                                      "(damaged file)")
            dtype = np.dtype(_DTYPES[header.precision])
            if state.dtype != dtype:
                raise CheckpointError(f"{where}: damaged checkpoint (its state is {state.dtype}, "
                                      f"a {header.precision} precision state is {dtype})")
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: damaged checkpoint "
                              f"({' '.join(str(exc).split())})") from None
    return header


def check_resumable(header: Header, path: str | os.PathLike, fingerprint_: str,
                    num_qubits: int, precision: str, shots: int, seed: int | None) -> None:
    """Refuse, with the reason, a checkpoint of another circuit, precision, shots or seed."""
    where = f"cannot resume from '{path}'"
    if header.fingerprint != fingerprint_ or header.num_qubits != num_qubits:
        raise CheckpointError(f"{where}: it is a checkpoint of another circuit or noise model "
                              f"(circuit '{header.circuit}', {header.num_qubits} qubits)")
    if header.precision != precision:
        raise CheckpointError(f"{where}: it was written in {header.precision} precision, this "
                              f"run is {precision}")
    if header.shots != shots:
        raise CheckpointError(f"{where}: it was written by a run of {header.shots} shots, this "
                              f"run asks for {shots}")
    if seed is not None and seed != header.seed:
        raise CheckpointError(f"{where}: it was written with seed {header.seed}, this run asks "
                              f"for seed {seed} (leave --seed out to use the checkpoint's)")
    if not 0 <= header.position <= header.total:
        raise CheckpointError(f"{where}: damaged checkpoint (position {header.position} of "
                              f"{header.total})")


def read_state(path: str | os.PathLike, start: int, stop: int, dtype: Any) -> np.ndarray:
    """Amplitudes ``[start, stop)`` of the checkpoint's state, checksums verified, all finite
    (:class:`CheckpointError` otherwise). The norm is the caller's to check
    (:func:`check_norm`), over all the slices."""
    import h5py

    where = f"cannot resume from {shown(path)}"
    try:
        with h5py.File(path, "r") as f:
            state = f["state"]
            if state.dtype != np.dtype(dtype):
                raise CheckpointError(f"{where}: damaged checkpoint (its state is "
                                      f"{state.dtype}, this run reads {np.dtype(dtype)})")
            data = state[start:stop]
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: damaged checkpoint "
                              f"({' '.join(str(exc).split())})") from None
    if data.shape != (stop - start,):
        raise CheckpointError(f"{where}: damaged checkpoint (its state is truncated)")
    if not np.isfinite(data).all():
        raise CheckpointError(f"{where}: damaged checkpoint (its state has non-finite "
                              "amplitudes)")
    return data


def norm_tolerance(precision: str, gates: int) -> float:
    """How far from 1 the squared norm of a checkpointed state may be: rounding of the
    precision, growing with the gates applied (at most linearly), never above 1e-2."""
    eps = float(np.finfo(np.float32 if precision == "single" else np.float64).eps)
    return min(1e-2, (1000 + 32 * max(int(gates), 0)) * eps)


def check_norm(path: str | os.PathLike, norm_squared: float, header: Header) -> None:
    """Refuse a checkpoint whose state is not normalised (to :func:`norm_tolerance`)."""
    tolerance = norm_tolerance(header.precision, header.position)
    if not abs(float(norm_squared) - 1.0) <= tolerance:
        raise CheckpointError(f"cannot resume from {shown(path)}: damaged checkpoint (its "
                              f"state has squared norm {float(norm_squared):.6g}, not 1 to "
                              f"within {tolerance:.1e})")


def check_writable(path: str | os.PathLike) -> Path:
    """Raise :class:`CheckpointError` at once if a checkpoint cannot be written at ``path``
    (:func:`qsim_dist.io.files.check_output_path`); return the file that will be written."""
    return files.check_output_path(path, "a checkpoint", CheckpointError)


def write_dense_state(state: Any, path: Path, header: Any) -> None:
    """Write ``header`` and the statevector of ``state`` (any object with ``num_qubits`` and
    ``statevector()``) to the checkpoint ``path``, atomically
    (:func:`qsim_dist.io.files.atomic_write`: a full disk is a CheckpointError, the previous
    checkpoint kept)."""
    import h5py

    from .files import atomic_write

    psi = state.statevector()
    with atomic_write(path, "a checkpoint", CheckpointError, size=psi.nbytes) as out:
        with h5py.File(out, "w") as f:
            write_header(f, header)
            create_state_dataset(f, state.num_qubits, psi.dtype)[...] = psi


def load_dense_state(state: Any, path: Path, header: Any) -> None:
    """Replace ``state`` by the statevector stored in checkpoint ``path`` (finite and
    normalised, else a CheckpointError)."""
    psi = state.statevector()
    data = read_state(path, 0, 1 << state.num_qubits, psi.dtype)
    check_norm(path, np.vdot(data, data).real, header)
    state.load_statevector(data)
