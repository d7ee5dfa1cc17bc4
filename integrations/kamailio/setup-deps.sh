#!/usr/bin/env bash
# Install what the Kamailio integration needs on a fresh Debian 12 machine:
# Kamailio 5.6 (binary + http_client + jansson for the benchmark's stock recipe),
# the build dependencies of the module, and the deb-src entry that lets
# `apt-get source kamailio` fetch Kamailio's source (module headers).
# Idempotent: re-running it only does what is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_pkgs=(kamailio kamailio-utils-modules kamailio-extra-modules
           build-essential bison flex pkg-config dpkg-dev)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

srcfile=/etc/apt/sources.list.d/nol-kamailio-src.sources
need_update=0
if { ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; } \
   || { [ -f "$srcfile" ] && ! grep -qs 'bookworm-security' "$srcfile"; }; then
  $SUDO tee "$srcfile" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi

if [ "${#missing[@]}" -gt 0 ] || [ "$need_update" = 1 ]; then
  $SUDO apt-get update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Stop any kamailio the package may have started: the tests run their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kamailio 2>/dev/null; then
  $SUDO systemctl stop kamailio || true
fi
