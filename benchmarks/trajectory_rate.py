"""Noisy trajectories per second on a 10-qubit layered circuit, qsim_dist against qiskit-aer in
one process.

    python benchmarks/trajectory_rate.py                     # 10 qubits, 5 layers, 100,000 shots
    python benchmarks/trajectory_rate.py --shots 20000 --repeats 3
    python benchmarks/trajectory_rate.py --kernels jax       # the batched JAX path (GPU)

The circuit: ``layers`` layers of RY(random angle) on every qubit followed by a brick of CNOTs;
a depolarizing channel after every gate (Qiskit's convention: p1 on RY, p2 on CX), readout error
on every measurement, every qubit measured at the end. Every shot is one noisy trajectory;
the rate is shots / wall time of the run call (qsim_dist's includes planning; the first repeat
also numba's warm-up). Both simulators get the same noise model (built once for Aer, converted
with :func:`qsim_dist.noise.from_qiskit_noise_model`); the total variation distance between the
two count distributions is printed with the shot-noise bound it should stay under.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qsim_dist import Circuit
from qsim_dist.backends import get_backend
from qsim_dist.io.convert import to_qiskit
from qsim_dist.noise import from_qiskit_noise_model, total_variation_distance, tvd_bound


def layered_circuit(n: int, layers: int, seed: int = 0) -> Circuit:
    rng = np.random.default_rng(seed)
    c = Circuit(n, n, name=f"layered_{n}x{layers}")
    for layer in range(layers):
        for q in range(n):
            c.add("ry", q, params=[float(rng.uniform(0, np.pi))])
        for q in range(layer % 2, n - 1, 2):
            c.add("cx", q, q + 1)
    for q in range(n):
        c.measure(q, q)
    return c


def aer_noise_model(p1: float, p2: float, readout: float):
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(p1, 1), ["ry"])
    model.add_all_qubit_quantum_error(depolarizing_error(p2, 2), ["cx"])
    model.add_all_qubit_readout_error(ReadoutError([[1 - readout, readout],
                                                    [readout, 1 - readout]]))
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qubits", type=int, default=10)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--shots", type=int, default=100_000)
    parser.add_argument("--p1", type=float, default=0.01)
    parser.add_argument("--p2", type=float, default=0.02)
    parser.add_argument("--readout", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="runs (the first is cold)")
    parser.add_argument("--backend", default="statevector")
    parser.add_argument("--kernels", default="auto", choices=["auto", "cpu", "jax"],
                        help="kernel set: jax batches one row per distinct Pauli sequence "
                             "(the GPU path); cpu walks trajectories in cache (numba)")
    args = parser.parse_args(argv)
    from qiskit_aer import AerSimulator

    c = layered_circuit(args.qubits, args.layers)
    aer_noise = aer_noise_model(args.p1, args.p2, args.readout)
    noise = from_qiskit_noise_model(aer_noise)
    sim = get_backend(args.backend, kernels=args.kernels)
    aer = AerSimulator(noise_model=aer_noise, seed_simulator=args.seed)
    qc = to_qiskit(c)
    gates = sum(1 for i in c if i.is_gate)
    print(f"{args.qubits} qubits, {gates} gates each followed by a depolarizing channel, "
          f"{args.shots} shots")
    print(f"{'qsim_dist_s':>11} {'traj/s':>10} {'aer_s':>8} {'aer traj/s':>10} {'aer/qsim':>8} "
          f"{'tvd':>7} {'bound':>7}")
    ok = True
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = sim.run(c, shots=args.shots, seed=args.seed, noise=noise).counts
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = aer.run(qc, shots=args.shots).result().get_counts()
        t_aer = time.perf_counter() - t0
        tvd = total_variation_distance(ours, theirs)
        bound = tvd_bound(1 << args.qubits, args.shots, args.shots)
        ok &= tvd <= bound
        print(f"{t_ours:>11.3f} {args.shots / t_ours:>10.0f} {t_aer:>8.3f} "
              f"{args.shots / t_aer:>10.0f} {t_aer / t_ours:>8.2f} {tvd:>7.4f} {bound:>7.4f}",
              flush=True)
    if not ok:
        print("counts differ beyond the shot-noise bound")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
