#!/usr/bin/env bash
# Builds Duet and runs every test: Rust unit and integration tests (real
# servers, mysql_async), then the Python client suite (mariadb CLI, PyMySQL,
# mysql-connector-python) against the real `duet` binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

cargo build --workspace --all-targets
cargo test --workspace
DUET_BIN="$CARGO_TARGET_DIR/debug/duet" python3 -m pytest -q -p no:cacheprovider tests/python
