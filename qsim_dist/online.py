"""Node programs that read their outcomes (``yield node.read(bit)``), run online: shot by shot,
the state simulated while the programs run.

A program that never reads is recorded once per schedule and simulated in batches
(:func:`qsim_dist.dqc.run_nodes`); one that reads cannot be, since what it does next depends
on the outcome. :func:`run_online` runs such programs once per shot on a fresh
:class:`~qsim_dist.network.runtime.Runtime` and a :class:`~qsim_dist.backends.stepper.Stepper`
of the chosen backend: when a program reads, the operations recorded so far (gates, noise,
measurements, in the runtime's order, which is causal on every qubit) are applied to the state
and the bit's value is read off the stepper's clbits. Timing, decoherence and link models are
the runtime's, as in the lowered path; a program waiting for a value waits in simulated time.
Each shot's schedule and outcomes come from its own seeded streams, so one seed gives one
report. The report is the lowered path's, with ``execution = "online"`` and the per-shot
spread of makespans and resources in ``distribution``.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .backends import get_backend
from .backends.modulenet import ModuleNetState
from .circuit import Instruction
from .errors import OptionError
from .network.nodes import lowered_of, run_on
from .network.ranked import ProgramRanks
from .network.runtime import Bit, Runtime
from .network.topology import Network
from .options import int_seed

#: the backends that run programs online (a state of the contract with the step API, in one
#: process)
ONLINE_BACKENDS = ("statevector", "reference", "modulenet")
DENSE_TARGET_QUBITS = 12   # output qubits up to which the fidelity target is a dense vector


class _Shot:
    """One shot's state, advanced to the runtime's recorded ops whenever a program reads."""

    def __init__(self, backend: str, num_qubits: int, precision: str, seed: int,
                 ranks: "_Ranks | None" = None):
        engine = get_backend(backend) if ranks is None else ranks.engine(backend)
        self.stepper = engine.stepper(num_qubits, 0, seed=seed, precision=precision)
        self.applied = 0

    def flush(self, rt: Runtime) -> None:
        st = self.stepper
        if isinstance(st.state, ModuleNetState):   # qubits get their nodes as they are made
            st.state.assign_modules(rt.qubit_node)
        st.reserve_clbits(rt.num_clbits)
        for op in rt.ops[self.applied:]:
            measure = isinstance(op, Instruction) and op.name == "measure"
            st.apply(op, rt.readout.get(op.qubits[0]) if measure else None)
        self.applied = len(rt.ops)

    def read(self, rt: Runtime, bit: Bit) -> int:
        self.flush(rt)
        return self.stepper.clbits[bit.index]

    def rho(self, qubits) -> np.ndarray:
        return self.stepper.state.reduced_density_matrix(list(qubits))


class _Ranks:
    """MPI ranks of an online run: ``owner[node]`` is the rank that runs the node's program
    and, on ``modulenet``, holds its module's tensor; every rank takes every step."""

    def __init__(self, comm, owner: Mapping[str, int]):
        self.comm, self.owner = comm, dict(owner)
        self.programs = ProgramRanks(comm, owner)

    def engine(self, backend: str):
        if backend == "modulenet":
            return get_backend(backend, comm=self.comm, placement=self.owner)
        return get_backend(backend)   # the whole state on every rank, in step


def _machine_qubits(network: Network) -> int:
    """The most physical qubits a run can hold at once: every data and communication qubit."""
    return sum(n.data_qubits + n.comm_qubits for n in network.nodes.values())


def _ideal_target(programs, network, backend, precision, limits, ranks=None
                  ) -> np.ndarray | None:
    """The output qubits' state in noise-free runs (seeds 0, 1, 2 of the outcomes) when it is
    pure, the same in every run and small; else None."""
    first = None
    for seed in (0, 1, 2):
        shot = _Shot(backend, _machine_qubits(network), precision, seed, ranks)
        rt = Runtime(network, np.random.default_rng(seed), ideal=True)
        run = run_on(rt, programs, outcomes=shot.read, ranks=ranks and ranks.programs,
                     **limits)
        shot.flush(rt)
        final = [q.index for q in run.output_qubits]
        if not final or len(final) > DENSE_TARGET_QUBITS:
            return None
        values, vectors = np.linalg.eigh(shot.rho(final))
        if values[-1] < 1 - 1e-6:
            return None
        psi = vectors[:, -1]
        if first is None:
            first = psi
        elif abs(np.vdot(first, psi)) ** 2 < 1 - 1e-6:
            return None
    return first


def machine_qubits(network: Network) -> int:
    """The most physical qubits a run can hold at once: every data and communication qubit."""
    return _machine_qubits(network)


def run_online(programs: Mapping[str, Callable], network: Network, *, shots: int, seed: int,
               backend: str, ideal: bool, runs: int, purification, precision: str, name: str,
               limits: Mapping, target, comm=None, owner: Mapping[str, int] | None = None):
    """The runs of :func:`qsim_dist.dqc.run_nodes` for programs that read outcomes (see the
    module docstring): ``runs`` shots (or trajectories) on ``backend`` (one of
    :data:`ONLINE_BACKENDS`). Returns (one Lowered per shot, counts, (fidelity, 1) per shot or
    None without a target). With ``comm`` (MPI ranks, a :class:`~qsim_dist.comm.Comm`) and
    ``owner`` (node -> rank), each node's program runs on its rank
    (:mod:`qsim_dist.network.ranked`) and, on ``modulenet``, its tensor lives there; every
    rank returns the same."""
    ranks = _Ranks(comm, owner) if comm is not None and comm.size > 1 else None
    if backend not in ONLINE_BACKENDS:
        raise OptionError(f"programs that read outcomes run online on "
                          f"{', '.join(ONLINE_BACKENDS)}, not {backend}")
    if target is not None:
        psi = np.asarray(target, dtype=np.complex128).ravel()
        psi = psi / np.linalg.norm(psi)
    else:
        psi = _ideal_target(programs, network, backend, precision, limits, ranks)
    width = _machine_qubits(network)
    schedule_root, shot_root = np.random.SeedSequence(seed).spawn(2)
    counts: dict[str, int] = {}
    fidelities: list[tuple[float, int]] = []
    lowered = []
    for s_schedule, s_shot in zip(schedule_root.spawn(runs), shot_root.spawn(runs)):
        shot = _Shot(backend, width, precision, int_seed(s_shot), ranks)
        rt = Runtime(network, np.random.default_rng(s_schedule), ideal=ideal,
                     purification=purification)
        run = run_on(rt, programs, outcomes=shot.read, ranks=ranks and ranks.programs,
                     **limits)
        shot.flush(rt)
        if shots and run.output_bits:
            bits = shot.stepper.clbits
            key = "".join(str(bits[b.index]) for b in reversed(run.output_bits))
            counts[key] = counts.get(key, 0) + 1
        if psi is not None:
            rho = shot.rho([q.index for q in run.output_qubits])
            fidelities.append((float(np.real(np.vdot(psi, rho @ psi))), 1))
        lowered.append(lowered_of(run, f"{name}@{network.name}"))
    return lowered, counts, fidelities if psi is not None else None
