# Sourced by .ci/setup-and-test and examples/demo.sh: create (once) and activate the project's
# virtual environment in .venv, then install the project into it in editable mode.
#   qsim_venv            -> pip install -e .
#   qsim_venv "test,mpi" -> pip install -e ".[test,mpi]"
# The interpreter is $PYTHON if set, else the first of python3.11, python3.12, python3.13, python3
# that is Python >= 3.11.

qsim_venv() {
    local extras="${1:-}"
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cd "$root"
    if [ ! -x .venv/bin/python ]; then
        local py="${PYTHON:-}"
        if [ -z "$py" ]; then
            for candidate in python3.11 python3.12 python3.13 python3; do
                if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c \
                        'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
                    py="$candidate"
                    break
                fi
            done
        fi
        if [ -z "$py" ]; then
            echo "qsim_dist needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
            return 1
        fi
        echo "== creating .venv with $py ($("$py" --version 2>&1))"
        "$py" -m venv .venv
    fi
    # shellcheck disable=SC1091
    . .venv/bin/activate
    local target="."
    if [ -n "$extras" ]; then
        target=".[$extras]"
    fi
    echo "== pip install -e \"$target\""
    python -m pip install --quiet --progress-bar off --disable-pip-version-check -e "$target"
}
