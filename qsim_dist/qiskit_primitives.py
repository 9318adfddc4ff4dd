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

On a network (``network=``, a :class:`~qsim_dist.network.Network` or a network file): each
bound circuit is compiled onto the modules (:func:`qsim_dist.network.distribute.distribute`;
``placement=`` fixes where its qubits go) and run by :func:`qsim_dist.dqc.run_program` with
the network's links, noise and timing (``ideal=True``: perfect links and nodes). The sampler's
shots are then the network run's trajectories; the estimator reads every observable of a
circuit off one network run of ``shots`` trajectories (default 1000), its ``stds`` the
standard errors (0 over ideal links, where the values are exact).

Needs the ``qiskit`` extra (or ``interop``, which has it).
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
                      "'qsim_dist[qiskit]')") from exc

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
                 precision: str = "double", network: Any = None, ideal: bool = False,
                 placement: Any = None, **backend_options) -> None:
        if not isinstance(default_shots, int) or isinstance(default_shots, bool) or \
                default_shots < 1:
            raise OptionError(f"default_shots must be a positive integer, got "
                              f"{default_shots!r}")
        if noise is not None and not isinstance(noise, NoiseModel):
            raise OptionError(f"noise must be a qsim_dist NoiseModel, got "
                              f"{type(noise).__name__}")
        self._network = _NetworkRuns.of(network, ideal, placement, backend, noise)
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
            if self._network is not None:
                found = self._network.counts(circuit, pub.shots, seed)
            else:
                found = self._backend.run(circuit, shots=pub.shots, seed=seed,
                                          precision=self._precision, noise=self._noise).counts
            for name, bits in registers.items():
                counts: dict[int, int] = {}
                for key, count in found.items():
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
                 seed: int | None = None, precision: str = "double", network: Any = None,
                 ideal: bool = False, placement: Any = None, shots: int = 1000,
                 **backend_options) -> None:
        if not isinstance(default_precision, (int, float)) or \
                isinstance(default_precision, bool) or not math.isfinite(default_precision) \
                or default_precision < 0:
            raise OptionError(f"default_precision must be a finite number >= 0, got "
                              f"{default_precision!r}")
        if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
            raise OptionError(f"shots must be a positive integer, got {shots!r}")
        self._network = _NetworkRuns.of(network, ideal, placement, backend, None)
        self._shots = shots
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
        if self._network is not None:
            return self._run_pub_on_network(pub, circuits, observables, ours, rng)
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

    def _run_pub_on_network(self, pub, circuits, observables, ours, rng) -> PubResult:
        """One network run per bound circuit, reading all of its observables; ``stds`` are the
        runs' standard errors (the PUB's precision is met by the trajectories, not added)."""
        n = pub.circuit.num_qubits
        wanted: dict[int, list] = {}
        for index in np.ndindex(*circuits.shape):
            wanted.setdefault(id(circuits[index]), []).append(index)
        evs = np.zeros(circuits.shape, dtype=np.float64)
        stds = np.zeros(circuits.shape, dtype=np.float64)
        for key, indices in wanted.items():
            sums = [as_pauli_sum([(complex(c), label) for label, c in observables[i].items()], n)
                    for i in indices]
            values, errors = self._network.expectations(ours[key], sums, self._shots,
                                                        int(rng.integers(2 ** 63)))
            for i, v, e in zip(indices, values, errors):
                evs[i], stds[i] = v, e
        return PubResult(DataBin(evs=evs, stds=stds, shape=evs.shape),
                         metadata={"target_precision": pub.precision, "shots": self._shots,
                                   "circuit_metadata": pub.circuit.metadata})


class _NetworkRuns:
    """Circuits run on a modelled network: compiled onto its modules, run by
    :func:`qsim_dist.dqc.run_program` (see the module docstring)."""

    def __init__(self, network, ideal: bool, placement, backend: str):
        from .network import Network, load_network

        self.network = network if isinstance(network, Network) else load_network(network)
        self.ideal, self.placement = bool(ideal), placement
        self.backend = "auto" if backend == "statevector" else backend

    @classmethod
    def of(cls, network, ideal, placement, backend, noise) -> "_NetworkRuns | None":
        if network is None:
            if ideal or placement is not None:
                raise OptionError("ideal and placement apply to a network run (network=)")
            return None
        if noise is not None:
            raise OptionError("a network run takes its noise from the network, not noise=")
        return cls(network, ideal, placement, backend)

    def _run(self, circuit, shots: int, seed: int, observables=None):
        from .dqc import run_program
        from .network.distribute import distribute

        program = distribute(circuit, self.network, placement=self.placement)
        return run_program(program, self.network, shots=shots, seed=seed, ideal=self.ideal,
                           backend=self.backend, observables=observables)

    def counts(self, circuit, shots: int, seed: int) -> dict[str, int]:
        return self._run(circuit, shots, seed).counts

    def expectations(self, circuit, observables, shots: int, seed: int):
        report = self._run(_gates_of(circuit), 1 if self.ideal else shots, seed, observables)
        return report.expectations, report.expectations_stderr


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


