#!/usr/bin/env bash
# The C test suite of libnol's C ABI: builds libnol and the sandbox, compiles tests/c/test_nol.c
# with -Wall -Wextra -Werror, and runs it three ways against a fresh sandbox: plain (against
# libnol.so, and against libnol.a), under valgrind (no leaks, no invalid reads: any error fails),
# and under AddressSanitizer. Usage: tests/c/run.sh [plain|static|valgrind|asan]... (all by default)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
MODES=("$@")
[ ${#MODES[@]} -eq 0 ] && MODES=(plain static valgrind asan)

CC="${CC:-cc}"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -g -O1 -pthread -I "$ROOT/include")
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
OUT="$TARGET/c-tests"
mkdir -p "$OUT"

echo "== building libnol and the sandbox"
cargo build --locked -p nol-ffi -p nol-cli

# start_sandbox NAME ARGS...: a sandbox on a free port; sets NAME_URL and NAME_KEY (the path of
# its public key PEM).
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
start_sandbox() {
  local name="$1" log="$OUT/sandbox-$1.log"
  shift
  "$TARGET/nol" sandbox --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    grep -q '^public key:' "$log" && break
    sleep 0.1
  done
  local url key
  url="$(sed -n 's/^sandbox listening on //p' "$log")"
  key="$(sed -n 's/^public key: //p' "$log")"
  [ -n "$url" ] && [ -n "$key" ] || { cat "$log"; exit 1; }
  printf -v "${name}_URL" '%s' "$url"
  printf -v "${name}_KEY" '%s' "$key"
}
start_sandbox MAIN
export NOL_TEST_BASE_URL="$MAIN_URL" NOL_TEST_PUBLIC_KEY="$MAIN_KEY"
echo "sandbox at $NOL_TEST_BASE_URL"
# The non-blocking storms also run against a hanging sandbox and a slow but healthy one
# (answers after 250 ms; `--delay-ms` is skipped, with a notice, by a CLI without it).
start_sandbox HANG --fault hang
export NOL_TEST_HANG_URL="$HANG_URL"
echo "hanging sandbox at $NOL_TEST_HANG_URL"
if [[ "$("$TARGET/nol" sandbox --help)" == *--delay-ms* ]]; then
  start_sandbox SLOW --delay-ms 250
  export NOL_TEST_SLOW_URL="$SLOW_URL" NOL_TEST_SLOW_PUBLIC_KEY="$SLOW_KEY"
  echo "slow sandbox (250 ms) at $NOL_TEST_SLOW_URL"
fi
# libnol.so carries the SONAME libnol.so.0: give the loader that name next to the tests.
ln -sf "$TARGET/libnol.so" "$OUT/libnol.so.0"

# What a program linking libnol.a statically needs besides it: what rustc prints for it
# (`--print native-static-libs`, which scripts/install-c.sh asks and writes into nol.pc),
# written out here so that the test needs no second build.
static_libs() {
  echo "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
}

echo
echo "== nol.h compiles alone as C99 and as C++11 (-pedantic -Werror)"
printf '#include "nol.h"\nint main(void) { return nol_version() == 0; }\n' >"$OUT/header.c"
"$CC" -std=c99 -pedantic -Wall -Wextra -Werror -I "$ROOT/include" -fsyntax-only "$OUT/header.c"
if command -v c++ >/dev/null; then
  cp "$OUT/header.c" "$OUT/header.cpp"
  c++ -std=c++11 -pedantic -Wall -Wextra -Werror -I "$ROOT/include" -fsyntax-only "$OUT/header.cpp"
fi

fail=0
for mode in "${MODES[@]}"; do
  echo
  echo "== C tests: $mode"
  case "$mode" in
    plain)
      "$CC" "${CFLAGS[@]}" tests/c/test_nol.c -L "$TARGET" -Wl,-rpath,"$OUT" -lnol -o "$OUT/test_nol"
      "$OUT/test_nol" || fail=1
      ;;
    static)
      # shellcheck disable=SC2046
      "$CC" "${CFLAGS[@]}" tests/c/test_nol.c "$TARGET/libnol.a" $(static_libs) -o "$OUT/test_nol_static"
      "$OUT/test_nol_static" || fail=1
      ;;
    valgrind)
      command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)"; exit 1; }
      "$CC" "${CFLAGS[@]}" tests/c/test_nol.c -L "$TARGET" -Wl,-rpath,"$OUT" -lnol -o "$OUT/test_nol"
      # 1. Everything, leaks included: any invalid access, uninitialised read or definite leak
      #    fails. ("Possibly lost" is not counted: the numbering metadata, a process-wide
      #    static, is held by interior pointers.) The fork test is left out of this run: a
      #    forked child inherits the memory of the parent's threads, which fork() does not
      #    copy and which only those threads referenced, so every child "leaks" it.
      #    The non-blocking storms start 300 lookups each (2000 elsewhere) with 64 requests out
      #    at once (512 elsewhere): valgrind runs at most 500 threads, and ten times slower.
      NOL_TEST_ASYNC_N=300 NOL_TEST_ASYNC_IN_FLIGHT=64 NOL_TEST_SLACK_MS=1500 NOL_TEST_ONLY=no-fork valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        "$OUT/test_nol" || fail=1
      # 2. The fork test alone, the child checked for invalid accesses (it exits 99 on any,
      #    and the parent fails), without a leak check.
      NOL_TEST_ASYNC_N=300 NOL_TEST_ASYNC_IN_FLIGHT=64 NOL_TEST_SLACK_MS=1500 NOL_TEST_ONLY=fork valgrind --quiet --error-exitcode=99 --leak-check=no \
        "$OUT/test_nol" || fail=1
      ;;
    asan)
      "$CC" "${CFLAGS[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
        tests/c/test_nol.c -L "$TARGET" -Wl,-rpath,"$OUT" -lnol -o "$OUT/test_nol_asan"
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$OUT/test_nol_asan" || fail=1
      ;;
    *)
      echo "unknown mode $mode"; exit 2 ;;
  esac
done
exit $fail
