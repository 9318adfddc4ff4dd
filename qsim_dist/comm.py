"""The MPI of a sharded state: one communicator wrapper for the distributed backend.

Every MPI call that a run makes on its state lives here (mpi4py is imported when a :class:`Comm`
is made, never at import time): the distributed backend, and the network report through a
backend's ``comm``, reach MPI only through a :class:`Comm`. The job around a run makes its own
few calls elsewhere: ``qsim_dist/mpi_launch/launcher.py`` (the ``allgather`` of :func:`agree`,
``MPI_Abort`` when a rank fails, this process's rank), ``qsim-dist info`` in ``cli.py`` (the MPI
library's version) and ``qsim-dist dqc`` in ``cli/dqc.py`` (the rank that prints).

Besides reductions and broadcasts, :class:`Comm` carries the two data movements of a
sharded state, both done in pieces through a capped staging buffer so that no message reaches
2^31 elements and memory stays at one shard plus the buffer:

- :meth:`Comm.swap_bits`: exchange ``m`` global index bits with ``m`` local ones in one all-to-all
  among the ``2^m`` ranks that differ only in those global bits;
- :meth:`Comm.pair_exchange`: trade pieces with one partner rank (Pauli expectation values);
- :meth:`Comm.permute_ranks`: move whole shards between ranks (restoring the identity layout).

:meth:`Comm.swap_bits_device` and :meth:`Comm.permute_ranks_device` do the first and the last on
a JAX array without host staging: the pieces are JAX arrays handed to MPI by mpi4jax (imported
on first use; the optional ``gpu`` extra), GPU pointers when the MPI library is CUDA-aware.

It also counts exchanges and payload bytes and times communication and computation per rank.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator

import numpy as np

from .errors import BackendError, OptionError

DEFAULT_BUFFER_BYTES = 64 << 20
# Largest element count of one MPI message: counts are C ints.
MAX_MESSAGE_ELEMENTS = (1 << 31) - 1
_TURN = 7  # message tag of the token that orders ranks in Comm.in_turn


def validate_ranks(num_qubits: int, num_ranks: int) -> int:
    """``g`` with ``num_ranks = 2^g``, or a clear error.

    A block may mix two qubits (a SWAP, an RXX), and they must both be local: with more than one
    rank, every shard keeps at least two qubits.
    """
    if num_ranks < 1 or num_ranks & (num_ranks - 1):
        raise BackendError(f"the distributed backend needs a power-of-two number of ranks, "
                           f"got {num_ranks}: start mpiexec with -n 1, 2, 4, 8, ...")
    g = num_ranks.bit_length() - 1
    if g and num_qubits - g < 2:
        most = 1 << max(num_qubits - 2, 0)
        raise BackendError(f"{num_ranks} ranks are too many for {num_qubits} qubits: each rank "
                           f"must hold at least 2 qubits locally; use at most {most} rank"
                           f"{'s' if most > 1 else ''}")
    return g


def format_bytes(n: float) -> str:
    """``16.0 TiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def available_host_memory() -> int:
    """Bytes this process may still allocate on the host: the job's cgroup, the host's
    available memory and the address-space limit (:func:`qsim_dist.memory.available_bytes`)."""
    from .memory import available_bytes

    return available_bytes()


def check_memory(needed: int, available: int, what: str = "per rank") -> None:
    """Refuse, with the numbers, a request for more bytes than are available."""
    if needed > available:
        raise BackendError(f"the state needs {format_bytes(needed)} {what}, "
                           f"{format_bytes(available)} available: use more ranks (or nodes), "
                           f"single precision, or fewer qubits")


def device_exchange_problem(on_gpu: bool) -> str | None:
    """Why this process cannot hand JAX arrays to MPI (see :meth:`Comm.swap_bits_device`), in a
    few words, or None when it can: mpi4jax must import (it also refuses an MPI library other
    than the one it was built against) and, for GPU arrays, have its CUDA extension."""
    try:
        import mpi4jax
    except Exception as exc:  # ImportError, or mpi4jax's RuntimeError on an MPI ABI mismatch
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"mpi4jax is not usable ({reason}); install it: pip install 'qsim-dist[gpu]'"
    if on_gpu and not mpi4jax.has_cuda_support():
        return ("mpi4jax was built without its CUDA extension: reinstall it where the CUDA "
                "toolkit is found (pip install --no-cache-dir --force-reinstall --no-deps mpi4jax)")
    return None


