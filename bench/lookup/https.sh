#!/usr/bin/env bash
# libnol over HTTPS, side by side with curl-per-call (`--cacert`, a TLS handshake per process)
# and Python requests + the seed's verify, plus the first lookup with and without the warm-up,
# in one run against one TLS sandbox. Needs curl and python3; the Python baseline's
# dependencies go into a virtualenv of its own (target/bench-venv), as in run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${NOL_BENCH_VENV:-$PWD/target/bench-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/python/requirements.txt
NOL_BENCH_PYTHON="$VENV/bin/python" cargo run --release --locked -p nol-bench-lookup --bin nol-bench-https
