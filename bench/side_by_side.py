#!/usr/bin/env python3
"""Duet beside a reference, in one invocation, on this machine.

Installs what is missing (Debian's mariadb-server and sysbench), starts
MariaDB on loopback with durable settings (innodb_flush_log_at_trx_commit=1,
binary log off) and `duet serve`, each on a fresh data directory, runs the
same sysbench workloads on both (oltp_point_select, oltp_read_write,
oltp_insert: same tables, rows, threads and duration), prints one table
with each figure for each system and the Duet/MariaDB ratio, writes it to
OUT/side_by_side.json, and stops what it started.

The CH-benCHmark half of the comparison (`duet bench ch --target` on both,
and the 22 queries in DuckDB over the same data) joins this script when the
harness has it.

    bench/side_by_side.py --duet-bin target/release/duet --threads 4 \\
        --table-size 10000 --time 15 --out bench-out
"""

import argparse
import json
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
    args = parser.parse_args()
    ensure_packages()
    os.makedirs(args.out, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="duet-side-by-side-")
    systems = {"MariaDB": MariaDB(workdir), "Duet": Duet(workdir, args.duet_bin)}
    results = {"config": vars(args), "versions": {}, "sysbench": {}}
    try:
        for name, system in systems.items():
            system.start()
            results["versions"][name] = system.version()
        for workload in WORKLOADS:
            results["sysbench"][workload] = {}
            for name, system in systems.items():
                print(f"sysbench {workload} on {name} …", file=sys.stderr, flush=True)
                sysbench(system, workload, "prepare", args)
                figures = parse_run(sysbench(system, workload, "run", args))
                sysbench(system, workload, "cleanup", args)
                results["sysbench"][workload][name] = figures
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
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print(f"sysbench: {args.threads} threads, 1 table of {args.table_size} rows, "
          f"{args.time} s per run; MariaDB {results['versions']['MariaDB']} "
          f"(innodb_flush_log_at_trx_commit=1, binlog off), Duet {results['versions']['Duet']}")
    for r in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    with open(os.path.join(args.out, "side_by_side.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
