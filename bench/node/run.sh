#!/usr/bin/env bash
# Builds the Node package and the sandbox, then runs bench/node/bench.mjs (one run prints the
# table that goes in bindings/node/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
(cd bindings/node && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; } && npm run build)
cargo build -p nol-cli --locked
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
NOL_BIN="$target_dir/debug/nol" node bench/node/bench.mjs
