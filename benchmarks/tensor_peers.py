"""The tensor backend against quimb + cotengra and TensorCircuit-NG, in one run, same machine,
same path budget, double precision.

    python benchmarks/tensor_peers.py                       # every row (greedy paths)
    python benchmarks/tensor_peers.py --quick               # small sizes (a minute or two)
    python benchmarks/tensor_peers.py --rows grid --optimize cotengra --path-time 5
    python benchmarks/tensor_peers.py --python /path/to/peer-venv/bin/python

The peers must be importable by ``--python`` (default: this interpreter), with qsim_dist on its
path: ``pip install quimb cotengra tensorcircuit-ng`` and ``pip install -e .`` in one venv.

Rows (each (simulator, row) in a fresh child process with ``--timeout``):

- ``qaoa``: the MaxCut energy sum_<uv> <Z_u Z_v> of QAOA (``library.qaoa_maxcut``) on a random
  3-regular graph of n qubits (networkx seed 1), p layers, fixed angles; one contraction per edge
  for every simulator (qsim_dist and quimb contract each term's past light cone;
  TensorCircuit-NG its expectation network);
- ``grid``: one amplitude <0...0|C|0...0> of a random circuit on an r x r grid (each cycle:
  ``sx``/``ry(pi/2)``/``t`` at random on every qubit, then ``cz`` on one of four grid patterns,
  seed 1);
- ``ghz``: the amplitudes <0...0| and <1...1| of GHZ-n.

``--optimize greedy`` gives every simulator its greedy path finder; ``--optimize cotengra``
gives each a fresh ``cotengra.HyperOptimizer(max_time=--path-time)`` per contraction. Printed
for each: whole time (build, path search, contraction), path search time, the path's cost as
cotengra counts it (sum over pairwise contractions of the product of their index sizes) and its
width (log2 of the largest intermediate), and the ratio qsim_dist / peer.
Results: ``benchmarks/results/tensor_peers.md`` (``--out``).

The slicing row, separately: ``mpiexec -n P python benchmarks/tensor_peers.py --slicing``
contracts one amplitude of a 20-qubit depth-10 random circuit (greedy path) with its slices
shared over P ranks and prints the wall time, each rank's contraction time and the total work
against the unsliced work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIMS = ("qsim_dist", "quimb", "tensorcircuit")
SIZES = {"qaoa": [(100, 1), (100, 2), (300, 1), (300, 2), (1000, 1)],
         "grid": [(6, 8), (6, 12), (7, 8), (7, 10)],
         "ghz": [(1000, 0)]}
QUICK = {"qaoa": [(100, 1), (100, 2)], "grid": [(5, 8), (6, 8)], "ghz": [(200, 0)]}
GAMMA, BETA = (0.41, 0.23), (0.35, 0.15)   # QAOA angles of layers 1 and 2
SLICING_QUBITS, SLICING_DEPTH = 20, 10      # the sliced contraction: one amplitude


# -- the workloads, in qsim_dist's IR ---------------------------------------------------------
def qaoa(n: int, p: int):
    import networkx as nx

    from qsim_dist import library as lib

    graph = nx.random_regular_graph(3, n, seed=1)
    edges = sorted(tuple(sorted(e)) for e in graph.edges)
    return lib.qaoa_maxcut(edges, n, list(GAMMA[:p]), list(BETA[:p])), edges


def grid(r: int, cycles: int):
    from qsim_dist import Circuit

    n = r * r
    rng = np.random.default_rng(1)
    c = Circuit(n, name=f"grid{r}x{r}_d{cycles}")
    # four patterns of cz: horizontal pairs from even / odd columns, vertical from even / odd rows
    patterns = [[(i * r + j, i * r + j + 1) for i in range(r) for j in range(start, r - 1, 2)]
                for start in (0, 1)] + \
        [[(i * r + j, (i + 1) * r + j) for i in range(start, r - 1, 2) for j in range(r)]
         for start in (0, 1)]
    for q in range(n):
        c.add("h", q)
    for cycle in range(cycles):
        for q in range(n):
            kind = int(rng.integers(0, 3))
            if kind == 0:
                c.add("sx", q)
            elif kind == 1:
                c.add("ry", q, params=[math.pi / 2])
            else:
                c.add("t", q)
        for a, b in patterns[cycle % 4]:
            c.add("cz", a, b)
    return c


def ghz(n: int):
    from qsim_dist import library as lib

    return lib.ghz(n)


def gates(circuit):
    """(matrix little-endian in qubits, qubits) of every gate."""
    return [(i.matrix(), i.qubits) for i in circuit if i.is_gate]


# -- one measurement per child ----------------------------------------------------------------
def optimizer(name: str, path_time: float):
    if name == "greedy":
        return "greedy"
    import cotengra as ctg

    return ctg.HyperOptimizer(max_time=path_time, progbar=False, parallel=False)


def cost_of(inputs, output, size_dict, path):
    """cotengra's cost and width of a path (one convention for every simulator)."""
    import cotengra as ctg

    tree = ctg.ContractionTree.from_path(inputs, output, size_dict, path=path)
    return float(tree.contraction_cost()), float(tree.contraction_width())