# ---- primitive jobs as payloads: what a workload manager's resource runs (qsim_dist.resource) ----

PRIMITIVES = ("sampler", "estimator")


def primitive_payload(primitive: str, pubs: Iterable, **options) -> dict[str, Any]:
    """A JSON-ready payload of a Qiskit primitive job, as the Qiskit Runtime service takes one:
    ``{"primitive": "sampler" | "estimator", "pubs": [...], "options": {...}}``, each PUB
    coerced as the primitive would and its circuit in QPY (base64). ``options`` go to
    :class:`Sampler` / :class:`Estimator` (``seed``, ``default_shots``, ``shots``,
    ``default_precision``, ``ideal``, ``placement``...)."""
    import base64
    import io

    from qiskit import qpy

    if primitive not in PRIMITIVES:
        raise OptionError(f"primitive must be one of {', '.join(PRIMITIVES)}, got "
                          f"{primitive!r}")
    encoded = []
    for pub in pubs:
        pub = (SamplerPub if primitive == "sampler" else EstimatorPub).coerce(pub)
        buffer = io.BytesIO()
        qpy.dump(pub.circuit, buffer)
        values = pub.parameter_values.as_array(pub.circuit.parameters).tolist() \
            if pub.circuit.num_parameters else None
        item = {"circuit": base64.b64encode(buffer.getvalue()).decode("ascii"),
                "parameter_values": values}
        if primitive == "sampler":
            item["shots"] = pub.shots
        else:
            item["observables"] = pub.observables.tolist()
            item["precision"] = pub.precision
        encoded.append(item)
    return {"primitive": primitive, "pubs": encoded, "options": dict(options)}


def run_payload(payload: dict[str, Any], *, backend: str = "statevector",
                network: Any = None) -> dict[str, Any]:
    """Run a :func:`primitive_payload` on ``backend`` (or on a ``network``): a JSON-ready
    result, one entry per PUB — the sampler's counts per classical register (one count table
    per parameter binding, in the bindings' flattened order) or the estimator's ``evs`` and
    ``stds``."""
    import base64
    import io

    from qiskit import qpy

    if not isinstance(payload, dict) or payload.get("primitive") not in PRIMITIVES or \
            not isinstance(payload.get("pubs"), list):
        raise OptionError("a primitive payload is {'primitive': 'sampler' | 'estimator', "
                          "'pubs': [...], 'options': {...}} (see primitive_payload)")
    options = dict(payload.get("options") or {})
    if network is not None:
        options["network"] = network
    kind = payload["primitive"]
    primitive = (Sampler if kind == "sampler" else Estimator)(backend, **options)
    pubs = []
    for item in payload["pubs"]:
        try:
            circuit = qpy.load(io.BytesIO(base64.b64decode(item["circuit"])))[0]
        except Exception as exc:
            raise OptionError(f"a PUB's circuit is not base64 QPY: {exc}") from None
        values = item.get("parameter_values")
        if kind == "sampler":
            pubs.append((circuit, values, item.get("shots")))
        else:
            pubs.append((circuit, item["observables"], values, item.get("precision")))
    result = primitive.run(pubs).result()
    out = []
    for pub_result in result:
        data = pub_result.data
        if kind == "sampler":
            out.append({name: [getattr(data, name)[index].get_counts()
                               for index in np.ndindex(*data.shape)] if data.shape
                        else [getattr(data, name).get_counts()]
                        for name in data.keys()})
        else:
            out.append({"evs": np.asarray(data.evs).tolist(),
                        "stds": np.asarray(data.stds).tolist()})
    return {"primitive": kind, "backend": backend, "pubs": out}


def main(argv: list[str] | None = None) -> int:
    """``python -m qsim_dist.qiskit_primitives JOB.json --out RESULTS.h5 [--backend B]
    [--network NET.toml]``: run a primitive payload, print its result as JSON and write it
    to an HDF5 results file (the result under ``meta_json.primitive_result``). One error
    line and exit status 2 for a bad job."""
    import argparse
    import json
    import sys

    from .errors import QsimDistError
    from .io.hdf5 import save_result
    from .results import Result

    ap = argparse.ArgumentParser(prog="python -m qsim_dist.qiskit_primitives",
                                 description="run a Qiskit primitive job payload")
    ap.add_argument("job")
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="statevector")
    ap.add_argument("--network", default=None)
    args = ap.parse_args(argv)
    try:
        try:
            with open(args.job) as f:
                payload = json.load(f)
        except (OSError, ValueError) as exc:
            raise OptionError(f"cannot read the job '{args.job}': {exc}") from None
        out = run_payload(payload, backend=args.backend, network=args.network)
        save_result(Result(num_qubits=0, num_clbits=0, shots=0, seed=None, precision="double",
                           backend=args.backend, counts={}, circuit_name=out["primitive"],
                           metadata={"kind": "primitive_result", "primitive_result": out}),
                    args.out)
    except QsimDistError as exc:
        sys.stderr.write(f"qsim-dist: error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
