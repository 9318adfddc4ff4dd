"""Gate-level purification with retries along a repeater chain A - R1 - ... - Rk - B.

    python examples/purified_chain.py [--repeaters K] [--shots N] [--seed S] [--backend NAME]

Every link distils its Werner pair by one DEJMPS round (rotations, bilateral CNOT, both ends
measure the sacrificed pair, exchange the outcomes, keep the pair when they agree, otherwise
regenerate both and retry); then every repeater swaps and B corrects. The nodes branch on what
they measured, so this runs online, shot by shot (``network.workloads.purified_chain``). With
ideal local gates the end-to-end fidelity is the DEJMPS output composed along the chain
(``physics.swapped_weights``); noisy CNOTs and readout lower it below that, which the analytic
model (``--purify`` / ``purification=``) does not show. Expected output (default arguments):
examples/expected/purified_chain.txt.
"""

from __future__ import annotations

import argparse
from functools import reduce

import numpy as np

from qsim_dist.dqc import run_nodes
from qsim_dist.network.physics import chain_fidelity, purification_rounds, swapped_weights
from qsim_dist.network.workloads import purified_chain

PHI_PLUS = np.array([1, 0, 0, 1]) / np.sqrt(2)
LINK_FIDELITY = 0.9


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeaters", type=int, default=4)
    parser.add_argument("--shots", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="modulenet")
    args = parser.parse_args(argv)
    k = args.repeaters
    weights = purification_rounds(LINK_FIDELITY, "dejmps", 1)[0][1]
    analytic = reduce(swapped_weights, [weights] * (k + 1))[0]
    print(f"chain of {k} repeaters, links F = {LINK_FIDELITY}: unpurified end-to-end "
          f"F = {chain_fidelity([LINK_FIDELITY] * (k + 1)):.4f}, purified (analytic, ideal "
          f"local gates) F = {analytic:.4f}")
    out = {"analytic": analytic}
    for label, noise in (("ideal local gates", {}),
                         ("CNOT error 1%, readout 1%", {"gate_error_2q": 0.01,
                                                        "readout_error": 0.01})):
        net, programs = purified_chain(k, LINK_FIDELITY, **noise)
        report = run_nodes(programs, net, shots=args.shots, seed=args.seed,
                           backend=args.backend, target=PHI_PLUS, name="purified-chain")
        pairs = report.distribution["epr_pairs"]
        print(f"{label:26s} F = {report.fidelity:.4f} +- {report.fidelity_stderr:.4f}   raw "
              f"pairs per end-to-end pair: mean {report.epr_pairs:.1f}, min {pairs['min']:g}, "
              f"max {pairs['max']:g}   [{report.execution}, {report.backend}]")
        out[label] = report
    return out


if __name__ == "__main__":
    main()
