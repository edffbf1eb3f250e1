#!/usr/bin/env bash
# Runs one sysbench workload against each given `duet` binary in turn, each
# `duet serve` on a fresh data directory (loopback ports 4401/10401), and
# prints each binary's transactions per second. Give binaries in
# alternation (A B A B) to see through the noise of a shared machine.
#
#   bench/sysbench_ab.sh oltp_insert OLD_DUET NEW_DUET OLD_DUET NEW_DUET
set -euo pipefail
workload=$1
shift
for bin in "$@"; do
    dir=$(mktemp -d /tmp/duet-ab.XXXXXX)
    "$bin" serve --data-dir "$dir/d" --mysql-addr 127.0.0.1:4401 \
        --status-addr 127.0.0.1:10401 >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do
        mariadb -h127.0.0.1 -P4401 -uroot -e "SELECT 1" >/dev/null 2>&1 && break
        sleep 0.2
    done
    mariadb -h127.0.0.1 -P4401 -uroot -e "CREATE DATABASE sbtest"
    sb=(sysbench "$workload" --mysql-host=127.0.0.1 --mysql-port=4401 --mysql-user=root
        --mysql-db=sbtest --tables=1 --table-size=10000 --threads=4 --time=15
        --report-interval=0 --db-ps-mode=auto)
    "${sb[@]}" prepare >/dev/null
    tps=$("${sb[@]}" run | sed -n 's/.*transactions:.*(\(.*\) per sec.)/\1/p')
    echo "$bin $workload: $tps tps"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
done
