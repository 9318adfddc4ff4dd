"""How long qsim_dist takes to prepare (plan, fuse, compile) a long circuit.

    python benchmarks/compile_time.py                     # 2000 random gates on 20 and 24 qubits
    python benchmarks/compile_time.py --qubits 12 16 --backend reference   # check the script

For each qubit count, in this one process (so the first run also pays any in-process JIT: with the
jax kernels, XLA compilation; the CPU kernels are compiled at install; later runs show the steady
state):

- ``prepare_s``: wall time of ``State.prepare(gates)`` alone on a fresh ``|0...0>`` (planning and
  fusion, plus whatever compilation the backend does ahead of execution; nothing is applied);
- per run (``--runs``, default 2): ``Result.wall_time`` and ``Result.compile_time`` of
  ``Backend.run(circuit, shots=0)`` and the wall time around the call.

The circuit is ``circuits.random_circuit_gates(n, gates, seed)``: the layered random circuit of
benchmarks/circuits.py cut after exactly ``--gates`` gates.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import circuits  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="qsim_dist compile/prepare time for a long circuit")
    ap.add_argument("--qubits", nargs="+", type=int, default=[20, 24])
    ap.add_argument("--gates", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=circuits.DEFAULT_SEED)
    ap.add_argument("--backend", default="statevector", help="qsim_dist backend name")
    ap.add_argument("--precision", default="single", choices=("single", "double"))
    ap.add_argument("--runs", type=int, default=2, help="full runs per qubit count (0: prepare only)")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    from qsim_dist.backends import get_backend

    backend = get_backend(args.backend)
    import_s = time.perf_counter() - t
    print(f"# qsim_dist backend={args.backend} precision={args.precision} gates={args.gates} "
          f"seed={args.seed}; import + get_backend {import_s:.3f} s")
    header = f"{'n':>3} {'gates':>6} {'what':>10} {'wall_s':>9} {'compile_s':>10} {'result_wall_s':>14}"
    print(header)
    print("-" * len(header))
    for n in args.qubits:
        circ = circuits.random_circuit_gates(n, args.gates, args.seed)
        gates = [i for i in circ if i.is_gate]
        state = backend.new_state(n, args.precision)
        t = time.perf_counter()
        state.prepare(gates)
        prepare_s = time.perf_counter() - t
        print(f"{n:>3} {len(gates):>6} {'prepare':>10} {prepare_s:>9.3f} "
              f"{state.compile_time:>10.3f} {'':>14}", flush=True)
        del state
        for k in range(args.runs):
            t = time.perf_counter()
            res = backend.run(circ, shots=0, seed=1, precision=args.precision)
            wall = time.perf_counter() - t
            print(f"{n:>3} {len(gates):>6} {f'run {k + 1}':>10} {wall:>9.3f} "
                  f"{res.compile_time:>10.3f} {res.wall_time:>14.3f}", flush=True)
    print("# wall_s: around the call; compile_s: State.compile_time / Result.compile_time as the "
          "backend reports it; result_wall_s: Result.wall_time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
