#!/usr/bin/env bash
# nol serve's /v1/cid against what FreeSWITCH mod_cidlookup (without its cache), 3CX and
# Superfecta hosts do today, in one run, with wrk (Debian package `wrk`) and release builds:
#
#   0. /healthz: no lookup, the HTTP ceiling of nol serve and wrk on this machine;
#   1. /v1/cid cache hits: one directory number, every request (a verified name from the cache);
#   2. /v1/cid fresh lookups: a new valid number every request (each a signed, verified lookup
#      upstream, through libnol's fail-open client);
#   3. direct: POST /api/v1/inbound/lookup to the service (here the sandbox) per call, as a host
#      without nol serve does; no signature check, no cache;
#   4. the same direct path to a second sandbox answering after DIRECT_DELAY_MS (20 ms: the
#      service a network round trip away, which the loopback sandbox is not);
#   5. memory: nol serve's RSS (from /proc) sampled during 1,000,000 cache-hit requests.
#
# Row 3's upstream is the sandbox on loopback, the best case for the direct path, so its ratio
# is a floor; row 4 models the real distance. wrk, nol serve and the sandboxes share the
# machine's CPUs. Prints a Markdown table (nol-serve/README.md shows one) and keeps the raw
# wrk output in $OUT (a temporary directory unless set).
#
# Environment: NOL_BIN (a release nol; built when unset), SECONDS_PER_ROW (10), CONNECTIONS (32,
# at most nol's max_in_flight so fresh lookups are never refused as busy), THREADS (1),
# MEMORY_REQUESTS (1000000), DIRECT_DELAY_MS (20), OUT.
# Not part of CI (scripts/test.sh): it takes about a minute and its numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)"; exit 1; }
if [[ -z "${NOL_BIN:-}" ]]; then
  cargo build --release --locked -p nol-cli >&2
  NOL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/nol"
fi
SECS=${SECONDS_PER_ROW:-10}
CONNS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
MEM_REQUESTS=${MEMORY_REQUESTS:-1000000}
DELAY=${DIRECT_DELAY_MS:-20}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
LUA=bench/serve/bench.lua
HIT=+14155551212            # the sandbox's verified business "Acme Support"
KEY=nol_sandbox_standard_key

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SB_PORT=$(free_port)
"$NOL_BIN" sandbox --listen "127.0.0.1:$SB_PORT" >"$OUT/sandbox.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q "public key:" "$OUT/sandbox.log" 2>/dev/null && break; sleep 0.1; done
PEM=$(sed -n 's/^public key: //p' "$OUT/sandbox.log")
SB_URL="http://127.0.0.1:$SB_PORT"
SLOW_PORT=$(free_port)
"$NOL_BIN" sandbox --listen "127.0.0.1:$SLOW_PORT" --delay-ms "$DELAY" >"$OUT/sandbox-slow.log" 2>&1 &
PIDS+=($!)
SLOW_URL="http://127.0.0.1:$SLOW_PORT"

TOKEN="bench-token-$RANDOM$RANDOM$RANDOM"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
NUMBERS_ONLINE_API_KEY=$KEY NOL_SERVE_TOKEN="$TOKEN" NOL_BASE_URL="$SB_URL" NOL_PUBLIC_KEY="$PEM" \
  "$NOL_BIN" serve --listen "127.0.0.1:$PORT" --set default_country=US >"$OUT/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=($SERVE_PID)
for _ in $(seq 1 100); do curl -s -o /dev/null "$URL/healthz" && break; sleep 0.1; done
name=$(curl -s "$URL/v1/cid?number=%2B14155551212&key=$TOKEN")
[[ "$name" == "Acme Support" ]] || { echo "nol serve answers [$name], not Acme Support"; exit 1; }

