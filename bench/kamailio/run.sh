#!/usr/bin/env bash
# The Kamailio benchmark in one run, from a fresh Debian 12 machine: builds nol.so (and
# installs Kamailio) with integrations/kamailio/build.sh, builds the sandbox in release, and
# prints the table (bench.py) that integrations/kamailio/README.md shows.
# Extra arguments go to bench.py (--seconds, --window, --children).
set -euo pipefail
cd "$(dirname "$0")/../.."
module="$(bash integrations/kamailio/build.sh | tail -n1)"
cargo build --release -p nol-cli >&2
target="${CARGO_TARGET_DIR:-$PWD/target}"
NOL_BIN="$target/release/nol" NOL_KAMAILIO_MODULE="$module" python3 bench/kamailio/bench.py "$@"
