#!/usr/bin/env bash
# Builds Asterisk 22.10.1 (the vendor README's minimal build: AGI, FastAGI, CURL(), channel
# originate over Local channels, out-of-tree modules) and the module res_nol.so on libnol, on a
# fresh Debian 12 machine:
#   1. installs the build packages that are missing (apt);
#   2. checks the source tarball's sha256 and builds Asterisk into a cache directory keyed by
#      that checksum, target/asterisk/<key>/ (override the root with NOL_ASTERISK_WORK):
#      reused when present, so CI rebuilds Asterisk only when the source changes;
#   3. builds libnol (release) into a private prefix with scripts/install-c.sh;
#   4. builds res_nol.so against Asterisk's headers, libnol.a linked in (every time: ~1 s).
# The tarball: NOL_ASTERISK_TARBALL, default ../shared/vendor/asterisk-22.10.1.tar.xz from the
# repository's root. Prints, on its last three lines: the Asterisk prefix, the modules dir and
# the path of res_nol.so.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tarball="${NOL_ASTERISK_TARBALL:-$repo/../shared/vendor/asterisk-22.10.1.tar.xz}"
want_sha="${NOL_ASTERISK_SHA256:-1bf81f2a0d7125fae008c1906d19bbb638dfe1385d45d0146d68f74874bd2811}"
work="${NOL_ASTERISK_WORK:-$repo/target/asterisk}"
jobs="${NOL_JOBS:-$(nproc 2>/dev/null || echo 2)}"

log() { printf '[asterisk build] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
pkgs=(build-essential pkg-config libedit-dev libjansson-dev libxml2-dev libxslt1-dev
      libsqlite3-dev uuid-dev libssl-dev libcurl4-openssl-dev libncurses-dev xz-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

[ -f "$tarball" ] || { log "no Asterisk source at $tarball (set NOL_ASTERISK_TARBALL)"; exit 1; }
sha="$(sha256sum "$tarball" | cut -d' ' -f1)"
if [ "$sha" != "$want_sha" ]; then
  log "sha256 of $tarball is $sha, expected $want_sha"; exit 1
fi
# The modules built (menuselect) are part of the cache key: a build with other modules is
# another build.
modules=(OPTIONAL_API pbx_config res_agi res_speech res_clioriginate app_verbose app_system
         app_echo app_dial app_exec bridge_simple func_callerid func_strings func_logic
         func_curl res_curl)
key="${sha:0:16}-$(printf '%s\n' "${modules[@]}" | sha256sum | cut -c1-8)"
cache="$work/$key"
prefix="$cache/prefix"

if [ -f "$cache/.built" ] && [ -x "$prefix/sbin/asterisk" ] && [ -f "$prefix/include/asterisk.h" ]; then
  log "Asterisk cached in $cache"
else
  log "building Asterisk from $tarball into $cache (a few minutes)"
  rm -rf "$cache"
  mkdir -p "$cache/src"
  tar -xJf "$tarball" -C "$cache/src" --strip-components=1
  (
    cd "$cache/src"
    ./configure --prefix="$prefix" --without-pjproject-bundled --without-pjproject \
      --with-jansson-bundled=no --with-libjwt-bundled=no --disable-xmldoc >"$cache/configure.log" 2>&1 \
      || { tail -n 40 "$cache/configure.log" >&2; exit 1; }
    make menuselect.makeopts >&2
    menuselect/menuselect --disable-all menuselect.makeopts >&2
    menuselect/menuselect $(printf -- '--enable %s ' "${modules[@]}") menuselect.makeopts >&2
    make -j"$jobs" >"$cache/make.log" 2>&1 || { tail -n 60 "$cache/make.log" >&2; exit 1; }
    make install >"$cache/install.log" 2>&1 || { tail -n 40 "$cache/install.log" >&2; exit 1; }
    make install-headers >>"$cache/install.log" 2>&1
  )
  rm -rf "$cache/src"    # 23 MB installed is what the tests need; the tree is 300+ MB
  touch "$cache/.built"
  log "Asterisk installed in $prefix"
fi

# libnol installed like any C library into a private prefix, found with pkg-config.
nolprefix="$work/libnol"
log "libnol (scripts/install-c.sh $nolprefix)"
bash "$repo/scripts/install-c.sh" "$nolprefix" >&2
export PKG_CONFIG_PATH="$nolprefix/lib/pkgconfig"
nol_cflags="$(pkg-config --cflags nol)"
nol_libs="$(pkg-config --static --libs nol | sed "s#-lnol\b#$nolprefix/lib/libnol.a#")"

out="$cache/modules"
mkdir -p "$out"
log "module res_nol.so"
# shellcheck disable=SC2086
gcc -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-old-style-declaration \
  -Wno-missing-field-initializers -Wno-sign-compare -Werror -shared -fPIC -pthread \
  -D_GNU_SOURCE -I"$prefix/include" $nol_cflags \
  -DAST_MODULE=\"res_nol\" -DAST_MODULE_SELF_SYM=__internal_res_nol_self \
  "$here/module/res_nol.c" -o "$out/res_nol.so.tmp" \
  -Wl,--exclude-libs,ALL $nol_libs
mv "$out/res_nol.so.tmp" "$out/res_nol.so"
log "built $out/res_nol.so"
echo "$prefix"
echo "$prefix/lib/asterisk/modules"
echo "$out/res_nol.so"
