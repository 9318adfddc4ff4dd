"""A :class:`DistributedProgram` scheduled on a network and lowered to one circuit.

:func:`lower` walks the program's ops in order and runs each as node programs on a
:class:`~qsim_dist.network.runtime.Runtime`, by the op's own ``lower`` with a :class:`Lowering`
context: a ``LocalGate`` is a gate (or measurement, reset) on its node, a ``RemoteGate`` is
:func:`~qsim_dist.network.protocols.remote_gate`, a ``Teleport`` is
:func:`~qsim_dist.network.protocols.teleport`. The result, :class:`Lowered`,
is a circuit over data and communication qubits with its noise (a
:class:`~qsim_dist.noise.NoisyCircuit`), the schedule (events, makespan) and the resources used.

Qubit numbering of the lowered circuit: logical qubit q starts on physical qubit q (on node
``placement[q]``); data qubits that receive teleported states and communication qubits get the
next indices as they are first used. ``final_qubits[q]`` is where logical qubit q ends.
Clbits: the program's own (0 .. num_clbits-1) first, then one per protocol measurement.

Terminal measurements (a measurement of a logical qubit after which nothing touches that qubit or
reads or rewrites its clbit) are scheduled like any operation, but their instructions are moved to
the end of the circuit, so that the backend samples them from each trajectory's final state; the
idle noise before them stays in place. :meth:`Lowered.state_circuit` leaves them out: its final
state is the data qubits' state as each is read out (or at the makespan when never measured).

:func:`lower_ideal` is for checking a compiled program: with ideal links (F = 1, no noise, zero
times) the program must reproduce its source circuit's state exactly
(:func:`qsim_dist.dqc.ideal_state` and :func:`qsim_dist.dqc.program_fidelity` run it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..circuit import Circuit, Instruction
from ..noise import NoisyCircuit
from .program import DistributedProgram, ProgramError
from .protocols import remote_gate, teleport
from .runtime import Bit, Event, Qubit, Runtime, Stats
from .topology import Network


@dataclass
class Lowered:
    """A program scheduled once: what the backend runs, and what the schedule cost."""

    noisy: NoisyCircuit               # every op, terminal measurements last
    terminal: int                     # how many trailing ops of ``noisy.ops`` are terminal
    final_qubits: tuple[int, ...]     # physical qubit of each logical qubit at the end
    num_source_clbits: int
    qubit_node: tuple[str, ...]       # node of each physical qubit
    makespan: float
    events: list[Event]
    stats: Stats
    output_clbits: tuple[int, ...] | None = None   # the counts' clbits (None: the source's)

    @property
    def count_clbits(self) -> list[int]:
        """The clbits the report's counts are over (bit k of a key = ``count_clbits[k]``)."""
        if self.output_clbits is not None:
            return list(self.output_clbits)
        return list(range(self.num_source_clbits))

    @property
    def circuit(self) -> Circuit:
        """The lowered circuit without noise (terminal measurements included)."""
        return self.noisy.circuit

    def state_circuit(self) -> NoisyCircuit:
        """The lowered circuit without its terminal measurements (noise kept)."""
        ops = self.noisy.ops[:len(self.noisy.ops) - self.terminal]
        circuit = Circuit(self.circuit.num_qubits, self.circuit.num_clbits,
                          [op for op in ops if isinstance(op, Instruction)],
                          name=self.circuit.name)
        return NoisyCircuit(circuit, ops, dict(self.noisy.readout))


def logical_circuit(program: DistributedProgram) -> Circuit:
    """The program as a circuit on its logical qubits: each op's :meth:`~Op.instructions` in
    order (local gates and burst bodies; teleports have none). Over ideal links the program must
    act exactly like it."""
    c = Circuit(program.num_qubits, program.num_clbits, name=program.name)
    for op in program.ops:
        for inst in op.instructions():
            c.append(inst)
    return c


def terminal_measurements(program: DistributedProgram) -> set[int]:
    """Indices of the ops that are terminal measurements (see the module docstring)."""
    terminal: set[int] = set()
    touched: set[int] = set()   # logical qubits used by a later op
    clbits_later: set[int] = set()
    for k in range(len(program.ops) - 1, -1, -1):
        if program.ops[k].scan_terminal(touched, clbits_later):
            terminal.add(k)
    return terminal


