#!/usr/bin/env bash
# Issue 17's cost benchmark in one run: a seeded Zipf trace replayed through 8 libnol client
# processes against the sandbox (no cache, per-process caches, the shared Redis tier), beside
# the ideal computed from the trace; then a Redis hit's latency on loopback. Needs
# redis-server on PATH for the shared tier (`apt-get install redis-server`); without it, or
# without nol-core's `redis` feature, the shared rows are skipped and said so.
# Flags go through: bash bench/redis/run.sh --seconds 20 --modes no-cache,per-process
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p nol-bench-redis
exec target/release/nol-bench-redis "$@"
