#!/usr/bin/env python3
"""Time to repair after a node loss, and to rebalance after a join, for a
table of about --mib MiB (issue 23's measure), on real `duet serve`
processes on loopback.

Five nodes founded together with max_replicas = 3 load the tables
(sysbench `oltp_read_write`'s schema, a prepare thread per table) and
settle. Then node 5 is
killed: the script times how long the placement driver takes to declare it
down (max_store_down_time_secs, set low here) and how long from then until
every region has three voters on the four others again. Then node 6 joins
with --join: the script times how long until its share (within 20 % of
the mean region count) has moved to it and no operator is left running.
Prints each phase, the bytes moved, and the logical size of the table.

    python3 bench/repair_time.py --duet-bin /var/tmp/duet-target/release/duet --mib 1024
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pymysql

ROW_BYTES = 190  # sysbench's id, k, c CHAR(120), pad CHAR(60), as Duet stores them


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, root, node_id, binary, env):
        self.id = node_id
        self.dir = os.path.join(root, f"n{node_id}")
        self.mysql, self.status, self.raft = free_port(), free_port(), free_port()
        self.binary, self.env, self.proc = binary, env, None

    def start(self, *args):
        log = open(self.dir + ".log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.dir, "--node-id", str(self.id),
             "--mysql-addr", f"127.0.0.1:{self.mysql}",
             "--status-addr", f"127.0.0.1:{self.status}",
             "--raft-addr", f"127.0.0.1:{self.raft}", *args],
            stdout=log, stderr=log, env=self.env)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def cluster(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.status}/cluster", timeout=5) as r:
                return json.load(r)
        except OSError:
            return None

    def wait_sql(self, deadline=120):
        end = time.time() + deadline
        while time.time() < end:
            try:
                pymysql.connect(host="127.0.0.1", port=self.mysql, user="root").close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        raise SystemExit(f"node {self.id} did not start")


def placed(report, allowed):
    regions = report.get("regions") or []
    return bool(regions) and all(
        len(set(r["voters"])) == 3 and set(r["voters"]) <= set(allowed) for r in regions)


def state(report, store):
    return next((s["state"] for s in report["stores"] if s["id"] == store), None)


def voters_on(report, store):
    return sum(store in r["voters"] for r in report["regions"])


def wait_for(node, what, done, limit):
    start = time.time()
    while time.time() - start < limit:
        report = node.cluster()
        if report and done(report):
            return time.time() - start, report
        time.sleep(0.5)
    raise SystemExit(f"{what}: not reached in {limit} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duet-bin", required=True)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--down-secs", type=int, default=10)
    args = ap.parse_args()
    rows = args.mib * 1024 * 1024 // ROW_BYTES // args.tables
    env = dict(os.environ, DUET_MAX_REPLICAS="3", DUET_PD_HEARTBEAT_MS="1000",
               DUET_MAX_STORE_DOWN_TIME_SECS=str(args.down_secs),
               DUET_REGION_SPLIT_KEYS=str(max(rows // 8, 10000)),
               DUET_SPLIT_CHECK_INTERVAL_SECS="2", DUET_LOG="warn")
    root = tempfile.mkdtemp(prefix="duet-repair.")
    nodes = [Node(root, i, args.duet_bin, env) for i in range(1, 7)]
    try:
        founders = ",".join(f"{n.id}=127.0.0.1:{n.raft}" for n in nodes[:5])
        for n in nodes[:5]:
            n.start("--initial-cluster", founders)
        for n in nodes[:5]:
            n.wait_sql()
        conn = pymysql.connect(host="127.0.0.1", port=nodes[0].mysql, user="root", autocommit=True)
        conn.cursor().execute("CREATE DATABASE sbtest")
        conn.close()
        t = time.time()
        # sysbench prepares each table on a thread of its own.
        loader = subprocess.run(
            ["sysbench", "oltp_read_write", "--mysql-host=127.0.0.1",
             f"--mysql-port={nodes[0].mysql}", "--mysql-user=root", "--mysql-db=sbtest",
             f"--tables={args.tables}", f"--table-size={rows}", f"--threads={args.tables}",
             "prepare"], stdout=subprocess.DEVNULL)
        if loader.returncode != 0:
            raise SystemExit("sysbench prepare failed")
        load = time.time() - t
        settle, report = wait_for(nodes[0], "placed on five stores", lambda r: placed(r, [1, 2, 3, 4, 5])
                                  and not r.get("operators") and all(voters_on(r, s) for s in range(1, 6)), 1800)
        table_bytes = sum(r["bytes"] for r in report["regions"])
        print(f"loaded {args.tables} x {rows} rows (~{args.mib} MiB of rows) in {load:.0f} s; "
              f"{len(report['regions'])} regions, {table_bytes / 2**20:.0f} MiB as the regions report it; "
              f"placed in {settle:.0f} s more")

        on5 = voters_on(report, 5)
        nodes[4].kill()
        down, _ = wait_for(nodes[0], "store 5 down", lambda r: state(r, 5) == "down", 600)
        repair, report = wait_for(nodes[0], "repaired on four stores",
                                  lambda r: placed(r, [1, 2, 3, 4]), 3600)
        moved = on5 * table_bytes / max(len(report["regions"]), 1)
        print(f"node 5 killed (it held {on5} voters, ~{moved / 2**20:.0f} MiB): declared down after "
              f"{down:.0f} s (max_store_down_time_secs = {args.down_secs}); "
              f"every region back to 3 voters {repair:.0f} s later "
              f"({moved / 2**20 / max(repair, 1):.1f} MiB/s)")

        nodes[5].start("--join", f"127.0.0.1:{nodes[0].raft}")
        nodes[5].wait_sql()

        def balanced(r):
            live = [1, 2, 3, 4, 6]
            mean = sum(voters_on(r, s) for s in live) / len(live)
            return state(r, 6) == "up" and voters_on(r, 6) >= 0.8 * mean and not r.get("operators")

        rebalance, report = wait_for(nodes[0], "node 6 balanced", balanced, 3600)
        on6 = voters_on(report, 6)
        got = on6 * table_bytes / max(len(report["regions"]), 1)
        print(f"node 6 joined: it holds {on6} voters (~{got / 2**20:.0f} MiB) "
              f"{rebalance:.0f} s after it answered SQL ({got / 2**20 / max(rebalance, 1):.1f} MiB/s)")
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
