"""Traffic of the distributed backend's layout planner against per-gate swap-in/swap-out.

    python benchmarks/mpi_traffic.py              # qft and random, n = 20..26, P = 2, 4, 8
    python benchmarks/mpi_traffic.py --qubits 24 --ranks 4 --csv benchmarks/out/mpi_traffic.csv

Count-only: no state is allocated and no MPI is started. Both columns come from plans:

- ``planner``: SWAP gates turned into renaming, the other gates fused as the distributed backend
  fuses them (the CPU set's limits by default), then :func:`qsim_dist.passes.layout.plan_swaps` from the
  identity layout; each exchange of ``m`` bit swaps sends ``P * shard * (1 - 2^-m)`` bytes
  (:func:`~qsim_dist.passes.layout.exchange_bytes`, the formula that the backend's ``bytes_sent``
  counter is tested against in tests/mpi);
- ``per-gate``: the baseline of issue 3, gate by gate without fusion: every qubit a gate mixes
  that sits on a global bit is swapped in before the gate and back after it, each swap its own
  exchange moving half of every shard.

Circuits come from benchmarks/circuits.py (QFT with its input layer; layered random circuit).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import circuits  # noqa: E402

from qsim_dist.gates import gate_spec  # noqa: E402
from qsim_dist.passes.fusion import fuse  # noqa: E402
from qsim_dist.passes.layout import (Layout, exchange_bytes, mixing_qubits,  # noqa: E402
                                     plan_swaps, relabel_swaps)

ITEMSIZE = {"single": 8, "double": 16}


def planner_traffic(gates, n: int, g: int, shard: int, max_dense: int) -> tuple[int, int]:
    """(exchanges, bytes) of the backend's plan."""
    blocks = fuse(relabel_swaps(gates, n)[0], min(max_dense, n - g), 12)
    plan, _ = plan_swaps(Layout(n, g), [mixing_qubits(b.matrix, b.qubits, b.diagonal)
                                        for b in blocks])
    return sum(1 for p in plan if p), sum(exchange_bytes(len(p), shard, 1 << g) for p in plan)


def per_gate_traffic(gates, n: int, g: int, shard: int) -> tuple[int, int]:
    """(exchanges, bytes) of swap-in before and swap-out after every gate, per global qubit."""
    swaps = 0
    for inst in gates:
        spec = gate_spec(inst.name)
        mixed = mixing_qubits(spec.matrix(inst.params), inst.qubits, spec.diagonal)
        swaps += 2 * sum(1 for q in mixed if q >= n - g)
    return swaps, swaps * exchange_bytes(1, shard, 1 << g)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuits", nargs="+", default=list(circuits.CIRCUITS),
                    choices=circuits.CIRCUITS)
    ap.add_argument("--qubits", nargs="+", type=int, default=[20, 22, 24, 26])
    ap.add_argument("--ranks", nargs="+", type=int, default=[2, 4, 8])
    ap.add_argument("--depth", type=int, default=circuits.DEFAULT_DEPTH)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--precision", choices=list(ITEMSIZE), default="single")
    ap.add_argument("--max-dense", type=int, default=3, help="fusion limit (default 3)")
    ap.add_argument("--csv", help="also write the table to this CSV file")
    args = ap.parse_args(argv)

    rows = []
    for name in args.circuits:
        for n in args.qubits:
            c = circuits.qft(n) if name == "qft" else circuits.random_circuit(n, args.depth,
                                                                                 args.seed)
            gates = [i for i in c if i.is_gate]
            for p in args.ranks:
                g = p.bit_length() - 1
                shard = ITEMSIZE[args.precision] << (n - g)
                ex, sent = planner_traffic(gates, n, g, shard, args.max_dense)
                bex, bsent = per_gate_traffic(gates, n, g, shard)
                rows.append({"circuit": name, "qubits": n, "ranks": p, "gates": len(gates),
                             "exchanges": ex, "bytes_sent": sent, "per_gate_exchanges": bex,
                             "per_gate_bytes_sent": bsent,
                             "ratio": round(sent / bsent, 4) if bsent else 0.0})
    head = ("circuit", "qubits", "ranks", "gates", "exchanges", "bytes_sent", "per_gate_exchanges",
            "per_gate_bytes_sent", "ratio")
    widths = [max(len(h), *(len(_fmt(r[h])) for r in rows)) for h in head]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(_fmt(r[h]).rjust(w) for h, w in zip(head, widths)) + " |")
    if args.csv:
        os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=head)
            w.writeheader()
            w.writerows(rows)
    return 0


def _fmt(v) -> str:
    if isinstance(v, int) and v >= 1 << 20:
        from qsim_dist.comm import format_bytes

        return format_bytes(v)
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