def run_qsim_dist(row, size, opt, path_time):
    from qsim_dist.backends import get_backend

    optimize = "greedy" if opt == "greedy" else "cotengra"
    backend = get_backend("tensor", optimize=optimize, path_time=path_time)
    t0 = time.perf_counter()
    if row == "qaoa":
        c, edges = qaoa(*size)
        value = backend.expectation(c, [(1.0, f"Z{u} Z{v}") for u, v in edges])
    elif row == "grid":
        value = backend.amplitudes(grid(*size), [0])[0]
    else:
        value = backend.amplitudes(ghz(size[0]), [0, (1 << size[0]) - 1])
    whole = time.perf_counter() - t0
    cost = width = 0.0
    for (eq, shapes, _), plan in backend._shared.paths.items():
        ins, out = eq.split("->")
        dims = {}
        for labels, shape in zip(ins.split(","), shapes):
            dims.update(zip(labels, shape))
        c_, w_ = cost_of(ins.split(","), out, dims, plan.path)
        cost += c_ * max(plan.uses, 1)
        width = max(width, w_)
    return {"time": whole, "path_time": backend.stats.path_seconds, "cost": cost,
            "width": width, "value": value}


def run_quimb(row, size, opt, path_time):
    import quimb.tensor as qtn

    def build(circuit):
        qc = qtn.Circuit(circuit.num_qubits)
        for m, qubits in gates(circuit):
            # quimb's matrices are big-endian in ``where``: our qubits reversed
            qc.apply_gate_raw(m, tuple(reversed(qubits)))
        return qc

    def rehearsed(info):
        tree = info["tree"]
        return float(tree.contraction_cost()), float(tree.contraction_width())

    zz = np.diag([1.0, -1.0, -1.0, 1.0]).astype(complex)
    t0 = time.perf_counter()
    cost = width = 0.0
    if row == "qaoa":
        c, edges = qaoa(*size)
        qc = build(c)
        value = sum(qc.local_expectation(zz, (u, v), optimize=optimizer(opt, path_time)).real
                    for u, v in edges)
        whole = time.perf_counter() - t0
        for u, v in edges:
            cc, ww = rehearsed(qc.local_expectation_rehearse(zz, (u, v), optimize="greedy"
                                                             if opt == "greedy" else
                                                             optimizer(opt, path_time)))
            cost, width = cost + cc, max(width, ww)
    else:
        circuit = grid(*size) if row == "grid" else ghz(size[0])
        n = circuit.num_qubits
        qc = build(circuit)
        strings = ["0" * n] if row == "grid" else ["0" * n, "1" * n]
        value = [qc.amplitude(b, optimize=optimizer(opt, path_time)) for b in strings]
        whole = time.perf_counter() - t0
        for b in strings:
            cc, ww = rehearsed(qc.amplitude_rehearse(b, optimize=optimizer(opt, path_time)))
            cost, width = cost + cc, max(width, ww)
    return {"time": whole, "path_time": None, "cost": cost, "width": width, "value": value}


def run_tensorcircuit(row, size, opt, path_time):
    import tensorcircuit as tc

    tc.set_backend("numpy")
    tc.set_dtype("complex128")
    if opt == "greedy":
        tc.set_contractor("greedy")
    else:
        tc.set_contractor("custom", optimizer=optimizer(opt, path_time), preprocessing=True)

    def build(circuit):
        tcc = tc.Circuit(circuit.num_qubits)
        for m, qubits in gates(circuit):
            tcc.any(*reversed(qubits), unitary=m)
        return tcc

    t0 = time.perf_counter()
    if row == "qaoa":
        c, edges = qaoa(*size)
        tcc = build(c)
        # its light-cone option, not the default reuse (which contracts the whole state first);
        # a fresh Z node per use (a node joins one network)
        value = sum(float(np.real(tcc.expectation((tc.gates.z(), [u]), (tc.gates.z(), [v]),
                                                  reuse=False, enable_lightcone=True)))
                    for u, v in edges)
    else:
        circuit = grid(*size) if row == "grid" else ghz(size[0])
        n = circuit.num_qubits
        tcc = build(circuit)
        strings = ["0" * n] if row == "grid" else ["0" * n, "1" * n]
        value = [complex(tcc.amplitude(b)) for b in strings]
    return {"time": time.perf_counter() - t0, "path_time": None, "cost": None, "width": None,
            "value": value}


