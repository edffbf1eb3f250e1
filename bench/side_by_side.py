#!/usr/bin/env python3
"""Duet beside a reference, in one invocation, on this machine.

Installs what is missing (Debian's mariadb-server and sysbench), starts
MariaDB on loopback with durable settings (innodb_flush_log_at_trx_commit=1,
binary log off) and `duet serve`, each on a fresh data directory, runs the
same sysbench workloads on both (oltp_point_select, oltp_read_write,
oltp_insert: same tables, rows, threads and duration), prints one table
with each figure for each system and the Duet/MariaDB ratio, writes it to
OUT/side_by_side.json, and stops what it started.

Then it runs CH-benCHmark on both with `duet bench ch --target …
--interference` (OLTP alone, OLAP alone, both at once), exports the CH data
Duet holds after its run to Parquet, times the 22 queries in DuckDB (PyPI
`duckdb`) on that data, and prints tpmC, analytical throughput, freshness
and every query's time for each system with the Duet/reference ratios.

    bench/side_by_side.py --duet-bin target/release/duet --threads 4 \\
        --table-size 10000 --time 15 --warehouses 1 --ch-duration 60 --out bench-out
"""

import argparse
import importlib
import json
import statistics
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

WORKLOADS = ["oltp_point_select", "oltp_read_write", "oltp_insert"]


def ensure_packages():
    missing = [p for p in ("mariadb-server", "sysbench")
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def ensure_duckdb():
    try:
        return importlib.import_module("duckdb")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "duckdb"], check=True)
        return importlib.import_module("duckdb")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, what, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on {port} within {timeout}s")


class Server:
    """A server this script started: its administrative client, version, stop."""

    proc = None

    def client(self):
        raise NotImplementedError

    def version(self):
        out = subprocess.run(self.client() + ["-N", "-e", "SELECT VERSION()"],
                             capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


class MariaDB(Server):
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "mariadb")
        self.port = free_port()
        self.sock = os.path.join(self.dir, "mysqld.sock")
        self.proc = None

    def start(self):
        os.makedirs(self.dir)
        data = os.path.join(self.dir, "data")
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", *user,
                        "--auth-root-authentication-method=socket"],
                       check=True, capture_output=True)
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={self.sock}",
             f"--port={self.port}", "--bind-address=127.0.0.1", *user,
             "--innodb_flush_log_at_trx_commit=1", "--skip-log-bin",
             "--innodb_buffer_pool_size=1G", "--max_connections=500"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "err.log"), "w"))
        wait_for(self.port, "mariadbd", self.proc)
        sql = ("CREATE USER 'sb'@'127.0.0.1' IDENTIFIED BY 'sb';"
               "GRANT ALL ON *.* TO 'sb'@'127.0.0.1';"
               "CREATE DATABASE sbtest;")
        subprocess.run(self.client() + ["-e", sql], check=True)
        self.user, self.password = "sb", "sb"

    def client(self):
        return ["mariadb", f"--socket={self.sock}", "-uroot"]


class Duet(Server):
    def __init__(self, workdir, binary):
        self.dir = os.path.join(workdir, "duet")
        self.binary = binary
        self.port = free_port()
        self.proc = None
        self.user, self.password = "root", ""

    def start(self):
        os.makedirs(self.dir)
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", os.path.join(self.dir, "data"),
             "--mysql-addr", f"127.0.0.1:{self.port}",
             "--status-addr", f"127.0.0.1:{free_port()}",
             "--raft-addr", f"127.0.0.1:{free_port()}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "duet.log"), "w"))
        wait_for(self.port, "duet serve", self.proc)
        subprocess.run(self.client() + ["-e", "CREATE DATABASE sbtest"], check=True)

    def client(self):
        return ["mariadb", "-h127.0.0.1", f"-P{self.port}", "-uroot"]


