"""Our side of results/network_scale_vs_sequence.md: repeater_chain(k) on modulenet, k = 8 and 64, 200 shots."""
import time, sys, json
from qsim_dist.dqc import run_nodes
from qsim_dist.network.workloads import repeater_chain
out = {}
for k in (8, 64):
    net, programs = repeater_chain(k)
    t = time.perf_counter()
    r = run_nodes(programs, net, shots=200, seed=1, backend="modulenet")
    out[k] = {"wall_s": time.perf_counter() - t, "per_shot_s": (time.perf_counter() - t) / 200, "fidelity": r.fidelity}
    print(k, out[k], flush=True)
print(json.dumps(out))
