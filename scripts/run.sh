#!/usr/bin/env bash
# Builds and runs `duet serve` with the embedded default: one node, data in
# ./duet-data, MySQL on 127.0.0.1:4000, status on 127.0.0.1:10080.
# Extra arguments go to `duet serve` (e.g. --config etc/duet.toml).
# It builds the whole workspace the way scripts/test.sh does, so running
# after testing (or the other way round) rebuilds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/duet" serve "$@"
