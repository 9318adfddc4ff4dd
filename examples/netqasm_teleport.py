"""A SquidASM-style NetQASM application — quantum teleportation — run unchanged on qsim_dist.

    python examples/netqasm_teleport.py [--shots N] [--seed S]

alice teleports rot_y(1.1)|0> to bob over one EPR pair and sends her two outcomes with a
Socket; bob corrects, undoes the rotation and measures: a perfect teleport gives 0. The network
is a SquidASM configuration (generic qdevices, a depolarising link of fidelity 0.9, a
classical delay of 10 us) read by network_from_squidasm. Over a Werner pair of fidelity F the
teleported fidelity is (2F + 1)/3, here with a little idle decoherence on top (T2 = 1 ms
while bob waits for alice's message). Expected output (default arguments):
examples/expected/netqasm_teleport.txt.
"""

from __future__ import annotations

import argparse
import math

# the backend first: it makes netqasm.sdk.external's NetQASMConnection and Socket qsim_dist's
from qsim_dist.netqasm_backend import network_from_squidasm, run_netqasm

from netqasm.sdk import EPRSocket, Qubit
from netqasm.sdk.classical_communication.message import StructuredMessage
from netqasm.sdk.external import NetQASMConnection, Socket

ANGLE = (358, 10)   # rot_y angle n * pi / 2^d: 358 pi / 1024 = 1.098

QDEVICE = {"num_qubits": 2, "num_comm_qubits": 1, "T1": 1e7, "T2": 1e6,   # nanoseconds
           "single_qubit_gate_time": 100, "measure_time": 1000}
SQUIDASM_CONFIG = {
    "stacks": [{"name": "alice", "qdevice_typ": "generic", "qdevice_cfg": QDEVICE},
               {"name": "bob", "qdevice_typ": "generic", "qdevice_cfg": QDEVICE}],
    "links": [{"stack1": "alice", "stack2": "bob", "typ": "depolarise",
               "cfg": {"fidelity": 0.9, "prob_success": 0.2, "t_cycle": 1000}}],
    "clinks": [{"stack1": "alice", "stack2": "bob", "typ": "default",
                "cfg": {"delay": 10_000}}],
}


def alice_main(app_config=None):
    epr_socket = EPRSocket("bob")
    socket = Socket("alice", "bob")
    with NetQASMConnection("alice", epr_sockets=[epr_socket]) as alice:
        q = Qubit(alice)
        q.rot_Y(n=ANGLE[0], d=ANGLE[1])
        e = epr_socket.create_keep()[0]
        q.cnot(e)
        q.H()
        m1 = q.measure()
        m2 = e.measure()
    socket.send_structured(StructuredMessage("corrections", (int(m1), int(m2))))
    return {"m1": int(m1), "m2": int(m2)}


def bob_main(app_config=None):
    epr_socket = EPRSocket("alice")
    socket = Socket("bob", "alice")
    with NetQASMConnection("bob", epr_sockets=[epr_socket]) as bob:
        e = epr_socket.recv_keep()[0]
        bob.flush()
        m1, m2 = socket.recv_structured().payload
        if m2 == 1:
            e.X()
        if m1 == 1:
            e.Z()
        e.rot_Y(n=2 ** (ANGLE[1] + 1) - ANGLE[0], d=ANGLE[1])   # rot_y(-angle)
        m = e.measure()
    return {"m": int(m)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    network = network_from_squidasm(SQUIDASM_CONFIG, name="squidasm_pair")
    run = run_netqasm({"alice": alice_main, "bob": bob_main}, network, shots=args.shots,
                      seed=args.seed)
    successes = sum(r["m"] == 0 for r in run.results["bob"])
    estimate = successes / args.shots
    stderr = math.sqrt(estimate * (1 - estimate) / args.shots)
    fidelity = network.link("alice", "bob").fidelity
    report = run.report
    print(f"network {network.name}: link fidelity {fidelity}, latency "
          f"{network.link('alice', 'bob').latency * 1e6:.1f} us")
    print(f"teleported fidelity {estimate:.3f} +- {stderr:.3f} over {args.shots} shots "
          f"(Werner pair alone: (2F+1)/3 = {(2 * fidelity + 1) / 3:.3f})")
    print(f"EPR pairs per shot {report.epr_pairs:.2f}, makespan {report.makespan_s * 1e6:.2f} "
          f"us (p90 {report.distribution['makespan_s']['p90'] * 1e6:.2f} us)")
    print(f"classical bits per shot {report.classical_bits:.0f}, alice's corrections in shot 0: "
          f"{run.results['alice'][0]}")
    return {"run": run, "estimate": estimate, "stderr": stderr,
            "analytic": (2 * fidelity + 1) / 3}


if __name__ == "__main__":
    main()
