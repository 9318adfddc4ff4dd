"""qsim_dist against qiskit-aer on issue 4's noisy distributed-program workload, in one process.

    python benchmarks/noisy_dqc.py                        # K=3,d=3 x 10,000 and K=4,d=3 x 1,000
    python benchmarks/noisy_dqc.py --case 2 2 500         # a quick check: K=2, d=2, 500 shots

The circuit is :func:`qsim_dist.library.cat_entangler_chain` (K modules of d data + 2 link qubits,
cat-entangler remote CNOTs with mid-circuit measurement and feed-forward); the only noise is a
2-qubit depolarizing channel (Qiskit's convention, p = 0.05 by default) after each EPR-making CNOT,
built once as an Aer noise model and converted with
:func:`qsim_dist.noise.from_qiskit_noise_model`, so both simulators run the same circuit and noise.

For each case it prints the wall time of each simulator's run call (qsim_dist's includes planning
and the numba warm-up of a first run; run a case twice with ``--repeats 2`` to see it warm), their
ratio, and the total variation distance between the two data-qubit count distributions with the
shot-noise bound it should stay under (:func:`qsim_dist.noise.tvd_bound`, 1e-3 level).
"""

from __future__ import annotations

import argparse
import time

from qsim_dist import library as lib
from qsim_dist.backends import get_backend
from qsim_dist.io.convert import to_qiskit
from qsim_dist.noise import (from_qiskit_noise_model, marginal_counts, total_variation_distance,
                             tvd_bound)

DEFAULT_CASES = [(3, 3, 10_000), (4, 3, 1_000)]


def aer_noise_model(modules: int, data_qubits: int, p: float):
    """Aer model: ``depolarizing_error(p, 2)`` after each EPR-making ``cx`` only."""
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    model = NoiseModel()
    for near, far in lib.cat_entangler_epr_pairs(modules, data_qubits):
        model.add_quantum_error(depolarizing_error(p, 2), "cx", [near, far])
    return model


def run_case(modules: int, data_qubits: int, shots: int, p: float, seed: int,
             backend: str) -> dict:
    from qiskit_aer import AerSimulator

    circuit = lib.cat_entangler_chain(modules, data_qubits)
    aer_noise = aer_noise_model(modules, data_qubits, p)
    noise = from_qiskit_noise_model(aer_noise)
    qc = to_qiskit(circuit)
    sim = get_backend(backend)
    data = range(2 * (modules - 1), circuit.num_clbits)

    t0 = time.perf_counter()
    ours = sim.run(circuit, shots=shots, seed=seed, noise=noise).counts
    t_ours = time.perf_counter() - t0

    aer = AerSimulator(noise_model=aer_noise, seed_simulator=seed)
    t0 = time.perf_counter()
    theirs = aer.run(qc, shots=shots).result().get_counts()
    t_aer = time.perf_counter() - t0

    a, b = marginal_counts(ours, data), marginal_counts(theirs, data)
    return {"K": modules, "d": data_qubits, "qubits": circuit.num_qubits, "shots": shots,
            "qsim_dist_s": t_ours, "aer_s": t_aer, "speedup": t_aer / t_ours,
            "tvd": total_variation_distance(a, b),
            "tvd_bound": tvd_bound(1 << len(data), shots, shots)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", nargs=3, type=int, action="append", metavar=("K", "D", "SHOTS"),
                        help="modules, data qubits per module, shots (repeatable)")
    parser.add_argument("--p", type=float, default=0.05, help="link depolarizing probability")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="runs per case (first is cold)")
    parser.add_argument("--backend", default="statevector", help="qsim_dist backend")
    args = parser.parse_args(argv)
    print(f"{'K':>2} {'d':>2} {'qubits':>6} {'shots':>7} {'qsim_dist_s':>11} {'aer_s':>8} "
          f"{'aer/qsim':>8} {'tvd':>7} {'bound':>7}")
    ok = True
    for k, d, shots in [tuple(c) for c in args.case] if args.case else DEFAULT_CASES:
        for _ in range(args.repeats):
            r = run_case(k, d, shots, args.p, args.seed, args.backend)
            ok &= r["tvd"] <= r["tvd_bound"]
            print(f"{r['K']:>2} {r['d']:>2} {r['qubits']:>6} {r['shots']:>7} "
                  f"{r['qsim_dist_s']:>11.3f} {r['aer_s']:>8.3f} {r['speedup']:>8.2f} "
                  f"{r['tvd']:>7.4f} {r['tvd_bound']:>7.4f}", flush=True)
    if not ok:
        print("counts differ beyond the shot-noise bound")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
