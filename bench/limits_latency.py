"""p50/p99 of SELECT 1, a point get and a login, idle and while two analytic
queries run. Usage: latency.py PORT"""
import sys, time, threading, pymysql
port = int(sys.argv[1])
def conn(db='m'): return pymysql.connect(host='127.0.0.1', port=port, user='root', db=db, autocommit=True)
c = conn(None); k = c.cursor()
k.execute("CREATE DATABASE IF NOT EXISTS m"); k.execute("USE m")
k.execute("DROP TABLE IF EXISTS l"); k.execute("CREATE TABLE l (id INT PRIMARY KEY, v INT)")
for s in range(0, 5000, 1000):
    k.execute("INSERT INTO l VALUES " + ",".join(f"({i},{i%97})" for i in range(s, s + 1000)))
def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000
def measure():
    x = conn(); kc = x.cursor(); one, pg, login = [], [], []
    for i in range(400):
        t = time.perf_counter(); kc.execute("SELECT 1"); kc.fetchall(); one.append(time.perf_counter() - t)
        t = time.perf_counter(); kc.execute(f"SELECT v FROM l WHERE id = {i*7 % 5000}"); kc.fetchall(); pg.append(time.perf_counter() - t)
    for i in range(20):
        t = time.perf_counter(); conn().close(); login.append(time.perf_counter() - t)
    return {n: (pct(v, .5), pct(v, .99)) for n, v in [("SELECT 1", one), ("point get", pg), ("login", login)]}
idle = measure()
stop = [False]
def heavy():
    h = conn(); hk = h.cursor()
    while not stop[0]:
        try: hk.execute("SELECT /*+ MAX_EXECUTION_TIME(20000) */ COUNT(*) FROM l a, l b, l c WHERE a.v + b.v + c.v = -1"); hk.fetchall()
        except Exception: pass
ts = [threading.Thread(target=heavy, daemon=True) for _ in range(2)]
[t.start() for t in ts]; time.sleep(2)
loaded = measure(); stop[0] = True
for n in idle:
    print(f"{n:10s} idle p50/p99 {idle[n][0]:.2f}/{idle[n][1]:.2f} ms   loaded {loaded[n][0]:.2f}/{loaded[n][1]:.2f} ms   p99 ratio {loaded[n][1]/idle[n][1]:.1f}x")
k.execute("SHOW PROCESSLIST")
for r in k.fetchall():
    if r[4] == 'Query' and 'COUNT' in (r[7] or ''): k.execute(f"KILL QUERY {r[0]}")
