"""Strong and weak scaling of the distributed backend, with per-rank memory.

    python benchmarks/mpi_scaling.py                          # strong n=22, weak 20+g, P=1,2,4
    python benchmarks/mpi_scaling.py --strong 24 --weak 22 --ranks 1 2 4 8 --plot

Every point is one ``mpiexec -n P`` job running this file with ``--child``: each rank builds the
circuit (benchmarks/circuits.py), runs it on the ``distributed`` backend with ``--stats``-style
statistics, and reports its wall time, its time in MPI and in kernels, and its memory: the growth
of its peak RSS from just before the run (``peak_growth``), against its shard plus the exchange
buffer the backend is allowed (``budget``). Rank 0 prints one JSON line; the parent writes
``mpi_scaling.csv`` (one row per circuit x kind x P, the slowest rank's times, the largest
rank's memory ratio) and, with ``--plot``, ``mpi_scaling.png``.

Strong scaling keeps n fixed as P grows (ideal: time / P); weak scaling keeps the shard fixed,
n = base + log2(P) (ideal: flat time). On a machine with fewer cores than ranks the ranks share
cores, so the times show overhead, not speed-up: read them with the ``cores`` column.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

COLUMNS = ["circuit", "kind", "n", "ranks", "cores", "wall_s", "compute_s", "comm_s",
           "exchanges", "bytes_sent", "shard_mib", "budget_mib", "peak_growth_mib",
           "growth_over_budget", "speedup", "efficiency"]


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _current_rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return _peak_rss_bytes()


def child(args) -> int:
    """One rank of one measurement (under mpiexec)."""
    import circuits
    from mpi4py import MPI

    from qsim_dist.backends import get_backend

    comm = MPI.COMM_WORLD
    circuit = circuits.build(args.circuit, args.n)
    backend = get_backend("distributed")
    small = circuits.build(args.circuit, max(4, comm.size.bit_length() + 3))
    backend.run(small, shots=0, seed=1)  # load the kernels outside the measurement
    comm.Barrier()
    before = _current_rss_bytes()
    t0 = time.perf_counter()
    result = backend.run(circuit, shots=0, seed=1, precision=args.precision)
    wall = time.perf_counter() - t0
    growth = max(0, _peak_rss_bytes() - before)
    itemsize = 8 if args.precision == "single" else 16
    g = comm.size.bit_length() - 1
    shard = itemsize << (args.n - g)
    budget = shard + (min(backend.comm.buffer_bytes, 2 * shard) if g else 0)
    rows = comm.gather({"wall": wall, "growth": growth}, root=0)
    if comm.rank == 0:
        meta = result.metadata
        print(json.dumps({
            "wall_s": max(r["wall"] for r in rows),
            "compute_s": max(meta["compute_time_s"]), "comm_s": max(meta["comm_time_s"]),
            "exchanges": meta["exchanges"], "bytes_sent": meta["bytes_sent"],
            "shard_mib": shard / 2**20, "budget_mib": budget / 2**20,
            "peak_growth_mib": max(r["growth"] for r in rows) / 2**20,
            "growth_over_budget": max(r["growth"] for r in rows) / budget}))
    return 0


def measure(circuit: str, n: int, ranks: int, precision: str) -> dict:
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    cmd = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--child",
           "--circuit", circuit, "--n", str(n), "--precision", precision]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"mpi_scaling: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--circuit", default="qft", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=20, help=argparse.SUPPRESS)
    ap.add_argument("--circuits", nargs="+", default=["qft", "random"])
    ap.add_argument("--strong", type=int, default=22, help="n for strong scaling (default 22)")
    ap.add_argument("--weak", type=int, default=20,
                    help="n at one rank for weak scaling; n = WEAK + log2(P) (default 20)")
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--precision", default="single", choices=["single", "double"])
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out"))
    ap.add_argument("--plot", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    os.makedirs(args.out_dir, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    rows = []
    for circuit in args.circuits:
        for kind in ("strong", "weak"):
            base = None
            for ranks in args.ranks:
                n = args.strong if kind == "strong" else args.weak + ranks.bit_length() - 1
                r = measure(circuit, n, ranks, args.precision)
                base = base or r["wall_s"]
                ideal = base / ranks if kind == "strong" else base
                row = {"circuit": circuit, "kind": kind, "n": n, "ranks": ranks, "cores": cores,
                       **r, "speedup": base / r["wall_s"] if kind == "strong" else None,
                       "efficiency": ideal / r["wall_s"]}
                rows.append(row)
                print(f"{circuit:7s} {kind:6s} n={n:2d} P={ranks}: {r['wall_s']:.2f} s "
                      f"(compute {r['compute_s']:.2f}, comm {r['comm_s']:.2f}), "
                      f"memory {r['growth_over_budget']:.2f}x shard+buffer", flush=True)
    path = os.path.join(args.out_dir, "mpi_scaling.csv")
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})
    print(f"wrote {path}")
    if args.plot:
        plot(rows, os.path.join(args.out_dir, "mpi_scaling.png"))
    return 0


def plot(rows, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, kind in zip(axes, ("strong", "weak")):
        for circuit in sorted({r["circuit"] for r in rows}):
            pts = [r for r in rows if r["kind"] == kind and r["circuit"] == circuit]
            ranks = [r["ranks"] for r in pts]
            ax.plot(ranks, [r["wall_s"] for r in pts], "o-", label=f"{circuit} total")
            ax.plot(ranks, [r["comm_s"] for r in pts], "x--", label=f"{circuit} MPI")
            if kind == "strong":
                ax.plot(ranks, [pts[0]["wall_s"] / p for p in ranks], ":", color="grey")
        ns = sorted({r["n"] for r in rows if r["kind"] == kind})
        ax.set_title(f"{kind} scaling (n = {', '.join(map(str, ns))}; "
                     f"{rows[0]['cores']} cores)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("MPI ranks")
        ax.set_ylabel("seconds (slowest rank)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
