"""What the database collectors cost: CPU per tick and statements per second on the server.

Starts its own MariaDB (dashboard.devservices, performance_schema on), fills the digest table
with 5,000 distinct statements, opens 200 idle client connections, then drives the collectors
exactly as the runtime does -- status every second, the top-statements reader every 15 s, and
the ``db_statements`` push computation after each status tick -- for two phases:

  idle      200 open connections, nothing running;
  busy      the same plus a client running ~40 statements/s over 400 of the digests and a
            1.2 s statement every 10 s (so the process-list query and the slow paths run).

CPU is this thread's CPU time (``time.thread_time``) around each call, so the workload thread
does not count; statements are what the server counted for the monitoring account
(performance_schema, by user), cross-checked with the collector's own counter.

Targets (issue 3): all database collectors together ≤ 0.3 % of one core at their default
intervals, and ≤ 3 statements per second on the monitored server. Figures are printed, never
asserted.

    .venv/bin/python bench/db_collector.py [--seconds 46] [--digests 5000] [--connections 200]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402

from dashboard.collectors.mysql.collector import MySQLCollector  # noqa: E402
from dashboard.collectors.mysql.digests import FULL_READ_EVERY_S  # noqa: E402
from dashboard.config import load as config  # noqa: E402
from dashboard.demo import services as devservices  # noqa: E402
from dashboard.store import Store  # noqa: E402
from dashboard.web.db import live_payload  # noqa: E402

GRANTS = ["PROCESS", "BINLOG MONITOR", "SLAVE MONITOR", "SELECT ON performance_schema.*"]
STATUS_EVERY_S = 1.0
DIGEST_EVERY_S = 15.0


def connect(db: devservices.MariaDB, user: str = "root", password: str | None = None):
    return pymysql.connect(host="127.0.0.1", port=db.port, user=user,
                           password=db.root_password if password is None else password,
                           autocommit=True, connect_timeout=5)


def server_statements(root, user: str) -> int:
    with root.cursor() as cur:
        cur.execute("SELECT COALESCE(SUM(COUNT_STAR), 0) FROM performance_schema."
                    "events_statements_summary_by_user_by_event_name WHERE USER = %s", (user,))
        return int(cur.fetchone()[0])


class Workload(threading.Thread):
    def __init__(self, db: devservices.MariaDB, digests: int) -> None:
        super().__init__(daemon=True)
        self.db, self.digests, self.stop = db, digests, threading.Event()

    def run(self) -> None:
        conn = connect(self.db)
        slow_at = time.monotonic() + 3
        i = 0
        with conn.cursor() as cur:
            while not self.stop.is_set():
                if time.monotonic() >= slow_at:
                    cur.execute("SELECT SLEEP(1.2) AS bench_slow")
                    slow_at = time.monotonic() + 10
                cur.execute(f"SELECT {i} AS d{i % min(400, self.digests)}")
                cur.fetchall()
                i += 1
                self.stop.wait(0.025)
        conn.close()


def phase(name: str, c: MySQLCollector, root, seconds: float) -> dict:
    status_cpu, status_wall, digest_cpu, digest_wall, push_cpu = [], [], [], [], []
    seen: dict = {}
    own0 = c.conn.statements + c.reader_conn.statements
    srv0 = server_statements(root, "dbmon")
    start = time.monotonic()
    next_status, next_digest = start, start + DIGEST_EVERY_S
    while time.monotonic() < start + seconds:
        now = time.monotonic()
        if now >= next_digest:
            t0, w0 = time.thread_time(), time.perf_counter()
            c.reader.run()
            digest_cpu.append(time.thread_time() - t0)
            digest_wall.append(time.perf_counter() - w0)
            next_digest += DIGEST_EVERY_S
        if now >= next_status:
            t0, w0 = time.thread_time(), time.perf_counter()
            c.collect()
            status_cpu.append(time.thread_time() - t0)
            status_wall.append(time.perf_counter() - w0)
            t0 = time.thread_time()
            live_payload(c.book, seen)                 # what the db_statements sink computes
            push_cpu.append(time.thread_time() - t0)
            next_status += STATUS_EVERY_S
        time.sleep(max(0.0, min(next_status, next_digest) - time.monotonic()))
    elapsed = time.monotonic() - start
    own = c.conn.statements + c.reader_conn.statements - own0
    srv = server_statements(root, "dbmon") - srv0
    ms = lambda xs: 1000 * statistics.fmean(xs) if xs else 0.0  # noqa: E731
    core = (ms(status_cpu) + ms(push_cpu)) / 1000 / STATUS_EVERY_S + ms(digest_cpu) / 1000 / DIGEST_EVERY_S
    print(f"\n{name} ({elapsed:.0f} s, {len(status_cpu)} status ticks, {len(digest_cpu)} digest reads):")
    print(f"  status tick   CPU {ms(status_cpu):6.2f} ms  (wall {ms(status_wall):6.2f} ms, "
          f"max CPU {1000 * max(status_cpu):.2f} ms)")
    print(f"  push compute  CPU {ms(push_cpu):6.2f} ms per tick")
    if digest_cpu:
        print(f"  digest read   CPU {ms(digest_cpu):6.2f} ms  (wall {ms(digest_wall):6.2f} ms)")
    print(f"  => {100 * core:.3f} % of one core at default intervals (target ≤ 0.3 %)")
    print(f"  => {srv / elapsed:.2f} statements/s counted by the server for the monitoring account "
          f"(collector's own count {own / elapsed:.2f}/s; target ≤ 3)")
    return {"core_pct": 100 * core, "stmt_per_s": srv / elapsed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=46.0, help="length of each phase (3 digest reads)")
    ap.add_argument("--digests", type=int, default=5000)
    ap.add_argument("--connections", type=int, default=200)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.connections + 256)), hard))
    tmp = Path(tempfile.mkdtemp(prefix="bench-db-"))
    db = None
    clients: list = []
    try:
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; starting MariaDB…")
        db = devservices.start_mariadb(tmp / "mariadb", extra_args=[
            f"--max-connections={args.connections + 50}",
            f"--performance-schema-digests-size={args.digests + 1000}"])
        url = db.create_monitor_user("dbmon", "bench-pw", GRANTS)
        db.create_monitor_user("app", "app-pw", [])
        root = connect(db)
        t0 = time.perf_counter()
        with root.cursor() as cur:
            for i in range(args.digests):
                cur.execute(f"SELECT {i} AS d{i}")
            cur.execute("SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest")
            n_digests = cur.fetchone()[0]
        clients = [connect(db, "app", "app-pw") for _ in range(args.connections)]
        print(f"{n_digests} digests in performance_schema, {len(clients)} idle client connections "
              f"(set-up {time.perf_counter() - t0:.1f} s)")

        c = MySQLCollector(config.parse_mysql({"url": url}))
        c.jobs(Store(tmp / "data"))                  # persisted like in the runtime
        c.collect()
        t0, w0 = time.thread_time(), time.perf_counter()
        c.reader.run()                               # first read: every digest and its text
        print(f"first digest read (baseline, {n_digests} rows with texts): "
              f"CPU {1000 * (time.thread_time() - t0):.1f} ms, "
              f"wall {1000 * (time.perf_counter() - w0):.1f} ms"
              f" -- once per start")
        c.collect()
        c.reader._full_at = float("-inf")          # force the 5-minutely full re-read (no texts)
        t0, w0 = time.thread_time(), time.perf_counter()
        c.reader.run()
        full_ms = 1000 * (time.thread_time() - t0)
        print(f"full re-read (every {FULL_READ_EVERY_S:.0f} s, {n_digests} rows, no texts): "
              f"CPU {full_ms:.1f} ms, "
              f"wall {1000 * (time.perf_counter() - w0):.1f} ms = {full_ms / 10 / FULL_READ_EVERY_S:.3f} % "
              "of one core amortised (included in the totals below)")
        idle = phase("idle", c, root, args.seconds)
        load = Workload(db, args.digests)
        load.start()
        try:
            busy = phase("busy", c, root, args.seconds)
        finally:
            load.stop.set()
            load.join(5)
        amort = full_ms / 10 / FULL_READ_EVERY_S
        idle["core_pct"] += amort
        busy["core_pct"] += amort
        print(f"\nsummary: CPU {idle['core_pct']:.3f} % idle / {busy['core_pct']:.3f} % busy of one core "
              f"(with the full re-read amortised); "
              f"{idle['stmt_per_s']:.2f} / {busy['stmt_per_s']:.2f} statements/s; "
              f"connections held by the collectors: 2")
        c.close()
        root.close()
        return 0
    finally:
        for conn in clients:
            conn.close()
        if db is not None:
            db.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
