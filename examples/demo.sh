#!/usr/bin/env bash
# Quick start: set up .venv (Python >= 3.11, the project in editable mode) and run a short demo.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../.ci/venv.sh"
qsim_venv ""
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo; echo "\$ qsim-dist info"
qsim-dist info
echo; echo "\$ qsim-dist run examples/qft.qasm --shots 1000 --seed 7"
qsim-dist run examples/qft.qasm --shots 1000 --seed 7
echo; echo "\$ qsim-dist run examples/bell.qasm --shots 100 --seed 1 --save-state --out bell.h5 --json"
qsim-dist run examples/bell.qasm --shots 100 --seed 1 --save-state --out "$out/bell.h5" --json
echo; echo "\$ python examples/demo.py"
python examples/demo.py
