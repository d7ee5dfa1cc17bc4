#!/usr/bin/env bash
# libnol lookups side by side with curl-per-call and Python requests + the seed's verify, in
# one run against one sandbox. Needs curl and python3; installs requests and cryptography.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install --quiet --disable-pip-version-check requests cryptography
cargo run --release --locked -p nol-bench-lookup
