#!/usr/bin/env bash
# The fresh-lookup path, both designs in one run (see src/main.rs); with `perf` installed, each
# design's fresh loop alone under `perf stat`, for the context switches each lookup costs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p nol-bench-fresh
BIN=target/release/nol-bench-fresh
"$BIN"
if command -v perf >/dev/null; then
    for design in caller worker; do
        echo
        NOL_BENCH_ROUNDS=20 perf stat -e task-clock,context-switches,cpu-migrations "$BIN" --only "$design" 2>&1 |
            grep -E "fresh lookups|task-clock|context-switches|cpu-migrations|elapsed"
    done
fi
