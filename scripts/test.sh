#!/usr/bin/env bash
# Every test of libnol, on a fresh machine: installs what the tests need, then checks
# formatting, lints, and runs the Rust, CLI and cross-language tests. README's second command.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "test dependencies"
python3 -m pip install --quiet --disable-pip-version-check -r nol-core/tests/oracle/requirements.txt
command -v node >/dev/null || { echo "node is required (signature vectors are made by Node)"; exit 1; }

step "cargo fmt"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "benchmarks compile"
cargo bench --workspace --locked --no-run

echo
echo "all tests passed"
