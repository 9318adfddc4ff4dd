"""Results files in HDF5: :func:`save_result` and :func:`load_result`.

Layout (``format`` = ``"qsim_dist.result"``, ``format_version`` = 1)::

    /                       root group; attributes:
        format              "qsim_dist.result"
        format_version      1
        num_qubits          int64
        num_clbits          int64
        shots               int64
        seed                int64 (absent only when the Result has no seed)
        precision           "single" | "double"
        backend             backend name, e.g. "statevector"
        version             qsim_dist.__version__ that wrote the file
        wall_time_s         float64, seconds
        compile_time_s      float64, seconds
        circuit             circuit name
        created             ISO 8601 time in UTC, e.g. "2025-01-31T12:00:00+00:00"
        meta.<key>          one attribute per scalar or string entry of Result.metadata
        meta_json.<key>     any other JSON-encodable entry of Result.metadata, as a JSON string
    /counts                 group (always present, possibly empty)
        bitstrings          (k,) fixed-length ASCII strings, clbit 0 rightmost, sorted
        values              (k,) int64, values[i] = number of shots that read bitstrings[i]
    /statevector            (2^n,) complex64 (precision "single") or complex128 ("double");
                            qubit q is bit q of the index (qubit 0 least significant, as Qiskit);
                            present only when the run kept its state (``--save-state``)

Reading it with h5py alone::

    with h5py.File("results.h5") as f:
        counts = dict(zip(f["counts/bitstrings"].asstr()[()], f["counts/values"][()]))
        psi = f["statevector"][()] if "statevector" in f else None
        shots = int(f.attrs["shots"])

Writing is atomic (:mod:`qsim_dist.io.files`): the file is written under a temporary name in the
target directory (``.<name>.tmp-<pid>-<random>``), flushed to disk and then renamed onto
``path``. A failure at any point, a full disk included, removes the temporary file, leaves
whatever was at ``path`` untouched and raises :class:`ResultsFileError`. Only regular files are
written: a directory, FIFO, device or socket at ``path`` is refused before anything is written.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QsimDistError
from ..results import Result
from . import files
from .files import atomic_write

FORMAT = "qsim_dist.result"
FORMAT_VERSION = 1

#: root attributes written by :func:`save_result` (everything else at the root is metadata)
RESERVED_ATTRS = ("format", "format_version", "num_qubits", "num_clbits", "shots", "seed",
                  "precision", "backend", "version", "wall_time_s", "compile_time_s", "circuit",
                  "created")

_META = "meta."
_META_JSON = "meta_json."


class ResultsFileError(QsimDistError):
    """A results file cannot be written or read (missing, not HDF5, not a qsim_dist result)."""


def _scalar(value: Any) -> Any | None:
    """``value`` as something h5py stores as a scalar attribute, or None if it is not a scalar."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    if isinstance(value, (int, np.integer)):
        return np.int64(value) if -(1 << 63) <= int(value) < (1 << 63) else None
    if isinstance(value, (float, np.floating)):
        return np.float64(value)
    if isinstance(value, (complex, np.complexfloating)):
        return np.complex128(value)
    if isinstance(value, str):
        return value
    return None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _write(f, result: Result) -> None:
    """Write ``result`` into the open h5py file ``f`` (the layout in the module docstring)."""
    from ..version import __version__

    a = f.attrs
    a["format"] = FORMAT
    a["format_version"] = np.int64(FORMAT_VERSION)
    a["num_qubits"] = np.int64(result.num_qubits)
    a["num_clbits"] = np.int64(result.num_clbits)
    a["shots"] = np.int64(result.shots)
    if result.seed is not None:
        a["seed"] = np.int64(result.seed)
    a["precision"] = str(result.precision)
    a["backend"] = str(result.backend)
    a["version"] = __version__
    a["wall_time_s"] = np.float64(result.wall_time)
    a["compile_time_s"] = np.float64(result.compile_time)
    a["circuit"] = str(result.circuit_name)
    a["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for key, value in (result.metadata or {}).items():
        scalar = _scalar(value)
        if scalar is not None:
            a[_META + str(key)] = scalar
            continue
        try:
            a[_META_JSON + str(key)] = json.dumps(value, default=_json_default)
        except (TypeError, ValueError):
            pass  # not representable: documented as dropped

    keys = sorted(result.counts)
    width = max([len(k) for k in keys] + [1])
    g = f.create_group("counts")
    g.create_dataset("bitstrings", data=np.array([k.encode("ascii") for k in keys],
                                                 dtype=f"S{width}").reshape(len(keys)))
    g.create_dataset("values", data=np.array([result.counts[k] for k in keys],
                                             dtype=np.int64).reshape(len(keys)))

    if result.statevector is not None:
        dtype = np.complex64 if result.precision == "single" else np.complex128
        psi = np.asarray(result.statevector).astype(dtype, copy=False)
        f.create_dataset("statevector", data=psi)


def save_result(result: Result, path: str | os.PathLike) -> Path:
    """Write ``result`` to the HDF5 file ``path`` atomically; return the final path.

    Raises :class:`ResultsFileError` (one line) when ``path`` cannot be written (see
    :func:`check_writable`), the disk is full or a write fails; the temporary file is then
    removed and whatever was at ``path`` is left untouched (:mod:`qsim_dist.io.files`).
    """
    import h5py

    with atomic_write(path, "results", ResultsFileError, size=_size_hint(result)) as out:
        with h5py.File(out, "w") as f:
            _write(f, result)
    return Path(path)


def _size_hint(result: Result) -> int:
    """Bytes the file needs at least (its datasets), for the free-space check."""
    psi = result.statevector
    state = 0 if psi is None else np.asarray(psi).size * (8 if result.precision == "single"
                                                          else 16)
    return state + sum(len(k) + 8 for k in result.counts)


def check_writable(path: str | os.PathLike) -> Path:
    """Raise :class:`ResultsFileError` if a results file cannot be written at ``path``
    (:func:`qsim_dist.io.files.check_output_path`: a regular file or a new name in a directory
    that takes files; never a directory, FIFO, device, or /proc, /sys); return the file that
    will be written (symlinks resolved).

    Cheap enough to call before a long simulation, so that a typo in ``--out`` fails at once.
    """
    return files.check_output_path(path, "results", ResultsFileError)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _py(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def load_result(path: str | os.PathLike) -> Result:
    """Read a file written by :func:`save_result` back into a :class:`~qsim_dist.results.Result`.

    The statevector comes back as complex128 (as :class:`Result` documents), or None when the
    file has none. Raises :class:`ResultsFileError` for a missing or foreign file.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"cannot read results file '{path}': no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ResultsFileError(f"cannot read results file '{path}': not an HDF5 file") from exc
    with f:
        a = f.attrs
        if _str(a.get("format", "")) != FORMAT:
            raise ResultsFileError(f"'{path}' is not a qsim_dist results file")
        metadata: dict[str, Any] = {}
        for key in a:
            if key.startswith(_META):
                metadata[key[len(_META):]] = _py(a[key])
            elif key.startswith(_META_JSON):
                metadata[key[len(_META_JSON):]] = json.loads(_str(a[key]))
        bitstrings = f["counts/bitstrings"].asstr()[()] if "counts" in f else []
        values = f["counts/values"][()] if "counts" in f else []
        counts = {str(k): int(v) for k, v in zip(bitstrings, values)}
        sv = f["statevector"][()].astype(np.complex128) if "statevector" in f else None
        return Result(
            num_qubits=int(a["num_qubits"]), num_clbits=int(a["num_clbits"]),
            shots=int(a["shots"]), seed=int(a["seed"]) if "seed" in a else None,
            precision=_str(a["precision"]), backend=_str(a["backend"]), counts=counts,
            statevector=sv,
            wall_time=float(a["wall_time_s"]), compile_time=float(a["compile_time_s"]),
            circuit_name=_str(a["circuit"]), metadata=metadata)
