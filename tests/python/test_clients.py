"""Real MySQL clients against a real `duet serve`: the mariadb CLI, PyMySQL,
and mysql-connector-python (text and prepared cursors)."""

import datetime
import decimal
import subprocess

import mysql.connector
import pymysql
import pytest


def mariadb(duet, *args, user="root"):
    cmd = ["mariadb", "-h", duet.host, "-P", str(duet.port), "-u", user, "--batch", "--skip-column-names", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def test_mariadb_cli_version_comment(duet):
    out = mariadb(duet, "-e", "select @@version_comment")
    assert out.returncode == 0, out.stderr
    assert "Duet" in out.stdout


def test_mariadb_cli_database_and_statements(duet):
    out = mariadb(duet, "-D", "test", "-e", "select database(); select 1+1; show variables like 'autocommit'")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["test", "2", "autocommit\tON"]


def test_mariadb_cli_reports_errors(duet):
    out = mariadb(duet, "-e", "selec 1")
    assert out.returncode != 0
    assert "ERROR 1064 (42000)" in out.stderr
    out = mariadb(duet, "-e", "create table t (a int)")
    assert "ERROR 1235 (42000)" in out.stderr


def test_pymysql_connects_and_queries(duet):
    conn = pymysql.connect(host=duet.host, port=duet.port, user="root", password="")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
            cur.execute("SELECT %s, %s, %s", (7, "seven", None))
            assert cur.fetchone() == (7, "seven", None)
            cur.execute("SELECT @@autocommit")
            assert cur.fetchone() == (0,)  # PyMySQL turns autocommit off on connect
            cur.execute("SELECT VERSION()")
            assert cur.fetchone()[0].startswith("8.0.11-Duet-")
        conn.commit()
        conn.rollback()
        conn.ping()
    finally:
        conn.close()


def test_pymysql_with_password_and_database(duet):
    conn = pymysql.connect(host=duet.host, port=duet.port, user="app", password="s3cret", database="test")
    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE(), CURRENT_USER()")
        assert cur.fetchone() == ("test", "app@%")
    conn.close()
    with pytest.raises(pymysql.err.OperationalError) as e:
        pymysql.connect(host=duet.host, port=duet.port, user="app", password="wrong")
    assert e.value.args[0] == 1045


def connector(duet, **kw):
    return mysql.connector.connect(host=duet.host, port=duet.port, user=kw.pop("user", "root"),
                                   password=kw.pop("password", ""), use_pure=True, **kw)


def test_connector_default_cursor(duet):
    conn = connector(duet)
    cur = conn.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchall() == [(1,)]
    cur.execute("SELECT @@max_allowed_packet, @@session.sql_mode")
    packet, mode = cur.fetchone()
    assert packet == 67108864
    assert "STRICT_TRANS_TABLES" in mode
    cur.close()
    conn.close()


def test_connector_prepared_cursor_round_trips_types(duet):
    conn = connector(duet, database="test")
    cur = conn.cursor(prepared=True)
    values = (42, -7, 2.5, "héllo", None, datetime.date(2026, 11, 28),
              datetime.datetime(2026, 11, 28, 13, 14, 15), decimal.Decimal("12.50"), b"\xff\x00bin")
    cur.execute("SELECT " + ", ".join(["?"] * len(values)), values)
    row = cur.fetchone()
    assert row[:5] == (42, -7, 2.5, "héllo", None)
    assert row[5] == datetime.date(2026, 11, 28)
    assert row[6] == datetime.datetime(2026, 11, 28, 13, 14, 15)
    assert row[7] == decimal.Decimal("12.50")
    assert bytes(row[8]) == b"\xff\x00bin"
    cur.execute("SELECT ? + 1", (41,))
    assert cur.fetchone() == (42,)
    cur.close()
    conn.close()


def test_connector_wrong_password(duet):
    with pytest.raises(mysql.connector.Error) as e:
        connector(duet, user="app", password="nope")
    assert e.value.errno == 1045
