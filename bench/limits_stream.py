"""Peak server RSS while a client streams N cross-join rows, then CPU after a
client abandons a cursor after 10 rows. Usage: stream.py PORT PID N"""
import sys, time, threading, pymysql, pymysql.cursors
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('VmRSS'): return int(l.split()[1]) // 1024
def cpu():
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0
c = pymysql.connect(host='127.0.0.1', port=port, user='root', autocommit=True)
k = c.cursor()
k.execute("CREATE DATABASE IF NOT EXISTS m"); k.execute("USE m")
k.execute("DROP TABLE IF EXISTS a"); k.execute("DROP TABLE IF EXISTS b")
k.execute("CREATE TABLE a (id INT PRIMARY KEY)"); k.execute("CREATE TABLE b (id INT PRIMARY KEY)")
for t in 'ab':
    for s in range(0, 10000, 1000):
        k.execute(f"INSERT INTO {t} VALUES " + ",".join(f"({i})" for i in range(s, s + 1000)))
before = rss(); peak = [before]; done = [False]
def watch():
    while not done[0]:
        peak[0] = max(peak[0], rss()); time.sleep(0.2)
threading.Thread(target=watch, daemon=True).start()
s = pymysql.connect(host='127.0.0.1', port=port, user='root', db='m', cursorclass=pymysql.cursors.SSCursor)
sc = s.cursor(); t0 = time.time()
sc.execute(f"SELECT a.id, b.id FROM a CROSS JOIN b LIMIT {n}")
rows = 0
while True:
    batch = sc.fetchmany(10000)
    if not batch: break
    rows += len(batch)
el = time.time() - t0; done[0] = True; time.sleep(0.3)
print(f"streamed {rows} rows in {el:.1f} s; server RSS before {before} MB, peak {peak[0]} MB")
s.close()
# Abandon after 10 rows.
s = pymysql.connect(host='127.0.0.1', port=port, user='root', db='m', cursorclass=pymysql.cursors.SSCursor)
sc = s.cursor(); sc.execute("SELECT a.id, b.id FROM a CROSS JOIN b"); sc.fetchmany(10)
time.sleep(1); c0 = cpu(); s._sock.close(); t = time.time()
for i in range(3):
    time.sleep(1); c1 = cpu(); print(f"abandoned: second {i+1} after close: server CPU {c1 - c0:.2f} s"); c0 = c1
k.execute("SHOW PROCESSLIST"); print("processlist:", [r[4] for r in k.fetchall()])
