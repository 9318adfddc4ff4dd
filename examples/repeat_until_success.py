"""A repeat-until-success remote rotation: module A, which has non-Clifford gates, gives a T gate
(Rz(pi/4)) to a qubit of module B, which has only Cliffords.

    python examples/repeat_until_success.py [--shots N] [--seed S] [--backend NAME]

Each attempt shares an ancilla of A, cos(a)|0> + i sin(a)|1>, into B (one EPR pair), where it
controls a CZ on B's qubit; A measures the ancilla in the X basis and reads the outcome. Outcome
0 applied exp(iaZ), outcome 1 exp(-iaZ): A then tells B to wait for another attempt with twice
the angle, which undoes the miss. The program branches on what it measured, so it runs online,
shot by shot. Over ideal links the fidelity is 1 and the attempts are geometric (mean 2); over
the example network's noisy link each attempt costs fidelity. Expected output (default
arguments): examples/expected/repeat_until_success.txt.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from qsim_dist.dqc import run_nodes
from qsim_dist.network import load_network
from qsim_dist.network.gate_protocols import remote_rz_source, remote_rz_target

HERE = Path(__file__).resolve().parent
THETA = math.pi / 4          # a T gate, up to a global phase
PREPARE = (1.1, 0.4, -0.7)   # u3 angles of B's input qubit


def server(node):
    yield from remote_rz_source(node, "B", THETA)


def client(node):
    q = node.qubit()
    node.gate("u3", q, params=PREPARE)
    return (yield from remote_rz_target(node, q, "A"))


def target_state() -> np.ndarray:
    t, p, l = PREPARE
    psi = np.array([math.cos(t / 2), np.exp(1j * p) * math.sin(t / 2)])
    return np.diag([np.exp(-0.5j * THETA), np.exp(0.5j * THETA)]) @ psi


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="statevector")
    args = parser.parse_args(argv)
    out = {}
    for label, ideal in (("ideal links", True), ("network_pair.toml", False)):
        net = load_network(HERE / "network_pair.toml")
        report = run_nodes({"A": server, "B": client}, net, shots=args.shots, seed=args.seed,
                           backend=args.backend, ideal=ideal, target=target_state(),
                           name="rus-t")
        spread = report.distribution["epr_pairs"]
        print(f"{label:18s} fidelity {report.fidelity:.4f} +- {report.fidelity_stderr:.4f}  "
              f"attempts mean {report.epr_pairs:.2f} (analytic 2), max {spread['max']:g}  "
              f"makespan p50 {report.distribution['makespan_s']['p50'] * 1e6:.1f} us"
              f"  [{report.execution}]")
        out[label] = report
    return out


if __name__ == "__main__":
    main()
