#!/usr/bin/env bash
# nol serve with real clients: the Python MCP SDK (Streamable HTTP), curl as mod_cidlookup's URL
# template, the FreeSWITCH Lua script under lua5.4 with a stand-in session/freeswitch API, the
# CID Superfecta source module under php-cli with a stand-in base class, and the 3CX CRM
# template's REST scenario. Each: the verified name, nothing for an unknown number, and failing
# open within the host's budget against a hanging and a forging upstream. Then the MCP client
# and curl against a Node upstream that signs hostile labels: sanitized in every tool result.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null; }
if ! need lua5.4 || ! need php || ! need curl; then
  apt-get update -qq && apt-get install -y -qq lua5.4 php-cli curl >/dev/null
fi
command -v node >/dev/null || { echo "node is required (the hostile-label upstream)"; exit 1; }
python3 -c "import mcp" 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check mcp

cargo build --locked -q -p nol-cli
NOL=target/debug/nol
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }

SB_PORT=$(free_port)
"$NOL" sandbox --listen "127.0.0.1:$SB_PORT" >"$WORK/sandbox.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q "public key:" "$WORK/sandbox.log" 2>/dev/null && break; sleep 0.1; done
PEM=$(sed -n 's/^public key: //p' "$WORK/sandbox.log")

TOKEN="serve-test-token-$RANDOM$RANDOM"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
NUMBERS_ONLINE_API_KEY=nol_sandbox_standard_key NOL_SERVE_TOKEN="$TOKEN" \
  NOL_BASE_URL="http://127.0.0.1:$SB_PORT" NOL_PUBLIC_KEY="$PEM" \
  "$NOL" serve --listen "127.0.0.1:$PORT" --set default_country=US --set budget_ms=400 \
  >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=($SERVE_PID)
wait_for "$URL/healthz"

