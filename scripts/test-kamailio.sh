#!/usr/bin/env bash
# The Kamailio integration's end-to-end test, from a fresh Debian 12 machine: installs
# Kamailio 5.6 and the build tools (apt), builds libnol, the `nol` CLI (the sandbox) and the
# module nol.so, then runs real SIP INVITEs over UDP through Debian's kamailio with
# integrations/kamailio/kamailio.cfg against the sandbox (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "kamailio module (integrations/kamailio/build.sh)"
module="$(bash integrations/kamailio/build.sh | tail -n1)"

step "sandbox (cargo build -p nol-cli)"
cargo build -p nol-cli

step "test dependencies"
python3 -m pip install --quiet --disable-pip-version-check 'pytest>=7' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'pytest>=7'
command -v node >/dev/null || { echo "node is required (the hostile-label server)"; exit 1; }

step "end-to-end: kamailio + nol.so + sandbox, SIP over UDP"
NOL_KAMAILIO_MODULE="$module" python3 -m pytest -q -p no:cacheprovider \
  integrations/kamailio/tests "$@"
