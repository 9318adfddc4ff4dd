"""Peer benchmark: end-to-end entanglement over a linear repeater chain in SeQUeNCe.

Runs with SeQUeNCe (PyPI ``sequence`` >= 1.x, needs Python >= 3.12), in its own
virtual environment, not the project's:

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/seqvenv
    /tmp/seqvenv/bin/pip install sequence
    OMP_NUM_THREADS=1 /tmp/seqvenv/bin/python benchmarks/peers/sequence_chain.py \
        --repeaters 2 4 8 --pairs 10 --json /tmp/sequence_chain.json

For each K it builds the linear network  A - R1 - ... - RK - B  with SeQUeNCe's
``RouterNetTopo`` (a config dict in the same shape as SeQUeNCe's
``sequence.utils.nx_converter.generate_config`` / tutorial JSON files):
QuantumRouter nodes, one meet-in-the-middle BSMNode per link, quantum channels
router -> BSM, classical channels router <-> BSM plus all-to-all router
channels, static routing.

A ``RequestApp`` on A asks the network manager (``reserve_net_resource`` ->
``NetworkManager.request`` -> RSVP) for entanglement with B.  On approval the
standard SeQUeNCe resource-management rules are installed on every router of
the path: entanglement generation on every link, entanglement swapping at the
repeaters (SeQUeNCe's nested/binary swapping order), purification only if a
pair is below the target fidelity (by default the target is 0.5, so no
purification happens).  The reservation is a *stream*: while it is active the
reserved memories are re-generated and re-swapped over and over.  A delivered
end-to-end pair is a memory of A that becomes ENTANGLED with a memory of B
(``RequestApp.get_memory`` on A: ``remote_node == responder`` and fidelity >=
target); the app then frees the memory (state RAW) so the next pair can be
built.  The simulation is stopped (``tl.stop()``) when N pairs have been
delivered to A.

Timed: wall clock of ``tl.init()`` + the request + ``tl.run()``.  Topology
construction (``RouterNetTopo(config)``) is timed separately.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib.metadata import version as pkg_version

from sequence.app.request_app import RequestApp
from sequence.constants import (BARRET_KOK, BELL_DIAGONAL_STATE_FORMALISM,
                                KET_VECTOR_FORMALISM, SINGLE_HERALDED)
from sequence.entanglement_management.generation import (
    EntanglementGenerationA, EntanglementGenerationB)
from sequence.entanglement_management.swapping import (
    EntanglementSwappingA, EntanglementSwappingB)
from sequence.topology.router_net_topo import RouterNetTopo

PS_PER_S = 10 ** 12
LIGHT_PS_PER_M = 5_000          # ~2e8 m/s in fiber -> 5 ns/m = 5000 ps/m

# mode -> (entanglement-generation protocol, quantum-state formalism, BSM encoding)
MODES = {
    # SeQUeNCe's default stack: Barrett-Kok generation on single atoms,
    # ket-vector states, circuit-based swapping (fidelity is SeQUeNCe's
    # bookkeeping value f1*f2*degradation).
    "ket": (BARRET_KOK, KET_VECTOR_FORMALISM, "single_atom"),
    # the stack of SeQUeNCe's "3-minute" tutorial: single-heralded generation,
    # Bell-diagonal states, BDS swapping (fidelity is the BDS diagonal element).
    "bds": (SINGLE_HERALDED, BELL_DIAGONAL_STATE_FORMALISM, "single_heralded"),
}


def chain_names(k: int) -> list[str]:
    return ["A"] + [f"R{i}" for i in range(1, k + 1)] + ["B"]


def build_config(k: int, mode: str, memo_size: int, link_m: float, attenuation: float,
                 memo_fidelity: float, memo_efficiency: float, memo_frequency: float,
                 coherence_time: float, swap_degradation: float, stop_time_ps: int,
                 seed: int) -> dict:
    """RouterNetTopo config dict for A - R1 - ... - Rk - B."""
    _, formalism, encoding = MODES[mode]
    detector = {"efficiency": 1.0, "dark_count": 0, "time_resolution": 1,
                "count_rate": 1e12}
    bsm_key = "SingleAtomBSM" if encoding == "single_atom" else "SingleHeraldedBSM"
    router_template = {
        "MemoryArray": {"frequency": memo_frequency, "coherence_time": coherence_time,
                        "efficiency": memo_efficiency, "fidelity": memo_fidelity},
        "EntanglementSwapping": {"swapping_success_prob": 1.0},
    }
    if mode == "ket":
        router_template["EntanglementSwapping"]["swapping_degradation"] = swap_degradation
    templates = {
        "router_template": router_template,
        "bsm_template": {"encoding_type": encoding,
                         bsm_key: {"detectors": [dict(detector), dict(detector)]}},
    }
    names = chain_names(k)
    # end nodes need memo_size memories, repeaters 2*memo_size (one per side)
    nodes = []
    for i, name in enumerate(names):
        n_mem = memo_size if name in ("A", "B") else 2 * memo_size
        nodes.append({"name": name, "type": RouterNetTopo.QUANTUM_ROUTER,
                      "seed": seed + i, "memo_size": n_mem, "template": "router_template",
                      "gate_fidelity": 1.0, "measurement_fidelity": 1.0})
    qchannels, cchannels = [], []
    half = link_m / 2
    half_delay = int(half * LIGHT_PS_PER_M)
    for i in range(len(names) - 1):
        left, right = names[i], names[i + 1]
        bsm = f"BSM_{left}_{right}"
        nodes.append({"name": bsm, "type": RouterNetTopo.BSM_NODE, "seed": seed + 1000 + i,
                      "template": "bsm_template"})
        for r in (left, right):
            qchannels.append({"source": r, "destination": bsm, "distance": half,
                              "attenuation": attenuation})
            cchannels.append({"source": r, "destination": bsm, "distance": half,
                              "delay": half_delay})
            cchannels.append({"source": bsm, "destination": r, "distance": half,
                              "delay": half_delay})
    # all-to-all classical channels between routers (as SeQUeNCe's generate_config),
    # delay = fiber propagation time along the chain
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                cchannels.append({"source": a, "destination": b,
                                  "delay": int(abs(i - j) * link_m * LIGHT_PS_PER_M)})
    return {"templates": templates, "nodes": nodes, "qchannels": qchannels,
            "cchannels": cchannels, "stop_time": stop_time_ps, "formalism": formalism}


class CountingRequestApp(RequestApp):
    """RequestApp that records every delivered end-to-end pair on the initiator
    and stops the timeline once `target_pairs` pairs have been delivered."""

    def __init__(self, node, target_pairs: int | None = None):
        super().__init__(node)
        self.target_pairs = target_pairs
        self.fidelities: list[float] = []
        self.delivery_times_ps: list[int] = []

    def get_memory(self, info) -> None:
        before = self.memory_counter
        fid = info.fidelity
        super().get_memory(info)          # counts, records metrics, frees the memory (RAW)
        if self.memory_counter > before:  # a pair A<->B was delivered to the initiator
            self.fidelities.append(float(fid))
            self.delivery_times_ps.append(self.node.timeline.now())
            if self.target_pairs is not None and self.memory_counter >= self.target_pairs:
                self.node.timeline.stop()


def set_global_protocols(mode: str) -> None:
    gen, formalism, _ = MODES[mode]
    EntanglementGenerationA.set_global_type(gen)
    EntanglementGenerationB.set_global_type(gen)
    EntanglementSwappingA.set_formalism(formalism)
    EntanglementSwappingB.set_formalism(formalism)


def run_chain(k: int, args) -> dict:
    set_global_protocols(args.mode)
    start_ps = int(args.start_ms * 1e9)
    end_ps = start_ps + int(args.window_s * PS_PER_S)
    config = build_config(k, args.mode, args.memo_size, args.link_m, args.attenuation,
                          args.memo_fidelity, args.memo_efficiency, args.memo_frequency,
                          args.coherence_time, args.swap_degradation,
                          stop_time_ps=end_ps + PS_PER_S, seed=args.seed)

    t0 = time.perf_counter()
    topo = RouterNetTopo(config)
    tl = topo.get_timeline()
    routers = {r.name: r for r in topo.get_nodes_by_type(RouterNetTopo.QUANTUM_ROUTER)}
    apps = {name: CountingRequestApp(r) for name, r in routers.items()}
    t_build = time.perf_counter() - t0

    alice = apps["A"]
    alice.target_pairs = args.pairs
    t1 = time.perf_counter()
    tl.init()
    alice.start(responder="B", start_t=start_ps, end_t=end_ps,
                memo_size=args.memo_size, fidelity=args.target_fidelity)
    tl.run()
    wall = time.perf_counter() - t1

    pairs = alice.memory_counter
    fids = alice.fidelities
    sim_s = ((alice.delivery_times_ps[-1] - start_ps) / PS_PER_S) if pairs else None
    row = {
        "simulator": "sequence",
        "sequence_version": pkg_version("sequence"),
        "python": platform.python_version(),
        "mode": args.mode,
        "repeaters": k,
        "links": k + 1,
        "pairs_requested": args.pairs,
        "pairs_delivered": pairs,
        "reservation_approved": bool(alice.reservation_result),
        "build_s": t_build,
        "wall_s": wall,
        "s_per_pair": (wall / pairs) if pairs else None,
        "mean_fidelity": (sum(fids) / len(fids)) if fids else None,
        "min_fidelity": min(fids) if fids else None,
        "sim_time_s": sim_s,
        "events_executed": tl.run_counter,
        "memo_size": args.memo_size,
        "link_m": args.link_m,
        "memo_fidelity": args.memo_fidelity,
        "target_fidelity": args.target_fidelity,
    }
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeaters", type=int, nargs="+", default=[2, 4, 8],
                   help="number K of repeaters between A and B (K+1 links)")
    p.add_argument("--pairs", type=int, default=10, help="end-to-end pairs to deliver")
    p.add_argument("--json", default=None, help="write the list of rows here")
    p.add_argument("--mode", choices=sorted(MODES), default="ket",
                   help="ket: Barrett-Kok + ket vectors (SeQUeNCe default); "
                        "bds: single-heralded + Bell-diagonal states (3-minute tutorial)")
    p.add_argument("--memo-size", type=int, default=1,
                   help="memories reserved per end node (2x at each repeater); 1 = one "
                        "end-to-end pair in flight at a time")
    p.add_argument("--link-m", type=float, default=1000.0, help="fiber length per link (m)")
    p.add_argument("--attenuation", type=float, default=0.0002, help="fiber loss (dB/m)")
    p.add_argument("--memo-fidelity", type=float, default=0.99)
    p.add_argument("--memo-efficiency", type=float, default=1.0)
    p.add_argument("--memo-frequency", type=float, default=2e8)
    p.add_argument("--coherence-time", type=float, default=-1,
                   help="memory coherence time in s (-1: infinite)")
    p.add_argument("--swap-degradation", type=float, default=0.99,
                   help="ket mode: fidelity factor per swap (SeQUeNCe's default is 0.95)")
    p.add_argument("--target-fidelity", type=float, default=0.5,
                   help="reservation fidelity; pairs below it would be purified")
    p.add_argument("--start-ms", type=float, default=1.0,
                   help="simulated start of the reservation (ms); RSVP must finish before")
    p.add_argument("--window-s", type=float, default=10.0,
                   help="simulated length of the reservation window (s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    rows = []
    for k in args.repeaters:
        row = run_chain(k, args)
        rows.append(row)
        spp = f"{row['s_per_pair']:.4f}" if row["s_per_pair"] is not None else "n/a"
        fid = f"{row['mean_fidelity']:.4f}" if row["mean_fidelity"] is not None else "n/a"
        sim = f"{row['sim_time_s'] * 1e3:.3f} ms" if row["sim_time_s"] is not None else "n/a"
        print(f"sequence {row['sequence_version']} mode={row['mode']} K={k:3d} "
              f"build={row['build_s']:.3f}s wall={row['wall_s']:.3f}s "
              f"pairs={row['pairs_delivered']}/{args.pairs} s/pair={spp} "
              f"fid={fid} sim={sim} events={row['events_executed']}", flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    bad = [r["repeaters"] for r in rows if r["pairs_delivered"] < args.pairs]
    if bad:
        print(f"WARNING: fewer pairs than requested for K={bad}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
