#!/usr/bin/env bash
# The whole C side of libnol in one command: installs what it needs on a fresh Debian machine
# (a C compiler, pkg-config, valgrind), checks that include/nol.h matches the Rust, runs the C
# test suite (tests/c/run.sh: plain, static, valgrind, AddressSanitizer, against the sandbox),
# installs libnol into a scratch prefix and builds and runs examples/c against it with the
# pkg-config flags.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

step "include/nol.h matches nol-ffi"
cargo test --locked -p nol-ffi --test header

step "C tests"
bash tests/c/run.sh

if [ -f examples/c/run.sh ]; then
  step "install + pkg-config + examples/c"
  bash examples/c/run.sh
fi

echo
echo "C suite passed"
