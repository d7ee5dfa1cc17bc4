#!/usr/bin/env bash
# The fresh-lookup path, both designs beside a hand-written client and the bare exchange, in
# one run (see src/main.rs); then the same rows with the whole process on one CPU (the
# sandbox's thread and the caller's share it: no wake-up crosses CPUs); with `perf`
# installed, each design's fresh loop alone under `perf stat`, for the context switches each
# lookup costs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p nol-bench-fresh
BIN=target/release/nol-bench-fresh
"$BIN"
echo
NOL_BENCH_FAULT_N=0 NOL_BENCH_NOTE=", the whole process on CPU 0 (taskset -c 0)" taskset -c 0 "$BIN"
if command -v perf >/dev/null; then
    for design in caller worker; do
        echo
        NOL_BENCH_ROUNDS=20 perf stat -e task-clock,context-switches,cpu-migrations "$BIN" --only "$design" 2>&1 |
            grep -E "fresh lookups|task-clock|context-switches|cpu-migrations|elapsed"
    done
fi
