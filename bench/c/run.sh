#!/usr/bin/env bash
# The C ABI's cost: the same lookups from C (bench/c/bench.c through libnol.so) and from Rust
# (bench/c/bench_rust.rs through nol-core), release builds, one sandbox, alternating rounds.
# Prints a table of p50/p90/p99 per case and the C/Rust ratio of each (best round of each side).
#   bench/c/run.sh [CACHE_HIT_CALLS] [FRESH_CALLS] [ROUNDS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
HITS="${1:-200000}"
FRESH="${2:-2000}"
ROUNDS="${3:-3}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET/release/c-bench"
mkdir -p "$OUT"

cargo build --locked --release -q -p nol-ffi --lib --example bench_c_rust
cargo build --locked -q -p nol-cli
ln -sf "$TARGET/release/libnol.so" "$OUT/libnol.so.0"
cc -std=c11 -O2 -Wall -Wextra -Werror -I include bench/c/bench.c -L "$TARGET/release" \
  -Wl,-rpath,"$OUT" -lnol -o "$OUT/bench_c"

LOG="$OUT/sandbox.log"
"$TARGET/debug/nol" sandbox --listen 127.0.0.1:0 >"$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^public key:' "$LOG" && break; sleep 0.1; done
export NOL_BASE_URL="$(sed -n 's/^sandbox listening on //p' "$LOG")"
export NOL_PUBLIC_KEY="$(sed -n 's/^public key: //p' "$LOG")"
export NUMBERS_ONLINE_API_KEY=nol_sandbox_standard_key

RESULTS="$OUT/results.txt"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  # The second line of each case is the measured one (the first is the warm-up).
  "$OUT/bench_c" "$HITS" "$FRESH" | awk 'seen[$1]++ {print "c", $0}' >>"$RESULTS"
  "$TARGET/release/examples/bench_c_rust" "$HITS" "$FRESH" | awk 'seen[$1]++ {print "rust", $0}' >>"$RESULTS"
  echo "round $round done" >&2
done

echo
echo "libnol lookups, C (libnol.so) vs Rust (nol-core), best of $ROUNDS rounds; $(nproc) cores; sandbox over loopback"
echo
awk '
  { key = $1 " " $2; if (!(key in p50) || $4 < p50[key]) { p50[key] = $4; p90[key] = $5; p99[key] = $6; n[key] = $3 } }
  END {
    printf "| case | calls | Rust p50 | C p50 | C/Rust p50 | Rust p90 | C p90 | C p99 |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    split("cache_hit fresh", cases, " ")
    for (i = 1; i <= 2; i++) {
      c = cases[i]; r = "rust " c; k = "c " c
      unit = (c == "cache_hit") ? "ns" : "us"; div = (c == "cache_hit") ? 1 : 1000
      printf "| %s | %d | %.0f %s | %.0f %s | %.3f | %.0f %s | %.0f %s | %.0f %s |\n", c, n[k],
        p50[r]/div, unit, p50[k]/div, unit, p50[k]/p50[r], p90[r]/div, unit, p90[k]/div, unit, p99[k]/div, unit
    }
  }' "$RESULTS"
