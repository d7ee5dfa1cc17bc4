#!/usr/bin/env bash
# libnol lookups side by side with curl-per-call and Python requests + the seed's verify, in
# one run against one sandbox. Needs curl and python3; the Python baseline's dependencies
# (requests, cryptography) go into a virtualenv of its own (target/bench-venv), since a fresh
# Debian or Ubuntu refuses pip installs into the system Python (PEP 668).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${NOL_BENCH_VENV:-$PWD/target/bench-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/python/requirements.txt
NOL_BENCH_PYTHON="$VENV/bin/python" cargo run --release --locked -p nol-bench-lookup --bin nol-bench-lookup
