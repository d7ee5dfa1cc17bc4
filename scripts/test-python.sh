#!/usr/bin/env bash
# The Python package `nol` on a fresh machine: makes a virtualenv, installs the test tools,
# builds and installs the package from this checkout exactly as a user would
# (`pip install ./bindings/python`, maturin as the PEP 517 backend), lints, and runs pytest
# against the sandbox (which the tests start themselves).
#
#   bash scripts/test-python.sh            # everything
#   NOL_PY_VENV=/path bash scripts/test-python.sh   # another virtualenv location
#   NOL_PY_FRAMEWORKS=0 bash scripts/test-python.sh # skip installing Pipecat and LiveKit Agents
#                                                   # (their example tests are then skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n== %s\n' "$*"; }

VENV=${NOL_PY_VENV:-$ROOT/target/python-venv}
PYTHON=${PYTHON:-python3}

step "python virtualenv ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$PY" -m pip install --quiet --disable-pip-version-check -r bindings/python/tests/requirements.txt
if [ "${NOL_PY_FRAMEWORKS:-1}" != 0 ]; then
    step "Pipecat and LiveKit Agents, for the examples' tests"
    "$PY" -m pip install --quiet --disable-pip-version-check \
        -r bindings/python/tests/requirements-frameworks.txt
    export NOL_REQUIRE_FRAMEWORKS=1
fi

step "the sandbox binary"
cargo build --quiet --locked -p nol-cli
export NOL_BIN="$ROOT/target/debug/nol"

step "pip install ./bindings/python"
"$PY" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./bindings/python
"$PY" -c 'import nol; print("nol", nol.__version__, "from", nol.__file__)'

step "ruff"
LINTED=(bindings/python)
for d in examples/python bench/python; do [ -d "$d" ] && LINTED+=("$d"); done
"$VENV/bin/ruff" check --config bindings/python/pyproject.toml "${LINTED[@]}"
"$VENV/bin/ruff" format --check --config bindings/python/pyproject.toml "${LINTED[@]}"

step "pytest"
# Run from outside the source tree, so that the installed package is what is imported.
cd "$ROOT/bindings/python"
"$PY" -m pytest -p no:cacheprovider tests