@dataclass
class Lowering:
    """What :meth:`Op.lower <qsim_dist.network.program.Op.lower>` works with: the runtime, the
    physical data qubit of each logical qubit (an op that moves one rebinds its entry), the
    terminal measurements (op indices) and the instructions moved to the end of the circuit, and
    the protocols of :mod:`~qsim_dist.network.protocols` (the program module cannot import them:
    the runtime imports it)."""

    rt: Runtime
    data: list[Qubit]
    terminal: set[int]
    tail: list[Instruction] = field(default_factory=list)

    remote_gate = staticmethod(remote_gate)
    teleport = staticmethod(teleport)
    bit = staticmethod(Bit)

    def bring_bit(self, clbit: int, node: str) -> None:
        """Send ``clbit`` to ``node`` from where it is known first, unless it is known there."""
        rt = self.rt
        if rt.bit_time(Bit(clbit), node) is None:
            home = min(rt._bit_at[clbit].items(), key=lambda kv: kv[1])[0]
            rt.send(home, node, (Bit(clbit),))


def lower(program: DistributedProgram, network: Network, *, rng: np.random.Generator | None = None,
          ideal: bool = False, purification: tuple[str, int] | None = None,
          validate: bool = True) -> Lowered:
    """Schedule ``program`` once on ``network`` (generation times drawn from ``rng``) and lower
    it to a noisy circuit, each op by its :meth:`~qsim_dist.network.program.Op.lower`; ``ideal``
    uses perfect, instantaneous links and nodes."""
    if validate:
        program.validate(network)
    rt = Runtime(network, rng, ideal=ideal, num_clbits=program.num_clbits,
                 purification=purification)
    data = [rt.data_qubit(node) for node in program.placement]
    for c in range(program.num_clbits):   # unwritten clbits read 0 everywhere
        rt._bit_at[c] = {n: 0.0 for n in network.nodes}
    ctx = Lowering(rt, data, terminal_measurements(program))
    for k, op in enumerate(program.ops):
        op.lower(k, ctx)
    makespan = rt.finish()
    rt.ops.extend(ctx.tail)
    noisy = rt.noisy_circuit(f"{program.name}@{network.name}")
    return Lowered(noisy=noisy, terminal=len(ctx.tail), final_qubits=tuple(q.index for q in data),
                   num_source_clbits=program.num_clbits, qubit_node=tuple(rt.qubit_node),
                   makespan=makespan, events=rt.events, stats=rt.stats)


def lower_ideal(program: DistributedProgram, network: Network) -> Lowered:
    """:func:`lower` with ideal links and nodes: ``.circuit`` is a plain circuit (mid-circuit
    measurements and classically conditioned corrections, no noise) that acts on the data
    qubits exactly as the program's source circuit does."""
    return lower(program, network, ideal=True)


# ---- states of the data qubits ------------------------------------------------------------------

def data_matrix(statevector: np.ndarray, final_qubits: tuple[int, ...]) -> np.ndarray:
    """The statevector as a matrix M[rest, data]: columns index the logical qubits' basis
    (logical qubit q = bit q), rows every other physical qubit."""
    psi = np.asarray(statevector)
    n_all = int(psi.size).bit_length() - 1
    n = len(final_qubits)
    rest = [p for p in range(n_all) if p not in set(final_qubits)]
    new_bits = list(final_qubits) + rest            # new bit j <- physical qubit new_bits[j]
    t = psi.reshape((2,) * n_all)                   # axis a holds physical qubit n_all-1-a
    t = np.transpose(t, [n_all - 1 - new_bits[n_all - 1 - a] for a in range(n_all)])
    return t.reshape(1 << (n_all - n), 1 << n)


def overlap_fidelity(statevector: np.ndarray, final_qubits: tuple[int, ...],
                     psi: np.ndarray) -> float:
    """<psi| rho_data |psi> for the data qubits of a pure state of the whole machine."""
    m = data_matrix(statevector, final_qubits).astype(np.complex128)
    v = m @ np.conj(np.asarray(psi, dtype=np.complex128))
    return float(np.real(np.vdot(v, v)))


def check_state_defined(program: DistributedProgram) -> None:
    """Raise a ProgramError when the data qubits' final state is random: an op other than a
    terminal measurement measures, resets or is conditioned."""
    terminal = terminal_measurements(program)
    for k, op in enumerate(program.ops):
        if k in terminal:
            continue
        for inst in op.instructions():
            if inst.name in ("measure", "reset") or inst.condition is not None:
                raise ProgramError("the data qubits' final state is random: the program measures, "
                                   "resets or conditions before the end (op "
                                   f"{k}: {inst.name})")
