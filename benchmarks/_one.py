"""One measurement in one fresh process: ``python benchmarks/_one.py SIM CIRCUIT N [options]``.

Builds the circuit (deterministic from its name, N, depth and seed), translates it for SIM, runs the
simulation call once and writes one JSON object (to ``--out`` or stdout) with:

- ``sim_s``: wall time of the simulation call only, including handing the final state back to Python
  (qsim_dist ``Backend.run(save_state=True)``; qsim ``simulate()`` + ``final_state_vector``; Aer
  ``run().result()`` with ``save_statevector``; qulacs ``update_quantum_state`` + ``get_vector``);
- ``compile_s``: the simulator's own compile/plan time where it reports one (qsim_dist only), else null;
- ``build_s`` / ``translate_s`` / ``import_s``: not part of ``sim_s``, reported for information;
- ``maxrss_kib``: this process's peak RSS (the parent also reads it with ``os.wait4``);
- ``rss_before_sim_kib`` / ``sim_peak_rss_kib``: resident memory just before the simulation call and
  the peak RSS read just after it (before the checksum), so that their difference is the
  simulator's own memory during the call;
- ``checksum``: the final state's norm and its amplitudes at fixed basis indices (see
  :func:`probe_indices`), from which the harness compares simulators up to global phase.

SIM is one of qsim_dist, qsim, aer, qulacs. Thread counts come from ``--threads`` (and from
OMP_NUM_THREADS / NUMBA_NUM_THREADS, which the harness sets in this process's environment).
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import circuits  # noqa: E402

SIMS = ("qsim_dist", "qsim", "aer", "qulacs")
NUM_RANDOM_PROBES = 8


def probe_indices(n: int) -> list[int]:
    """Fixed basis indices whose amplitudes every simulator reports: 0, 1, 2^(n-1), 2^n - 1 and
    ``NUM_RANDOM_PROBES`` indices drawn with ``default_rng(12345)`` (same for every simulator)."""
    dim = 1 << n
    fixed = [0, 1 % dim, (dim >> 1), dim - 1]
    drawn = np.random.default_rng(12345).integers(0, dim, size=NUM_RANDOM_PROBES)
    out: list[int] = []
    for i in fixed + [int(x) for x in drawn]:
        if i not in out:
            out.append(i)
    return out


def checksum(sv: np.ndarray, n: int) -> dict:
    """Norm (accumulated in float64 by chunks, no full-size temporary) and probe amplitudes."""
    sv = np.asarray(sv).reshape(-1)
    if sv.size != 1 << n:
        raise RuntimeError(f"state has {sv.size} amplitudes, expected {1 << n}")
    norm = 0.0
    chunk = 1 << 16  # 1 MiB temporaries: the harness must not add to anyone's peak
    for s in range(0, sv.size, chunk):
        part = sv[s:s + chunk].astype(np.complex128)
        norm += float(np.vdot(part, part).real)
    idx = probe_indices(n)
    amps = [complex(sv[i]) for i in idx]
    return {"norm": norm, "indices": idx, "amps": [[a.real, a.imag] for a in amps],
            "p0": abs(complex(sv[0])) ** 2, "dtype": str(sv.dtype)}


def rss_kib() -> int:
    """Current resident set size: read just before the simulation call, so that the growth
    from there to the peak is the simulator's own memory (state, buffers, copies)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_qsim_dist(circ, args):
    t = time.perf_counter()
    from qsim_dist.backends import get_backend

    backend = get_backend(args.qsim_dist_backend)
    import_s = time.perf_counter() - t
    rss_before = rss_kib()
    t = time.perf_counter()
    res = backend.run(circ, shots=0, seed=1, precision=args.precision, save_state=True)
    sim_s = time.perf_counter() - t
    return {"sv": res.statevector, "sim_s": sim_s, "rss_before_sim_kib": rss_before, "compile_s": float(res.compile_time),
            "import_s": import_s, "translate_s": 0.0, "gates_translated": circ.num_gates,
            "precision": res.precision, "backend_wall_s": float(res.wall_time),
            "version": _version("qsim_dist")}


