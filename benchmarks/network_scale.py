"""Networks of many modules on ``modulenet`` (one tensor per module) and, where it fits, on the
whole-machine ``statevector``; SeQUeNCe on the same repeater chains, all in one run.

    python benchmarks/network_scale.py                      # every row (about an hour, 2 cores)
    python benchmarks/network_scale.py --quick              # small sizes (a few minutes)
    python benchmarks/network_scale.py --rows chain --sizes 8 64 --shots 1000
    python benchmarks/network_scale.py --sequence /tmp/seqvenv/bin/python   # with the peer

Rows (each measured in a fresh child process, so that its peak memory is its own):

- ``chain``: teleportation over A - R1 ... Rk - B, node programs
  (:func:`qsim_dist.network.workloads.repeater_chain`, Werner links F = 0.99); its fidelity
  against the analytic (2F'+1)/3;
- ``ghz-line`` / ``ghz-star``: a GHZ state over K modules made by remote CX gates
  (:func:`~qsim_dist.network.workloads.ghz_modules`), ideal links, fidelity on the tensors;
- ``random``: ``library.random_circuit`` on K modules of 4 data qubits (depth 4, or
  ``--random-depth``; its two-qubit gates pair any qubits, so the bonds grow fast), placed and
  compiled by ``distribute`` on a line of K modules (F = 0.99 links), 20 shots;
- ``fewcuts``: 16 modules of 8 data qubits (128 qubits): random local layers in every module
  and one CX between neighbouring modules per layer, compiled by ``distribute``.

Each row prints and records: wall time of ``run_nodes`` / ``run_program`` (lowering included),
time per shot, peak RSS of the child over its RSS before the run (measured) against the module
tensors of one trajectory (``state_stats.tensor_bytes``, predicted: what the state holds), the
largest bond, the fidelity, and the backend ``auto`` picks. With ``--statevector-max W`` the
same row also runs on ``statevector`` when its live width is at most W qubits, and the ratio is
printed. With ``--sequence PYTHON`` the chain rows also run SeQUeNCe
(``benchmarks/peers/sequence_chain.py`` in that interpreter's environment) and the ratio of
time per end-to-end pair is printed. Results: ``benchmarks/results/network_scale.csv`` and
``.md``, and a plot with ``--plot``.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

FULL = {"chain": [8, 64, 256, 1000], "ghz-line": [16, 64, 256], "ghz-star": [16, 64, 256],
        "random": [4, 8, 16], "fewcuts": [16]}
QUICK = {"chain": [4, 8, 16], "ghz-line": [8, 16], "ghz-star": [8, 16], "random": [2, 4],
         "fewcuts": [4]}
SHOTS = {"chain": 1000, "ghz-line": 1000, "ghz-star": 1000, "random": 20, "fewcuts": 100}


RANDOM_DEPTH = int(os.environ.get("NETWORK_SCALE_RANDOM_DEPTH", "4"))


def _workload(row: str, size: int):
    """(kind, args) of a row: ("nodes", (network, programs)) or ("program", (program, net))."""
    import numpy as np

    from qsim_dist import library as lib
    from qsim_dist.circuit import Circuit
    from qsim_dist.network.distribute import distribute, simple_network
    from qsim_dist.network.workloads import ghz_modules, repeater_chain

    if row == "chain":
        return "nodes", repeater_chain(size, fidelity=0.99)
    if row.startswith("ghz-"):
        return "nodes", ghz_modules(size, row[4:])
    if row == "random":
        net = simple_network("line", size, 4, fidelity=0.99, success_probability=1.0)
        circuit = lib.random_circuit(4 * size, RANDOM_DEPTH, seed=1)
        return "program", (distribute(circuit, net), net)
    if row == "fewcuts":
        d, layers = 8, 3
        net = simple_network("line", size, d, fidelity=0.99, success_probability=1.0)
        rng = np.random.default_rng(1)
        c = Circuit(size * d, 0, name=f"fewcuts{size}x{d}")
        for _ in range(layers):
            for m in range(size):
                block = lib.random_circuit(d, 1, seed=int(rng.integers(1 << 30)))
                for inst in block:
                    c.add(inst.name, *[m * d + q for q in inst.qubits], params=inst.params)
            for m in range(size - 1):   # one cut gate per neighbouring pair and layer
                c.add("cx", m * d + d - 1, (m + 1) * d)
        placement = [f"N{q // d}" for q in range(size * d)]
        return "program", (distribute(c, net, placement=placement), net)
    raise SystemExit(f"unknown row {row!r}")


def child(row: str, size: int, shots: int, backend: str) -> dict:
    """One measurement in this process (see the module docstring)."""
    from qsim_dist.dqc import run_nodes, run_program
    from qsim_dist.network import physics

    kind, (a, b) = _workload(row, size)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    if kind == "nodes":
        report = run_nodes(b, a, shots=shots, seed=1, backend=backend)
    else:
        report = run_program(a, b, shots=shots, seed=1, backend=backend)
    wall = time.perf_counter() - t
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"row": row, "size": size, "shots": shots, "backend": report.backend,
           "choice": report.backend_choice, "wall_s": wall, "per_shot_s": wall / max(shots, 1),
           "physical_qubits": report.physical_qubits, "fidelity": report.fidelity,
           "fidelity_stderr": report.fidelity_stderr,
           "rss_growth_mib": (rss1 - rss0) / 1024, "peak_rss_mib": rss1 / 1024,
           "largest_bond": report.state_stats.get("largest_bond"),
           "tensor_bytes": report.state_stats.get("tensor_bytes")}
    if row == "chain":
        out["analytic_fidelity"] = physics.teleport_fidelity(
            physics.chain_fidelity([0.99] * (size + 1)))
    return out


def _run_child(row, size, shots, backend, timeout) -> dict | None:
    cmd = [sys.executable, __file__, "--child", row, str(size), str(shots), backend]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        print(f"  {row} {size} {backend}: over {timeout} s, stopped", flush=True)
        return None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {row} {size} {backend}: failed: {last}", flush=True)
        return {"row": row, "size": size, "backend": backend, "error": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _width(row: str, size: int) -> int:
    """The live width of the row's first lowering (what a dense state would hold)."""
    import numpy as np

    from qsim_dist.backends.planning import plan_run
    from qsim_dist.network.lowering import lower
    from qsim_dist.network.nodes import lower_nodes

    kind, (a, b) = _workload(row, size)
    rng = np.random.default_rng(0)
    low = lower_nodes(b, a, rng=rng) if kind == "nodes" else lower(a, b, rng=rng)
    return plan_run(low.circuit, low.noisy, compact=True).width


