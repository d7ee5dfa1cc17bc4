#!/usr/bin/env bash
# Builds the Kamailio module nol.so on a fresh Debian 12 machine:
#   1. installs Kamailio 5.6 from Debian (and the build tools, and Kamailio's source package);
#   2. builds libnol (release, libnol.a) from this repository;
#   3. builds the module inside Debian's Kamailio source tree (src/modules/nol), configured
#      exactly as Debian configures its own build, so nol.so loads into Debian's kamailio.
#
# Kamailio's source is kept outside the repository's tracked files, under
# target/kamailio/ (override with NOL_KAMAILIO_WORK). Re-running only rebuilds what changed.
# Prints the path of the built module on its last line.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${NOL_KAMAILIO_WORK:-$repo/target/kamailio}"

log() { printf '[kamailio build] %s\n' "$*" >&2; }

log "dependencies (apt)"
bash "$here/setup-deps.sh" >&2

log "libnol (cargo build --release -p nol-ffi)"
(cd "$repo" && cargo build --release -p nol-ffi >&2)
nol_lib="${CARGO_TARGET_DIR:-$repo/target}/release"
[ -f "$nol_lib/libnol.a" ] || { log "no $nol_lib/libnol.a"; exit 1; }
[ -f "$repo/include/nol.h" ] || { log "no include/nol.h (the C ABI, issue 5)"; exit 1; }

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

# Debian's own flags (debian/rules): the module must match the kamailio binary it loads into.
cc_opts="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS) -DVERSION_NODATE"
ld_opts="$(dpkg-buildflags --get LDFLAGS)"
if [ ! -f "$src/src/config.mak" ]; then
  log "configure Kamailio's build as Debian does"
  make -C "$src" cfg prefix=/usr cfg_target=/etc/kamailio/ FLAVOUR=kamailio \
    group_include=kstandard CC_EXTRA_OPTS="$cc_opts" LD_EXTRA_OPTS="$ld_opts" >&2
fi

mod="$src/src/modules/nol"
mkdir -p "$mod"
for f in "$here"/module/*; do
  cmp -s "$f" "$mod/$(basename "$f")" || cp "$f" "$mod/"
done
# libnol.a is no make prerequisite of nol.so: relink when it changed.
if [ -f "$mod/nol.so" ] && [ "$nol_lib/libnol.a" -nt "$mod/nol.so" ]; then rm -f "$mod/nol.so"; fi
if [ -f "$mod/nol.so" ] && [ "$repo/include/nol.h" -nt "$mod/nol.so" ]; then rm -f "$mod"/*.o "$mod/nol.so"; fi

log "module (make modules modules=src/modules/nol)"
make -C "$src" modules modules=src/modules/nol \
  NOL_INCLUDE="$repo/include" NOL_LIB="$nol_lib" >&2

out="$work/modules"
mkdir -p "$out"
cp "$mod/nol.so" "$out/nol.so"
log "built $out/nol.so"
echo "$out/nol.so"
