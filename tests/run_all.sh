#!/usr/bin/env bash
# Every test: the doctests, the unit tests in one process, then tests/mpi under mpiexec -n 1, 2 and 4.
# Expects the project's environment to be active (bash .ci/setup-and-test does that).
# Any failure, including "no tests collected" (pytest exit status 5), fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
export PYTHONDONTWRITEBYTECODE=1

echo "== doctests of the public API"
# every module of the package; the __main__ modules run a command when imported
python -m pytest -q -p no:cacheprovider --doctest-modules qsim_dist --ignore-glob='*/__main__.py'

echo "== unit tests"
# two workers: the 2-core CI machine runs the unit tests in about half the time
python -m pytest -q -n 2 --ignore=tests/mpi

shopt -s nullglob
mpi_tests=(tests/mpi/test_*.py tests/mpi/*_test.py)
shopt -u nullglob
if [ "${#mpi_tests[@]}" -eq 0 ]; then
    echo "== MPI tests: skipped (no test files in tests/mpi yet)"
    exit 0
fi
if ! command -v mpiexec >/dev/null 2>&1; then
    echo "mpiexec not found: install the MPI extra (pip install -e \".[mpi]\")" >&2
    exit 1
fi
for n in 1 2 4; do
    echo "== MPI tests: mpiexec -n $n"
    # python -m mpi4py: an unhandled exception on one rank aborts all ranks instead of hanging.
    timeout 600 mpiexec -n "$n" python -m mpi4py -m pytest -q -p no:cacheprovider tests/mpi
done
echo "== all tests passed"
