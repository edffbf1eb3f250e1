#!/usr/bin/env python3
"""Full-scan and filtered-aggregate throughput of the columnar replica
against the row store, in one invocation on one `duet serve`.

Starts `duet serve` on a fresh data directory (loopback ports), loads ROWS
rows, then times each query with `duet_isolation_read_engines` forced to
`row` and to `columnar`, and prints rows/s for each with the
columnar/row ratio. Also measures commit-to-visible delay on the columnar
engine: a row inserted on one connection, polled for on another.

    python3 bench/columnar_scan.py --duet-bin /var/tmp/duet-target/release/duet --rows 1000000
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

import pymysql

QUERIES = {
    "full scan": "SELECT count(*), sum(a), max(c) FROM t",
    "filtered aggregate": "SELECT b, count(*), sum(c) FROM t WHERE a < 100000 GROUP BY b",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port):
    return pymysql.connect(host="127.0.0.1", port=port, user="root", database="test", autocommit=True)


def wait_ready(port, deadline=60):
    end = time.time() + deadline
    while time.time() < end:
        try:
            connect(port).close()
            return
        except pymysql.err.OperationalError:
            time.sleep(0.2)
    raise SystemExit("duet did not start")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--duet-bin", default="/var/tmp/duet-target/release/duet")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    data = tempfile.mkdtemp(prefix="duet-colbench-")
    port, status = free_port(), free_port()
    server = subprocess.Popen(
        [args.duet_bin, "serve"],
        env={**os.environ, "DUET_DATA_DIR": data, "DUET_MYSQL_ADDR": f"127.0.0.1:{port}",
             "DUET_STATUS_ADDR": f"127.0.0.1:{status}", "DUET_LOG": "warn"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port)
        c = connect(port)
        cur = c.cursor()
        cur.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, a INT, b INT, c DECIMAL(12,2))")
        started = time.time()
        batch = 2000
        for lo in range(0, args.rows, batch):
            values = ",".join(
                f"({i},{(i * 7919) % 1000000},{i % 16},{i % 1000}.{i % 100:02d})"
                for i in range(lo, min(lo + batch, args.rows)))
            cur.execute(f"INSERT INTO t VALUES {values}")
        load_s = time.time() - started
        time.sleep(2)  # let compaction settle
        results = {"rows": args.rows, "load_seconds": round(load_s, 1), "queries": {}}
        for name, sql in QUERIES.items():
            per_engine = {}
            answers = {}
            for engine in ("row", "columnar"):
                cur.execute(f"SET duet_isolation_read_engines = '{engine}'")
                times = []
                for _ in range(args.repeat):
                    t0 = time.time()
                    cur.execute(sql)
                    answers[engine] = sorted(cur.fetchall())
                    times.append(time.time() - t0)
                per_engine[engine] = args.rows / statistics.median(times)
            assert answers["row"] == answers["columnar"], f"{name}: the engines differ"
            results["queries"][name] = {
                "row_rows_per_s": round(per_engine["row"]),
                "columnar_rows_per_s": round(per_engine["columnar"]),
                "columnar_over_row": round(per_engine["columnar"] / per_engine["row"], 2),
            }
        # Commit-to-visible on the columnar engine.
        w, r = connect(port), connect(port)
        rc = r.cursor()
        rc.execute("SET duet_isolation_read_engines = 'columnar'")
        w.cursor().execute("CREATE TABLE f (id INT PRIMARY KEY)")
        delays = []
        for i in range(50):
            w.cursor().execute(f"INSERT INTO f VALUES ({i})")
            committed = time.time()
            while True:
                rc.execute(f"SELECT count(*) FROM f WHERE id = {i}")
                if rc.fetchone()[0] == 1:
                    break
            delays.append((time.time() - committed) * 1000)
        results["commit_to_visible_ms"] = {
            "p50": round(statistics.median(delays), 2),
            "max": round(max(delays), 2),
        }
        print(f"{args.rows:,} rows loaded in {load_s:.1f} s")
        print(f"{'query':<20} {'row rows/s':>14} {'columnar rows/s':>16} {'columnar/row':>13}")
        for name, q in results["queries"].items():
            print(f"{name:<20} {q['row_rows_per_s']:>14,} {q['columnar_rows_per_s']:>16,} {q['columnar_over_row']:>13}")
        print(f"commit to visible on the columnar engine: p50 {results['commit_to_visible_ms']['p50']} ms, "
              f"max {results['commit_to_visible_ms']['max']} ms")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
