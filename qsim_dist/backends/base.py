"""What every backend shares: :class:`Backend`, the public face of the one circuit executor.

A backend only says how to hold and update a state (:class:`~qsim_dist.backends.state.State`,
the state contract) and makes new ones (:meth:`Backend.new_state`); how a circuit becomes gate
runs, measurements, resets, conditions, noise and shots is decided once, for all backends, by the
executor around the contract:

- :mod:`.planning`: the circuit (and its lowered noise) as steps, planned before a state exists;
- :mod:`.branching`: static runs and shot branching of dynamic and noisy runs;
- :mod:`.trajectories`: runs whose only randomness is Pauli noise (three strategies);
- :mod:`.checkpointing`: checkpoints written and resumed; :mod:`.progress`: the progress bar;
- :mod:`.stepper`: the step-by-step API (apply one operation, read its outcome).

:meth:`Backend.run` resolves its options (:class:`qsim_dist.options.RunOptions`), checks the
run's memory before anything is allocated, and picks the executor: a circuit whose measurements
are all terminal is simulated once and sampled; a circuit whose only randomness is Pauli noise
runs as batched trajectories; any other dynamic or noisy circuit branches its shots. Every split
draws one uniform per shot from the run's seeded stream, in a fixed order, so one seed gives one
result.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import numpy as np

from .. import memory
from .. import validation as check
from ..circuit import Circuit
from ..errors import CircuitError, OptionError
from ..io.checkpoint import Checkpointing, Header, fingerprint
from ..noise import NoiseModel, NoiseOp, NoisyCircuit
from ..observables import PauliSum, as_pauli_sum
from ..options import RunOptions, check_precision
from ..results import Result
from . import trajectories
from .branching import BranchObserver, run_dynamic, run_static
from .checkpointing import Checkpoints
from .planning import plan_run
from .progress import Progress
from .state import DTYPES, Capability, State
from .stepper import Stepper


def _check_circuit(circuit: Any, where: str) -> None:
    """The public methods take a :class:`Circuit`, nothing else (a clear error, not an
    AttributeError deep in the executor)."""
    check.instance(circuit, Circuit, f"{where}: circuit", CircuitError)


def _basis_indices(indices: Any, num_qubits: int) -> Any:
    """``indices`` checked to be basis-state indices in ``[0, 2^num_qubits)``: a sequence of
    integers or an integer numpy array (checked at once, it may be long)."""
    size = 1 << num_qubits
    if isinstance(indices, np.ndarray) and indices.dtype.kind in "iu" and indices.ndim == 1:
        if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= size):
            bad = indices[(indices < 0) | (indices >= size)][0]
            raise OptionError(f"amplitudes: indices must be integers in [0, {size - 1}], "
                              f"got {int(bad)}")
        return indices
    return list(check.indices(indices, size, "amplitudes: indices", distinct=False))


class Backend(ABC):
    """A simulator. Subclasses provide :meth:`new_state`; everything else is shared."""

    name = "base"
    default_precision = "single"
    #: Live-qubit compaction in dynamic and noisy runs (where the states declare
    #: :attr:`Capability.RESIZE`, and no checkpoint is written or resumed).
    compaction: bool = True

    #: The capabilities the states of :meth:`new_state` declare, known before one is allocated
    #: (so that a run allocates only its live qubits where they resize).
    state_capabilities: Capability = Capability.STATEVECTOR
    #: The communicator of the processes that hold one state together (MPI ranks), or None
    #: for one process: a memory check is one decision for all of them.
    comm: Any = None
    #: Temporaries of one state update, in states (a gate that builds its result in new arrays).
    work_states: float = 0.0

    @abstractmethod
    def new_state(self, num_qubits: int, precision: str) -> State:
        """|0...0> on ``num_qubits`` qubits (after :meth:`check_state_fits`)."""

    # -- memory (see qsim_dist.memory) --------------------------------------------------------
    def state_bytes(self, num_qubits: int, precision: str) -> int:
        """Bytes this process holds for one state of ``num_qubits`` (its shard, if sharded)."""
        return np.dtype(DTYPES[precision]).itemsize << num_qubits  # a Python int: no overflow

    def work_bytes(self, num_qubits: int, precision: str) -> int:
        """Bytes of the temporaries of one update of such a state (buffers, new arrays)."""
        return int(self.work_states * self.state_bytes(num_qubits, precision))

    def _available_memory(self) -> int:
        """Bytes this process may still allocate (:func:`qsim_dist.memory.available_bytes`)."""
        return memory.available_bytes()

    def _check_fits(self, needed: Callable[[str], int], what: str, precision: str) -> None:
        """Refuse ``needed(precision)`` bytes where they do not fit, one decision for all the
        processes of the backend (the poorest decides, so that every MPI rank refuses
        together); the hint to use single precision only where the caller can choose it and
        it would fit."""
        available = self._available_memory()
        if self.comm is not None and self.comm.size > 1:
            available = self.comm.allreduce_min(available)
        bytes_needed = needed(precision)
        if bytes_needed <= available:
            return
        hint = memory.precision_hint_for(precision)
        if hint and needed("single") > available:
            hint = None
        memory.check_fits(bytes_needed, what, hint, available)

    def check_state_fits(self, num_qubits: int, precision: str) -> None:
        """Refuse (:class:`~qsim_dist.errors.BackendError`) a state that does not fit, before
        it is allocated: :meth:`new_state` of every backend calls it."""
        self._check_fits(lambda p: self.state_bytes(num_qubits, p) + self.work_bytes(num_qubits, p),
                         _state_words(num_qubits, precision), precision)

    def _check_run_memory(self, circuit: Circuit, noisy, width: int, precision: str,
                          shots: int, dynamic: bool, pauli: bool, save_state: bool) -> None:
        """Refuse a run whose peak does not fit, before anything is allocated: its state of
        ``width`` qubits (the most live at once), one copy where shots branch (a dynamic or
        noisy run), the update temporaries, the saved full state of a branching run, the
        per-shot sampling arrays, the Pauli draws and trajectory rows of a Pauli-noise run."""
        n = circuit.num_qubits
        runs = max(shots, 1) if dynamic else shots
        events = sum(isinstance(op, NoiseOp) for op in noisy.ops) if pauli else 0
        rows = min(max(1, trajectories.BATCH_AMPLITUDES >> n), runs)

        def needed(p: str) -> int:
            total = (2 if dynamic else 1) * self.state_bytes(width, p) + self.work_bytes(width, p)
            if dynamic and save_state:  # the first branch's state, expanded to every qubit
                total += np.dtype(DTYPES[p]).itemsize << n
            if pauli:  # the draws (and their sorted copy), the batch of trajectory rows
                total += 4 * events * runs + 2 * rows * self.state_bytes(n, p)
            return total + _SHOT_BYTES * runs

        what = _state_words(width, precision)
        saved = "the saved state" + (f" of all {n} qubits" if n > width else "")
        extra = (["a copy"] if dynamic else []) + ([saved] if dynamic and save_state else [])
        if _SHOT_BYTES * runs >= 1 << 26:
            extra.append(f"{runs} shots")
        if extra:
            what += " with " + ", ".join(extra[:-1]) + (" and " if len(extra) > 1 else "") + \
                extra[-1]
        self._check_fits(needed, what, precision)

    # -- public API ------------------------------------------------------------------------
    def run(self, circuit: Circuit | NoisyCircuit, shots: int = 1024, seed: int | None = None,
            precision: str | None = None, save_state: bool = False,
            progress: bool | None = None, noise: NoiseModel | None = None,
            checkpoint: Checkpointing | None = None,
            observer: BranchObserver | None = None) -> Result:
        """Simulate ``circuit``; sample ``shots`` outcomes of its measurements.

        ``circuit`` is a :class:`~qsim_dist.circuit.Circuit`, or a
        :class:`~qsim_dist.noise.NoisyCircuit` whose noise is already inserted (a lowered
        network run; ``noise`` must then be None).
        ``save_state`` keeps the final statevector: for a circuit whose measurements are all
        terminal, the state just before them (they are sampled, not applied); for a dynamic or
        noisy circuit, the state of the first branch (one trajectory) at its end, before its
        terminal measurements.
        ``noise`` inserts a noise model's channels and readout errors (see :mod:`.branching`).
        ``checkpoint`` writes checkpoints of the run and/or resumes one (see
        :mod:`qsim_dist.io.checkpoint`); a resumed run takes the checkpoint's seed when ``seed``
        is None.
        ``observer`` reads every trajectory branch's final state
        (:meth:`BranchObserver.on_branch_end <qsim_dist.backends.branching.BranchObserver>`).
        """
        options = RunOptions.resolve(
            shots, seed, precision, default_precision=self.default_precision,
            resume=checkpoint is not None and checkpoint.resume is not None, comm=self.comm)
        return self._run(circuit, options, save_state=save_state, progress=progress,
                         noise=noise, checkpoint=checkpoint, observer=observer)

    def _run(self, circuit: Circuit | NoisyCircuit, options: RunOptions,
             save_state: bool = False, progress: bool | None = None,
             noise: NoiseModel | None = None, checkpoint: Checkpointing | None = None,
             observer: BranchObserver | None = None) -> Result:
        """:meth:`run` with its options resolved."""
        shots, seed, precision = options.shots, options.seed, options.precision
        t0 = time.perf_counter()
        circuit, noisy = lowered(circuit, noise)
        checkpoints = None
        if checkpoint is not None:
            ops = noisy.ops if noisy is not None else [i for i in circuit if i.name != "barrier"]
            checkpoints = Checkpoints(checkpoint, Header(
                fingerprint=fingerprint(circuit.num_qubits, circuit.num_clbits, ops),
                circuit=circuit.name, num_qubits=circuit.num_qubits, precision=precision,
                seed=-1 if seed is None else int(seed), shots=int(shots), position=0, total=0,
                clbits=(0,) * circuit.num_clbits))
            seed = checkpoints.header.seed if checkpoints.resumed else seed
            checkpoints.header = dataclasses.replace(checkpoints.header, seed=seed)
        rng = np.random.default_rng(seed)
        run = plan_run(circuit, noisy, self.compaction and checkpoints is None and
                       Capability.RESIZE in self.state_capabilities)
        dynamic, pauli, live, plan, width = run.dynamic, run.pauli, run.live, run.plan, run.width
        start = len(live) if live is not None else circuit.num_qubits
        self._check_run_memory(circuit, noisy, width, precision, shots, dynamic, pauli,
                               save_state)
        state = self.new_state(start, precision)
        with Progress(progress) as bar:
            if pauli:
                counts, sv = trajectories.run_pauli(circuit, state, shots, rng, save_state, bar,
                                                    noisy, checkpoints, observer)
            elif dynamic:
                counts, sv = run_dynamic(circuit, state, shots, rng, save_state, bar, noisy,
                                         checkpoints, live, plan, observer)
            else:
                counts, sv = run_static(circuit, state, shots, rng, save_state, bar, noisy,
                                        checkpoints, observer)
        metadata = checkpoints.metadata() if checkpoints is not None else {}
        return Result(
            num_qubits=circuit.num_qubits, num_clbits=circuit.num_clbits, shots=shots, seed=seed,
            precision=precision, backend=self.name, counts=counts, statevector=sv,
            wall_time=time.perf_counter() - t0, compile_time=state.compile_time,
            circuit_name=circuit.name, metadata=metadata)

    def stepper(self, num_qubits: int, num_clbits: int = 0, seed: int | None = None,
                precision: str | None = None) -> Stepper:
        """A state of ``num_qubits`` qubits in |0...0> driven one operation at a time (apply a
        gate, measure and read the outcome, reset), with the executor's measurement code and
        one seeded stream of draws (see :class:`~qsim_dist.backends.stepper.Stepper`)."""
        options = RunOptions.resolve(0, seed, precision,
                                     default_precision=self.default_precision, comm=self.comm)
        num_qubits = check.count(num_qubits, "stepper: num_qubits")
        num_clbits = check.count(num_clbits, "stepper: num_clbits")
        return Stepper(self.new_state(num_qubits, options.precision), num_clbits,
                       np.random.default_rng(options.seed), options.seed)

    def final_state(self, circuit: Circuit, precision: str | None = None) -> State:
        """The state after the gates of a circuit without measurement, reset or conditions."""
        _check_circuit(circuit, "final_state")
        precision = self._check_precision(precision)
        if any(not i.is_gate and i.name != "barrier" for i in circuit) or any(
                i.condition for i in circuit):
            raise CircuitError("final_state needs a circuit of gates only (no measure/reset/if)")
        state = self.new_state(circuit.num_qubits, precision)
        state.execute(state.prepare([i for i in circuit if i.is_gate]))
        return state

    def statevector(self, circuit: Circuit, precision: str | None = None) -> np.ndarray:
        """Final statevector (complex128) of a circuit of gates; measurements are ignored."""
        _check_circuit(circuit, "statevector")
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).statevector()

    def probabilities(self, circuit: Circuit, qubits: Sequence[int] | None = None,
                      precision: str | None = None) -> np.ndarray:
        """Probabilities of the basis states of ``qubits`` (distinct qubit indices, qubits[0]
        least significant; every qubit when None) after the gates of ``circuit``."""
        _check_circuit(circuit, "probabilities")
        if qubits is not None:
            qubits = list(check.indices(qubits, circuit.num_qubits, "probabilities: qubits"))
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).probabilities(qubits)

    def amplitudes(self, circuit: Circuit, indices: Sequence[int],
                   precision: str | None = None) -> np.ndarray:
        """Amplitudes of the basis states ``indices`` (each in ``[0, 2^n)``; negative indices do
        not wrap) after the gates of ``circuit``."""
        _check_circuit(circuit, "amplitudes")
        indices = _basis_indices(indices, circuit.num_qubits)
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).amplitudes(indices)

    def expectation(self, circuit: Circuit, observable: PauliSum | str | Sequence,
                    precision: str | None = None) -> float:
        """<psi|H|psi> for a Hermitian Pauli sum H (see :func:`qsim_dist.observables.as_pauli_sum`)."""
        _check_circuit(circuit, "expectation")
        h = as_pauli_sum(observable, circuit.num_qubits)
        gates = Circuit(circuit.num_qubits, 0, [i for i in circuit if i.is_gate and not i.condition])
        return self.final_state(gates, precision).expectation(h)

    def _check_precision(self, precision: str | None) -> str:
        return check_precision(precision, self.default_precision)


def lowered(circuit: Circuit | NoisyCircuit,
            noise: NoiseModel | None) -> tuple[Circuit, NoisyCircuit | None]:
    """A run's circuit and its noise inserted (None without noise): ``circuit`` lowered by the
    model ``noise``, or a ready :class:`NoisyCircuit` taken as it is."""
    if isinstance(circuit, NoisyCircuit):
        if noise is not None:
            raise OptionError("run: a NoisyCircuit already holds its noise; pass noise=None")
        return circuit.circuit, circuit
    return circuit, noise.lower(circuit) if noise is not None else None

_SHOT_BYTES = 64  # a shot's share of the sampling arrays (draws, sorted draws, indices, keys)


def _state_words(num_qubits: int, precision: str) -> str:
    """``a 30-qubit state (2^30 amplitudes, complex64)``, for memory messages."""
    return f"a {num_qubits}-qubit state (2^{num_qubits} amplitudes, " \
        f"{np.dtype(DTYPES[precision]).name})"

