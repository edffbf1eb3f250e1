#!/usr/bin/env bash
# The fault suite's long run: the short run's tests (cmd/duet/tests/it/chaos.rs)
# with as many rounds as fit in --minutes (a round is about 10 s) or exactly
# --rounds, over --nodes nodes (3 or 5), from --seed; the single node's kill -9
# test with --kills cycles (default 50). Needs root (network namespaces,
# iptables, tmpfs) and Debian's faketime (scripts/setup.sh installs it).
#   tests/chaos/run.sh --minutes 30 --seed 7
#   tests/chaos/run.sh --rounds 100 --nodes 5 --seed 11
set -euo pipefail
minutes=10
rounds=""
seed=1
nodes=3
kills=50
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --kills) kills="$2"; shift 2 ;;
    *) echo "usage: $0 [--minutes M | --rounds R] [--nodes N] [--seed S] [--kills K]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/../.."
./scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/duet-target}"
cargo build --workspace --all-targets --quiet
it=$(ls -t "$CARGO_TARGET_DIR"/debug/deps/it-* | grep -v '\.d$' | head -1)
cd cmd/duet
DUET_CHAOS_SEED="$seed" DUET_CHAOS_ROUNDS="${rounds:-$((minutes * 6))}" \
  DUET_CHAOS_NODES="$nodes" DUET_CHAOS_KILLS="$kills" DUET_CHAOS_RECOVERY_SECS=10 \
  "$it" chaos:: --nocapture --test-threads 1