def sysbench(system, workload, command, args):
    cmd = ["sysbench", workload, "--mysql-host=127.0.0.1", f"--mysql-port={system.port}",
           f"--mysql-user={system.user}", f"--mysql-password={system.password}",
           "--mysql-db=sbtest", "--tables=1", f"--table-size={args.table_size}",
           f"--threads={args.threads}", f"--time={args.time}", "--report-interval=0",
           "--db-ps-mode=auto", command]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.time * 10 + 600)
    if out.returncode != 0:
        raise SystemExit(f"sysbench {workload} {command} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def ch_queries():
    """The 22 queries, read from the harness's source beside this script."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "src", "ch", "queries.rs")) as f:
        text = f.read()
    body = text[text.index("QUERIES"):]
    queries = re.findall(r'^\s*"((?:[^"\\]|\\.)*)",\s*$', body, re.S | re.M)
    if len(queries) != 22:
        raise SystemExit(f"found {len(queries)} queries in queries.rs, not 22")
    return queries


def ch_run(system, args, out):
    """`duet bench ch --target` on `system`; its result.json."""
    url = f"mysql://{system.user}:{system.password}@127.0.0.1:{system.port}/ch"
    cmd = [args.duet_bin, "bench", "ch", "--target", url, "--warehouses", str(args.warehouses),
           "--duration", str(args.ch_duration), "--oltp-workers", str(args.oltp_workers),
           "--olap-workers", str(args.olap_workers), "--interference", "--quiet", "--out", out]
    run = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(run.stdout[-4000:])
    if run.returncode != 0:
        raise SystemExit(f"duet bench ch on {url} failed:\n{run.stderr[-4000:]}")
    with open(os.path.join(out, "result.json")) as f:
        return json.load(f)


CH_TABLES = ["warehouse", "district", "customer", "history", "new_order", "orders",
             "order_line", "item", "stock", "supplier", "nation", "region"]


def duckdb_times(system, workdir, repeats):
    """Exports the CH tables of `system` to Parquet and times each query in
    DuckDB (the median of `repeats` runs after one warm-up)."""
    duckdb = ensure_duckdb()
    parquet = os.path.join(workdir, "parquet")
    os.makedirs(parquet, exist_ok=True)
    con = duckdb.connect()
    for table in CH_TABLES:
        tsv = os.path.join(parquet, f"{table}.tsv")
        with open(tsv, "w") as f:
            subprocess.run(system.client() + ["--batch", "--quick", "-e", f"SELECT * FROM ch.{table}"],
                           stdout=f, check=True)
        path = os.path.join(parquet, f"{table}.parquet")
        con.execute(f"COPY (SELECT * FROM read_csv('{tsv}', delim='\t', header=true, "
                    f"nullstr='NULL', sample_size=-1)) TO '{path}' (FORMAT parquet)")
        os.remove(tsv)
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    times = []
    for sql in ch_queries():
        con.execute(sql).fetchall()
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            runs.append(time.perf_counter() - started)
        times.append(statistics.median(runs))
    return {"version": duckdb.__version__, "query_seconds": times}


def phase(result, name):
    return next((p for p in result["phases"] if p["name"] == name), None)


def print_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))


def ratio(a, b):
    return f"{a / b:.3f}" if a is not None and b else "-"


def ch_table(ch, duck):
    """Rows of the CH comparison: figure, MariaDB, Duet, DuckDB, ratios."""
    rows = [("CH-benCHmark", "figure", "MariaDB", "Duet", "DuckDB", "Duet/MariaDB", "Duet/DuckDB")]
    maria, duet = ch["MariaDB"], ch["Duet"]
    for name, figure, get in [
        ("oltp-alone", "tpmC", lambda p: p["tpmc"]),
        ("mixed", "tpmC", lambda p: p["tpmc"]),
        ("olap-alone", "QphH", lambda p: p["qph"]),
        ("mixed", "QphH", lambda p: p["qph"]),
        ("mixed", "freshness p50 ms", lambda p: p["freshness"]["p50_ms"]),
        ("mixed", "freshness p95 ms", lambda p: p["freshness"]["p95_ms"]),
    ]:
        m, d = get(phase(maria, name)), get(phase(duet, name))
        rows.append((name, figure, f"{m:,.1f}", f"{d:,.1f}", "", ratio(d, m), ""))
    m_olap, d_olap = phase(maria, "olap-alone"), phase(duet, "olap-alone")
    for n in range(22):
        m, d = m_olap["queries"][n], d_olap["queries"][n]
        m_s = m["mean_s"] if m["runs"] else None
        d_s = d["mean_s"] if d["runs"] else None
        k = duck["query_seconds"][n] if duck else None
        fmt = lambda x: f"{x:.3f}" if x is not None else "not run"
        rows.append(("olap-alone", f"Q{n + 1} s", fmt(m_s), fmt(d_s), fmt(k),
                     ratio(d_s, m_s), ratio(d_s, k)))
    return rows


def parse_run(text):
    figures = {}
    m = re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", text)
    if m:
        figures["tps"] = float(m.group(1))
    m = re.search(r"queries:\s+\d+\s+\(([\d.]+) per sec", text)
    if m:
        figures["qps"] = float(m.group(1))
    m = re.search(r"95th percentile:\s+([\d.]+)", text)
    if m:
        figures["p95_ms"] = float(m.group(1))
    m = re.search(r"ignored errors:\s+(\d+)", text)
    if m:
        figures["ignored_errors"] = int(m.group(1))
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duet-bin", default=shutil.which("duet") or "target/release/duet")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--table-size", type=int, default=10000)
    parser.add_argument("--time", type=int, default=15)
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--warehouses", type=int, default=1)
    parser.add_argument("--ch-duration", type=int, default=60, help="seconds per CH phase")
    parser.add_argument("--oltp-workers", type=int, default=4)
    parser.add_argument("--olap-workers", type=int, default=1)
    parser.add_argument("--duckdb-repeats", type=int, default=3)
    parser.add_argument("--skip-sysbench", action="store_true")
    parser.add_argument("--skip-ch", action="store_true")
    args = parser.parse_args()
    args.out = os.path.abspath(args.out)
    ensure_packages()
    os.makedirs(args.out, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="duet-side-by-side-")
    systems = {"MariaDB": MariaDB(workdir), "Duet": Duet(workdir, args.duet_bin)}
    results = {"config": vars(args), "versions": {}, "sysbench": {}, "ch": {}}
    try:
        for name, system in systems.items():
            system.start()
            results["versions"][name] = system.version()
        for workload in [] if args.skip_sysbench else WORKLOADS:
            results["sysbench"][workload] = {}
            for name, system in systems.items():
                print(f"sysbench {workload} on {name} …", file=sys.stderr, flush=True)
                sysbench(system, workload, "prepare", args)
                figures = parse_run(sysbench(system, workload, "run", args))
                sysbench(system, workload, "cleanup", args)
                results["sysbench"][workload][name] = figures
        if not args.skip_ch:
            for name, system in systems.items():
                print(f"CH-benCHmark on {name} …", file=sys.stderr, flush=True)
                results["ch"][name] = ch_run(system, args, os.path.join(args.out, f"ch-{name}"))
            print("DuckDB on Duet's CH data …", file=sys.stderr, flush=True)
            results["duckdb"] = duckdb_times(systems["Duet"], workdir, args.duckdb_repeats)
            results["versions"]["DuckDB"] = results["duckdb"]["version"]
    finally:
        for system in systems.values():
            system.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [("workload", "figure", "MariaDB", "Duet", "Duet/MariaDB")]
    for workload, by_system in results["sysbench"].items():
        for figure in ("tps", "qps", "p95_ms"):
            ref, duet = by_system["MariaDB"].get(figure), by_system["Duet"].get(figure)
            if ref is None or duet is None:
                continue
            ratio = f"{duet / ref:.3f}" if ref else "-"
            rows.append((workload, figure, f"{ref:,.2f}", f"{duet:,.2f}", ratio))
    print(f"MariaDB {results['versions']['MariaDB']} (innodb_flush_log_at_trx_commit=1, "
          f"binlog off), Duet {results['versions']['Duet']}")
    if len(rows) > 1:
        print(f"sysbench: {args.threads} threads, 1 table of {args.table_size} rows, "
              f"{args.time} s per run")
        print_table(rows)
    if results["ch"]:
        print(f"\nCH-benCHmark: {args.warehouses} warehouse(s), {args.ch_duration} s per phase, "
              f"{args.oltp_workers} OLTP + {args.olap_workers} OLAP workers; DuckDB "
              f"{results['versions']['DuckDB']} on Duet's data exported to Parquet")
        print_table(ch_table(results["ch"], results.get("duckdb")))
    with open(os.path.join(args.out, "side_by_side.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
