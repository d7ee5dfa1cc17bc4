#!/usr/bin/env bash
# The OpenSIPS benchmark in one run (issue 14), from a fresh Debian 12 machine: builds OpenSIPS +
# nol.so (integrations/opensips/build.sh, through build-recipe.sh), rest_client.so + json.so from
# the same source (bench/opensips/build-recipe.sh: the seed's recipe), the sandbox in release,
# and prints the table (bench.py) that integrations/opensips/README.md shows.
# Extra arguments go to bench.py (--seconds, --window, --children, --only, ...; see --help).
# NOL_OPENSIPS_DIR / NOL_RECIPE_MPATH, when both set, are used instead of building; NOL_BIN (the
# nol binary whose sandbox is the service) instead of cargo build --release -p nol-cli.
# Not part of CI (scripts/test.sh, scripts/test-opensips.sh): it takes a few minutes and its
# numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${NOL_OPENSIPS_DIR:-}" ] || [ -z "${NOL_RECIPE_MPATH:-}" ]; then
  built="$(bash bench/opensips/build-recipe.sh | tail -n2)"
  NOL_OPENSIPS_DIR="$(sed -n 1p <<<"$built")"
  NOL_RECIPE_MPATH="$(sed -n 2p <<<"$built")"
fi
if [ -z "${NOL_BIN:-}" ]; then
  cargo build --release -p nol-cli >&2
  NOL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/nol"
fi
NOL_BIN="$NOL_BIN" NOL_OPENSIPS_DIR="$NOL_OPENSIPS_DIR" NOL_RECIPE_MPATH="$NOL_RECIPE_MPATH" \
  python3 bench/opensips/bench.py "$@"
