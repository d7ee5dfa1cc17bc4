#!/usr/bin/env bash
# Builds the Kamailio module nol.so on a fresh Debian 12 machine:
#   1. installs Kamailio 5.6 from Debian (and the build tools, and Kamailio's source package);
#   2. builds libnol (release) from this repository and installs it into a private prefix
#      with scripts/install-c.sh (nol.h, libnol.a, nol.pc);
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

# libnol installed like any C library (header, libnol.a/.so, nol.pc) into a private prefix,
# then found with pkg-config, as an SBC vendor's build would.
prefix="$work/libnol"
log "libnol (scripts/install-c.sh $prefix)"
mkdir -p "$work"
bash "$repo/scripts/install-c.sh" "$prefix" >&2
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
nol_cflags="$(pkg-config --cflags nol)"
# static: libnol.a in place of -lnol, plus what it needs (Libs.private)
nol_libs="$(pkg-config --static --libs nol | sed "s#-lnol\b#$prefix/lib/libnol.a#")"
[ -f "$prefix/lib/libnol.a" ] && [ -f "$prefix/include/nol.h" ] || { log "libnol did not install"; exit 1; }

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
# libnol is no make prerequisite of nol.so: rebuild when it changed.
stamp="$mod/.libnol.sum"
sum="$(cat "$prefix/lib/libnol.a" "$prefix/include/nol.h" | md5sum)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then rm -f "$mod"/*.o "$mod/nol.so"; fi

log "module (make modules modules=src/modules/nol)"
make -C "$src" modules modules=src/modules/nol \
  NOL_CFLAGS="$nol_cflags" NOL_LIBS="$nol_libs" >&2
echo "$sum" >"$stamp"

out="$work/modules"
mkdir -p "$out"
cp "$mod/nol.so" "$out/nol.so"
log "built $out/nol.so"
echo "$out/nol.so"