HANG=+14155550901
FORGED=+14155550914
fail=0
check() { # what expected actual
  if [[ "$2" == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: expected [$2], got [$3]"; fail=1; fi
}
within() { # what ms limit
  if (( $2 <= $3 )); then echo "ok   $1 (${2} ms)"; else echo "FAIL $1: ${2} ms > ${3} ms"; fail=1; fi
}

echo "== curl as mod_cidlookup (url template, \${caller_id_number} pasted unencoded)"
TEMPLATE=$(sed -n 's/.*name="url" value="\([^"]*\)".*/\1/p' integrations/freeswitch/cidlookup.conf.xml | sed 's/&amp;/\&/g')
cid() { # number -> body; and time in ms to $WORK/ms
  local u=${TEMPLATE//\$\{caller_id_number\}/$1}
  u=${u//\$\$\{numbers_online_token\}/$TOKEN}
  u=${u//127.0.0.1:8088/127.0.0.1:$PORT}
  curl -s -w '\n%{time_total}' --max-time 5 "$u" >"$WORK/cid"
  python3 -c "import sys; print(int(float(open(sys.argv[1]).read().rsplit('\n',1)[1])*1000))" "$WORK/cid" >"$WORK/ms"
  head -n -1 "$WORK/cid" | tr -d '\n'
}
check "cid verified name" "Acme Support" "$(cid +14155551212)"
check "cid national form" "Café Zürich — Bäckerei" "$(cid 4155550111)"
check "cid unknown: empty" "" "$(cid +14155559999)"
check "cid hanging upstream: empty" "" "$(cid $HANG)"; within "cid hang within budget" "$(cat "$WORK/ms")" 1000
check "cid forged answer: empty" "" "$(cid $FORGED)"
check "cid wrong token: 401" "401" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/cid?number=%2B14155551212&key=wrong")"

echo "== Python MCP SDK client (Streamable HTTP)"
if python3 nol-serve/tests/clients/mcp_client.py "$URL/mcp" "$TOKEN" 2>"$WORK/mcp.err"; then echo "ok   mcp"; else cat "$WORK/mcp.err"; fail=1; fi

echo "== MCP and /v1/cid against an upstream signing hostile labels (CR/LF, NUL, C0/C1, bidi, U+2028, BOM)"
node nol-serve/tests/hostile_upstream.js "$WORK/hostile.pem" >"$WORK/hostile.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q "^listening" "$WORK/hostile.log" 2>/dev/null && break; sleep 0.1; done
HOSTILE_UP=$(sed -n 's/^listening //p' "$WORK/hostile.log")
[[ -n "$HOSTILE_UP" ]] || { cat "$WORK/hostile.log"; echo "FAIL hostile upstream not up"; exit 1; }
HPORT=$(free_port)
HURL="http://127.0.0.1:$HPORT"
NUMBERS_ONLINE_API_KEY=hostile-upstream-key NOL_SERVE_TOKEN="$TOKEN" \
  NOL_BASE_URL="http://127.0.0.1:$HOSTILE_UP" NOL_PUBLIC_KEY="$WORK/hostile.pem" \
  "$NOL" serve --listen "127.0.0.1:$HPORT" --set default_country=US --set budget_ms=1000 \
  >"$WORK/serve-hostile.log" 2>&1 &
PIDS+=($!)
wait_for "$HURL/healthz"
if python3 nol-serve/tests/clients/mcp_client.py --hostile "$HURL/mcp" "$TOKEN" +14155551212 +442071838750 \
  2>"$WORK/mcp-hostile.err"; then echo "ok   mcp hostile labels sanitized"; else cat "$WORK/mcp-hostile.err"; fail=1; fi
curl -s --max-time 5 "$HURL/v1/cid?number=%2B14155551212&key=$TOKEN" >"$WORK/cid-hostile"
if python3 - "$WORK/cid-hostile" <<'PY'; then echo "ok   cid hostile label sanitized"; else fail=1; fi
import sys, unicodedata
t = open(sys.argv[1], "rb").read().decode("utf-8")
bad = [hex(ord(c)) for c in t if unicodedata.category(c) == "Cc"
       or ord(c) in {0x2028, 0x2029, 0x200E, 0x200F, 0xFEFF, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}]
if bad or not t.startswith("Evil X-Injected: yes"):
    print(f"FAIL cid hostile label: {t!r} {bad}")
    sys.exit(1)
PY

echo "== FreeSWITCH Lua script (lua5.4, stand-in session/freeswitch API, mod_curl via curl)"
lua_run() { lua5.4 integrations/freeswitch/tests/freeswitch_standin.lua integrations/freeswitch/numbers_online_cnam.lua "$URL" "$TOKEN" "$@"; }
out=$(lua_run +14155551212 sip_verstat=TN-Validation-Passed)
check "lua name" "effective_caller_id_name=Acme Support" "$(grep effective_caller_id_name <<<"$out")"
check "lua action" "nol_action=allow" "$(grep nol_action <<<"$out")"
out=$(lua_run +14155559999)
check "lua unknown: no name" "" "$(grep effective_caller_id_name <<<"$out" || true)"
start=$(date +%s%N); out=$(lua_run $HANG); ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "lua hang fails open" "nol_fail_open=timeout" "$(grep nol_fail_open <<<"$out")"; within "lua hang within budget" $ms 1500
out=$(lua_run $FORGED)
check "lua forged fails open" "nol_fail_open=bad_signature" "$(grep nol_fail_open <<<"$out")"
check "lua forged: no name" "" "$(grep effective_caller_id_name <<<"$out" || true)"

echo "== CID Superfecta source module (php-cli, stand-in superfecta_base)"
sf() { php integrations/freepbx-superfecta/tests/superfecta_standin.php integrations/freepbx-superfecta/source-NumbersOnline.module "$URL" "$TOKEN" "$1" US; }
# Each line: [NAME] MS
out=$(sf +14155551212); check "superfecta name" "[Acme Support]" "${out% *}"
out=$(sf +14155559999); check "superfecta unknown" "[]" "${out% *}"
out=$(sf $HANG); check "superfecta hang fails open" "[]" "${out% *}"; within "superfecta hang within budget" "${out##* }" 1000
out=$(sf $FORGED); check "superfecta forged" "[]" "${out% *}"

echo "== 3CX CRM template (its REST scenario)"
crm() { python3 integrations/3cx/tests/crm_template.py integrations/3cx/numbers-online.crm.xml "$URL" "$TOKEN" "$1"; }
check "3cx name" "[Acme Support]" "$(crm +14155551212)"
check "3cx unknown" "[]" "$(crm +14155559999)"
check "3cx hang" "[]" "$(crm $HANG)"
check "3cx forged" "[]" "$(crm $FORGED)"

echo "== logs carry no secret; SIGTERM stops it"
kill -TERM "$SERVE_PID"
for _ in $(seq 1 50); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVE_PID" 2>/dev/null; then echo "FAIL still running after SIGTERM"; fail=1; else echo "ok   stopped on SIGTERM"; fi
if grep -q -e "$TOKEN" -e nol_sandbox_standard_key "$WORK/serve.log"; then echo "FAIL a secret in the log"; fail=1; else echo "ok   no secret in the log"; fi

exit $fail
