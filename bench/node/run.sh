#!/usr/bin/env bash
# Builds the Node package and the sandbox, then runs bench/node/bench.mjs (one run prints the
# table that goes in bindings/node/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
(cd bindings/node && npm ci --no-audit --no-fund && npm run build)
cargo build -p nol-cli --locked
NOL_BIN="$PWD/target/debug/nol" node bench/node/bench.mjs
