"""Qiskit EstimatorV2 / SamplerV2 on qsim_dist against Qiskit Aer's, in one run, same machine,
same threads, double precision.

    python benchmarks/qiskit_primitives.py                      # 24 qubits, 100 observables
    python benchmarks/qiskit_primitives.py --qubits 20 --observables 50 --repeat 3

The circuit: ``efficient_su2(n, reps=2)`` (decomposed to rx/ry/rz/cx) at random parameters; the
observables: random Pauli strings of weight 1-4 with random coefficients (seed 1), one PUB of
all of them. The sampler row: the same circuit measured, 10,000 shots. Each simulator is timed
from ``run`` to ``result()`` (the median of ``--repeat`` runs); the expectation values are
compared. Aer runs with ``max_parallel_threads`` = ``--threads``, qsim_dist with
``OMP_NUM_THREADS`` = ``--threads``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qubits", type=int, default=24)
    ap.add_argument("--observables", type=int, default=100)
    ap.add_argument("--shots", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import numpy as np
    from qiskit import transpile
    from qiskit.circuit.library import efficient_su2
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    from qsim_dist.qiskit_primitives import Estimator, Sampler

    n = args.qubits
    rng = np.random.default_rng(1)
    qc = transpile(efficient_su2(n, reps=2), basis_gates=["rx", "ry", "rz", "cx"],
                   optimization_level=0)
    values = rng.uniform(0, 2 * np.pi, qc.num_parameters)
    bound = qc.assign_parameters(values)
    observables = []
    for _ in range(args.observables):
        weight = int(rng.integers(1, 5))
        qubits = rng.choice(n, size=weight, replace=False).tolist()
        letters = "".join(rng.choice(list("XYZ"), size=weight))
        observables.append(SparsePauliOp.from_sparse_list([(letters, qubits, 1.0)], n) *
                           float(rng.normal()))
    measured = bound.measure_all(inplace=False)
    aer_options = {"backend_options": {"max_parallel_threads": args.threads,
                                       "method": "statevector", "precision": "double"}}

    def timed(make, pubs, **kw):
        times, result = [], None
        for _ in range(args.repeat):
            primitive = make()
            t0 = time.perf_counter()
            result = primitive.run(pubs, **kw).result()
            times.append(time.perf_counter() - t0)
        return statistics.median(times), result

    t_ours, ours = timed(lambda: Estimator(), [(bound, observables)])
    t_aer, aer = timed(lambda: AerEstimator(options=aer_options), [(bound, observables)])
    diff = float(np.max(np.abs(ours[0].data.evs - aer[0].data.evs)))
    s_ours, _ = timed(lambda: Sampler(seed=1), [measured], shots=args.shots)
    s_aer, _ = timed(lambda: AerSampler(seed=1, options=aer_options), [measured],
                     shots=args.shots)
    print(f"EstimatorV2, {n} qubits, {args.observables} observables, {args.threads} thread(s), "
          f"median of {args.repeat}")
    print("| primitive | qsim_dist s | Aer s | qsim_dist / Aer |")
    print("|---|---|---|---|")
    print(f"| EstimatorV2 ({args.observables} observables) | {t_ours:.3f} | {t_aer:.3f} | "
          f"{t_ours / t_aer:.2f} |")
    print(f"| SamplerV2 ({args.shots} shots) | {s_ours:.3f} | {s_aer:.3f} | "
          f"{s_ours / s_aer:.2f} |")
    print(f"largest |ev difference|: {diff:.2e}")


if __name__ == "__main__":
    main()
