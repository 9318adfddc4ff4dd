"""Exchanges on device buffers (``device_buffers=True``: JAX arrays handed to MPI by mpi4jax)
against host staging (``device_buffers=False``) and the reference, under ``mpiexec -n 1``,
``-n 2`` and ``-n 4`` (and plain pytest, one rank). Both paths move the same pieces, so the
amplitudes must agree bit for bit and the traffic statistics exactly. JAX runs on the CPU here;
circuits are small because every new exchange shape compiles."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from qsim_dist import library as lib
from qsim_dist.backends import get_backend
from qsim_dist.backends import distributed as distributed_module
from qsim_dist.errors import BackendError, OptionError
from qsim_dist.passes.layout import Layout

REF = get_backend("reference")
TOL = {"single": 1e-6, "double": 1e-12}
SMALL = 256  # buffer bytes: every exchange of the 8-qubit state goes in 4 to 16 pieces
N = 8
# One random circuit for every test (non-diagonal gates on the global qubits too): JAX compiles a
# kernel per block shape and precision once per process, so reusing the circuit keeps this fast.
CIRCUIT = lib.random_gate_circuit(N, 36, seed=5)

needs_mpi4jax = pytest.mark.skipif(importlib.util.find_spec("mpi4jax") is None,
                                   reason="mpi4jax not installed (pip install -e '.[gpu]')")


def backends(**options):
    """The device-buffer and the host-staged backend, jax kernels, the same options."""
    return (get_backend("distributed", kernels="jax", device_buffers=True, **options),
            get_backend("distributed", kernels="jax", device_buffers=False, **options))


@needs_mpi4jax
@pytest.mark.parametrize("precision,buffer_bytes", [
    ("single", SMALL), ("double", SMALL), ("double", 64 << 20)])
def test_random_circuit_same_on_both_paths(precision, buffer_bytes):
    c = CIRCUIT
    device, host = backends(buffer_bytes=buffer_bytes)
    got = device.run(c, shots=0, seed=1, precision=precision, save_state=True)
    want = host.run(c, shots=0, seed=1, precision=precision, save_state=True)
    assert got.metadata["device_buffers"] is True and want.metadata["device_buffers"] is False
    assert np.array_equal(got.statevector, want.statevector)  # bit for bit
    np.testing.assert_allclose(got.statevector, REF.statevector(c), atol=TOL[precision])
    for key in ("exchanges", "bytes_sent", "ranks"):
        assert got.metadata[key] == want.metadata[key], key
    assert (got.metadata["exchanges"] > 0) == (device.comm.size > 1)


def _scramble(state) -> None:
    """Bit exchanges from the identity layout that leave the rank bits permuted (on 4 ranks:
    rank bit 0 holds logical qubit nl + 1, rank bit 1 holds nl), so that restoring the identity
    moves whole shards."""
    nl, g = state.layout.num_local, state.layout.num_global
    if g >= 1:
        state._swap(((nl, 0),))
    if g >= 2:
        state._swap(((nl + 1, 1),))
        state._swap(((nl, 1), (nl + 1, 0)))  # one all-to-all among 4 ranks


@needs_mpi4jax
def test_restored_layout_after_global_swaps(monkeypatch):
    n, c, precision = N, CIRCUIT, "double"
    device, host = backends(buffer_bytes=SMALL)
    moved = []
    permute = type(device.comm).permute_ranks_device

    def spy(self, shard, dest, source):
        moved.append(dest != self.rank)
        return permute(self, shard, dest, source)

    monkeypatch.setattr(type(device.comm), "permute_ranks_device", spy)
    full, stats = [], []
    for backend in (device, host):
        state = backend.final_state(c, precision=precision)
        state._restore_identity()  # _scramble starts from the identity layout
        backend.comm.reset_stats()
        _scramble(state)
        state._restore_identity()
        assert state.layout == Layout(n, state.layout.num_global)
        # identity layout: the shards side by side, in rank order, are the logical state
        shard = np.asarray(state.K.to_numpy(state.shard))
        full.append(np.concatenate(backend.comm.allgather(shard)))
        stats.append((backend.comm.exchanges, backend.comm.stats()["bytes_sent"]))
    moved = device.comm.allgather(any(moved))
    # every rank checks the same gathered data: a failure fails on all ranks (no rank waits)
    assert np.array_equal(full[0], full[1])
    np.testing.assert_allclose(full[0], REF.statevector(c), atol=TOL[precision])
    assert stats[0] == stats[1]
    if device.comm.size == 4:  # shards did move on some rank, through the device path
        assert any(moved)


@needs_mpi4jax
def test_sampling_restores_the_layout_on_both_paths():
    # sampling restores the identity layout first (permute_ranks_device on 4 ranks)
    c = CIRCUIT.copy()
    c.measure_all()
    device, host = backends(buffer_bytes=SMALL)
    got = device.run(c, shots=400, seed=9, precision="double")
    want = host.run(c, shots=400, seed=9, precision="double")
    assert got.counts == want.counts == REF.run(c, shots=400, seed=9, precision="double").counts
    assert got.metadata["exchanges"] == want.metadata["exchanges"]
    assert got.metadata["bytes_sent"] == want.metadata["bytes_sent"]


def test_device_buffers_need_the_jax_kernels():
    with pytest.raises(OptionError, match=r"device_buffers=True needs the jax kernel set "
                                          r"\(kernels='jax'\), not 'cpu'"):
        get_backend("distributed", kernels="cpu", device_buffers=True)
    with pytest.raises(OptionError, match="device_buffers must be 'auto', True or False"):
        get_backend("distributed", kernels="jax", device_buffers="yes")
    for choice in ("auto", False):  # host staging on the CPU set
        assert get_backend("distributed", kernels="cpu",
                           device_buffers=choice).device_buffers is False


def test_device_buffers_need_mpi4jax(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4jax", None)  # import mpi4jax raises ImportError
    with pytest.raises(BackendError, match=r"device_buffers=True: mpi4jax is not usable .*"
                                           r"pip install 'qsim-dist\[gpu\]'"):
        get_backend("distributed", kernels="jax", device_buffers=True)
    # auto on a GPU without mpi4jax: host staging
    monkeypatch.setattr(distributed_module, "jax_has_accelerator", lambda: True)
    assert get_backend("distributed", kernels="jax").device_buffers is False


@needs_mpi4jax
def test_auto_is_on_only_on_a_gpu(monkeypatch):
    import mpi4jax

    assert get_backend("distributed", kernels="jax").device_buffers is False  # JAX on the CPU
    # on a GPU: on when mpi4jax has its CUDA extension (the CI builds it without)
    monkeypatch.setattr(distributed_module, "jax_has_accelerator", lambda: True)
    backend = get_backend("distributed", kernels="jax")
    assert backend.device_buffers is mpi4jax.has_cuda_support()
    assert len(set(backend.comm.allgather(backend.device_buffers))) == 1
