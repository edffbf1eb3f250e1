#!/usr/bin/env python3
"""Full-scan and filtered-aggregate throughput of the columnar replica
against the row store, in one invocation on one `duet serve`.

Starts `duet serve` on a fresh data directory (loopback ports), loads ROWS
rows, then times each query with `duet_isolation_read_engines` forced to
`row` and to `columnar`, and prints rows/s for each with the
columnar/row ratio. Also measures commit-to-visible delay on the columnar
engine under a steady write load (a row inserted on one connection, polled
for on another, while a third inserts batches; plus the server's own
`duet_columnar_commit_to_visible_seconds`), the server's memory (heap vs
mapped files), a restart (how long it takes and whether the replica
came back from its checkpoint with the same answers), a crash
(SIGKILL) after more rows: the replica loads its last checkpoint and
replays the log since, to the row store's answer, and a start without
the checkpoint (its directory removed): the replica is copied again from
Raft snapshots its learner peers ask for, region by region.

    python3 bench/columnar_scan.py --duet-bin /var/tmp/duet-target/release/duet --rows 1000000
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

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


def memory(pid):
    """The process's resident memory in MiB: anonymous (heap) and file-backed."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) / 1024)
    return out


def http(status, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{status}{path}", timeout=10) as r:
        return r.read().decode()


def start(bin, data, port, status):
    server = subprocess.Popen(
        [bin, "serve"],
        env={**os.environ, "DUET_DATA_DIR": data, "DUET_MYSQL_ADDR": f"127.0.0.1:{port}",
             "DUET_STATUS_ADDR": f"127.0.0.1:{status}", "DUET_LOG": "warn"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server


def load(port, rows, workers=2, batch=2000):
    def part(k):
        c = connect(port)
        cur = c.cursor()
        for lo in range(k * batch, rows, batch * workers):
            values = ",".join(
                f"({i},{(i * 7919) % 1000000},{i % 16},{i % 1000}.{i % 100:02d})"
                for i in range(lo, min(lo + batch, rows)))
            cur.execute(f"INSERT INTO t VALUES {values}")
        c.close()
    threads = [threading.Thread(target=part, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--duet-bin", default="/var/tmp/duet-target/release/duet")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    data = tempfile.mkdtemp(prefix="duet-colbench-")
    port, status = free_port(), free_port()
    server = start(args.duet_bin, data, port, status)
    try:
        wait_ready(port)
        c = connect(port)
        cur = c.cursor()
        cur.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, a INT, b INT, c DECIMAL(12,2))")
        started = time.time()
        load(port, args.rows)
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
        results["memory_mib_after_queries"] = memory(server.pid)
        # Commit-to-visible on the columnar engine, under a steady write load.
        w, r = connect(port), connect(port)
        rc = r.cursor()
        rc.execute("SET duet_isolation_read_engines = 'columnar'")
        w.cursor().execute("CREATE TABLE f (id INT PRIMARY KEY)")
        w.cursor().execute("CREATE TABLE g (id INT PRIMARY KEY, v VARCHAR(40))")
        stop = threading.Event()
        written = [0]

        def background():
            bc = connect(port).cursor()
            n = 0
            while not stop.is_set():
                bc.execute("INSERT INTO g VALUES " + ",".join(
                    f"({n + i}, 'background row {n + i}')" for i in range(100)))
                n += 100
            written[0] = n

        writer = threading.Thread(target=background)
        writer.start()
        http(status, "/metrics")  # drains the server's samples so far
        delays = []
        load_started = time.time()
        for i in range(200):
            w.cursor().execute(f"INSERT INTO f VALUES ({i})")
            committed = time.time()
            while True:
                rc.execute(f"SELECT count(*) FROM f WHERE id = {i}")
                if rc.fetchone()[0] == 1:
                    break
            delays.append((time.time() - committed) * 1000)
        metrics = http(status, "/metrics")
        stop.set()
        writer.join()
        elapsed = time.time() - load_started
        server_sum = server_count = 0.0
        for line in metrics.splitlines():
            if line.startswith("duet_columnar_commit_to_visible_seconds_sum"):
                server_sum = float(line.split()[-1])
            if line.startswith("duet_columnar_commit_to_visible_seconds_count"):
                server_count = float(line.split()[-1])
        delays.sort()
        results["commit_to_visible_ms"] = {
            "background_rows_per_s": round(written[0] / elapsed),
            "p50": round(statistics.median(delays), 2),
            "p99": round(delays[int(len(delays) * 0.99) - 1], 2),
            "max": round(max(delays), 2),
            "server_mean": round(1000 * server_sum / server_count, 2) if server_count else None,
        }
        # A clean restart: the replica comes back from its checkpoint.
        cur.execute("SET duet_isolation_read_engines = 'columnar'")
        cur.execute(QUERIES["full scan"])
        before = cur.fetchall()
        c.close(); w.close(); r.close()
        t0 = time.time()
        server.terminate()
        server.wait(timeout=300)
        stopped_s = time.time() - t0
        t0 = time.time()
        server = start(args.duet_bin, data, port, status)
        wait_ready(port, deadline=600)
        started_s = time.time() - t0
        checkpoint = json.loads(http(status, "/status"))["columnar"]["from_checkpoint"]
        c = connect(port)
        cur = c.cursor()
        cur.execute("SET duet_isolation_read_engines = 'columnar'")
        t0 = time.time()
        cur.execute(QUERIES["full scan"])
        after = cur.fetchall()
        first_scan_s = time.time() - t0
        assert before == after, "the restarted replica answers differently"
        results["restart"] = {
            "stop_seconds": round(stopped_s, 1),
            "start_seconds": round(started_s, 1),
            "from_checkpoint": checkpoint,
            "first_full_scan_seconds": round(first_scan_s, 2),
            "memory_mib": memory(server.pid),
        }
        # A crash: more rows, then SIGKILL (no stop, no final checkpoint);
        # the restart loads the last checkpoint and replays the log since.
        extra = max(2000, min(args.rows // 10, 200_000))
        ins = c.cursor()
        for at in range(0, extra, 2000):
            ins.execute("INSERT INTO g VALUES " + ",".join(
                f"({10**9 + at + i}, 'after the checkpoint')" for i in range(2000)))
        cur.execute("SET duet_isolation_read_engines = 'row'")
        cur.execute("SELECT count(*), count(v) FROM g")
        before = cur.fetchall()
        c.close()
        server.kill()
        server.wait(timeout=60)
        t0 = time.time()
        server = start(args.duet_bin, data, port, status)
        wait_ready(port, deadline=600)
        started_s = time.time() - t0
        columnar = json.loads(http(status, "/status"))["columnar"]
        c = connect(port)
        cur = c.cursor()
        cur.execute("SET duet_isolation_read_engines = 'columnar'")
        cur.execute("SELECT count(*), count(v) FROM g")
        after = cur.fetchall()
        assert before == after, "the replica replayed to a different answer"
        results["crash_restart"] = {
            "rows_after_checkpoint": extra,
            "start_seconds": round(started_s, 1),
            "from_checkpoint": columnar["from_checkpoint"],
            "replayed_entries": columnar.get("replayed"),
        }
        # No checkpoint at all: the replica is copied from region snapshots.
        c.close()
        server.terminate()
        server.wait(timeout=300)
        shutil.rmtree(os.path.join(data, "columnar"))
        t0 = time.time()
        server = start(args.duet_bin, data, port, status)
        wait_ready(port, deadline=600)
        started_s = time.time() - t0
        regions = len(json.loads(http(status, "/status"))["learner_regions"])
        c = connect(port)
        cur = c.cursor()
        cur.execute("SET duet_isolation_read_engines = 'columnar'")
        while True:
            try:
                cur.execute("SELECT count(*), count(v) FROM g")
                after = cur.fetchall()
                break
            except pymysql.err.MySQLError:
                if time.time() - t0 > 1800:
                    raise
                time.sleep(0.2)
        copied_s = time.time() - t0
        assert before == after, "the copied replica answers differently"
        results["copy_by_snapshots"] = {
            "start_seconds": round(started_s, 1),
            "seconds_to_first_columnar_answer": round(copied_s, 1),
            "regions": regions,
            "from_checkpoint": json.loads(http(status, "/status"))["columnar"]["from_checkpoint"],
        }
        print(f"{args.rows:,} rows loaded in {load_s:.1f} s")
        print(f"{'query':<20} {'row rows/s':>14} {'columnar rows/s':>16} {'columnar/row':>13}")
        for name, q in results["queries"].items():
            print(f"{name:<20} {q['row_rows_per_s']:>14,} {q['columnar_rows_per_s']:>16,} {q['columnar_over_row']:>13}")
        v = results["commit_to_visible_ms"]
        print(f"commit to visible on the columnar engine under {v['background_rows_per_s']:,} background rows/s: "
              f"p50 {v['p50']} ms, p99 {v['p99']} ms, max {v['max']} ms (server's mean {v['server_mean']} ms)")
        print(f"memory after the queries (MiB): {results['memory_mib_after_queries']}")
        rs = results["restart"]
        print(f"restart: stop {rs['stop_seconds']} s, start {rs['start_seconds']} s, "
              f"from checkpoint: {rs['from_checkpoint']}, first full scan {rs['first_full_scan_seconds']} s, "
              f"memory (MiB) {rs['memory_mib']}")
        cr = results["crash_restart"]
        print(f"crash (SIGKILL) after {cr['rows_after_checkpoint']:,} more rows: start {cr['start_seconds']} s, "
              f"from checkpoint: {cr['from_checkpoint']}, log entries replayed: {cr['replayed_entries']}")
        cs = results["copy_by_snapshots"]
        print(f"start without a checkpoint: serving in {cs['start_seconds']} s, replica copied from "
              f"{cs['regions']} region snapshots and answering in {cs['seconds_to_first_columnar_answer']} s")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
