"""A task-based pilot (Dask) driving the simulated QPU as a resource beside its CPU workers:
the QPU is acquired once for the pilot's job, circuits are submitted as QPU tasks from Dask
tasks, classical post-processing runs on the Dask workers, and the QPU is released at the end.

    python examples/qpu_pilot.py                       # 4 angles, 2000 shots each
    python examples/qpu_pilot.py --angles 8 --shots 500

Each Dask task prepares cos(t/2)|00> + sin(t/2)|11> (ry then cx), runs it as a QPU task
(qsim_dist.resource.QPUResource), and returns <Z0 Z1> from the counts; the analytic value is 1
for every t (the two qubits always agree), and P(11) = sin^2(t/2) is printed beside its
estimate.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qsim_dist.resource import QPUResource  # noqa: E402

CIRCUIT = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
ry({theta}) q[0];
cx q[0], q[1];
c = measure q;
"""


def qpu_task(qpu: QPUResource, theta: float, shots: int, seed: int) -> dict:
    """One QPU task from inside a Dask task: submit, wait, read the counts."""
    task = qpu.task_start({"circuit": CIRCUIT.format(theta=repr(theta)), "shots": shots,
                           "seed": seed})
    while qpu.task_status(task) in ("queued", "running"):
        time.sleep(0.02)
    return qpu.task_result(task)["counts"]


def post_process(counts: dict, theta: float) -> dict:
    """Classical work on a CPU worker: <Z0 Z1> and P(11) from the counts."""
    shots = sum(counts.values())
    zz = sum(c * (1 if k.count("1") % 2 == 0 else -1) for k, c in counts.items()) / shots
    return {"theta": theta, "zz": zz, "p11": counts.get("11", 0) / shots,
            "p11_exact": math.sin(theta / 2) ** 2}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--angles", type=int, default=4)
    ap.add_argument("--shots", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    from dask.distributed import Client, LocalCluster

    qpu = QPUResource(max_running=2)
    token = qpu.acquire()
    # threads, not processes: the workers share the one QPU object (its tasks are processes)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        thetas = [math.pi * k / max(args.angles - 1, 1) for k in range(args.angles)]
        counts = [client.submit(qpu_task, qpu, t, args.shots, args.seed + k, pure=False)
                  for k, t in enumerate(thetas)]
        results = client.gather([client.submit(post_process, c, t)
                                 for c, t in zip(counts, thetas)])
    qpu.release(token)
    print(f"{'theta':>8} {'<Z0 Z1>':>8} {'P(11)':>8} {'exact':>8}")
    for r in results:
        print(f"{r['theta']:8.4f} {r['zz']:8.4f} {r['p11']:8.4f} {r['p11_exact']:8.4f}")
    return results


if __name__ == "__main__":
    main()
