#!/usr/bin/env bash
# One decision, byte-identical JSON from every face of libnol: `nol lookup --json`, C's
# nol_result_json(), Python's Decision.to_json() and Node's decision.json, for the same lookups
# against one deterministic sandbox (fixed signing key, receipts made from the request).
# Runs after the Python and Node suites, which build and install those packages.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
OUT="$TARGET/json-test"
mkdir -p "$OUT"
PY="${NOL_PY_VENV:-$ROOT/target/python-venv}/bin/python"

cargo build --quiet --locked -p nol-ffi -p nol-cli
cc -std=c11 -Wall -Wextra -Werror -I include tests/json/decision_json.c \
  -L "$TARGET" -Wl,-rpath,"$TARGET" -lnol -o "$OUT/decision_json"
ln -sf "$TARGET/libnol.so" "$TARGET/libnol.so.0"

"$TARGET/nol" sandbox --deterministic --listen 127.0.0.1:0 >"$OUT/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill "$SANDBOX_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q '^public key:' "$OUT/sandbox.log" && break
  sleep 0.1
done
export NOL_BASE_URL="$(sed -n 's/^sandbox listening on //p' "$OUT/sandbox.log")"
export NOL_PUBLIC_KEY="$(sed -n 's/^public key: //p' "$OUT/sandbox.log")"
export NUMBERS_ONLINE_API_KEY=nol_sandbox_standard_key

# Each case: number, verstat, attestation ("" for none). A verified business, a labelled one
# with a failed verstat, an unknown number, and one that fails open before any request.
cases=(
  "+14155551212|TN-Validation-Passed|A"
  "+14155550133|TN-Validation-Failed|C"
  "+12025550147||"
  "banana||"
)
fail=0
for c in "${cases[@]}"; do
  IFS='|' read -r number verstat attestation <<<"$c"
  args=("$number")
  [ -n "$verstat" ] && args+=(--verstat "$verstat")
  [ -n "$attestation" ] && args+=(--attestation "$attestation")
  "$TARGET/nol" lookup "${args[@]}" --budget-ms 2000 --json 2>/dev/null >"$OUT/cli.json"
  "$OUT/decision_json" "$number" ${verstat:+"$verstat"} ${attestation:+"$attestation"} >"$OUT/c.json"
  NUMBER="$number" VERSTAT="$verstat" ATTESTATION="$attestation" "$PY" -c '
import os, nol
c = nol.Client(budget_ms=2000)
d = c.lookup(os.environ["NUMBER"], verstat=os.environ["VERSTAT"] or None,
             attestation=os.environ["ATTESTATION"] or None)
print(d.to_json())' >"$OUT/python.json"
  NUMBER="$number" VERSTAT="$verstat" ATTESTATION="$attestation" node -e '
const { Client } = require("./bindings/node/index.js")
const c = new Client({ budgetMs: 2000 })
const e = process.env
c.lookup(e.NUMBER, { verstat: e.VERSTAT || undefined, attestation: e.ATTESTATION || undefined })
  .then((d) => console.log(d.json))' >"$OUT/node.json"
  for lang in c python node; do
    if ! cmp -s "$OUT/cli.json" "$OUT/$lang.json"; then
      echo "$number: $lang differs from nol lookup --json"
      echo "  cli:   $(cat "$OUT/cli.json")"
      echo "  $lang: $(cat "$OUT/$lang.json")"
      fail=1
    fi
  done
  grep -q '"action"' "$OUT/cli.json" || { echo "$number: no decision"; fail=1; }
  echo "$number: $(head -c 120 "$OUT/cli.json")..."
done
[ "$fail" = 0 ] && echo "the JSON of every decision is byte-identical from the CLI, C, Python and Node"
exit "$fail"
