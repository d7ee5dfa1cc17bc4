#!/usr/bin/env bash
# Installs libnol as a C library: include/nol.h, libnol.so (with its SONAME links), libnol.a
# and lib/pkgconfig/nol.pc under PREFIX (default /usr/local; DESTDIR is honoured for packaging).
#   scripts/install-c.sh [PREFIX]        release build (NOL_PROFILE=debug for a debug build)
# Then: cc app.c $(pkg-config --cflags --libs nol)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PREFIX="${1:-/usr/local}"
PROFILE="${NOL_PROFILE:-release}"
DEST="${DESTDIR:-}${PREFIX}"

if [ "$PROFILE" = release ]; then
  cargo build --locked --release -p nol-ffi
else
  cargo build --locked -p nol-ffi
fi
BUILD="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE"
VERSION="$(sed -n 's/^#define NOL_VERSION "\(.*\)"$/\1/p' include/nol.h)"
MAJOR="${VERSION%%.*}"
# What a static link needs besides libnol.a, as rustc reports it for this target.
PRIVATE_LIBS="$(cargo rustc --locked -q -p nol-ffi --lib --crate-type staticlib \
  $([ "$PROFILE" = release ] && echo --release) -- --print native-static-libs 2>&1 \
  | sed -n 's/.*native-static-libs: //p' | tail -1)"

install -d "$DEST/include" "$DEST/lib/pkgconfig"
install -m 644 include/nol.h "$DEST/include/nol.h"
install -m 755 "$BUILD/libnol.so" "$DEST/lib/libnol.so.$VERSION"
ln -sf "libnol.so.$VERSION" "$DEST/lib/libnol.so.$MAJOR"
ln -sf "libnol.so.$MAJOR" "$DEST/lib/libnol.so"
install -m 644 "$BUILD/libnol.a" "$DEST/lib/libnol.a"
sed -e "s|@PREFIX@|$PREFIX|" -e "s|@VERSION@|$VERSION|" -e "s|@PRIVATE_LIBS@|$PRIVATE_LIBS|" \
  nol-ffi/nol.pc.in >"$DEST/lib/pkgconfig/nol.pc"
echo "installed libnol $VERSION into $DEST"
