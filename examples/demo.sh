#!/usr/bin/env bash
# Quick start: set up .venv (Python >= 3.11, the project in editable mode with the plot extra) and
# run a short demo: the CLI, the Python API, and a circuit on a modelled distributed quantum
# computer (a repeater chain), whose report and pictures stay in demo-output/ to be opened.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../.ci/venv.sh"
qsim_venv "plot"
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
out="demo-output"
mkdir -p "$out"

echo; echo "\$ qsim-dist info"
qsim-dist info
echo; echo "\$ qsim-dist run examples/qft.qasm --shots 1000 --seed 7"
qsim-dist run examples/qft.qasm --shots 1000 --seed 7
echo; echo "\$ qsim-dist run examples/bell.qasm --shots 100 --seed 1 --save-state --out $out/bell.h5 --json"
qsim-dist run examples/bell.qasm --shots 100 --seed 1 --save-state --out "$out/bell.h5" --json
echo; echo "\$ python examples/demo.py"
python examples/demo.py
echo; echo "# A 4-qubit circuit over a 3-hop repeater chain A - R1 - R2 - B (noisy links, timing,"
echo "# decoherence): the distribution compiler places it, the network runs it"
echo "\$ qsim-dist dqc examples/dqc_small.qasm --network examples/network_chain.toml --shots 1000 \\"
echo "      --seed 7 --out $out/chain.h5 --plot $out/chain_schedule.png --topology-plot $out/chain_topology.png"
qsim-dist dqc examples/dqc_small.qasm --network examples/network_chain.toml --shots 1000 \
    --seed 7 --out "$out/chain.h5" --plot "$out/chain_schedule.png" \
    --topology-plot "$out/chain_topology.png"
echo
echo "Open $out/chain_schedule.png (who does what when, and which qubits wait) and"
echo "$out/chain_topology.png (the network); $out/chain.h5 holds the report (see README,"
echo "'For protocol designers')."
