#!/usr/bin/env bash
# The Kamailio benchmark in one run, from a fresh Debian 12 machine: builds nol.so (and
# installs Kamailio) with integrations/kamailio/build.sh, http_async_client.so (the seed's
# recipe; Debian does not ship it) with bench/kamailio/build-http-async.sh, the sandbox in
# release, and prints the table (bench.py) that integrations/kamailio/README.md shows.
# Extra arguments go to bench.py (--seconds, --window, --children, --only, ...; see --help).
# NOL_KAMAILIO_MODULE / NOL_HTTP_ASYNC_MODULE, when set, are used instead of building;
# NOL_KAMAILIO_BLOCKING_MODULE (optional) is the nol.so for the blocking row.
# Not part of CI (scripts/test.sh): it takes a few minutes and its numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
module="${NOL_KAMAILIO_MODULE:-$(bash integrations/kamailio/build.sh | tail -n1)}"
http_async="${NOL_HTTP_ASYNC_MODULE:-$(bash bench/kamailio/build-http-async.sh | tail -n1)}"
cargo build --release -p nol-cli >&2
target="${CARGO_TARGET_DIR:-$PWD/target}"
NOL_BIN="$target/release/nol" NOL_KAMAILIO_MODULE="$module" NOL_HTTP_ASYNC_MODULE="$http_async" \
  python3 bench/kamailio/bench.py "$@"