RUNNERS = {"qsim_dist": run_qsim_dist, "quimb": run_quimb, "tensorcircuit": run_tensorcircuit}


def child(sim, row, size, opt, path_time) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = RUNNERS[sim](row, tuple(size), opt, path_time)
    value = out.pop("value")
    values = np.atleast_1d(np.asarray(value, dtype=complex))
    out["value"] = [[float(v.real), float(v.imag)] for v in values]
    print("RESULT " + json.dumps(out))


def measure(python, sim, row, size, opt, path_time, timeout):
    cmd = [python, __file__, "--child", sim, row, *map(str, size), "--optimize", opt,
           "--path-time", str(path_time)]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               JAX_PLATFORMS="cpu")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": tail[:120]}


# -- the slicing row (under mpiexec) ----------------------------------------------------------
def slicing() -> None:
    from qsim_dist import library as lib
    from qsim_dist.backends import get_backend
    from qsim_dist.comm import Comm

    comm = Comm()
    c = lib.random_circuit(SLICING_QUBITS, SLICING_DEPTH, seed=3)
    # greedy: one deterministic path, so that every rank count contracts the same network
    backend = get_backend("tensor", comm=comm, optimize="greedy")
    comm.barrier()
    t0 = time.perf_counter()
    amp = backend.amplitudes(c, [0])[0]
    wall = time.perf_counter() - t0
    times = comm.allgather(backend.stats.contract_seconds)
    if comm.rank == 0:
        s = backend.stats
        print(json.dumps({"ranks": comm.size, "wall_s": round(wall, 4),
                          "contract_s_per_rank": [round(t, 4) for t in times],
                          "slices": s.slices, "work_ratio": s.flops / s.whole_flops,
                          "amplitude": [amp.real, amp.imag]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", nargs="+", choices=list(SIZES), default=list(SIZES))
    ap.add_argument("--sims", nargs="+", choices=SIMS, default=list(SIMS))
    ap.add_argument("--optimize", choices=("greedy", "cotengra"), default="greedy")
    ap.add_argument("--path-time", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tensor_peers.md"))
    ap.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--slicing", action="store_true")
    args = ap.parse_args()
    if args.slicing:
        return slicing()
    if args.child:
        sim, row, *size = args.child
        return child(sim, row, [int(x) for x in size], args.optimize, args.path_time)
    sizes = QUICK if args.quick else SIZES
    lines = [f"Tensor contraction against peers, {args.optimize} paths"
             + (f" (path time {args.path_time} s)" if args.optimize == "cotengra" else "")
             + f", OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}, one run.", "",
             "| row | simulator | time s | path s | cost (cotengra) | width | value | "
             "qsim_dist / peer |", "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for row in args.rows:
        for size in sizes[row]:
            name = {"qaoa": f"qaoa n={size[0]} p={size[1]}",
                    "grid": f"grid {size[0]}x{size[0]} d={size[1]}",
                    "ghz": f"ghz n={size[0]}"}[row]
            got = {sim: measure(args.python, sim, row, size, args.optimize, args.path_time,
                                args.timeout) for sim in args.sims}
            ours = got.get("qsim_dist", {}).get("time")
            for sim, r in got.items():
                if "error" in r:
                    line = f"| {name} | {sim} | {r['error']} | | | | | |"
                else:
                    v = r["value"][0]
                    ratio = f"{ours / r['time']:.2f}" if ours and sim != "qsim_dist" else ""
                    fmt = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
                    line = (f"| {name} | {sim} | {r['time']:.3f} | {fmt(r['path_time'], '.3f')} "
                            f"| {fmt(r['cost'], '.3g')} | {fmt(r['width'], '.1f')} | "
                            f"{v[0]:.6g}{v[1]:+.2g}i | {ratio} |")
                print(line, flush=True)
                lines.append(line)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
