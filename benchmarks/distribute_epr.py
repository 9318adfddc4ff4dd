"""EPR pairs of the distribution compiler against the baseline (issue 6).

For every circuit x qubit count x node count x topology: compile with
``qsim_dist.network.distribute.compile_distribution`` and record the EPR pairs, classical bits,
remote gates, depth and estimated makespan of the compiled program and of the baseline (qubits
placed in order, one EPR pair per hop for every cross-node two-qubit gate in controlled form),
and the compile time. Networks: ``nodes`` equal compute nodes with ``ceil(n / nodes)`` data
qubits each (no spare data qubit, so no TeleData: TeleGate bursts only) and 2 communication
qubits, as a line, a ring or all-to-all; links 1 us per attempt, success 0.1, 5 us latency.

Circuits: ``qft`` (with its final swaps), ``qaoa`` (MaxCut on a random 3-regular graph, p = 2),
``adder`` (Cuccaro ripple-carry), ``random`` (layers of random one-qubit gates and random CX
matchings, depth 20), and MQT Bench circuits (target-independent level, ``mqt.bench``; skipped
when it is not installed): ``mqt-ghz``, ``mqt-graphstate``, ``mqt-qftentangled``,
``mqt-qpeexact``, ``mqt-wstate``, ``mqt-vqe_real_amp``, ``mqt-draper_qft_adder``.

    python benchmarks/distribute_epr.py                 # everything: CSV, plot, markdown table
    python benchmarks/distribute_epr.py --qubits 16 --nodes 4 --topologies ring

Writes ``benchmarks/results/distribute.csv``, ``benchmarks/results/distribute.png`` and
``benchmarks/results/distribute_compile.csv`` (compile time of 64 qubits x 2,000 gates).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from qsim_dist import library as L  # noqa: E402
from qsim_dist.network.distribute import compile_distribution, simple_network  # noqa: E402

FIELDS = ["circuit", "qubits", "gates", "nodes", "topology", "data_qubits_per_node",
          "epr_pairs", "baseline_epr_pairs", "epr_ratio", "telegates", "teleports",
          "remote_gates", "classical_bits", "baseline_classical_bits", "depth", "baseline_depth",
          "makespan_s", "baseline_makespan_s", "strategy", "compile_s"]


def _regular_graph(n: int, seed: int) -> list[tuple[int, int]]:
    import networkx as nx

    g = nx.random_regular_graph(3, n, seed=seed)
    return sorted((min(a, b), max(a, b)) for a, b in g.edges())


def _mqt(name: str, n: int):
    from mqt.bench import BenchmarkLevel, get_benchmark
    from qiskit import transpile

    from qsim_dist.io import from_qiskit

    qc = get_benchmark(name, BenchmarkLevel.INDEP, n)
    qc = qc.remove_final_measurements(inplace=False)
    qc = transpile(qc, basis_gates=["u3", "cx", "cp", "rzz", "h", "x", "rz", "ry", "rx", "p",
                                    "swap", "ccx", "cz"], optimization_level=0)
    c = from_qiskit(qc)
    c.name = f"mqt-{name}"
    return c


MQT = ["ghz", "graphstate", "qftentangled", "qpeexact", "wstate", "vqe_real_amp",
       "draper_qft_adder"]


def circuits(n: int, families: list[str]):
    for family in families:
        try:
            if family == "qft":
                yield family, L.qft(n)
            elif family == "qaoa":
                yield family, L.qaoa_maxcut(_regular_graph(n, 1), n, [0.4, 0.7], [0.3, 0.2])
            elif family == "adder":
                bits = (n - 2) // 2
                yield family, L.cuccaro_adder(bits, (1 << bits) // 3, (1 << bits) // 5)
            elif family == "random":
                yield family, L.random_circuit(n, 20, seed=n)
            elif family.startswith("mqt-"):
                yield family, _mqt(family[4:], n)
        except ImportError:
            print(f"  {family}: mqt.bench not installed, skipped", file=sys.stderr)
        except Exception as exc:  # a generator that does not exist at this size
            print(f"  {family} at {n} qubits: {type(exc).__name__}: {exc}", file=sys.stderr)


def run(args) -> list[dict]:
    rows = []
    for n in args.qubits:
        for family, circuit in circuits(n, args.circuits):
            for nodes in args.nodes:
                for topology in args.topologies:
                    cap = math.ceil(circuit.num_qubits / nodes)
                    network = simple_network(topology, nodes, cap)
                    t0 = time.perf_counter()
                    result = compile_distribution(circuit, network)
                    elapsed = time.perf_counter() - t0
                    result.program.validate(network)
                    cost, base = result.cost, result.baseline_cost
                    row = dict(circuit=family, qubits=circuit.num_qubits, gates=circuit.num_gates,
                               nodes=nodes, topology=topology, data_qubits_per_node=cap,
                               epr_pairs=cost.epr_pairs, baseline_epr_pairs=base.epr_pairs,
                               epr_ratio=round(result.epr_ratio, 4), telegates=cost.telegates,
                               teleports=cost.teleports, remote_gates=cost.remote_gates,
                               classical_bits=cost.classical_bits,
                               baseline_classical_bits=base.classical_bits, depth=cost.depth,
                               baseline_depth=base.depth,
                               makespan_s=f"{result.makespan:.4g}",
                               baseline_makespan_s=f"{result.baseline_makespan:.4g}",
                               strategy=result.strategy, compile_s=round(elapsed, 3))
                    rows.append(row)
                    print(f"{family:18s} n={circuit.num_qubits:3d} {nodes} nodes {topology:5s} "
                          f"EPR {cost.epr_pairs:5d} / baseline {base.epr_pairs:5d} "
                          f"= {result.epr_ratio:.3f}  ({result.strategy}, {elapsed:.2f} s)",
                          flush=True)
    return rows


def compile_times(path: str) -> list[dict]:
    """The compile-time goal: 64 qubits x 2,000 gates (every table gate, and CX layers)."""
    rows = []
    for name, circuit in (("random-all-gates", L.random_gate_circuit(64, 2000, seed=1)),
                          ("random-cx-layers", L.random_circuit(64, 21, seed=1))):
        circuit.instructions = circuit.instructions[:2000]
        for nodes in (2, 4, 8):
            network = simple_network("ring", nodes, 64 // nodes + 1)
            t0 = time.perf_counter()
            result = compile_distribution(circuit, network)
            elapsed = time.perf_counter() - t0
            rows.append(dict(circuit=name, qubits=64, gates=len(circuit), nodes=nodes,
                             topology="ring", data_qubits_per_node=64 // nodes + 1,
                             epr_pairs=result.cost.epr_pairs,
                             baseline_epr_pairs=result.baseline_cost.epr_pairs,
                             epr_ratio=round(result.epr_ratio, 4),
                             telegates=result.cost.telegates, teleports=result.cost.teleports,
                             remote_gates=result.cost.remote_gates,
                             classical_bits=result.cost.classical_bits,
                             baseline_classical_bits=result.baseline_cost.classical_bits,
                             depth=result.cost.depth, baseline_depth=result.baseline_cost.depth,
                             makespan_s=f"{result.makespan:.4g}",
                             baseline_makespan_s=f"{result.baseline_makespan:.4g}",
                             strategy=result.strategy, compile_s=round(elapsed, 3)))
            print(f"compile time {name} 64 x {len(circuit)} over {nodes} nodes (ring, one spare "
                  f"data qubit each): {elapsed:.2f} s, EPR {result.cost.epr_pairs} / "
                  f"{result.baseline_cost.epr_pairs}", flush=True)
    write_csv(rows, path)
    return rows


def write_csv(rows: list[dict], path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topologies = sorted({r["topology"] for r in rows})
    families = list(dict.fromkeys(r["circuit"] for r in rows))
    node_counts = sorted({r["nodes"] for r in rows})
    fig, axes = plt.subplots(1, len(topologies), figsize=(5.5 * len(topologies), 4.2),
                             sharey=True, squeeze=False)
    width = 0.8 / len(node_counts)
    for ax, topo in zip(axes[0], topologies):
        for j, k in enumerate(node_counts):
            vals = []
            for fam in families:
                sel = [r["epr_ratio"] for r in rows
                       if r["topology"] == topo and r["nodes"] == k and r["circuit"] == fam]
                vals.append(float(np.mean(sel)) if sel else np.nan)
            ax.bar(np.arange(len(families)) + (j - (len(node_counts) - 1) / 2) * width, vals,
                   width, label=f"{k} nodes")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(0.35, color="r", lw=0.8, ls="--")
        ax.set_xticks(range(len(families)))
        ax.set_xticklabels(families, rotation=45, ha="right")
        ax.set_title(f"{topo} network")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("EPR pairs / baseline (mean, 16-64 q)")
    axes[0][0].legend()
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def markdown(rows: list[dict]) -> str:
    lines = ["| circuit | qubits | nodes | topology | EPR pairs | baseline | ratio | compile (s) |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['circuit']} | {r['qubits']} | {r['nodes']} | {r['topology']} | "
                     f"{r['epr_pairs']} | {r['baseline_epr_pairs']} | {r['epr_ratio']:.3f} | "
                     f"{r['compile_s']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--qubits", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--topologies", nargs="+", default=["line", "ring", "all"])
    p.add_argument("--circuits", nargs="+",
                   default=["qft", "qaoa", "adder", "random"] + [f"mqt-{m}" for m in MQT])
    p.add_argument("--csv", default=os.path.join(ROOT, "benchmarks", "results", "distribute.csv"))
    p.add_argument("--png", default=os.path.join(ROOT, "benchmarks", "results", "distribute.png"))
    p.add_argument("--markdown", action="store_true", help="print every row as a markdown table")
    p.add_argument("--no-compile-time", action="store_true",
                   help="skip the 64 x 2,000 compile-time runs")
    args = p.parse_args(argv)
    if not args.no_compile_time:
        compile_times(args.csv.replace(".csv", "_compile.csv"))
    rows = run(args)
    write_csv(rows, args.csv)
    try:
        plot(rows, args.png)
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
    ratios = [r["epr_ratio"] for r in rows]
    worst = max(rows, key=lambda r: r["epr_ratio"])
    print(f"\n{len(rows)} compilations; EPR ratio mean {np.mean(ratios):.3f}, "
          f"worst {worst['epr_ratio']:.3f} ({worst['circuit']}, {worst['qubits']} qubits, "
          f"{worst['nodes']} nodes, {worst['topology']}); max compile "
          f"{max(r['compile_s'] for r in rows):.2f} s")
    for fam in dict.fromkeys(r["circuit"] for r in rows):
        sel = [r["epr_ratio"] for r in rows if r["circuit"] == fam]
        print(f"  {fam:18s} mean ratio {np.mean(sel):.3f}  (min {min(sel):.3f}, "
              f"max {max(sel):.3f}, {len(sel)} runs)")
    if args.markdown:
        print(markdown(rows))
    print(f"wrote {args.csv} and {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
