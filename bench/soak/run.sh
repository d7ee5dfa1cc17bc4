#!/usr/bin/env bash
# The soak (issue 13): one million lookups through the C ABI from 32 threads, mixing cache
# hits, fresh answers and injected faults against the sandbox, with RSS, threads and open
# descriptors sampled as it goes. Builds libnol and the sandbox (release), compiles
# bench/soak/soak.c against include/nol.h and libnol.so, and runs it. Not part of CI: it takes
# minutes. See bench/soak/README.md for what it checks and the figures of a run.
#   bench/soak/run.sh [LOOKUPS] [THREADS] [SAMPLE_EVERY]      (1000000 32 50000)
# SOAK_NO_BUILD=1 skips the cargo builds (uses target/release as it is); SOAK_LSAN=1 runs it
# under LeakSanitizer.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
LOOKUPS="${1:-1000000}"
THREADS="${2:-32}"
EVERY="${3:-50000}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET/release/soak"
mkdir -p "$OUT"

if [ -z "${SOAK_NO_BUILD:-}" ]; then  # SOAK_NO_BUILD=1: use the release build already there
  cargo build --locked --release -q -p nol-ffi --lib
  cargo build --locked --release -q -p nol-cli
fi
ln -sf "$TARGET/release/libnol.so" "$OUT/libnol.so.0"
# SOAK_LSAN=1: with LeakSanitizer over the whole process (libnol allocates through the same
# malloc), which reports at exit, after the clients are freed, anything left unreachable.
SAN=()
[ -n "${SOAK_LSAN:-}" ] && SAN=(-fsanitize=leak -g)
cc -std=c11 -O2 -Wall -Wextra -Werror -pthread "${SAN[@]}" -I include bench/soak/soak.c \
  -L "$TARGET/release" -Wl,-rpath,"$OUT" -lnol -o "$OUT/soak"

LOG="$OUT/sandbox.log"
"$TARGET/release/nol" sandbox --listen 127.0.0.1:0 >"$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q '^public key:' "$LOG" && break; sleep 0.1; done
grep -q '^public key:' "$LOG" || { echo "soak: the sandbox did not start:"; cat "$LOG"; exit 2; }
export NOL_BASE_URL="$(sed -n 's/^sandbox listening on //p' "$LOG")"
export NOL_PUBLIC_KEY="$(sed -n 's/^public key: //p' "$LOG")"
export NUMBERS_ONLINE_API_KEY=nol_sandbox_standard_key

echo "soak: $(nproc) cores; sandbox $NOL_BASE_URL (pid $PID); libnol $TARGET/release/libnol.so"
"$OUT/soak" "$LOOKUPS" "$THREADS" "$EVERY"
