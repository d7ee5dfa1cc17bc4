#!/usr/bin/env bash
# The OpenSIPS integration's end-to-end test, from a fresh Debian 12 machine: installs the build
# tools (apt), builds libnol, OpenSIPS 3.6.8 from ../shared/vendor (NOL_OPENSIPS_TARBALL) with
# the module nol.so (integrations/opensips/build.sh, cached under target/opensips/), the `nol`
# CLI (the sandbox), then runs real SIP INVITEs over UDP through that OpenSIPS with
# integrations/opensips/opensips.cfg against the sandbox (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "opensips + nol.so (integrations/opensips/build.sh)"
build="$(bash integrations/opensips/build.sh | tail -n1)"

step "sandbox (cargo build -p nol-cli)"
cargo build -p nol-cli

step "test dependencies"
python3 -c 'import pytest' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check 'pytest>=7' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'pytest>=7'
command -v node >/dev/null || { echo "node is required (the hostile-label server)"; exit 1; }

step "end-to-end: opensips + nol.so + sandbox, SIP over UDP"
NOL_OPENSIPS_DIR="$build" python3 -m pytest -q -p no:cacheprovider integrations/opensips/tests "$@"
