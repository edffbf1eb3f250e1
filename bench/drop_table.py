#!/usr/bin/env python3
"""Times DROP TABLE of an N-row table (with one secondary index) on one or
more `duet` binaries, each on a fresh data directory, one after the other.

    python3 bench/drop_table.py --rows 300000 /path/to/old/duet /path/to/new/duet

Ports 4500 and up on 127.0.0.1 are used (three per binary).
"""

import argparse
import shutil
import subprocess
import tempfile
import time

import pymysql


def drop_seconds(binary: str, rows: int, port: int) -> float:
    data = tempfile.mkdtemp(prefix="duet-drop-")
    server = subprocess.Popen(
        [binary, "serve", "--data-dir", f"{data}/data",
         "--mysql-addr", f"127.0.0.1:{port}",
         "--status-addr", f"127.0.0.1:{port + 1}",
         "--raft-addr", f"127.0.0.1:{port + 2}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
                break
            except pymysql.err.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        cur = conn.cursor()
        cur.execute("CREATE DATABASE b")
        cur.execute("USE b")
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, k INT, c CHAR(60), KEY ik (k))")
        batch = 5000
        for lo in range(0, rows, batch):
            values = ",".join(f"({i},{i % 1000},'{'x' * 60}')" for i in range(lo, min(rows, lo + batch)))
            cur.execute("INSERT INTO t VALUES " + values)
        started = time.time()
        cur.execute("DROP TABLE t")
        return time.time() - started
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    for i, binary in enumerate(args.binaries):
        seconds = drop_seconds(binary, args.rows, 4500 + 10 * i)
        print(f"{binary}: DROP TABLE of {args.rows} rows (+ one index): {seconds:.3f} s", flush=True)


if __name__ == "__main__":
    main()
