#!/usr/bin/env bash
# Regenerates include/nol.h from nol-ffi with cbindgen, pinned to the exact version in
# nol-ffi/Cargo.toml (a dev-dependency, so Cargo.lock pins it too): no separate install, and
# the drift test (nol-ffi/tests/header.rs, part of `cargo test`) uses the very same generator.
set -euo pipefail
cd "$(dirname "$0")/.."
NOL_BLESS_HEADER=1 cargo test --locked -p nol-ffi --test header -- committed_header_matches_the_rust
echo "include/nol.h regenerated (cbindgen $(grep -o 'cbindgen = { version = "=[0-9.]*' nol-ffi/Cargo.toml | grep -o '[0-9.]*$'))"