class Comm:
    """A communicator with the collective operations the distributed backend needs.

    Parameters
    ----------
    comm
        An ``mpi4py`` communicator; ``MPI.COMM_WORLD`` when None.
    buffer_bytes
        Cap of the staging buffers of one exchange (send and receive together).
    """

    def __init__(self, comm: Any = None, buffer_bytes: int = DEFAULT_BUFFER_BYTES):
        from mpi4py import MPI

        if buffer_bytes < 64:
            raise OptionError(f"the exchange buffer must hold at least 64 bytes, "
                              f"got {buffer_bytes}")
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.buffer_bytes = int(buffer_bytes)
        self._groups: dict[tuple[int, ...], Any] = {}
        self._node_ranks: int | None = None  # set by split: the parent's ranks on the node
        self.reset_stats()

    # -- statistics -----------------------------------------------------------------------
    def reset_stats(self) -> None:
        self.exchanges = 0
        self.bytes_sent = 0
        self.messages = 0     # point-to-point sends (modulenet: factors between module owners)
        self.broadcasts = 0
        self.comm_time = 0.0
        self.compute_time = 0.0

    @contextlib.contextmanager
    def _timed(self, attr: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, attr, getattr(self, attr) + time.perf_counter() - t0)

    def communicating(self) -> contextlib.AbstractContextManager:
        """Time the enclosed block as communication."""
        return self._timed("comm_time")

    def computing(self) -> contextlib.AbstractContextManager:
        """Time the enclosed block as computation."""
        return self._timed("compute_time")

    def stats(self) -> dict[str, Any]:
        """Run statistics, identical on every rank (collective): exchanges, payload bytes sent by
        all ranks together, and each rank's seconds in communication and computation."""
        times = self.comm.allgather((self.comm_time, self.compute_time))
        return {"ranks": self.size, "exchanges": self.exchanges,
                "messages": int(self.comm.allreduce(self.messages)),
                "broadcasts": self.broadcasts,
                "bytes_sent": int(self.comm.allreduce(self.bytes_sent)),
                "comm_time_s": [round(c, 6) for c, _ in times],
                "compute_time_s": [round(t, 6) for _, t in times]}

    # -- small collectives ----------------------------------------------------------------
    def bcast(self, value: Any, root: int = 0) -> Any:
        self.broadcasts += 1
        with self.communicating():
            return self.comm.bcast(value, root=root)

    def send(self, value: Any, dest: int) -> None:
        """One point-to-point message (a numpy array's bytes are counted)."""
        self.messages += 1
        self.bytes_sent += int(getattr(value, "nbytes", 0))
        with self.communicating():
            self.comm.send(value, dest=dest)

    def recv(self, source: int) -> Any:
        with self.communicating():
            return self.comm.recv(source=source)

    def gather(self, value: Any, root: int = 0) -> list | None:
        """``value`` of every rank as a list on ``root`` (None elsewhere)."""
        with self.communicating():
            return self.comm.gather(value, root=root)

    def allreduce_sum(self, value: Any) -> Any:
        """Sum of a float, complex or numpy array over all ranks."""
        with self.communicating():
            if isinstance(value, np.ndarray):
                out = np.empty_like(value)
                self.comm.Allreduce(np.ascontiguousarray(value), out, op=self.MPI.SUM)
                return out
            return self.comm.allreduce(value, op=self.MPI.SUM)

    def allreduce_min(self, value: int) -> int:
        """Smallest ``value`` over all ranks."""
        with self.communicating():
            return self.comm.allreduce(value, op=self.MPI.MIN)

    def allgather(self, value: Any) -> list:
        with self.communicating():
            return self.comm.allgather(value)

    def barrier(self) -> None:
        with self.communicating():
            self.comm.Barrier()

    @contextlib.contextmanager
    def in_turn(self) -> Iterator[None]:
        """Run the enclosed block on one rank after the other, in rank order (ordered writes)."""
        with self.communicating():
            if self.rank > 0:
                self.comm.recv(source=self.rank - 1, tag=_TURN)
        try:
            yield
        finally:
            if self.rank < self.size - 1:
                with self.communicating():
                    self.comm.send(None, dest=self.rank + 1, tag=_TURN)

    def open_parallel_hdf5(self, path: str, mode: str = "r+") -> Any:
        """``path`` opened by all ranks together through parallel HDF5, or None when h5py was
        built without MPI (collective)."""
        import h5py

        if not h5py.get_config().mpi:
            return None
        return h5py.File(path, mode, driver="mpio", comm=self.comm)

    def ranks_on_node(self) -> int:
        """Ranks sharing this rank's node (they share its memory). For a communicator made by
        :meth:`split`, those of the communicator it was split from: its sibling groups run on
        the same node at the same time."""
        if self._node_ranks is not None:
            return self._node_ranks
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        size = node.Get_size()
        node.Free()
        return size

    def split(self, color: int, key: int) -> "Comm":
        """A :class:`Comm` over the ranks that pass the same ``color``, ordered by ``key``
        (``MPI_Comm_split``), with the same buffer cap; its :meth:`ranks_on_node` is this
        communicator's. Collective."""
        node_ranks = self.ranks_on_node()
        with self.communicating():
            sub = Comm(self.comm.Split(int(color), int(key)), self.buffer_bytes)
        sub._node_ranks = node_ranks
        return sub

    def add_stats(self, other: "Comm") -> None:
        """Add ``other``'s statistics of this rank (payload bytes, communication and computation
        seconds) to this communicator's; exchanges are left to the caller (see
        :meth:`stats`)."""
        self.bytes_sent += other.bytes_sent
        self.comm_time += other.comm_time
        self.compute_time += other.compute_time

    # -- data movement --------------------------------------------------------------------
    def _piece(self, num_parts: int, itemsize: int) -> int:
        """Elements per destination in one round: the buffer holds ``num_parts`` pieces to send
        and as many received."""
        per = self.buffer_bytes // (2 * num_parts * itemsize)
        return max(1, min(per, MAX_MESSAGE_ELEMENTS))

    def _piece_bits(self, m: int, rest: int, itemsize: int) -> int:
        """``c``: the ``2^rest`` elements that go to each of ``2^m`` ranks are split into
        ``2^c`` pieces over their highest index bits so that one piece fits the buffer."""
        piece = self._piece(1 << m, itemsize)
        c = 0
        while (1 << (rest - c)) > piece:
            c += 1
        return c

    def _group(self, global_bits: tuple[int, ...]) -> Any:
        """The communicator of the ranks that differ only in rank bits ``global_bits``; its rank
        ``t`` has bit ``k`` of ``t`` = rank bit ``global_bits[k]`` (collective on first use)."""
        if global_bits not in self._groups:
            mask = sum(1 << b for b in global_bits)
            key = sum(((self.rank >> b) & 1) << k for k, b in enumerate(global_bits))
            with self.communicating():
                self._groups[global_bits] = self.comm.Split(self.rank & ~mask, key)
        return self._groups[global_bits]

    def swap_bits(self, shard: np.ndarray, pairs: tuple[tuple[int, int], ...],
                  num_local: int) -> None:
        """Exchange physical bits in place: for each ``(global, local)`` pair, the amplitude at
        index bits ``(global=a, local=b)`` moves to ``(global=b, local=a)``.

        Amplitudes whose swapped local bits read pattern ``t`` go to the rank whose swapped
        global bits read ``t``; the rest of the index is kept. The shard is processed in pieces
        of the buffer's size; within a piece every position read is also written, so the update
        is in place.
        """
        m = len(pairs)
        group = self._group(tuple(gb - num_local for gb, _ in pairs))
        # Axes of the shard tensor: axis a is local bit num_local-1-a. Put the swapped local bits
        # first (pair m-1 most significant, so row t of the (2^m, rest) view is pattern t).
        t = shard.reshape((2,) * num_local)
        lead = [num_local - 1 - lb for _, lb in reversed(pairs)]
        view = np.moveaxis(t, lead, list(range(m)))
        rest = num_local - m
        c = self._piece_bits(m, rest, shard.itemsize)
        send = np.empty((1 << m, 1 << (rest - c)), dtype=shard.dtype)
        recv = np.empty_like(send)
        shape = (2,) * m + (2,) * (rest - c)
        with self.communicating():
            for p in range(1 << c):
                sel = (slice(None),) * m + tuple((p >> (c - 1 - a)) & 1 for a in range(c))
                np.copyto(send.reshape(shape), view[sel])
                group.Alltoall(send, recv)
                view[sel] = recv.reshape(shape)
        self.exchanges += 1
        self.bytes_sent += (shard.nbytes - (shard.nbytes >> m))

    def swap_bits_device(self, shard: Any, pairs: tuple[tuple[int, int], ...],
                         num_local: int) -> Any:
        """:meth:`swap_bits` on a JAX array, whose buffers go to MPI as they are (mpi4jax): GPU
        memory with a CUDA-aware MPI (``MPI4JAX_USE_CUDA_MPI=1``; without it mpi4jax copies each
        piece through the host), JAX's own host buffers on a CPU. Returns the new shard;
        ``shard`` is donated (do not use it afterwards). The same group communicator, pieces,
        messages and statistics as :meth:`swap_bits`, and the same amplitudes bit for bit. The
        pieces are cut out and written back by jitted kernels
        (:func:`~qsim_dist.kernels.jax_xla.take_piece`, ``put_piece``); the call returns once
        the last piece is in place, so no mpi4jax call is pending when mpi4py is used next."""
        import mpi4jax

        from qsim_dist.kernels.jax_xla import put_piece, take_piece

        m = len(pairs)
        group = self._group(tuple(gb - num_local for gb, _ in pairs))
        lead = tuple(num_local - 1 - lb for _, lb in reversed(pairs))  # as swap_bits
        itemsize = np.dtype(shard.dtype).itemsize
        c = self._piece_bits(m, num_local - m, itemsize)
        with self.communicating():
            for p in range(1 << c):
                send = take_piece(shard, p, lead=lead, c=c)
                recv = mpi4jax.alltoall(send, comm=group)
                shard = put_piece(shard, recv, p, lead=lead, c=c)
            shard.block_until_ready()
        nbytes = shard.size * itemsize
        self.exchanges += 1
        self.bytes_sent += nbytes - (nbytes >> m)
        return shard

    def pair_exchange(self, partner: int, size: int, itemsize: int,
                      fill: Callable[[int, int], np.ndarray],
                      use: Callable[[int, np.ndarray], None]) -> None:
        """Trade ``size`` elements with ``partner`` in pieces: ``fill(start, stop)`` gives this
        rank's piece to send, ``use(start, received)`` consumes the partner's."""
        piece = self._piece(1, itemsize)
        for start in range(0, size, piece):
            stop = min(size, start + piece)
            send = np.ascontiguousarray(fill(start, stop))
            recv = np.empty_like(send)
            with self.communicating():
                self.comm.Sendrecv(send, dest=partner, recvbuf=recv, source=partner)
            use(start, recv)
        self.exchanges += 1
        self.bytes_sent += size * itemsize

    def permute_ranks(self, shard: np.ndarray, dest: int, source: int) -> None:
        """Send the whole shard to rank ``dest`` and put the one of rank ``source`` in its place
        (in pieces: each piece is received into the buffer, then written over the one sent).
        Collective: every rank calls it, those that keep their shard too."""
        self.exchanges += 1
        if dest == self.rank:
            return
        piece = self._piece(1, shard.itemsize)
        recv = np.empty(min(piece, shard.size), dtype=shard.dtype)
        with self.communicating():
            for start in range(0, shard.size, piece):
                stop = min(shard.size, start + piece)
                self.comm.Sendrecv(shard[start:stop], dest=dest, recvbuf=recv[:stop - start],
                                   source=source)
                shard[start:stop] = recv[:stop - start]
        self.bytes_sent += shard.nbytes

    def permute_ranks_device(self, shard: Any, dest: int, source: int) -> Any:
        """:meth:`permute_ranks` on a JAX array through mpi4jax (device buffers, see
        :meth:`swap_bits_device`); returns the new shard (``shard`` is donated). The pieces are
        the ``2^c`` consecutive ranges of a power-of-two length within the buffer's cap (up to
        twice the messages of :meth:`permute_ranks` for the same bytes). Collective."""
        self.exchanges += 1
        if dest == self.rank:
            return shard
        import mpi4jax

        from qsim_dist.kernels.jax_xla import put_piece, take_piece

        itemsize = np.dtype(shard.dtype).itemsize
        n = shard.size.bit_length() - 1
        c = self._piece_bits(0, n, itemsize)
        with self.communicating():
            for p in range(1 << c):
                send = take_piece(shard, p, lead=(), c=c)
                recv = mpi4jax.sendrecv(send, send, source=source, dest=dest, comm=self.comm)
                shard = put_piece(shard, recv, p, lead=(), c=c)
            shard.block_until_ready()
        self.bytes_sent += shard.size * itemsize
        return shard

    def allgather_shards(self, shard: np.ndarray) -> np.ndarray:
        """All shards side by side, rank order (the full state in physical order), on every
        rank; gathered in pieces of the buffer's size."""
        full = np.empty((self.size, shard.size), dtype=shard.dtype)
        piece = self._piece(self.size, shard.itemsize)
        with self.communicating():
            for start in range(0, shard.size, piece):
                stop = min(shard.size, start + piece)
                part = np.empty((self.size, stop - start), dtype=shard.dtype)
                self.comm.Allgather(np.ascontiguousarray(shard[start:stop]), part)
                full[:, start:stop] = part
        return full.reshape(-1)