metric() { # sum of a metric's series
  curl -s "$URL/metrics" | awk -v m="$1" 'index($0, m) == 1 && ($1 == m || substr($1, length(m) + 1, 1) == "{") { s += $2 } END { printf "%d", s }'
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVE_PID/status"; }
field() { sed -n "s/^RESULT .*[ ]$1=\([^ ]*\).*/\1/p" "$2"; }
run() { # name url mode secret [number] -- wrk for SECS seconds
  local name=$1 url=$2
  shift 2
  wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --timeout 5s --latency -s "$LUA" "$url" -- "$@" >"$OUT/$name.txt"
}

echo "nol serve $URL, sandbox $SB_URL; wrk -t$THREADS -c$CONNS, ${SECS} s per row; raw output in $OUT" >&2
run healthz "$URL" get /healthz
run hit "$URL" hit "$TOKEN" "$HIT"
fo0=$(metric nol_fail_open_total); lk0=$(metric nol_lookups_total)
run fresh "$URL" fresh "$TOKEN"
fo1=$(metric nol_fail_open_total); lk1=$(metric nol_lookups_total)
run direct "$SB_URL" direct "$KEY" "$HIT"
run direct_far "$SLOW_URL" direct "$KEY" "$HIT"

# Memory: 1M cache hits, RSS every quarter second; wrk stopped (SIGINT, it still reports) once
# nol serve has counted MEM_REQUESTS /v1/cid requests since the start of this row.
cid0=$(metric 'nol_serve_requests_total{endpoint="cid"}')
wrk -t"$THREADS" -c"$CONNS" -d600s --timeout 5s --latency -s "$LUA" "$URL" -- hit "$TOKEN" "$HIT" \
  >"$OUT/memory.txt" &
WRK_PID=$!
PIDS+=($WRK_PID)
: >"$OUT/rss.csv"
start=$(date +%s.%N)
elapsed() { awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
while kill -0 "$WRK_PID" 2>/dev/null; do
  done_n=$(( $(metric 'nol_serve_requests_total{endpoint="cid"}') - cid0 ))
  echo "$(elapsed),$done_n,$(rss_kb)" >>"$OUT/rss.csv"
  if (( done_n >= MEM_REQUESTS )); then kill -INT "$WRK_PID"; break; fi
  sleep 0.25
done
wait "$WRK_PID" || true
echo "$(elapsed),$(( $(metric 'nol_serve_requests_total{endpoint="cid"}') - cid0 )),$(rss_kb)" >>"$OUT/rss.csv"

python3 - "$OUT" "$MEM_REQUESTS" "$((lk1 - lk0))" "$((fo1 - fo0))" "$DELAY" <<'PY'
import re, sys
out, mem_requests, fresh_lookups, fresh_fail_open = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
delay = sys.argv[5]
def result(name):
    line = next(l for l in open(f"{out}/{name}.txt") if l.startswith("RESULT "))
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}
rows = [("`/healthz` (no lookup: the HTTP ceiling here)", "healthz"),
        ("`/v1/cid` cache hits (one number)", "hit"),
        ("`/v1/cid` fresh lookups (a new number per request)", "fresh"),
        ("direct: `POST /api/v1/inbound/lookup` to the service per call (loopback sandbox)", "direct"),
        (f"direct, the service {delay} ms away (`nol sandbox --delay-ms {delay}`)", "direct_far")]
r = {k: result(k) for _, k in rows}
d = r["direct"]
f = r["direct_far"]
print(f"| path | requests/s | p50 | p99 | max | requests | errors | vs direct, loopback | vs direct, {delay} ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for label, k in rows:
    x = r[k]
    print(f"| {label} | {x['rps']:,.0f} | {x['p50_ms']:.2f} ms | {x['p99_ms']:.2f} ms | {x['max_ms']:.1f} ms "
          f"| {x['requests']:,.0f} | {x['errors'] + x['non2xx']:.0f} | {x['rps'] / d['rps']:.1f}x | {x['rps'] / f['rps']:.1f}x |")
print()
print(f"Fresh row: {fresh_lookups:,} lookups, {fresh_fail_open:,} failed open.")
hit = r["hit"]
print(f"Targets: cache hits {hit['rps'] / d['rps']:.1f}x the loopback direct path's requests/s (target >= 20x): "
      f"{'met' if hit['rps'] >= 20 * d['rps'] else 'NOT met'}; {hit['rps'] / f['rps']:.1f}x the {delay} ms direct path: "
      f"{'met' if hit['rps'] >= 20 * f['rps'] else 'NOT met'}; "
      f"p99 {hit['p99_ms']:.2f} ms (target < 5 ms): {'met' if hit['p99_ms'] < 5 else 'NOT met'}.")
samples = [tuple(float(v) for v in l.split(",")) for l in open(f"{out}/rss.csv") if l.count(",") == 2 and l.strip().split(",")[2]]
m = result("memory")
first = samples[0]
rss = [s[2] for s in samples]
marks = []
for frac in (0, 0.25, 0.5, 0.75, 1.0):
    target = frac * mem_requests
    s = min(samples, key=lambda s: abs(s[1] - target))
    marks.append(f"{s[1] / 1e6:.2f}M: {s[2] / 1024:.1f} MiB")
print(f"Memory: {samples[-1][1]:,.0f} cache-hit requests in {m['seconds']:.1f} s ({m['rps']:,.0f}/s, "
      f"p99 {m['p99_ms']:.2f} ms); nol serve RSS, {len(samples)} samples: " + ", ".join(marks)
      + f"; min {min(rss) / 1024:.1f}, max {max(rss) / 1024:.1f} MiB "
      f"(growth {(samples[-1][2] - first[2]) / 1024:+.1f} MiB).")
PY
