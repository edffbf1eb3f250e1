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
    assert "ERROR 1046 (3D000)" in out.stderr
    out = mariadb(duet, "-D", "test", "-e", "select * from no_such_table")
    assert "ERROR 1146 (42S02)" in out.stderr


def test_mariadb_cli_creates_writes_and_reads_tables(duet):
    script = ("create database cli; use cli; "
              "create table t (id int primary key, name varchar(10), amount decimal(8,2)); "
              "insert into t values (1, 'a', 1.50), (2, 'b', NULL), (3, 'c', 2.25); "
              "update t set amount = amount * 2 where id = 3; delete from t where id = 2; "
              "select id, name, amount from t order by id; select count(*), sum(amount) from t")
    out = mariadb(duet, "-e", script)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["1\ta\t1.50", "3\tc\t4.50", "2\t6.00"]


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


def test_pymysql_transactions_commit_and_roll_back(duet):
    conn = pymysql.connect(host=duet.host, port=duet.port, user="root", password="", database="test")
    other = pymysql.connect(host=duet.host, port=duet.port, user="root", password="", database="test",
                            autocommit=True)
    try:
        with conn.cursor() as cur, other.cursor() as ocur:
            cur.execute("CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)")
            cur.executemany("INSERT INTO accounts VALUES (%s, %s)", [(1, 100), (2, 50)])
            ocur.execute("SELECT COUNT(*) FROM accounts")
            assert ocur.fetchone() == (0,), "uncommitted rows are invisible to others"
            conn.commit()
            cur.execute("UPDATE accounts SET balance = balance - 30 WHERE id = 1")
            cur.execute("UPDATE accounts SET balance = balance + 30 WHERE id = 2")
            conn.rollback()
            ocur.execute("SELECT id, balance FROM accounts ORDER BY id")
            assert ocur.fetchall() == ((1, 100), (2, 50))
            with pytest.raises(pymysql.err.IntegrityError) as e:
                cur.execute("INSERT INTO accounts VALUES (1, 0)")
            assert e.value.args[0] == 1062
    finally:
        conn.close()
        other.close()


def test_connector_prepared_cursor_writes_and_reads_rows(duet):
    conn = connector(duet, database="test", autocommit=True)
    cur = conn.cursor(prepared=True)
    cur.execute("CREATE TABLE events (id BIGINT PRIMARY KEY AUTO_INCREMENT, at DATETIME, note VARCHAR(20))")
    for i in range(5):
        cur.execute("INSERT INTO events (at, note) VALUES (?, ?)",
                    (datetime.datetime(2026, 11, 28, 10, i), f"e{i}"))
    assert cur.lastrowid == 5
    cur.execute("SELECT id, at, note FROM events WHERE id = ?", (3,))
    assert cur.fetchone() == (3, datetime.datetime(2026, 11, 28, 10, 2), "e2")
    cur.execute("SELECT note FROM events WHERE id BETWEEN ? AND ? ORDER BY id DESC", (2, 4))
    assert [r[0] for r in cur.fetchall()] == ["e3", "e2", "e1"]
    cur.close()
    conn.close()


def test_pymysql_sees_each_columns_character_set_and_width(duet):
    conn = pymysql.connect(host=duet.host, port=duet.port, user="root", password="", database="test")
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE widths (id INT PRIMARY KEY, name VARCHAR(10), data BLOB, "
                        "price DECIMAL(10,2), big BIGINT UNSIGNED)")
            cur.execute("INSERT INTO widths VALUES (1, %s, %s, 1.5, 7)", ("héllo ✓", b"\x00\xff"))
            conn.commit()
            cur.execute("SELECT id, name, data, price, big FROM widths")
            assert cur.fetchone() == (1, "héllo ✓", b"\x00\xff", decimal.Decimal("1.50"), 7)
            fields = {f.name: (f.charsetnr, f.length) for f in cur._result.fields}
            # utf8mb4_bin (46) for text, four bytes a character; binary (63)
            # for the rest, with MySQL's display widths.
            assert fields["name"] == (46, 40)
            assert fields["id"] == (63, 11)
            assert fields["price"] == (63, 12)
            assert fields["big"] == (63, 20)
            assert fields["data"][0] == 63
            cur.execute("DROP TABLE widths")
    finally:
        conn.close()


MYSQLDUMP = """
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!50503 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
DROP TABLE IF EXISTS `dumped`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!50503 SET character_set_client = utf8mb4 */;
CREATE TABLE `dumped` (
  `id` int NOT NULL AUTO_INCREMENT,
  `name` varchar(20) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;
/*!40101 SET character_set_client = @saved_cs_client */;
LOCK TABLES `dumped` WRITE;
/*!40000 ALTER TABLE `dumped` DISABLE KEYS */;
INSERT INTO `dumped` VALUES (1,'a'),(2,'b');
/*!40000 ALTER TABLE `dumped` ENABLE KEYS */;
UNLOCK TABLES;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;
"""


def test_mariadb_cli_restores_a_mysqldump_file(duet):
    cmd = ["mariadb", "-h", duet.host, "-P", str(duet.port), "-u", "root", "-D", "test"]
    out = subprocess.run(cmd, input=MYSQLDUMP, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    out = mariadb(duet, "-D", "test", "-e", "select id, name from dumped order by id")
    assert out.stdout.split("\n")[:2] == ["1\ta", "2\tb"]
