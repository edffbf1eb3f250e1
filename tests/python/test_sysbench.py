"""sysbench (Debian's package) runs unmodified against `duet serve`:
prepare, a short run, and cleanup of oltp_read_write, oltp_point_select and
oltp_insert, with no errors other than the retryable conflicts sysbench
ignores. Correctness only: speed is measured with the benchmark harness."""

import subprocess

import pymysql
import pytest


def sysbench(duet, workload, command, *extra):
    cmd = ["sysbench", workload, f"--mysql-host={duet.host}", f"--mysql-port={duet.port}",
           "--mysql-user=root", "--mysql-db=sbtest", "--tables=1", "--table-size=200",
           "--threads=2", *extra, command]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("workload", ["oltp_read_write", "oltp_point_select", "oltp_insert"])
def test_sysbench_workload_runs_unmodified(duet, workload):
    conn = pymysql.connect(host=duet.host, port=duet.port, user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS sbtest")
    conn.close()
    for command, extra in [("prepare", []), ("run", ["--time=3"]), ("cleanup", [])]:
        out = sysbench(duet, workload, command, *extra)
        assert out.returncode == 0, f"{workload} {command}:\n{out.stdout}\n{out.stderr}"
        assert "FATAL" not in out.stdout + out.stderr
        if command == "run":
            line = next(l for l in out.stdout.splitlines() if "transactions:" in l)
            assert int(line.split()[1]) > 0, line
