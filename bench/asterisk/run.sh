#!/usr/bin/env bash
# The Asterisk benchmark in one run, from a fresh Debian 12 machine: builds Asterisk 22.10.1,
# libnol and res_nol.so (integrations/asterisk/build.sh, cached), `nol` in release (sandbox,
# FastAGI server, AGI program), and prints the table (bench.py) that
# integrations/asterisk/README.md shows under Benchmark: calls/s and lookup p50/p99 for the
# module, FastAGI, AGI and the seed's CURL()+REGEX recipe, against the same sandbox, fast and
# hanging. Extra arguments go to bench.py (--seconds, --window, --only, --services).
# Not part of CI (scripts/test.sh): it takes a minute or two and its numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$(bash integrations/asterisk/build.sh)"
prefix="$(printf '%s\n' "$out" | tail -n3 | head -n1)"
module="$(printf '%s\n' "$out" | tail -n1)"
cargo build --locked --release -p nol-cli >&2
target="${CARGO_TARGET_DIR:-$PWD/target}"
NOL_ASTERISK_PREFIX="$prefix" NOL_ASTERISK_MODULE="$module" NOL_BIN="$target/release/nol" \
  python3 bench/asterisk/bench.py "$@"
