#!/usr/bin/env bash
# The Python benchmark (bench/python/bench_nol.py) in the virtualenv scripts/test-python.sh made
# (run that first), with the baseline's own dependencies: requests and cryptography.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${NOL_PY_VENV:-$PWD/target/python-venv}
[ -x "$VENV/bin/python" ] || { echo "run scripts/test-python.sh first (it makes $VENV)"; exit 1; }
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/python/requirements.txt
cargo build --quiet --locked -p nol-cli
NOL_BIN="$PWD/target/debug/nol" "$VENV/bin/python" bench/python/bench_nol.py
