#!/usr/bin/env bash
# Every test of libnol, on a fresh machine: installs what the tests need, then checks
# formatting, lints, and runs the Rust, CLI and cross-language tests (C, Kamailio, Python,
# Node, each through its own script and its own language's runner). README's second command.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "test dependencies"
python3 -m pip install --quiet --disable-pip-version-check -r nol-core/tests/oracle/requirements.txt
command -v node >/dev/null || { echo "node is required (signature vectors are made by Node)"; exit 1; }
# The shared cache tier's tests (Rust, Python, Node, Kamailio, OpenSIPS) start their own
# redis-server on a free port.
if ! command -v redis-server >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

step "cargo fmt"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "benchmarks compile"
cargo bench --workspace --locked --no-run

step "fuzz targets compile, and their corpora replay (nol-core/fuzz/README.md)"
# Their own workspace (cargo-fuzz's layout), so the workspace build above does not see them.
# The replay runs every file of nol-core/fuzz/corpus/<target>/ through the target's own check
# on stable Rust, without cargo-fuzz (seconds); the fuzzing itself is run by hand.
cargo check --locked --manifest-path nol-core/fuzz/Cargo.toml --bins
cargo test --locked --manifest-path nol-core/fuzz/Cargo.toml

step "C ABI suite (scripts/test-c.sh)"
bash scripts/test-c.sh

step "Kamailio end-to-end suite (scripts/test-kamailio.sh)"
bash scripts/test-kamailio.sh

step "OpenSIPS end-to-end suite (scripts/test-opensips.sh)"
bash scripts/test-opensips.sh

step "Asterisk end-to-end suite (scripts/test-asterisk.sh)"
bash scripts/test-asterisk.sh

step "Python package suite (scripts/test-python.sh)"
bash scripts/test-python.sh

step "Node package suite (scripts/test-node.sh)"
bash scripts/test-node.sh

step "nol serve with real clients: MCP SDK, curl, Lua, PHP, 3CX template (scripts/test-serve.sh)"
bash scripts/test-serve.sh

step "one decision, byte-identical JSON from the CLI, C, Python and Node (scripts/test-json.sh)"
bash scripts/test-json.sh

echo
echo "all tests passed"
