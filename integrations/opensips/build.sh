#!/usr/bin/env bash
# Builds OpenSIPS 3.6.8 with the few modules the redirect server needs, plus the in-tree module
# `nol` (integrations/opensips/module, copied into modules/nol/) linked statically against
# libnol, on a fresh Debian 12 machine:
#   1. installs the build tools with apt when missing (build-essential bison flex libncurses-dev
#      pkg-config);
#   2. builds libnol (release) and installs it into a private prefix (scripts/install-c.sh);
#   3. checks the OpenSIPS source's sha256, extracts it once per checksum and builds the core and
#      the modules once (target/opensips/src-<sha>/);
#   4. builds modules/nol and installs binary + modules into target/opensips/<key>/, keyed by the
#      source's checksum and the hash of the module's source and libnol: a rerun with nothing
#      changed is instant.
# Environment: NOL_OPENSIPS_TARBALL (default ../shared/vendor/opensips-3.6.8.tar.xz from the
# project root), NOL_OPENSIPS_WORK (default target/opensips).
# Prints, on its last line, the directory the tests need: <key>/sbin/opensips and
# <key>/lib/modules/*.so (tm, sl, maxfwd, sipmsgops, mi_fifo, cfgutils, nol).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${NOL_OPENSIPS_WORK:-$repo/target/opensips}"
tarball="${NOL_OPENSIPS_TARBALL:-$repo/../shared/vendor/opensips-3.6.8.tar.xz}"
want_sha=f2dad7921bbea0f380ebd313f2d3305ed57a9c7206587f262f0806b54e2696a9
MODS="sl tm maxfwd sipmsgops mi_fifo cfgutils"

log() { printf '[opensips build] %s\n' "$*" >&2; }

# -- 1. build tools --------------------------------------------------------------------------
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
for p in build-essential bison flex libncurses-dev pkg-config xz-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# -- 2. libnol -------------------------------------------------------------------------------
prefix="$work/libnol"
mkdir -p "$work"
log "libnol (scripts/install-c.sh $prefix)"
bash "$repo/scripts/install-c.sh" "$prefix" >&2
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
nol_cflags="$(pkg-config --cflags nol)"
nol_libs="$(pkg-config --static --libs nol | sed "s#-lnol\b#$prefix/lib/libnol.a#")"

# -- 3. OpenSIPS source and core ------------------------------------------------------------
[ -f "$tarball" ] || { log "missing $tarball (set NOL_OPENSIPS_TARBALL)"; exit 1; }
sha="$(sha256sum "$tarball" | cut -d' ' -f1)"
if [ "$sha" != "$want_sha" ]; then
  log "sha256 of $tarball is $sha, expected $want_sha"
  exit 1
fi
src_root="$work/src-${sha:0:16}"
src="$src_root/opensips-3.6.8"
if [ ! -f "$src_root/.built" ]; then
  log "extract and build OpenSIPS core + $MODS (about a minute)"
  rm -rf "$src_root"
  mkdir -p "$src_root"
  tar -xJf "$tarball" -C "$src_root"
  [ -d "$src" ] || src="$(find "$src_root" -maxdepth 1 -mindepth 1 -type d | head -n1)"
  make -C "$src" -j"$(nproc)" FASTER=1 app modules module="$MODS" >&2
  echo "$src" >"$src_root/.built"
fi
src="$(cat "$src_root/.built")"

# -- 4. the nol module, into a directory keyed by everything it is made of --------------------
mod_sum="$( (cat "$here"/module/*; cat "$prefix/lib/libnol.a" "$prefix/include/nol.h"; \
             echo "$MODS") | sha256sum | cut -c1-16)"
key="$work/${sha:0:16}-$mod_sum"
if [ ! -f "$key/.ready" ]; then
  log "module nol (make modules module=nol)"
  mkdir -p "$src/modules/nol"
  rm -f "$src/modules/nol"/*.o "$src/modules/nol/nol.so"
  cp "$here"/module/* "$src/modules/nol/"
  make -C "$src" FASTER=1 modules module=nol NOL_CFLAGS="$nol_cflags" NOL_LIBS="$nol_libs" >&2
  rm -rf "$key"
  mkdir -p "$key/sbin" "$key/lib/modules"
  install -m 755 "$src/opensips" "$key/sbin/opensips"
  for m in $MODS nol; do
    install -m 644 "$src/modules/$m/$m.so" "$key/lib/modules/$m.so"
  done
  touch "$key/.ready"
  log "built $key"
fi
echo "$key"
