#!/usr/bin/env bash
# One sysbench workload against one `duet` binary, first as a single node
# (one replica per region), then as three processes founded together
# (three replicas per region), with the same number of client threads in
# all: one sysbench on the single node, one on each of the three nodes
# (so requests also arrive at followers, which forward to the leaders).
# Prints the transactions per second of each, and the ratio. Loopback
# only: MySQL ports 4411-4413, status 10411-10413, raft 20411-20413.
#
#   bench/replicas_ab.sh oltp_insert DUET [THREADS_PER_NODE] [SECONDS]
set -euo pipefail
workload=$1
bin=$2
threads=${3:-2}
secs=${4:-20}
root=$(mktemp -d /tmp/duet-replicas.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT

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

# One node.
start 1 ""
ready 4411
mariadb -h127.0.0.1 -P4411 -uroot -e "CREATE DATABASE sbtest"
sb 4411 1 prepare >/dev/null
one=$(sb 4411 $((threads * 3)) run | tps_of)
for p in "${pids[@]}"; do kill "$p"; done
wait 2>/dev/null || true
pids=()
rm -rf "$root"/n* "$root"/log*

# Three nodes, three replicas of every region.
cluster="1=127.0.0.1:20411,2=127.0.0.1:20412,3=127.0.0.1:20413"
for id in 1 2 3; do start "$id" "$cluster"; done
for id in 1 2 3; do ready "441$id"; done
mariadb -h127.0.0.1 -P4411 -uroot -e "CREATE DATABASE sbtest"
sb 4411 1 prepare >/dev/null
clients=()
for id in 1 2 3; do
    sb "441$id" "$threads" run >"$root/sb$id" &
    clients+=($!)
done
wait "${clients[@]}"
three=0
for id in 1 2 3; do
    t=$(tps_of <"$root/sb$id")
    three=$(python3 -c "print(round($three + ${t:-0}, 2))")
done
echo "$workload, $((threads * 3)) client threads, ${secs}s:"
echo "  1 node,  1 replica : $one tps"
echo "  3 nodes, 3 replicas: $three tps (clients spread over the nodes)"
python3 -c "print('  ratio 3/1: %.2f' % ($three / $one))"
