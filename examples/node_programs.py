"""Teleportation written as two node programs, run on the modelled pair of QPUs.

    python examples/node_programs.py [--shots N] [--seed S] [--backend NAME]

Alice prepares a qubit, waits for her half of an EPR pair with Bob, Bell-measures and sends the
two bits; Bob waits for his half and for the bits, and corrects. The report's fidelity is Bob's
qubit against the state Alice prepared; with a Werner pair of fidelity F it is about (2F+1)/3,
a little lower here because the qubits decohere while they wait (see docs/network.md,
"Writing node programs").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qsim_dist.dqc import run_nodes
from qsim_dist.network import load_network
from qsim_dist.network.physics import teleport_fidelity

HERE = Path(__file__).resolve().parent


def alice(node):
    q = node.qubit()                          # a data qubit of A, in |0>
    node.gate("u3", q, params=(1.1, 0.4, -0.7))
    a = yield node.epr("B")                   # wait for A's half of a pair with B
    node.gate("cx", q, a)
    node.gate("h", q)
    z = node.measure(q)                       # bit handles: outcomes are never seen here
    x = node.measure(a)
    node.free(q)
    node.free(a)
    yield node.send("B", z, x)                # arrives after the link's latency


def bob(node):
    b = yield node.epr("A")
    z, x = yield node.recv("A")               # blocked until the bits arrive: b decoheres
    node.correct("x", b, bits=x)              # X when x = 1
    node.correct("z", b, bits=z)              # Z when z = 1
    return b                                  # the output qubit: the report's fidelity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="statevector")
    args = parser.parse_args()
    net = load_network(HERE / "network_pair.toml")
    report = run_nodes({"A": alice, "B": bob}, net, shots=args.shots, seed=args.seed,
                       backend=args.backend, name="teleport")
    f = net.link("A", "B").fidelity
    print(f"fidelity   {report.fidelity:.4f} +- {report.fidelity_stderr:.4f} "
          f"((2F+1)/3 = {teleport_fidelity(f):.4f} without decoherence)")
    print(f"EPR pairs  {report.epr_pairs:g}, classical bits {report.classical_bits:g}")
    print(f"makespan   {report.makespan_s * 1e6:.3f} us (mean of {report.schedules} schedules)")
    print(f"idle       " + ", ".join(f"{n}: {t * 1e6:.2f} us" for n, t in report.idle_s.items()))


if __name__ == "__main__":
    main()