def run_qsim(circ, args):
    t = time.perf_counter()
    import qsimcirq

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    cc, order = circuits.to_cirq(circ)
    translate_s = time.perf_counter() - t
    ngates = sum(1 for _ in cc.all_operations())
    opts = qsimcirq.QSimOptions(cpu_threads=args.threads, max_fused_gate_size=args.qsim_fuse)
    sim = qsimcirq.QSimSimulator(opts)
    rss_before = rss_kib()
    t = time.perf_counter()
    r = sim.simulate(cc, qubit_order=order)
    sv = r.final_state_vector
    sim_s = time.perf_counter() - t
    return {"sv": sv, "sim_s": sim_s, "rss_before_sim_kib": rss_before, "compile_s": None, "import_s": import_s,
            "translate_s": translate_s, "gates_translated": ngates, "precision": "single",
            "version": qsimcirq.__version__,
            "options": f"cpu_threads={args.threads} max_fused_gate_size={args.qsim_fuse}"}


def run_aer(circ, args):
    t = time.perf_counter()
    from qiskit_aer import AerSimulator, __version__ as aer_version

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    qc = circuits.to_qiskit(circ)
    ngates = len(qc.data)
    qc.save_statevector()
    translate_s = time.perf_counter() - t
    sim = AerSimulator(method="statevector", precision="single",
                       max_parallel_threads=args.threads)
    rss_before = rss_kib()
    t = time.perf_counter()
    result = sim.run(qc, shots=1).result()
    if not result.success:
        raise RuntimeError(f"Aer failed: {result.status}")
    sv = np.asarray(result.data(0)["statevector"])
    sim_s = time.perf_counter() - t
    meta = result.results[0].metadata
    return {"sv": sv, "sim_s": sim_s, "rss_before_sim_kib": rss_before, "compile_s": None, "import_s": import_s,
            "translate_s": translate_s, "gates_translated": ngates, "precision": "single",
            "version": aer_version, "aer_time_taken_s": float(result.results[0].time_taken),
            "aer_fusion": meta.get("fusion", {}),
            "options": f"max_parallel_threads={args.threads} fusion=default"}


def run_qulacs(circ, args):
    t = time.perf_counter()
    import qulacs

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    qc = circuits.to_qulacs(circ)
    translate_s = time.perf_counter() - t
    ngates = qc.get_gate_count()
    rss_before = rss_kib()
    t = time.perf_counter()
    state = qulacs.QuantumState(circ.num_qubits)
    qc.update_quantum_state(state)
    sv = state.get_vector()
    sim_s = time.perf_counter() - t
    return {"sv": sv, "sim_s": sim_s, "rss_before_sim_kib": rss_before, "compile_s": None, "import_s": import_s,
            "translate_s": translate_s, "gates_translated": ngates, "precision": "double",
            "version": _version("qulacs"),
            "options": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"}


def _version(mod: str) -> str:
    try:
        return str(__import__(mod).__version__)
    except Exception:
        from importlib.metadata import version

        try:
            return version(mod)
        except Exception:
            return "?"


RUNNERS = {"qsim_dist": run_qsim_dist, "qsim": run_qsim, "aer": run_aer, "qulacs": run_qulacs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sim", choices=SIMS)
    ap.add_argument("circuit", choices=circuits.CIRCUITS)
    ap.add_argument("n", type=int)
    ap.add_argument("--depth", type=int, default=circuits.DEFAULT_DEPTH)
    ap.add_argument("--seed", type=int, default=circuits.DEFAULT_SEED)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--precision", default="single", help="qsim_dist precision (single|double)")
    ap.add_argument("--qsim-dist-backend", default="statevector")
    ap.add_argument("--qsim-fuse", type=int, default=4, help="qsim max_fused_gate_size")
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    circ = circuits.build(args.circuit, args.n, args.depth, args.seed)
    build_s = time.perf_counter() - t

    r = RUNNERS[args.sim](circ, args)
    sim_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sv = r.pop("sv")
    out = {
        "sim": args.sim, "circuit": args.circuit, "n": args.n, "gates": circ.num_gates,
        "build_s": build_s, **r,
        "checksum": checksum(sv, args.n),
        "threads": args.threads,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "sim_peak_rss_kib": sim_peak,
        "child_elapsed_s": time.perf_counter() - _T0,
    }
    if out["gates_translated"] != out["gates"]:
        raise RuntimeError(f"{args.sim}: translated circuit has {out['gates_translated']} gates, "
                           f"ours has {out['gates']}")
    text = json.dumps(out)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.out)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
