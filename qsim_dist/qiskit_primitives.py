"""Qiskit's V2 primitives backed by qsim_dist: :class:`Sampler` (``BaseSamplerV2``) and
:class:`Estimator` (``BaseEstimatorV2``); and :class:`QsimDistBackend`, a ``BackendV2`` for
``transpile(qc, backend)`` and ``backend.run(circuits, shots=...)``.

::

    from qsim_dist.qiskit_primitives import Estimator, Sampler

    job = Sampler(seed=7).run([(qc, [[0.1, 0.2], [0.3, 0.4]])], shots=1000)
    counts = job.result()[0].data.meas.get_counts()          # a BitArray per register
    evs = Estimator().run([(qc, ["ZZ", "XI"], values)]).result()[0].data.evs

Both take Qiskit's primitive unified blocs (PUBs) unchanged: a circuit, its parameter values (a
``BindingsArray``, broadcast as Qiskit broadcasts them) and, for the estimator, observables
(``SparsePauliOp``, Pauli labels, ``ObservablesArray``). Each bound circuit is converted once
(:func:`qsim_dist.io.convert.from_qiskit`) and run on a qsim_dist backend (``backend=``, any name
of the registry, with its options): the sampler samples its measurements (a noise model with
``noise=``: each shot one trajectory); the estimator evolves the state once per bound circuit and
reads every observable of that circuit from it, exactly. As in Qiskit's reference estimator, a
``precision`` above 0 adds Gaussian noise of that standard deviation to each value (seeded by
``seed``) and reports it as ``stds``; 0 (the default) gives the exact values, ``stds`` 0.

Needs the ``interop`` extra (``qiskit``).
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Iterable

import numpy as np

from .backends import get_backend
from .errors import OptionError
from .io.convert import from_qiskit
from .noise import NoiseModel
from .observables import as_pauli_sum

try:
    from qiskit.primitives import (BaseEstimatorV2, BaseSamplerV2, BitArray, DataBin,
                                   PrimitiveJob, PrimitiveResult, PubResult, SamplerPubResult)
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub
    from qiskit.circuit import IfElseOp
    from qiskit.providers import BackendV2, JobStatus, JobV1, Options
    from qiskit.result import Result
    from qiskit.transpiler import Target
except ImportError as exc:   # pragma: no cover - exercised only without the extra
    raise ImportError("qsim_dist.qiskit_primitives needs qiskit (pip install "
                      "'qsim_dist[interop]')") from exc

__all__ = ["Estimator", "QsimDistBackend", "Sampler"]


def _seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise OptionError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def _converted(circuits: np.ndarray) -> dict[int, Any]:
    """Each distinct bound Qiskit circuit of an object array, converted once (by id)."""
    return {id(qc): from_qiskit(qc) for qc in circuits.ravel()}


class Sampler(BaseSamplerV2):
    """``BaseSamplerV2`` on a qsim_dist backend. ``backend``: a registry name (default
    ``statevector``); ``default_shots``: shots of a PUB that names none; ``seed``: one seed for
    the whole job (each bound circuit draws its own from it); ``noise``: a
    :class:`~qsim_dist.noise.NoiseModel`; other keyword arguments go to the backend."""

    def __init__(self, backend: str = "statevector", *, default_shots: int = 1024,
                 seed: int | None = None, noise: NoiseModel | None = None,
                 precision: str = "double", **backend_options) -> None:
        if not isinstance(default_shots, int) or isinstance(default_shots, bool) or \
                default_shots < 1:
            raise OptionError(f"default_shots must be a positive integer, got "
                              f"{default_shots!r}")
        if noise is not None and not isinstance(noise, NoiseModel):
            raise OptionError(f"noise must be a qsim_dist NoiseModel, got "
                              f"{type(noise).__name__}")
        self._backend = get_backend(backend, **backend_options)
        self._default_shots = default_shots
        self._seed = _seed(seed)
        self._noise = noise
        self._precision = precision

    @property
    def backend(self):
        """The qsim_dist backend that runs the circuits."""
        return self._backend

    def run(self, pubs: Iterable, *, shots: int | None = None) -> PrimitiveJob:
        if shots is None:
            shots = self._default_shots
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        job = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    def _run(self, pubs: list[SamplerPub]) -> PrimitiveResult:
        seeds = np.random.SeedSequence(self._seed)
        return PrimitiveResult([self._run_pub(pub, seeds.spawn(1)[0]) for pub in pubs],
                               metadata={"version": 2, "backend": self._backend.name})

    def _run_pub(self, pub: SamplerPub, seeds: np.random.SeedSequence) -> SamplerPubResult:
        qc = pub.circuit
        bound = pub.parameter_values.bind_all(qc)
        ours = _converted(bound)
        registers = {creg.name: [qc.find_bit(bit).index for bit in creg] for creg in qc.cregs}
        per_register: dict[str, list[dict[str, int]]] = {name: [] for name in registers}
        for index in np.ndindex(*bound.shape):
            circuit = ours[id(bound[index])]
            seed = int(seeds.spawn(1)[0].generate_state(1)[0])
            result = self._backend.run(circuit, shots=pub.shots, seed=seed,
                                       precision=self._precision, noise=self._noise)
            for name, bits in registers.items():
                counts: dict[int, int] = {}
                for key, count in result.counts.items():
                    value = sum(int(key[-1 - clbit]) << k for k, clbit in enumerate(bits))
                    counts[value] = counts.get(value, 0) + count
                if not counts:   # no measurement at all: every shot reads 0
                    counts = {0: pub.shots}
                per_register[name].append(counts)
        data = {}
        for name, bits in registers.items():
            arrays = BitArray.from_counts(per_register[name], num_bits=len(bits))
            data[name] = arrays.reshape(*bound.shape, pub.shots) if bound.shape else \
                arrays.reshape(pub.shots)
        return SamplerPubResult(DataBin(**data, shape=bound.shape),
                                metadata={"shots": pub.shots,
                                          "circuit_metadata": qc.metadata})


class Estimator(BaseEstimatorV2):
    """``BaseEstimatorV2`` on a qsim_dist backend (its ``final_state``: each bound circuit's
    state once, every observable read from it). ``default_precision``: the precision of a PUB
    that names none (0: exact values); ``seed``: the Gaussian noise of a precision above 0;
    other keyword arguments go to the backend."""

    def __init__(self, backend: str = "statevector", *, default_precision: float = 0.0,
                 seed: int | None = None, precision: str = "double",
                 **backend_options) -> None:
        if not isinstance(default_precision, (int, float)) or \
                isinstance(default_precision, bool) or not math.isfinite(default_precision) \
                or default_precision < 0:
            raise OptionError(f"default_precision must be a finite number >= 0, got "
                              f"{default_precision!r}")
        self._backend = get_backend(backend, **backend_options)
        self._default_precision = float(default_precision)
        self._seed = _seed(seed)
        self._precision = precision

    @property
    def backend(self):
        """The qsim_dist backend that evolves the states."""
        return self._backend

    def run(self, pubs: Iterable, *, precision: float | None = None) -> PrimitiveJob:
        if precision is None:
            precision = self._default_precision
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        job = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    def _run(self, pubs: list[EstimatorPub]) -> PrimitiveResult:
        rng = np.random.default_rng(self._seed)
        return PrimitiveResult([self._run_pub(pub, rng) for pub in pubs],
                               metadata={"version": 2, "backend": self._backend.name})

    def _run_pub(self, pub: EstimatorPub, rng: np.random.Generator) -> PubResult:
        qc = pub.circuit
        n = qc.num_qubits
        bound = pub.parameter_values.bind_all(qc)
        circuits, observables = np.broadcast_arrays(bound, pub.observables)
        ours = _converted(circuits)
        states: dict[int, Any] = {}
        evs = np.zeros(circuits.shape, dtype=np.float64)
        for index in np.ndindex(*circuits.shape):
            key = id(circuits[index])
            if key not in states:   # one state per bound circuit, whatever its observables
                states[key] = self._backend.final_state(_gates_of(ours[key]),
                                                        precision=self._precision)
            terms = [(complex(c), label) for label, c in observables[index].items()]
            evs[index] = states[key].expectation(as_pauli_sum(terms, n))
        stds = np.full(evs.shape, pub.precision)
        if pub.precision > 0:
            evs = rng.normal(evs, pub.precision)
        return PubResult(DataBin(evs=evs, stds=stds, shape=evs.shape),
                         metadata={"target_precision": pub.precision,
                                   "circuit_metadata": qc.metadata})


def _gates_of(circuit):
    """The circuit's unconditioned gates, as ``Backend.expectation`` reads a circuit (its
    measurements, resets and barriers left out)."""
    from .circuit import Circuit

    return Circuit(circuit.num_qubits, 0,
                   [inst for inst in circuit if inst.is_gate and not inst.condition])


class QsimDistBackend(BackendV2):
    """A Qiskit ``BackendV2`` on a qsim_dist backend: its target is every gate of the gate
    table that Qiskit knows (all-to-all, ``num_qubits`` qubits, default 32), measure, reset
    and conditions; ``run`` simulates each circuit (``shots``, ``seed_simulator``, a qsim_dist
    ``noise`` model) and returns a finished job whose ``result().get_counts()`` reads as
    Qiskit's. Qiskit's ``BackendSamplerV2`` / ``BackendEstimatorV2`` accept it too."""

    def __init__(self, backend: str = "statevector", *, num_qubits: int = 32,
                 noise: NoiseModel | None = None, precision: str = "double",
                 **backend_options) -> None:
        from qiskit.circuit.library import get_standard_gate_name_mapping

        from .gates import GATES, qiskit_name
        from .version import __version__

        if not isinstance(num_qubits, int) or isinstance(num_qubits, bool) or num_qubits < 1:
            raise OptionError(f"num_qubits must be a positive integer, got {num_qubits!r}")
        if noise is not None and not isinstance(noise, NoiseModel):
            raise OptionError(f"noise must be a qsim_dist NoiseModel, got "
                              f"{type(noise).__name__}")
        super().__init__(name=f"qsim_dist.{backend}", backend_version=__version__,
                         description=f"qsim_dist's {backend} backend")
        self._engine = get_backend(backend, **backend_options)
        self._noise, self._precision = noise, precision
        known = get_standard_gate_name_mapping()
        basis = sorted({qiskit_name(name) for name in GATES} & set(known)) + \
            ["measure", "reset", "delay"]
        self._target = Target.from_configuration(basis_gates=basis, num_qubits=num_qubits)
        self._target.add_instruction(IfElseOp, name="if_else")   # from_qiskit: a condition

    @property
    def target(self) -> Target:
        return self._target

    @property
    def max_circuits(self) -> None:
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options(shots=1024, seed_simulator=None)

    def run(self, run_input, **options) -> "_FinishedJob":
        circuits = [run_input] if not isinstance(run_input, (list, tuple)) else list(run_input)
        unknown = set(options) - {"shots", "seed_simulator", "memory"}
        if unknown:
            raise OptionError(f"run: unknown options {', '.join(sorted(unknown))} (shots, "
                              f"seed_simulator)")
        shots = options.get("shots", self.options.shots)
        seed = options.get("seed_simulator", self.options.seed_simulator)
        seeds = np.random.SeedSequence(_seed(seed))
        results = []
        for qc in circuits:
            circuit = from_qiskit(qc)
            run = self._engine.run(circuit, shots=shots,
                                   seed=int(seeds.spawn(1)[0].generate_state(1)[0]),
                                   precision=self._precision, noise=self._noise)
            counts = {hex(int(key, 2)) if key else "0x0": c for key, c in run.counts.items()}
            data: dict[str, Any] = {"counts": counts}
            if options.get("memory"):   # per-shot outcomes (BackendSamplerV2 asks for them),
                # in a seeded random order: the shots are independent
                memory = np.repeat(np.array(list(counts), dtype=object),
                                   list(counts.values()))
                np.random.default_rng(seeds.spawn(1)[0]).shuffle(memory)
                data["memory"] = memory.tolist()
            results.append({"shots": shots, "success": True, "data": data,
                            "header": {"name": qc.name, "memory_slots": qc.num_clbits,
                                       "creg_sizes": [[r.name, r.size] for r in qc.cregs],
                                       "n_qubits": qc.num_qubits},
                            "seed_simulator": seed, "time_taken": run.wall_time})
        job_id = uuid.uuid4().hex
        result = Result.from_dict({"backend_name": self.name,
                                   "backend_version": self.backend_version, "qobj_id": job_id,
                                   "job_id": job_id, "success": True, "results": results})
        return _FinishedJob(self, job_id, result)


class _FinishedJob(JobV1):
    """A job that ran when it was made (simulations are synchronous)."""

    def __init__(self, backend, job_id: str, result: "Result") -> None:
        super().__init__(backend, job_id)
        self._result = result

    def submit(self) -> None:
        return None

    def result(self) -> "Result":
        return self._result

    def status(self) -> "JobStatus":
        return JobStatus.DONE
