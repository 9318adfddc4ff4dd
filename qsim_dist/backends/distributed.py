"""The distributed statevector backend: one shard per MPI rank, the shared executor on top.

Under ``mpiexec -n P`` (``P = 2^g``) each rank holds ``2^(n-g)`` amplitudes: those whose top ``g``
physical index bits spell the rank number (:mod:`qsim_dist.passes.layout`). A gate run is fused
once on logical qubits (:func:`~qsim_dist.passes.fusion.fuse`), then compiled for the current
layout: :func:`~qsim_dist.passes.layout.plan_swaps` decides the bit exchanges, and each block is
restricted to the rank's values of its global bits, so that diagonal blocks and controls on global
bits cost no traffic (a rank whose controls read 0 skips the block). Compiled runs are cached per
starting layout, so a run executed from another layout (a skipped conditional run, a copy) is
compiled again instead of being wrong.

Every rank takes the same decisions: the plan depends on the circuit only; probabilities are
reduced over all ranks before the shared random draw of :mod:`.base`; samples and amplitudes are
combined so every rank returns the same values. A seed gives the same counts and amplitudes (to
rounding) at any rank count.

Shot splitting (opt-in, ``split_shots=True``): a run of many trajectories (noise, dynamic
circuit) is cut into fixed-size shot blocks, each seeded from (seed, block index). The ranks form
groups of ``g`` consecutive ranks, ``g`` the smallest power of two whose shards fit the ranks'
memory (1: a full local state per rank); each group runs its share of the blocks, sharding the
state over its ranks, and the counts are summed, so the counts are the same at any rank count
and group size (see :class:`DistributedBackend`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from qsim_dist.kernels import jax_has_accelerator, warm_up
from qsim_dist.kernels.shard import from_host, pauli_partner_sum, precision_context, to_host

from .. import memory
from ..circuit import Circuit, Instruction
from ..errors import BackendError, OptionError
from ..comm import (DEFAULT_BUFFER_BYTES, Comm, available_host_memory, check_memory,
                    device_exchange_problem, validate_ranks)
from ..noise import NoisyCircuit
from ..observables import pauli_phase
from ..passes.fusion import MAX_DIAGONAL, fuse
from ..passes.layout import (Layout, mixing_qubits, plan_swaps, relabel_swaps, renamed,
                             restrict)
from ..options import RunOptions
from ..results import Result
from .base import Backend, lowered
from .state import DTYPES, Capability, State

_X = np.array([[0, 1], [1, 0]], dtype=np.complex128)
_SWAP = np.eye(4, dtype=np.complex128)[[0, 2, 1, 3]]


@dataclass
class _Gate:
    """A block on logical qubits (any order: bit j of the matrix index is ``qubits[j]``)."""

    qubits: tuple[int, ...]
    diagonal: bool
    matrix: np.ndarray
    mixing: frozenset[int]

    @classmethod
    def of(cls, matrix: np.ndarray, qubits: Sequence[int], diagonal: bool) -> "_Gate":
        return cls(tuple(qubits), diagonal, matrix, mixing_qubits(matrix, qubits, diagonal))


@dataclass
class _Program:
    """A fused gate run and its compiled forms, one per starting layout. ``where`` renames the
    qubits at the end (SWAP gates, see :func:`~qsim_dist.passes.layout.relabel_swaps`)."""

    gates: list[_Gate]
    where: tuple[int, ...] = ()
    compiled: dict[Layout, tuple[list[tuple], Layout]] = field(default_factory=dict)


class DistributedState(State):
    """This rank's shard of a ``num_qubits`` state sharded over ``comm.size`` ranks."""

    capabilities = Capability.STATEVECTOR | Capability.CHECKPOINT | Capability.SHARDED

    def __init__(self, kernels, comm: Comm, num_qubits: int, precision: str, max_dense: int,
                 max_diagonal: int, device_buffers: bool = False):
        self.K = kernels
        self.comm = comm
        self.device_buffers = device_buffers  # exchanges on JAX arrays (see DistributedBackend)
        self.num_qubits = num_qubits
        self.dtype = DTYPES[precision]
        g = validate_ranks(num_qubits, comm.size)
        self.layout = Layout(num_qubits, g)
        self._plan_layout = self.layout  # where the last prepared run leaves the state
        self.max_dense = max_dense
        self.max_diagonal = max_diagonal
        self.compile_time = 0.0
        nl = self.layout.num_local
        with self._computing():
            if comm.rank == 0:
                self.shard = kernels.zero_state(nl, self.dtype)
            else:  # |0...0> lives on rank 0; a zero table scales the |0> of zero_state away
                self.shard = self._scale(kernels.zero_state(nl, self.dtype), 0.0)

    # -- helpers ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _computing(self):
        """Kernel calls: timed as computation, in the state's precision."""
        with self.comm.computing(), precision_context(self.K, self.dtype):
            yield

    def _scale(self, shard, factor: complex):
        # A diagonal table on no qubits multiplies every amplitude.
        table = self.K.prepare_matrix(np.array([factor], dtype=np.complex128), self.dtype)
        return self.K.apply_diagonal(shard, table, ())

    def _compile(self, program: _Program, start: Layout) -> tuple[list[tuple], Layout]:
        """Operations that apply ``program`` to this rank's shard from layout ``start``."""
        if start in program.compiled:
            return program.compiled[start]
        t0 = time.perf_counter()
        plan, end = plan_swaps(start, [g.mixing for g in program.gates])
        layout = start
        ops: list[tuple] = []
        for gate, pairs in zip(program.gates, plan):
            if pairs:
                ops.append(("swap", pairs))
                layout = layout.swapped(pairs)
            phys = [layout.phys[q] for q in gate.qubits]
            sub, bits = restrict(gate.matrix, phys, gate.diagonal,
                                 layout.global_values(self.comm.rank, gate.qubits))
            diagonal = gate.diagonal
            if not diagonal and np.count_nonzero(sub - np.diag(np.diagonal(sub))) == 0:
                sub, diagonal = np.diagonal(sub), True  # e.g. a controlled gate, sliced
            if diagonal and np.all(sub == 1):
                continue  # this rank's slice is untouched (its controls read 0)
            with precision_context(self.K, self.dtype):
                table = self.K.prepare_matrix(sub, self.dtype)
            ops.append(("diagonal" if diagonal else "dense", table, bits))
        if program.where != tuple(range(len(program.where))):
            end = renamed(end, program.where)
            ops.append(("relabel", end))
        program.compiled[start] = (ops, end)
        self.compile_time += time.perf_counter() - t0
        return ops, end

    def _swap(self, pairs: tuple[tuple[int, int], ...]) -> None:
        if self.device_buffers:
            with precision_context(self.K, self.dtype):
                self.shard = self.comm.swap_bits_device(self.shard, pairs, self.layout.num_local)
        else:
            host = to_host(self.K, self.shard)  # host staging; the same array on the CPU
            self.comm.swap_bits(host, pairs, self.layout.num_local)
            with precision_context(self.K, self.dtype):
                self.shard = from_host(self.K, host, self.shard)
        self.layout = self.layout.swapped(pairs)

    def _restore_identity(self) -> None:
        """Move the amplitudes back to the identity layout (physical index = logical index):
        one bit exchange for the qubits on the wrong side, local bit swaps, then whole shards
        to the ranks their global bits now name."""
        layout, nl, n = self.layout, self.layout.num_local, self.num_qubits
        out = [q for q in range(nl) if layout.is_global(q)]
        into = [q for q in range(nl, n) if not layout.is_global(q)]
        if out:
            self._swap(tuple((layout.phys[o], layout.phys[i]) for o, i in zip(out, into)))
        for p in range(nl):
            other = self.layout.phys[p]  # where logical qubit p sits (local by now)
            if other != p:
                with self._computing():
                    swap = self.K.prepare_matrix(_SWAP, self.dtype)
                    self.shard = self.K.apply_dense(self.shard, swap, (p, other))
                self.layout = self.layout.swapped(((other, p),))
        logical = self.layout.logical
        if any(logical[p] != p for p in range(nl, n)):
            g, rank = self.layout.num_global, self.comm.rank
            # Rank bit j holds logical qubit logical[nl + j]; identity puts it at bit that - nl.
            dest = sum(((rank >> j) & 1) << (logical[nl + j] - nl) for j in range(g))
            source = sum(((rank >> (logical[nl + j] - nl)) & 1) << j for j in range(g))
            if self.device_buffers:
                with precision_context(self.K, self.dtype):
                    self.shard = self.comm.permute_ranks_device(self.shard, dest, source)
            else:
                host = to_host(self.K, self.shard)
                self.comm.permute_ranks(host, dest, source)
                with precision_context(self.K, self.dtype):
                    self.shard = from_host(self.K, host, self.shard)
            self.layout = Layout(n, g)

    # -- gate runs -------------------------------------------------------------------------
    def prepare(self, gates: Sequence[Instruction]) -> _Program:
        t0 = time.perf_counter()
        gates, where = relabel_swaps(gates, self.num_qubits)
        program = _Program([_Gate.of(b.matrix, b.qubits, b.diagonal)
                            for b in fuse(gates, self.max_dense, self.max_diagonal)], where)
        self.compile_time += time.perf_counter() - t0
        _, self._plan_layout = self._compile(program, self._plan_layout)
        return program

    def execute(self, program: _Program, progress: Callable[[int], None] | None = None) -> None:
        ops, end = self._compile(program, self.layout)
        K = self.K
        for op in ops:
            if op[0] == "swap":
                self._swap(op[1])
                continue
            if op[0] == "relabel":
                self.layout = op[1]
                continue
            with self._computing():
                if op[0] == "dense":
                    self.shard = K.apply_dense(self.shard, op[1], op[2])
                else:
                    self.shard = K.apply_diagonal(self.shard, op[1], op[2])
        assert self.layout == end, "the compiled swaps must end in the planned layout"
        if progress:
            progress(len(program.gates))

    def program_size(self, program: _Program) -> int:
        return len(program.gates)

    def apply_gate(self, matrix: np.ndarray, qubits: Sequence[int]) -> None:
        self.execute(_Program([_Gate.of(np.asarray(matrix, dtype=np.complex128), qubits, False)]))

    def flip(self, qubit: int) -> None:
        self.apply_gate(_X, (qubit,))

    # -- measurement -----------------------------------------------------------------------
    def _local_norm(self) -> float:
        with self._computing():
            return float(self.K.marginal(self.shard, ())[0])

    def probabilities(self, qubits: Sequence[int] | None = None) -> np.ndarray:
        if qubits is None:
            return np.abs(self.statevector().astype(np.complex128)) ** 2
        layout, nl = self.layout, self.layout.num_local
        local = [j for j, q in enumerate(qubits) if not layout.is_global(q)]
        with self._computing():
            part = self.K.marginal(self.shard, [layout.phys[qubits[j]] for j in local])
        # Place the local marginal at the outcomes whose global bits read this rank's values.
        pattern = np.arange(1 << len(local), dtype=np.int64)
        index = np.zeros_like(pattern)
        for a, j in enumerate(local):
            index |= ((pattern >> a) & 1) << j
        for j, q in enumerate(qubits):
            if layout.is_global(q):
                index |= ((self.comm.rank >> (layout.phys[q] - nl)) & 1) << j
        table = np.zeros(1 << len(qubits), dtype=np.float64)
        table[index] = part
        return np.clip(self.comm.allreduce_sum(table), 0.0, 1.0)

    def collapse(self, qubit: int, outcome: int, probability: float) -> None:
        p, nl = self.layout.phys[qubit], self.layout.num_local
        scale = 1.0 / np.sqrt(probability)
        with self._computing():
            if p < nl:
                self.shard = self.K.collapse(self.shard, p, outcome, scale)
            else:  # the whole shard reads one value of a global qubit
                keep = ((self.comm.rank >> (p - nl)) & 1) == outcome
                self.shard = self._scale(self.shard, scale if keep else 0.0)

    def sample_indices(self, draws: np.ndarray) -> np.ndarray:
        """Inverse transform over the ranks' norms, then inside the shard that holds each draw;
        every rank returns all the indices. The identity layout is restored first, so that
        amplitudes are visited in logical order, whatever the number of ranks."""
        self._restore_identity()
        norms = np.array(self.comm.allgather(self._local_norm()), dtype=np.float64)
        ends = np.cumsum(norms)
        targets = np.asarray(draws, dtype=np.float64) * ends[-1]
        owner = np.searchsorted(ends, targets, side="right")
        owner = np.minimum(owner, int(np.flatnonzero(norms > 0)[-1]))  # rounding at the end
        rank, nl = self.comm.rank, self.layout.num_local
        mine = owner == rank
        found = np.zeros(len(targets), dtype=np.int64)
        if mine.any():
            local = np.clip((targets[mine] - (ends[rank] - norms[rank])) / norms[rank], 0.0, 1.0)
            with self._computing():
                idx = np.asarray(self.K.sample_sorted(self.shard, local), dtype=np.int64)
            found[mine] = (np.int64(rank) << nl) | idx
        return self.comm.allreduce_sum(found)

    # -- readout ---------------------------------------------------------------------------
    def statevector(self) -> np.ndarray:
        """The full state in logical order on every rank (gathered; the shards do not move)."""
        host = to_host(self.K, self.shard)
        # Every rank of a node holds the gathered state and its reordered copy at once.
        available = self.comm.allreduce_min(available_host_memory() // self.comm.ranks_on_node())
        check_memory(2 * (host.nbytes << self.layout.num_global), available,
                     "on every rank to gather the statevector")
        return self.layout.to_logical_order(self.comm.allgather_shards(host))

    def amplitudes(self, indices: Sequence[int]) -> np.ndarray:
        phys = self.layout.to_physical(np.asarray(indices, dtype=np.int64))
        nl = self.layout.num_local
        mine = (phys >> nl) == self.comm.rank
        out = np.zeros(phys.size, dtype=np.complex128)
        out[mine] = self.K.to_numpy(self.shard)[phys[mine] & ((1 << nl) - 1)]
        return self.comm.allreduce_sum(out).astype(self.dtype)

    def reduced_density_matrix(self, qubits: Sequence[int]) -> np.ndarray:
        """As :meth:`State.reduced_density_matrix`, without gathering: the qubits are made local
        (one exchange if some are global), each rank reduces its shard, one sum over ranks."""
        plan, _ = plan_swaps(self.layout, [frozenset(qubits)])
        if plan[0]:
            self._swap(plan[0])
        nl, k = self.layout.num_local, len(qubits)
        with self._computing():
            t = to_host(self.K, self.shard).astype(np.complex128).reshape((2,) * nl)
            # tensor axis a is local bit nl-1-a; row bit j of the result is qubits[j]
            axes = [nl - 1 - self.layout.phys[q] for q in reversed(qubits)]
            t = np.moveaxis(t, axes, range(k)).reshape(1 << k, -1)
            local = t @ t.conj().T
        return self.comm.allreduce_sum(local)

    def pauli_expectation(self, x_mask: int, z_mask: int) -> complex:
        layout, nl = self.layout, self.layout.num_local
        xp = sum(1 << layout.phys[q] for q in range(self.num_qubits) if (x_mask >> q) & 1)
        zp = sum(1 << layout.phys[q] for q in range(self.num_qubits) if (z_mask >> q) & 1)
        low = (1 << nl) - 1
        x_glob, x_loc, z_loc = xp >> nl, xp & low, zp & low
        sign = -1.0 if bin(self.comm.rank & (zp >> nl)).count("1") & 1 else 1.0
        if not x_glob:
            with self._computing():
                local = self.K.pauli_expectation(self.shard, x_loc, z_loc)
        else:  # the X part pairs this shard with the shard of rank ^ x_glob
            host = to_host(self.K, self.shard)
            acc = [0j]

            def take(start: int, received: np.ndarray) -> None:
                with self._computing():
                    acc[0] += pauli_partner_sum(host[start:start + received.size], received,
                                                start, z_loc)

            self.comm.pair_exchange(
                self.comm.rank ^ x_glob, host.size, host.itemsize,
                lambda a, b: host[np.arange(a, b, dtype=np.int64) ^ x_loc], take)
            local = acc[0]
        return pauli_phase(x_mask, z_mask) * complex(self.comm.allreduce_sum(sign * local))

    def save(self, result: Result, path: str | os.PathLike) -> Path:
        """Write ``result``, with this state as its statevector, into the HDF5 file ``path``
        (the format of :mod:`qsim_dist.io.hdf5`) without gathering the state. Collective.
        :meth:`DistributedBackend.save_result` calls it only for a result that kept its state
        (``save_state``); a result without one is written without a statevector."""
        from ..io.hdf5 import ResultsFileError, _size_hint, _write

        def start(f) -> str:
            _write(f, dataclasses.replace(result, statevector=None))
            f.create_dataset("statevector", shape=(1 << self.num_qubits,), dtype=self.dtype)
            return "statevector"

        size = _size_hint(dataclasses.replace(result, statevector=None))
        size += np.dtype(self.dtype).itemsize << self.num_qubits
        return self._write_sharded(Path(path), "results", ResultsFileError, start, size)

    def write_checkpoint(self, path: Path, header) -> None:
        from ..io.checkpoint import CheckpointError, create_state_dataset, write_header

        def start(f) -> str:
            write_header(f, dataclasses.replace(header, ranks=self.comm.size))
            create_state_dataset(f, self.num_qubits, self.dtype)
            return "state"

        self._write_sharded(Path(path), "a checkpoint", CheckpointError, start,
                            np.dtype(self.dtype).itemsize << self.num_qubits)

    def load_checkpoint(self, path: Path, header) -> None:
        """This rank's slice of the checkpoint's state; the checks (finite amplitudes, norm)
        are agreed by all ranks, so that a damaged file is refused by every rank at once.
        Collective."""
        from ..io.checkpoint import CheckpointError, check_norm, read_state

        self.layout = Layout(self.num_qubits, self.layout.num_global)  # the file's order
        size = 1 << self.layout.num_local
        problem, host, local = None, None, 0.0
        try:
            host = read_state(path, self.comm.rank * size, (self.comm.rank + 1) * size,
                              self.dtype)
            local = float(np.vdot(host, host).real)
        except CheckpointError as exc:
            problem = str(exc)
        problems = [p for p in self.comm.allgather(problem) if p]
        if problems:
            raise CheckpointError(problems[0])
        check_norm(path, self.comm.allreduce_sum(local), header)  # the same sum on every rank
        with precision_context(self.K, self.dtype):
            self.shard = from_host(self.K, np.ascontiguousarray(host), self.shard)

    def agree(self, flag: bool) -> bool:
        return bool(self.comm.bcast(bool(flag)))

    def _write_sharded(self, path: Path, what: str, error: type, start: Callable[[Any], str],
                       size: int = 0) -> Path:
        """Write one HDF5 file from all ranks, atomically (:mod:`qsim_dist.io.files`: a
        temporary file next to it, renamed at the end): rank 0 checks the path
        (:func:`~qsim_dist.io.files.check_output_path`, free space for ``size`` bytes) and
        calls ``start(f)``, which writes the attributes and creates the state-sized dataset it
        names; then each rank writes its shard as one contiguous slice of it (after the
        identity layout is restored), through parallel HDF5 where h5py has it, one rank after
        the other otherwise. Every check and every failed write (full disk: ``error``, one
        line) is agreed by all ranks, so that they all raise the same error and none waits
        for the others; the temporary file is then removed and the previous file kept.
        Collective."""
        import h5py

        from ..errors import QsimDistError
        from ..io.files import (SafeFile, check_output_path, check_space, create_temp,
                                discard, publish, shown, write_error)

        target = tmp = refused = None
        if self.comm.rank == 0:
            try:
                target = check_output_path(path, what, error)
                check_space(target.parent, size, f"cannot write {what} to {shown(path)}",
                            error)
                fd, tmp = create_temp(target)
                os.close(fd)
            except QsimDistError as exc:
                refused = str(exc)
            except OSError as exc:
                refused = str(write_error(what, path, exc, error))
        refused, target, tmp = self.comm.bcast((refused, target, tmp))
        if refused:  # every rank refuses, none waits for the others
            raise error(refused)

        def agree(exc: BaseException | None) -> None:
            """Raise on every rank the first rank's failure, if any rank failed."""
            message = None
            if isinstance(exc, QsimDistError):
                message = str(exc)
            elif exc is not None:
                message = str(write_error(what, path, exc, error))
            failed = [m for m in self.comm.allgather(message) if m]
            if failed:
                if self.comm.rank == 0:
                    discard(tmp)
                raise error(failed[0])

        try:
            self._restore_identity()
            host = to_host(self.K, self.shard)
            first = self.comm.rank * host.size
            name, problem = None, None
            if self.comm.rank == 0:
                try:
                    with SafeFile.open(tmp) as out:
                        with h5py.File(out, "w") as f:
                            name = start(f)
                        out.check(sync=False)
                except (OSError, RuntimeError, QsimDistError) as exc:
                    problem = exc
            agree(problem)
            name = self.comm.bcast(name)
            parallel = self.comm.open_parallel_hdf5(str(tmp))
            if parallel is not None:
                try:
                    with parallel as f:
                        f[name][first:first + host.size] = host
                except (OSError, RuntimeError) as exc:
                    problem = exc
            else:
                with self.comm.in_turn():
                    try:
                        with SafeFile.open(tmp) as out:
                            with h5py.File(out, "r+") as f:
                                f[name][first:first + host.size] = host
                            out.check(sync=False)
                    except (OSError, RuntimeError) as exc:
                        problem = exc
            agree(problem)
            if self.comm.rank == 0:
                try:
                    with SafeFile.open(tmp) as out:
                        out.check()  # fsync: every rank's writes are in the file's pages
                    publish(tmp, target)
                except OSError as exc:
                    problem = exc
            agree(problem)
        except BaseException:
            if self.comm.rank == 0:
                discard(tmp)
            raise
        self.comm.barrier()  # the file is in place when any rank returns
        return path

    def overlap(self, other: "DistributedState") -> complex:
        """<self|other> without gathering: both in the identity layout, each rank's shard
        product summed over the ranks (collective)."""
        self._restore_identity()
        other._restore_identity()
        local = np.vdot(to_host(self.K, self.shard), to_host(other.K, other.shard))
        return complex(self.comm.allreduce_sum(complex(local)))

    def copy(self) -> "DistributedState":
        other = object.__new__(DistributedState)
        other.__dict__.update(self.__dict__)
        with self._computing():
            other.shard = self.K.copy(self.shard)
        return other


class DistributedBackend(Backend):
    """Statevector sharded over the ranks of an MPI communicator (``mpiexec -n P``, P = 2^g).

    Parameters
    ----------
    kernels
        Kernel set for the shards: ``auto`` (JAX on a GPU, the compiled CPU set otherwise),
        ``cpu`` or ``jax``.
    max_dense, max_diagonal
        Fusion limits (default: the kernel set's, as the statevector backend); dense blocks are
        kept to the number of local qubits.
    buffer_bytes
        Cap of the exchange staging buffers per rank (default 64 MiB).
    memory_limit
        Bytes one rank may use for its shard and buffers; default: the device's free memory
        (host memory shared by the ranks on the node).
    comm
        An mpi4py communicator (default ``MPI.COMM_WORLD``), or a :class:`~qsim_dist.comm.Comm`
        (used as it is, with its own buffer cap).
    split_shots
        Opt-in shot splitting (default False): the shots of a run with trajectories (noise
        channels or a dynamic circuit; no checkpoint) are cut into blocks of ``shot_block``
        shots, block b run as an independent run seeded by ``SeedSequence((seed, b))``
        (:func:`block_seed`). The P ranks form P/g groups of g consecutive ranks, g the
        smallest power of two (1, 2, 4, ... up to P) for which one rank's shard of the state,
        plus the exchange buffer when g > 1, fits every rank's memory (the check of a sharded
        run); block b goes to group b mod P/g, which runs it on a full local state when g = 1
        (the statevector backend with the same kernels) and sharded over its g ranks otherwise
        (a distributed backend on the group's sub-communicator, with the same kernels, fusion
        limits, buffer and memory limit). The counts are summed once per group. They depend on
        the seed and ``shot_block`` only: the same at any rank count and group size (and they
        differ from an unsplit run with the same seed, which draws all shots from one stream).
        ``metadata["shot_split"]`` reports ``blocks``, ``block_shots``, ``ranks``,
        ``group_ranks`` (g) and ``groups``; the run statistics count every group (``bytes_sent``
        of all ranks, ``exchanges`` of all groups, each rank's times). ``save_state`` gives
        block 0's first trajectory on every rank, and :meth:`save_result` writes it (rank 0
        writes the file). Runs without trajectories, or whose state fits no group size, are
        sharded as usual (and refused as usual when the state does not fit).
    shot_block
        Shots per block of a split run (default 1024): the unit of work a rank takes; a larger
        block shares more work between trajectories, a smaller one spreads few shots wider.
    device_buffers
        How the bit exchanges move the shards: ``False`` stages them through host (numpy)
        buffers; ``True`` hands the JAX arrays to MPI as they are, through mpi4jax (the ``gpu``
        extra): GPU memory straight to MPI when the MPI library is CUDA-aware and
        ``MPI4JAX_USE_CUDA_MPI=1`` is set (otherwise mpi4jax copies each piece through the
        host), JAX's host buffers on a CPU. Same pieces, traffic and amplitudes (bit for bit)
        either way. ``True`` needs the jax kernel set and a usable mpi4jax (with its CUDA
        extension on a GPU), else an error; ``"auto"`` (default) is ``True`` when the kernel
        set is jax, JAX runs on a GPU and mpi4jax is usable on every rank, ``False``
        otherwise. ``metadata["device_buffers"]`` says which path a run took. Only the bit
        exchanges of gate runs and the shard moves that restore the identity layout use it;
        the Pauli expectations' pair exchanges, the statevector gather and HDF5 writes stay
        host-staged.
    """

    name = "distributed"
    default_precision = "single"
    state_capabilities = DistributedState.capabilities

    def __init__(self, kernels: str = "auto", max_dense: int | None = None,
                 max_diagonal: int = MAX_DIAGONAL, buffer_bytes: int = DEFAULT_BUFFER_BYTES,
                 memory_limit: int | None = None, comm: Any = None,
                 split_shots: bool = False, shot_block: int = 1024,
                 device_buffers: bool | str = "auto"):
        from qsim_dist.kernels import get_kernels

        if not (device_buffers is True or device_buffers is False or device_buffers == "auto"):
            raise OptionError(f"device_buffers must be 'auto', True or False, "
                              f"got {device_buffers!r}")

        if not isinstance(shot_block, (int, np.integer)) or isinstance(shot_block, bool) \
                or shot_block < 1:
            raise OptionError(f"shot_block must be a positive integer, got {shot_block!r}")
        self.split_shots = bool(split_shots)
        self.shot_block = int(shot_block)

        self.kernels = get_kernels(kernels)
        # (a Comm is taken as it is: a group's sub-communicator, see split_shots)
        self.comm = comm if isinstance(comm, Comm) else Comm(comm, buffer_bytes)
        if self.kernels.name == "cpu":
            from qsim_dist.kernels.cpu import share_cores

            share_cores(self.comm.ranks_on_node())
        self.device_buffers = self._use_device_buffers(device_buffers)
        self.max_dense = max_dense or self.kernels.max_dense
        self.max_diagonal = max_diagonal
        self.memory_limit = memory_limit
        self.last_state: DistributedState | None = None
        self._split_result = False  # whether the last run was split (see save_result)
        self._group_backends: dict[int, Any] = {}  # group size -> backend of this rank's group

    def _use_device_buffers(self, choice: bool | str) -> bool:
        """Resolve the ``device_buffers`` option, the same way on every rank (collective unless
        it is False or the kernel set is not jax)."""
        if choice is False:
            return False
        if self.kernels.name != "jax":
            if choice is True:
                raise OptionError(f"device_buffers=True needs the jax kernel set "
                                  f"(kernels='jax'), not '{self.kernels.name}'")
            return False
        on_gpu = jax_has_accelerator()
        if choice == "auto" and not self.comm.allreduce_min(int(on_gpu)):
            return False
        problems = [p for p in self.comm.allgather(device_exchange_problem(on_gpu)) if p]
        if problems and choice is True:
            raise BackendError(f"device_buffers=True: {problems[0]}")
        return not problems

    def _available_memory(self) -> int:
        """This rank's share of what the job may use (:mod:`qsim_dist.memory`: the cgroup, the
        host, the address space; the accelerator's memory for JAX on a GPU), or
        ``memory_limit``."""
        if self.memory_limit is not None:
            return self.memory_limit
        if self.kernels.name == "jax" and jax_has_accelerator():
            return memory.available_for(self.kernels)
        return memory.available_bytes() // self.comm.ranks_on_node()

    def _check_run_memory(self, circuit: Circuit, noisy, width: int, precision: str,
                          shots: int, dynamic: bool, pauli: bool, save_state: bool) -> None:
        """As :meth:`Backend._check_run_memory`; with ``memory_limit``, which is a budget for
        the shard and the exchange buffers only, the shard and buffers are what is checked."""
        if self.memory_limit is not None:
            self.check_state_fits(width, precision)
            return
        super()._check_run_memory(circuit, noisy, width, precision, shots, dynamic, pauli,
                                  save_state)

    def state_bytes(self, num_qubits: int, precision: str) -> int:
        return _rank_bytes(num_qubits, validate_ranks(num_qubits, self.comm.size), precision, 0)

    def work_bytes(self, num_qubits: int, precision: str) -> int:
        g = validate_ranks(num_qubits, self.comm.size)
        return _rank_bytes(num_qubits, g, precision, self.comm.buffer_bytes) - \
            _rank_bytes(num_qubits, g, precision, 0)

    def new_state(self, num_qubits: int, precision: str) -> DistributedState:
        g = validate_ranks(num_qubits, self.comm.size)
        needed = _rank_bytes(num_qubits, g, precision, self.comm.buffer_bytes)
        # The poorest rank decides for all, so that every rank refuses together.
        check_memory(needed, self.comm.allreduce_min(self._available_memory()))
        # inside the run's clock, counted once per process and precision
        warm_up_time = warm_up(self.kernels, DTYPES[precision])
        state = DistributedState(self.kernels, self.comm, num_qubits, precision,
                                 min(self.max_dense, num_qubits - g), self.max_diagonal,
                                 self.device_buffers)
        state.compile_time = warm_up_time
        self.last_state = state
        return state

    def save_result(self, result: Result, path: str | os.PathLike) -> Path:
        """Write ``result`` into one HDF5 file. With its statevector (``save_state``), the final
        state of the last run on this backend is written from all ranks
        (:meth:`DistributedState.save`; no rank gathers the state); without it, rank 0 writes
        the counts and metadata only, as :func:`~qsim_dist.io.hdf5.save_result`. For a
        dynamic circuit the state is that of the last shot. After a split run (see
        ``split_shots``) there is no sharded state: rank 0 writes ``result`` as it is (with
        block 0's trajectory if the run saved the state). Collective."""
        if result.statevector is None or (self.last_state is None and self._split_result):
            # no --save-state: the statevector is not written (it may be terabytes)
            return self._save_on_rank_zero(result, Path(path))
        if self.last_state is None:
            raise BackendError("no state to save: run a circuit first")
        return self.last_state.save(result, path)

    def _save_on_rank_zero(self, result: Result, path: Path) -> Path:
        from ..errors import QsimDistError
        from ..io.hdf5 import ResultsFileError, save_result

        error = None
        if self.comm.rank == 0:
            try:
                save_result(result, path)
            except QsimDistError as exc:
                error = (type(exc), str(exc))
            except Exception as exc:  # an unexpected one must not leave the others waiting
                error = (ResultsFileError, f"cannot write results to '{path}': {exc}")
        error = self.comm.bcast(error)
        if error:  # every rank raises the same error
            raise error[0](error[1])
        return path

    def run(self, circuit: Circuit, shots: int = 1024, seed: int | None = None,
            progress: bool | None = None, **options: Any) -> Result:
        """As :meth:`Backend.run` (the same options), on every rank: the same seed everywhere
        (drawn on rank 0 when None), a progress bar on rank 0 only, and ``metadata`` with the
        run's ``exchanges``, ``bytes_sent`` (all ranks), per-rank ``comm_time_s`` and
        ``compute_time_s``, and ``device_buffers`` (whether the exchanges handed JAX arrays to
        MPI, see the option)."""
        checkpoint = options.get("checkpoint")
        run_options = RunOptions.resolve(
            shots, seed, options.get("precision"), default_precision=self.default_precision,
            comm=self.comm, resume=checkpoint is not None and checkpoint.resume is not None)
        self.comm.reset_stats()
        self._split_result = False
        group = None
        if self.split_shots:
            plain, noisy = lowered(circuit, options.get("noise"))
            group = self._split_group(plain, noisy, run_options.precision, checkpoint)
        if group is not None:
            result = self._run_split(plain, noisy, run_options, group, **options)
            self._split_result = True
        else:
            result = self._run(circuit, run_options,
                               progress=progress if self.comm.rank == 0 else False,
                               **{k: v for k, v in options.items() if k != "precision"})
        result.metadata.update(self.comm.stats())
        result.metadata["device_buffers"] = self.device_buffers
        return result

    # -- shot splitting (see split_shots) ---------------------------------------------------
    def _split_group(self, circuit: Circuit, noisy: NoisyCircuit | None, precision: str,
                     checkpoint: Any) -> int | None:
        """The group size of a split run, or None when the run is not split: no trajectories,
        a checkpoint, or no group size that fits. The group size is the smallest power of two
        ``g`` dividing the rank count for which one rank's shard of a state sharded over ``g``
        ranks (plus the exchange buffer when g > 1, as :meth:`new_state` counts it) fits the
        poorest rank (one decision for all ranks)."""
        if checkpoint is not None:
            return None
        if not (circuit.is_dynamic() or (noisy is not None and noisy.has_channels)):
            return None
        available = self.comm.allreduce_min(self._available_memory())
        n, g = circuit.num_qubits, 0
        while (1 << g) <= self.comm.size and self.comm.size % (1 << g) == 0 \
                and (g == 0 or n - g >= 2):  # as validate_ranks: 2 local qubits per rank
            if _rank_bytes(n, g, precision, self.comm.buffer_bytes) <= available:
                return 1 << g
            g += 1
        return None

    def _group_backend(self, size: int):
        """The backend that runs this rank's group's blocks: the statevector backend (size 1)
        or a distributed backend on the sub-communicator of ranks ``size * (rank // size)``
        onwards (made once per group size; collective on first use)."""
        if size not in self._group_backends:
            if size == 1:
                from .statevector import StatevectorBackend

                backend = StatevectorBackend(self.kernels.name, self.max_dense, self.max_diagonal)
            else:
                sub = self.comm.split(self.comm.rank // size, self.comm.rank % size)
                backend = DistributedBackend(self.kernels.name, self.max_dense, self.max_diagonal,
                                             sub.buffer_bytes, self.memory_limit, comm=sub,
                                             device_buffers=self.device_buffers)
            self._group_backends[size] = backend
        return self._group_backends[size]

    def _run_split(self, circuit: Circuit, noisy: NoisyCircuit | None, run_options: RunOptions,
                   group_size: int, **options: Any) -> Result:
        """The blocks of a split run (see split_shots): ``circuit`` with its noise inserted,
        ``noisy`` (None without noise), this rank's group's blocks on its group backend."""
        unknown = set(options) - {"precision", "save_state", "noise", "checkpoint"}
        if unknown:
            raise OptionError(f"unknown run option(s): {', '.join(sorted(unknown))}")
        shots, seed = run_options.shots, run_options.int64_seed()
        t0 = time.perf_counter()
        local = self._group_backend(group_size)
        groups, group = self.comm.size // group_size, self.comm.rank // group_size
        leader = self.comm.rank % group_size == 0  # the rank that reports its group's counts
        precision = run_options.precision
        save_state = bool(options.get("save_state"))
        blocks = max(1, -(-shots // self.shot_block))
        counts: dict[str, int] = {}
        exchanges = 0
        saved = None
        compile_time = 0.0
        for b in range(group, blocks, groups):
            block_shots = min(self.shot_block, shots - b * self.shot_block) if shots else 0
            with contextlib.nullcontext() if group_size > 1 else self.comm.computing():
                r = local.run(noisy if noisy is not None else circuit, shots=block_shots,
                              seed=block_seed(seed, b), precision=precision,
                              save_state=save_state and b == 0, progress=False)
            if group_size > 1:  # the group's run statistics, reset by each of its runs
                self.comm.add_stats(local.comm)
                exchanges += local.comm.exchanges
            for key, c in r.counts.items():
                counts[key] = counts.get(key, 0) + c
            compile_time += r.compile_time
            if b == 0:
                saved = r.statevector
        total: dict[str, int] = {}
        for part, group_exchanges in self.comm.allgather((counts, exchanges) if leader
                                                         else ({}, 0)):
            for key, c in part.items():
                total[key] = total.get(key, 0) + c
            self.comm.exchanges += group_exchanges  # every group's, on every rank
        if save_state:
            saved = self.comm.bcast(saved)
        self.last_state = None
        return Result(
            num_qubits=circuit.num_qubits, num_clbits=circuit.num_clbits, shots=shots, seed=seed,
            precision=precision, backend=self.name, counts=dict(sorted(total.items())),
            statevector=saved, wall_time=time.perf_counter() - t0, compile_time=compile_time,
            circuit_name=circuit.name,
            metadata={"shot_split": {"blocks": blocks, "block_shots": self.shot_block,
                                     "ranks": self.comm.size, "group_ranks": group_size,
                                     "groups": groups}})


def _rank_bytes(num_qubits: int, g: int, precision: str, buffer_bytes: int) -> int:
    """Bytes one rank needs for a ``num_qubits`` state sharded over ``2^g`` ranks: its shard,
    plus the exchange buffer when there is more than one rank."""
    shard = np.dtype(DTYPES[precision]).itemsize << (num_qubits - g)
    return shard + (min(buffer_bytes, 2 * shard) if g else 0)


def block_seed(seed: int, block: int) -> int:
    """The seed of block ``block`` of a split run seeded with ``seed`` (see split_shots)."""
    return int(np.random.SeedSequence((int(seed), int(block))).generate_state(1, np.uint64)[0]
               >> np.uint64(1))
