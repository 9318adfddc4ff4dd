"""Online node programs: the interpreter's rate, online against lowered, and a 64-repeater chain
with gate-level purification and retries (issue 14's benchmark figures).

    OMP_NUM_THREADS=1 JAX_PLATFORMS=cpu python benchmarks/online_protocols.py \
        [--repeaters 64] [--shots 1000] [--sequence /tmp/seq_purify.json] \
        [--out benchmarks/results/online_protocols.md]

1. Interpreter: one node applies a long run of local gates to one qubit (a) recorded as a
   schedule (``lower_nodes``), (b) online, reading an outcome after every 16 gates; node
   operations per second, the state kept small (one qubit) so the figure is the interpreter's.
2. Online and lowered on the same physics: teleportation over ``examples/network_pair.toml``
   with the corrections as classically controlled gates (lowered) and as Python branches on read
   outcomes (online): fidelities and their difference in combined standard errors.
3. ``network.workloads.purified_chain(k)`` online on ``modulenet``: every link distilled by one
   DEJMPS round with retries, then swapped; time per end-to-end pair, fidelity against the
   analytic composition. ``--sequence`` adds SeQUeNCe's rows (``peers/sequence_chain.py
   --json``, run in its own environment before) to the table.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import reduce
from pathlib import Path

import numpy as np

from qsim_dist.dqc import run_nodes
from qsim_dist.network import load_network, network_from_dict
from qsim_dist.network.nodes import lower_nodes
from qsim_dist.network.physics import purification_rounds, swapped_weights
from qsim_dist.network.workloads import purified_chain

ROOT = Path(__file__).resolve().parent.parent
PHI_PLUS = np.array([1, 0, 0, 1]) / np.sqrt(2)


def interpreter_rate(gates: int = 20_000) -> dict:
    net = network_from_dict({"nodes": {"A": {"data_qubits": 1}, "B": {"data_qubits": 1}},
                             "links": [{"between": ["A", "B"]}]})

    def program(read: bool):
        def run(node):
            q = node.qubit()
            for i in range(gates):
                node.gate("h" if i % 2 else "s", q)
                if read and i % 16 == 15:
                    yield node.read(node.measure(q))
            yield node.wait(0)
        return run

    t = time.perf_counter()
    lower_nodes({"A": program(False)}, net)
    lowered = time.perf_counter() - t
    t = time.perf_counter()
    run_nodes({"A": program(True)}, net, shots=1, seed=1, backend="statevector")
    online = time.perf_counter() - t
    ops_online = gates + 2 * (gates // 16)
    return {"gates": gates, "lowered_ops_per_s": gates / lowered,
            "online_ops_per_s": ops_online / online}


def _teleport(read: bool):
    def alice(node):
        q = node.qubit()
        node.gate("u3", q, params=(1.1, 0.4, -0.7))
        a = yield node.epr("B")
        node.gate("cx", q, a)
        node.gate("h", q)
        z, x = node.measure(q), node.measure(a)
        node.free(q)
        node.free(a)
        yield node.send("B", z, x)

    def bob(node):
        b = yield node.epr("A")
        msg = yield node.recv("A")
        if read:
            z, x = yield node.read(msg)
            if x:
                node.gate("x", b)
            if z:
                node.gate("z", b)
        else:
            node.correct("x", b, bits=msg[1])
            node.correct("z", b, bits=msg[0])
        return b

    return {"A": alice, "B": bob}


def online_vs_lowered(shots: int) -> dict:
    net = load_network(ROOT / "examples" / "network_pair.toml")
    out = {}
    for label, read in (("lowered", False), ("online", True)):
        t = time.perf_counter()
        r = run_nodes(_teleport(read), net, shots=shots, seed=3, backend="statevector",
                      schedules=shots)
        out[label] = {"execution": r.execution, "fidelity": r.fidelity,
                      "stderr": r.fidelity_stderr, "makespan_s": r.makespan_s,
                      "wall_s": time.perf_counter() - t}
    a, b = out["lowered"], out["online"]
    out["sigmas"] = abs(a["fidelity"] - b["fidelity"]) / np.hypot(a["stderr"], b["stderr"])
    return out


def chain(repeaters: int, shots: int, fidelity: float = 0.95) -> dict:
    net, programs = purified_chain(repeaters, fidelity)
    t = time.perf_counter()
    r = run_nodes(programs, net, shots=shots, seed=1, backend="modulenet", target=PHI_PLUS)
    wall = time.perf_counter() - t
    weights = purification_rounds(fidelity, "dejmps", 1)[0][1]
    return {"repeaters": repeaters, "shots": shots, "wall_s": wall, "s_per_pair": wall / shots,
            "fidelity": r.fidelity, "stderr": r.fidelity_stderr, "execution": r.execution,
            "analytic": reduce(swapped_weights, [weights] * (repeaters + 1))[0],
            "raw_pairs_per_pair": r.epr_pairs}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeaters", type=int, default=64)
    p.add_argument("--shots", type=int, default=1000)
    p.add_argument("--sequence", default=None, help="SeQUeNCe rows (JSON of sequence_chain.py)")
    p.add_argument("--out", default=None, help="write the markdown table here")
    args = p.parse_args(argv)
    rate = interpreter_rate()
    print("interpreter", json.dumps(rate), flush=True)
    agree = online_vs_lowered(1000)
    print("online vs lowered", json.dumps(agree), flush=True)
    row = chain(args.repeaters, args.shots)
    print("purified chain", json.dumps(row), flush=True)
    peers = json.loads(Path(args.sequence).read_text()) if args.sequence else []
    lines = [
        "# Online node programs (benchmarks/online_protocols.py)", "",
        f"Interpreter: {rate['lowered_ops_per_s']:,.0f} node operations/s recorded as a "
        f"schedule, {rate['online_ops_per_s']:,.0f}/s online (a read every 16 gates, one "
        "qubit).", "",
        "| teleport over network_pair.toml, 1000 shots | fidelity | wall s |", "|---|---|---|",
        *[f"| {k} | {v['fidelity']:.4f} +- {v['stderr']:.4f} | {v['wall_s']:.2f} |"
          for k, v in agree.items() if k != "sigmas"],
        f"| difference | {agree['sigmas']:.2f} sigma | |", "",
        "| repeater chain, gate-level DEJMPS + retries on every link | repeaters | shots | s per "
        "end-to-end pair | fidelity (analytic) |", "|---|---|---|---|---|",
        f"| qsim_dist modulenet, online | {row['repeaters']} | {row['shots']} | "
        f"{row['s_per_pair']:.4f} | {row['fidelity']:.4f} +- {row['stderr']:.4f} "
        f"({row['analytic']:.4f}) |",
        *[f"| SeQUeNCe {r['sequence_version']} ({r['mode']}, purification below target "
          f"{r['target_fidelity']}) | {r['repeaters']} | {r['pairs_delivered']} of "
          f"{r['pairs_requested']} pairs in {r['wall_s']:.0f} s | "
          + (f"{r['s_per_pair']:.4f}" if r['s_per_pair'] else f"more than {r['wall_s']:.0f}")
          + " | |" for r in peers], ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