def _sequence(python: str, sizes, pairs: int, timeout: int) -> dict[int, dict]:
    """SeQUeNCe's seconds per end-to-end pair for each chain size, each size in its own process
    with its own ``timeout``: one that does not deliver ``pairs`` pairs in time is recorded as
    the lower bound timeout / pairs (``"bound": True``)."""
    script = HERE / "peers" / "sequence_chain.py"
    out = HERE / "out" / "sequence_chain.json"
    out.parent.mkdir(exist_ok=True)
    found = {}
    for size in sizes:
        cmd = [python, str(script), "--repeaters", str(size), "--pairs", str(pairs),
               "--json", str(out)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"  SeQUeNCe k={size}: {pairs} pairs not delivered in {timeout} s, stopped",
                  flush=True)
            found[size] = {"s_per_pair": timeout / pairs, "bound": True}
            continue
        if done.returncode != 0:
            print(f"  SeQUeNCe k={size} failed:",
                  (done.stderr.strip().splitlines() or ["?"])[-1], flush=True)
            continue
        found.update({int(r["repeaters"]): r for r in json.loads(out.read_text())})
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--rows", nargs="+", choices=list(FULL), default=list(FULL))
    ap.add_argument("--sizes", nargs="+", type=int, help="sizes for every row given")
    ap.add_argument("--shots", type=int, help="shots for every row (default per row)")
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--statevector-max", type=int, default=20,
                    help="also run statevector where the live width is at most this")
    ap.add_argument("--sequence", metavar="PYTHON", help="run SeQUeNCe with this interpreter")
    ap.add_argument("--sequence-pairs", type=int, default=100)
    ap.add_argument("--sequence-timeout", type=int, default=600,
                    help="per chain size, seconds (a size over it is a lower bound)")
    ap.add_argument("--timeout", type=int, default=3600, help="per child, seconds")
    ap.add_argument("--random-depth", type=int, default=RANDOM_DEPTH,
                    help="layers of the random row's circuit (default 4)")
    ap.add_argument("--out", default=str(HERE / "results" / "network_scale"))
    ap.add_argument("--plot", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        row, size, shots, backend = args.child
        print(json.dumps(child(row, int(size), int(shots), backend)))
        return 0
    os.environ["NETWORK_SCALE_RANDOM_DEPTH"] = str(args.random_depth)   # for the children
    table = QUICK if args.quick else FULL
    rows = []
    for row in args.rows:
        sizes = args.sizes or table[row]
        shots = args.shots or SHOTS[row]
        peer = _sequence(args.sequence, sizes, args.sequence_pairs, args.sequence_timeout) \
            if args.sequence and row == "chain" else {}
        for size in sizes:
            width = _width(row, size)
            r = _run_child(row, size, shots, "modulenet", args.timeout)
            if r is None or "error" in r:
                rows.append(r or {"row": row, "size": size, "error": "timeout"})
                continue
            r["width"] = width
            auto = "statevector" if width <= 14 else "modulenet"
            r["auto_picks"] = auto
            if width <= args.statevector_max:
                d = _run_child(row, size, shots, "statevector", args.timeout)
                if d and "error" not in d:
                    r["statevector_s"] = d["wall_s"]
                    r["modulenet_over_statevector"] = r["wall_s"] / d["wall_s"]
            if size in peer:
                p = peer[size]
                r["sequence_s_per_pair"] = p["s_per_pair"]
                r["sequence_bound"] = bool(p.get("bound"))   # SeQUeNCe stopped: at least this
                r["sequence_version"] = p.get("sequence_version")
                r["speedup_vs_sequence"] = p["s_per_pair"] / r["per_shot_s"]
            measured = r["rss_growth_mib"] * 2 ** 20
            r["memory_measured_over_tensors"] = measured / r["tensor_bytes"] \
                if r.get("tensor_bytes") else None
            rows.append(r)
            extra = ""
            if "statevector_s" in r:
                extra += f", statevector {r['statevector_s']:.2f} s " \
                         f"(modulenet/statevector {r['modulenet_over_statevector']:.2f})"
            if "speedup_vs_sequence" in r:
                more = "> " if r["sequence_bound"] else ""
                extra += f", SeQUeNCe {more}{r['sequence_s_per_pair'] * 1e3:.1f} ms/pair " \
                         f"({more}{r['speedup_vs_sequence']:.1f}x)"
            fid = f"{r['fidelity']:.4f}+-{r['fidelity_stderr']:.4f}" \
                if r["fidelity"] is not None else "n/a"
            print(f"{row:9s} {size:5d}: {r['wall_s']:8.2f} s, {r['per_shot_s'] * 1e3:8.2f} ms/shot,"
                  f" width {width}, bond {r['largest_bond']}, tensors {r['tensor_bytes']} B,"
                  f" rss +{r['rss_growth_mib']:.0f} MiB, fidelity {fid}{extra}", flush=True)
    _write(rows, Path(args.out))
    if args.plot:
        _plot(rows, Path(args.out).with_suffix(".png"))
    return 0


COLUMNS = ["row", "size", "shots", "physical_qubits", "width", "auto_picks", "wall_s",
           "per_shot_s", "statevector_s", "modulenet_over_statevector", "sequence_s_per_pair",
           "sequence_bound", "speedup_vs_sequence", "largest_bond", "tensor_bytes", "rss_growth_mib",
           "peak_rss_mib", "memory_measured_over_tensors", "fidelity", "fidelity_stderr",
           "analytic_fidelity", "error"]


def _write(rows, base: Path) -> None:
    base.parent.mkdir(parents=True, exist_ok=True)
    with open(base.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    def fmt(v):
        if v is None or v == "":
            return ""
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    with open(base.with_suffix(".md"), "w") as fh:
        fh.write("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n")
        for r in rows:
            fh.write("| " + " | ".join(fmt(r.get(c)) for c in COLUMNS) + " |\n")
    print(f"wrote {base.with_suffix('.csv')} and .md")


def _plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for row in dict.fromkeys(r["row"] for r in rows):
        pts = [(r["size"], r["per_shot_s"]) for r in rows if r["row"] == row and "wall_s" in r]
        if pts:
            ax.loglog(*zip(*pts), "o-", label=f"{row} (modulenet)")
        sv = [(r["size"], r["statevector_s"] / r["shots"]) for r in rows
              if r["row"] == row and "statevector_s" in r]
        if sv:
            ax.loglog(*zip(*sv), "x--", label=f"{row} (statevector)")
        peer = [(r["size"], r["sequence_s_per_pair"]) for r in rows
                if r["row"] == row and "sequence_s_per_pair" in r]
        if peer:
            ax.loglog(*zip(*peer), "s:", label="chain (SeQUeNCe, per pair)")
    ax.set_xlabel("repeaters k / modules K")
    ax.set_ylabel("seconds per shot")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
