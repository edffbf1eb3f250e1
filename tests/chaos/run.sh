#!/usr/bin/env bash
# The fault suite's long run: the short run's test (cmd/duet/tests/it/chaos.rs)
# with as many rounds as fit in --minutes (a round is about 10 s), from
# --seed. Needs root (network namespaces, iptables).
#   tests/chaos/run.sh --minutes 30 --seed 7
set -euo pipefail
minutes=10
seed=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "usage: $0 [--minutes M] [--seed N]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/duet-target}"
cargo build --workspace --all-targets --quiet
it=$(ls -t "$CARGO_TARGET_DIR"/debug/deps/it-* | grep -v '\.d$' | head -1)
cd cmd/duet
DUET_CHAOS_SEED="$seed" DUET_CHAOS_ROUNDS=$((minutes * 6)) DUET_CHAOS_RECOVERY_SECS=10 \
  "$it" chaos:: --nocapture --test-threads 1
