#!/usr/bin/env bash
# The Asterisk integration's end-to-end test, from a fresh Debian 12 machine: builds Asterisk
# 22.10.1 from ../shared/vendor (cached under target/asterisk/<sha256 key>/, rebuilt only when
# the source changes), libnol and the module res_nol.so (integrations/asterisk/build.sh), the
# `nol` CLI (sandbox, `nol agi`), then runs calls over Local channels through a private
# Asterisk: the module, AGI and FastAGI against the sandbox (pytest), and nol-cli's own AGI
# tests (stdin/stdout and FastAGI over TCP).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "asterisk + res_nol.so (integrations/asterisk/build.sh)"
out="$(bash integrations/asterisk/build.sh)"
prefix="$(printf '%s\n' "$out" | tail -n3 | head -n1)"
module="$(printf '%s\n' "$out" | tail -n1)"

step "nol (cargo build --release -p nol-cli)"
cargo build --locked --release -p nol-cli

step "test dependencies"
command -v node >/dev/null || { echo "node is required (the hostile-label stand-in)"; exit 1; }
python3 -c 'import pytest' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check 'pytest>=7' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'pytest>=7'

step "nol agi: AGI over stdin/stdout and FastAGI over TCP (cargo test -p nol-cli --test agi)"
cargo test --locked -q -p nol-cli --test agi
cargo test --locked -q -p nol-cli --bin nol agi

step "end-to-end: Asterisk 22 + res_nol.so, AGI and FastAGI, Local channels, sandbox"
NOL_ASTERISK_PREFIX="$prefix" NOL_ASTERISK_MODULE="$module" \
  NOL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/nol" \
  python3 -m pytest -q -p no:cacheprovider integrations/asterisk/tests "$@"
