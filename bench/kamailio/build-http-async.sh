#!/usr/bin/env bash
# Builds Kamailio 5.6's http_async_client module for the benchmark's baseline (the seed's
# http_async_client + jansson recipe, bench/kamailio/stock_http_async_client.cfg).
#
# Debian 12 packages kamailio 5.6.3 without http_async_client (debian/rules leaves its group
# out of kamailio-extra-modules), so it is built here from the same Debian Kamailio source
# tree that integrations/kamailio/build.sh fetches and configures (target/kamailio/, override
# with NOL_KAMAILIO_WORK), with Debian's own build flags, so it loads into Debian's kamailio.
# Needs libevent-dev and libcurl4-openssl-dev (installed here with apt when missing).
# Does not need libnol. Re-running only rebuilds what changed.
# Prints the path of the built module on its last line.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${NOL_KAMAILIO_WORK:-$repo/target/kamailio}"

log() { printf '[http_async_client build] %s\n' "$*" >&2; }

log "dependencies (apt)"
bash "$repo/integrations/kamailio/setup-deps.sh" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=()
for p in libevent-dev libcurl4-openssl-dev libssl-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

# The same source tree as integrations/kamailio/build.sh (same layout, same version check).
kver="$(dpkg-query -W -f='${Version}' kamailio)"
mkdir -p "$work"
src="$(find "$work" -maxdepth 1 -type d -name 'kamailio-*' | sort | tail -n1)"
if [ -z "$src" ] || [ "$(cat "$work/.version" 2>/dev/null)" != "$kver" ]; then
  log "Kamailio source $kver (apt-get source)"
  rm -rf "$work"/kamailio-* "$work"/kamailio_*
  (cd "$work" && apt-get source -qq "kamailio=$kver" >&2)
  echo "$kver" >"$work/.version"
  src="$(find "$work" -maxdepth 1 -type d -name 'kamailio-*' | sort | tail -n1)"
fi

cc_opts="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS) -DVERSION_NODATE"
ld_opts="$(dpkg-buildflags --get LDFLAGS)"
if [ ! -f "$src/src/config.mak" ]; then
  log "configure Kamailio's build as Debian does"
  make -C "$src" cfg prefix=/usr cfg_target=/etc/kamailio/ FLAVOUR=kamailio \
    group_include=kstandard CC_EXTRA_OPTS="$cc_opts" LD_EXTRA_OPTS="$ld_opts" >&2
fi

log "module (make modules modules=src/modules/http_async_client)"
make -C "$src" modules modules=src/modules/http_async_client >&2

out="$work/bench-modules"
mkdir -p "$out"
cp "$src/src/modules/http_async_client/http_async_client.so" "$out/http_async_client.so"
log "built $out/http_async_client.so"
echo "$out/http_async_client.so"
