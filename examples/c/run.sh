#!/usr/bin/env bash
# Installs libnol into a scratch prefix, builds examples/c with the pkg-config flags (the way a
# C user would), and runs it against the sandbox: a verified caller and a failing service.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PREFIX="$TARGET/c-prefix"
BUILD="$TARGET/c-example"
rm -rf "$PREFIX" "$BUILD"
mkdir -p "$BUILD"
NOL_PROFILE="${NOL_PROFILE:-debug}" bash scripts/install-c.sh "$PREFIX"
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
echo "pkg-config: $(pkg-config --modversion nol): $(pkg-config --cflags --libs nol)"
# -Wl,-rpath: the scratch prefix is not a directory the dynamic loader searches, so without an
# rpath (or LD_LIBRARY_PATH=$PREFIX/lib at run time) the program would fail to start with
# "libnol.so.0: cannot open shared object file". The same holds for any install under a
# non-system prefix (/opt/nol, $HOME/.local): see the "Linking" note at the top of nol.h.
make -s -C examples/c -f Makefile nol-lookup CC="${CC:-cc}" LDFLAGS="-Wl,-rpath,$PREFIX/lib"
mv examples/c/nol-lookup "$BUILD/"

cargo build --locked -q -p nol-cli
LOG="$BUILD/sandbox.log"
"$TARGET/debug/nol" sandbox --listen 127.0.0.1:0 >"$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^public key:' "$LOG" && break; sleep 0.1; done
export NOL_BASE_URL="$(sed -n 's/^sandbox listening on //p' "$LOG")"
export NOL_PUBLIC_KEY="$(sed -n 's/^public key: //p' "$LOG")"
export NUMBERS_ONLINE_API_KEY=nol_sandbox_standard_key

fail=0
expect() { grep -q -- "$2" <<<"$1" || { echo "missing: $2"; fail=1; }; }

out="$("$BUILD/nol-lookup" +14155551212 TN-Validation-Passed A)"
echo "$out"
expect "$out" "^action *allow$"
expect "$out" "^caller name *Acme Support$"
expect "$out" "^outcome *verified$"
expect "$out" "^agi *NOL_ACTION=allow$"
expect "$out" "^header *X-NumbersOnline-Action: allow$"

echo
out="$("$BUILD/nol-lookup" +14155550122)"
echo "$out"
expect "$out" "^action *challenge_or_route$"
expect "$out" "^sip code *302$"
expect "$out" "^sip contact *sip:screening@pbx.example$"

echo
out="$("$BUILD/nol-lookup" +14155550914)" # the sandbox signs this one with the wrong key
echo "$out"
expect "$out" "^action *allow_with_default_policy$"
expect "$out" "^fail-open *bad_signature$"

[ $fail -eq 0 ] && echo "examples/c: 3 passed, 0 failed" || echo "examples/c: failed"
exit $fail
