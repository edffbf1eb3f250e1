#!/usr/bin/env bash
# One sysbench workload against one `duet` binary as one node (one replica
# per region), then three and five processes founded together with
# max_replicas = 3, with the same number of client threads in all, spread
# over the nodes (so requests also arrive at nodes that hold no replica of
# a region, or only a follower, and cross to the leader). Regions are small
# (DUET_REGION_SPLIT_KEYS, 4000 here) so that the placement driver has
# regions to spread; after the load each run waits for placement to settle.
# Prints the transactions per second of each, the ratios, and the bytes of
# each node's row store. Loopback only: MySQL ports 4411-4415, status
# 10411-10415, raft 20411-20415.
#
#   [NODES="3 5"] bench/replicas_ab.sh oltp_insert DUET [THREADS] [SECONDS]
set -euo pipefail
workload=$1
bin=$2
threads=${3:-6}
secs=${4:-20}
root=$(mktemp -d /tmp/duet-replicas.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT
export DUET_REGION_SPLIT_KEYS=4000 DUET_SPLIT_CHECK_INTERVAL_SECS=1 DUET_PD_HEARTBEAT_MS=500
export DUET_MAX_REPLICAS=3

start() { # id cluster
    local id=$1 cluster=$2
    "$bin" serve --data-dir "$root/n$id" --node-id "$id" \
        --mysql-addr "127.0.0.1:441$id" --status-addr "127.0.0.1:1041$id" \
        --raft-addr "127.0.0.1:2041$id" ${cluster:+--initial-cluster "$cluster"} \
        >"$root/log$id" 2>&1 &
    pids+=($!)
}

ready() { # port
    for _ in $(seq 150); do
        mariadb -h127.0.0.1 -P"$1" -uroot -e "SELECT 1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "node on port $1 did not start" >&2
    return 1
}

sb() { # port threads command
    sysbench "$workload" --mysql-host=127.0.0.1 --mysql-port="$1" --mysql-user=root \
        --mysql-db=sbtest --tables=1 --table-size=10000 --threads="$2" --time="$secs" \
        --report-interval=0 --db-ps-mode=auto --mysql-ignore-errors=all "$3"
}

tps_of() { sed -n 's/.*transactions:.*(\(.*\) per sec.)/\1/p'; }

run() { # nodes -> prints total tps; leaves the row store sizes in $root/bytes$n
    local n=$1 cluster=""
    if [ "$n" -gt 1 ]; then
        cluster=$(for id in $(seq "$n"); do printf '%s=127.0.0.1:2041%s,' "$id" "$id"; done)
        cluster=${cluster%,}
    fi
    for id in $(seq "$n"); do start "$id" "$cluster"; done
    for id in $(seq "$n"); do ready "441$id"; done
    mariadb -h127.0.0.1 -P4411 -uroot -e "CREATE DATABASE sbtest"
    sb 4411 1 prepare >/dev/null
    # Let the regions split and the placement driver spread them.
    sleep $((n > 1 ? 15 : 3))
    local clients=() per=$(( (threads + n - 1) / n )) left=$threads
    for id in $(seq "$n"); do
        local t=$(( left < per ? left : per ))
        left=$((left - t))
        [ "$t" -gt 0 ] || continue
        sb "441$id" "$t" run >"$root/sb$id" &
        clients+=($!)
    done
    wait "${clients[@]}"
    local total=0
    for id in $(seq "$n"); do
        [ -f "$root/sb$id" ] || continue
        t=$(tps_of <"$root/sb$id")
        total=$(python3 -c "print(round($total + ${t:-0}, 2))")
    done
    : >"$root/bytes$n"
    for id in $(seq "$n"); do du -sb "$root/n$id/kv" | cut -f1 >>"$root/bytes$n"; done
    for p in "${pids[@]}"; do kill "$p"; done
    wait 2>/dev/null || true
    pids=()
    rm -rf "$root"/n* "$root"/log* "$root"/sb*
    echo "$total"
}

# NODES picks the cluster sizes to run besides one node (default "3 5").
declare -A tps
for n in 1 ${NODES:-3 5}; do tps[$n]=$(run "$n"); done
echo "$workload, $threads client threads, ${secs}s, max_replicas 3:"
for n in 1 ${NODES:-3 5}; do
    echo "  $n node(s): ${tps[$n]} tps; row store bytes per node $(paste -sd' ' "$root/bytes$n")"
    [ "$n" = 1 ] || python3 -c "print('    ratio $n/1: %.2f' % (${tps[$n]} / ${tps[1]}))"
done
