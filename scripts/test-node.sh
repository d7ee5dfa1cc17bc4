#!/usr/bin/env bash
# The Node package `nol` on a fresh machine: installs its npm tools (pinned, from the lock
# files), builds the native addon from this checkout, fails when the generated index.d.ts or
# index.js drift from what is committed, then runs the tests (node --test) against the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n== %s\n' "$*"; }

command -v node >/dev/null || { echo "node (>= 18) is required"; exit 1; }
command -v npm >/dev/null || { echo "npm is required"; exit 1; }

step "node: npm ci from the committed lock (bindings/node)"
# The lock records every platform's optional packages, so `npm ci` installs exactly it. Should a
# registry refuse the lock (one of these machines' registries once lacked other platforms'
# builds of @napi-rs/lzma, a dependency of @napi-rs/cli), `npm install` resolves the same
# pinned direct dependencies instead of failing the run.
if ! (cd bindings/node && npm ci --no-audit --no-fund); then
  echo "npm ci refused the lock: falling back to npm install"
  (cd bindings/node && npm install --no-audit --no-fund)
fi

step "node: napi build --release"
(cd bindings/node && npm run build)

step "node: generated index.d.ts and index.js are committed as built"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  if ! git -C "$root" diff --exit-code -- bindings/node/index.d.ts bindings/node/index.js; then
    echo "bindings/node/index.d.ts or index.js drifted: run 'npm run build' in bindings/node and commit them"
    exit 1
  fi
else
  echo "not a git checkout: drift check skipped"
fi

step "node: index.d.ts type-checks against typed usage (tsc --strict)"
(cd bindings/node && npm run typecheck)

step "node: the sandbox (nol-cli)"
cargo build -p nol-cli --locked
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
export NOL_BIN="$target_dir/debug/nol"

step "node: example servers (examples/node)"
(cd examples/node && npm ci --no-audit --no-fund)
node --check examples/node/retell-server.mjs
node --check examples/node/vapi-server.mjs

step "node: tests"
(cd bindings/node && node --test --test-concurrency=1 test/*.test.mjs)
