#!/usr/bin/env bash
# Builds OpenSIPS 3.6.8's rest_client and json modules for the benchmark's baseline (the seed's
# rest_client + json recipe, bench/opensips/rest_client.cfg), from the same extracted and built
# OpenSIPS source tree integrations/opensips/build.sh uses (target/opensips/src-<sha>/, which
# build.sh creates first: this script runs it), so the two modules load into the same opensips
# binary as nol.so.
# Needs libcurl4-openssl-dev (rest_client) and libjson-c-dev (json): installed with apt when
# missing. The result lands in target/opensips/recipe-<source sha>/ (lib/modules/rest_client.so,
# lib/modules/json.so), built once per source checksum (NOL_OPENSIPS_WORK moves target/opensips).
# Prints two lines at the end:
#   the build directory of build.sh (sbin/opensips, lib/modules/{tm,sl,...,nol}.so)
#   the recipe's module directory   (rest_client.so, json.so)
# Not part of CI; integrations/opensips/build.sh is not changed by it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${NOL_OPENSIPS_WORK:-$repo/target/opensips}"
MODS="rest_client json"

log() { printf '[opensips recipe build] %s\n' "$*" >&2; }

# -- 1. the libraries the two modules link -----------------------------------------------------
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
for p in libcurl4-openssl-dev libjson-c-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# -- 2. OpenSIPS core + nol (and the source tree) through build.sh ----------------------------
build="$(bash "$repo/integrations/opensips/build.sh" | tail -n1)"
# build.sh names its key <source sha16>-<module hash>: take the tree of the same source
sha16="$(basename "$build" | cut -d- -f1)"
src_root="$work/src-$sha16"
[ -f "$src_root/.built" ] || { log "no built source tree at $src_root"; exit 1; }
src="$(cat "$src_root/.built")"

# -- 3. rest_client + json, once per source checksum and library versions ----------------------
libs="$(dpkg-query -W -f='${Version}' libcurl4-openssl-dev libjson-c-dev)"
key_sum="$(printf '%s\n%s\n' "$MODS" "$libs" | sha256sum | cut -c1-8)"
out="$work/recipe-$sha16-$key_sum"
if [ ! -f "$out/.ready" ]; then
  log "make modules module=\"$MODS\" in $src"
  make -C "$src" FASTER=1 modules module="$MODS" >&2
  rm -rf "$out"
  mkdir -p "$out/lib/modules"
  for m in $MODS; do
    install -m 644 "$src/modules/$m/$m.so" "$out/lib/modules/$m.so"
  done
  touch "$out/.ready"
  log "built $out"
fi
echo "$build"
echo "$out/lib/modules"
