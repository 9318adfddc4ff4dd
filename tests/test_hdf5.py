"""HDF5 results files: layout, round trip, atomic writes."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

import qsim_dist
from qsim_dist.errors import QsimDistError
from qsim_dist.io import hdf5
from qsim_dist.io.hdf5 import load_result, save_result
from qsim_dist.results import Result


def _result(precision="double", statevector=True, **kw) -> Result:
    psi = np.array([1, 0, 0, 1j], dtype=np.complex128) / np.sqrt(2)
    args = dict(num_qubits=2, num_clbits=2, shots=100, seed=7, precision=precision,
                backend="reference", counts={"11": 48, "00": 52},
                statevector=psi if statevector else None, wall_time=0.25, compile_time=0.125,
                circuit_name="bell",
                metadata={"fused_blocks": 3, "device": "cpu", "exact": True, "fidelity": 0.5,
                          "layout": [0, 1], "note": None})
    args.update(kw)
    return Result(**args)


def _leftovers(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".tmp-" in name)


@pytest.mark.parametrize("precision, dtype", [("double", np.complex128), ("single", np.complex64)])
def test_round_trip(tmp_path, precision, dtype):
    res = _result(precision)
    path = tmp_path / "out.h5"
    assert save_result(res, path) == path
    back = load_result(path)
    assert back.num_qubits == 2 and back.num_clbits == 2
    assert back.shots == 100 and back.seed == 7
    assert back.precision == precision and back.backend == "reference"
    assert back.counts == {"00": 52, "11": 48}
    assert back.wall_time == 0.25 and back.compile_time == 0.125
    assert back.circuit_name == "bell"
    assert back.statevector.dtype == np.complex128
    np.testing.assert_allclose(back.statevector, res.statevector, atol=1e-7)
    assert back.metadata == res.metadata
    assert back.summary() == res.summary()
    with h5py.File(path) as f:
        assert f["statevector"].dtype == dtype
    assert _leftovers(tmp_path) == []


def test_layout_readable_with_plain_h5py(tmp_path):
    path = tmp_path / "out.h5"
    save_result(_result(), path)
    with h5py.File(path) as f:
        a = f.attrs
        assert a["format"] == "qsim_dist.result" and a["format_version"] == 1
        for key in hdf5.RESERVED_ATTRS:
            assert key in a, key
        assert a["num_qubits"] == 2 and a["num_clbits"] == 2 and a["shots"] == 100
        assert a["seed"] == 7 and a["precision"] == "double" and a["backend"] == "reference"
        assert a["version"] == qsim_dist.__version__ and a["circuit"] == "bell"
        assert a["wall_time_s"] == 0.25 and a["compile_time_s"] == 0.125
        assert "T" in a["created"] and a["created"].endswith("+00:00")
        assert a["meta.fused_blocks"] == 3 and a["meta.device"] == "cpu"
        assert a["meta.exact"] and a["meta.fidelity"] == 0.5
        assert a["meta_json.layout"] == "[0, 1]" and a["meta_json.note"] == "null"
        counts = dict(zip(f["counts/bitstrings"].asstr()[()], f["counts/values"][()]))
        assert counts == {"00": 52, "11": 48}
        assert list(f["counts/bitstrings"][()]) == [b"00", b"11"]  # sorted, fixed-length ASCII
        assert f["counts/bitstrings"].dtype == np.dtype("S2")
        assert f["counts/values"].dtype == np.int64
        np.testing.assert_allclose(f["statevector"][()], np.array([1, 0, 0, 1j]) / np.sqrt(2))


def test_no_statevector_and_empty_counts(tmp_path):
    path = tmp_path / "out.h5"
    save_result(_result(statevector=False, counts={}, num_clbits=0, shots=0, metadata={}), path)
    with h5py.File(path) as f:
        assert "statevector" not in f
        assert f["counts/bitstrings"].shape == (0,) and f["counts/values"].shape == (0,)
    back = load_result(path)
    assert back.statevector is None and back.counts == {} and back.metadata == {}


def test_overwrites_existing_file(tmp_path):
    path = tmp_path / "out.h5"
    save_result(_result(seed=1), path)
    save_result(_result(seed=2), path)
    assert load_result(path).seed == 2
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["dataset", "fsync", "replace"])
def test_failure_midway_leaves_no_file(tmp_path, monkeypatch, where):
    path = tmp_path / "out.h5"

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    if where == "dataset":
        monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    elif where == "fsync":
        monkeypatch.setattr(hdf5.os, "fsync", boom)
    else:
        monkeypatch.setattr(hdf5.os, "replace", boom)
    # a failed write is a one-line ResultsFileError (RuntimeError and OSError are what h5py
    # and the disk raise), never a bare exception
    with pytest.raises(hdf5.ResultsFileError, match="disk on fire"):
        save_result(_result(), path)
    assert not path.exists()
    assert _leftovers(tmp_path) == []


def test_failure_keeps_older_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "out.h5"
    save_result(_result(seed=1), path)
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(KeyboardInterrupt):
        save_result(_result(seed=2), path)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    assert load_result(path).seed == 1


def test_unwritable_targets(tmp_path):
    with pytest.raises(QsimDistError, match="does not exist"):
        save_result(_result(), tmp_path / "missing" / "out.h5")
    with pytest.raises(QsimDistError, match="is a directory"):
        save_result(_result(), tmp_path)


def test_load_errors(tmp_path):
    with pytest.raises(QsimDistError, match="no such file"):
        load_result(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(QsimDistError, match="not an HDF5 file"):
        load_result(junk)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(QsimDistError, match="not a qsim_dist results file"):
        load_result(foreign)
