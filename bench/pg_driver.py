"""Which PostgreSQL driver for the store (issue 16): pg8000 on the hub, or psycopg off it.

Run as a web worker runs: eventlet monkey-patched first. A private cluster on loopback
(tests/support/pg.py). A green "ticker" sleeps 1 ms in a loop and records the longest gap
between its wake-ups: the longest the event loop (every socket, /healthz, the live page) was
held. For each way of calling:

* ``pg8000 on the hub``: the store's PgConnection called directly (its sockets are green);
* ``psycopg on the hub``: psycopg 3 (libpq, C wait loop) called directly;
* ``psycopg via offload``: psycopg 3 with every call through dashboard/offload.py (eventlet's
  tpool: a real OS thread per call, the green caller waits);

it prints the mean time per call (a one-row INSERT, a 20-row SELECT, a 2,000-row SELECT) and the
longest hub gap during a 50 ms server-side wait (``pg_sleep``) and during each kind of call.
Compare the figures as ratios within one run; the machine is shared.

    .venv/bin/python bench/pg_driver.py [--calls 2000]
"""
from __future__ import annotations

import os

os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

harness.use_bench_packages()          # psycopg[binary]: a bench-only package

import psycopg  # noqa: E402

from dashboard import offload  # noqa: E402
from dashboard.store.pg import ConnParams, PgConnection  # noqa: E402
from tests.support.pg import start_cluster  # noqa: E402


class Ticker:
    """The longest gap between wake-ups of a green thread that sleeps 1 ms at a time."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._run = True
        self._thread = eventlet.spawn(self._loop)

    def _loop(self) -> None:
        last = time.perf_counter()
        while self._run:
            eventlet.sleep(0.001)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            last = now

    def reset(self) -> None:
        eventlet.sleep(0.01)
        self.max_gap = 0.0

    def stop(self) -> None:
        self._run = False
        self._thread.wait()


def timed(fn: Callable[[], Any], calls: int, ticker: Ticker) -> tuple[float, float]:
    """(mean ms per call, longest hub gap in ms) over ``calls`` calls."""
    ticker.reset()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    mean = (time.perf_counter() - start) / calls * 1000
    eventlet.sleep(0.005)
    return mean, ticker.max_gap * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    cluster = start_cluster()
    try:
        db = cluster.create_database()
        url = cluster.url(db)
        pg8 = PgConnection(ConnParams.from_url(url))
        pg8.executescript("CREATE TABLE t (id BIGSERIAL PRIMARY KEY, ts DOUBLE PRECISION,"
                          " name TEXT, v DOUBLE PRECISION);"
                          "INSERT INTO t (ts, name, v) SELECT g, 'series-' || g, g * 0.5"
                          " FROM generate_series(1, 2000) g")
        p = ConnParams.from_url(url)
        pscg = psycopg.connect(host=p.host, port=p.port, user=p.user, password=p.password,
                               dbname=p.database, autocommit=True)

        def pg8_insert() -> None:
            pg8.execute("INSERT INTO t (ts, name, v) VALUES (?, ?, ?)", (1.0, "x", 2.0))

        def pg8_small() -> None:
            pg8.execute("SELECT id, ts, name, v FROM t WHERE id <= ?", (20,)).fetchall()

        def pg8_big() -> None:
            pg8.execute("SELECT id, ts, name, v FROM t WHERE id <= ?", (2000,)).fetchall()

        def pg8_sleep() -> None:
            pg8.execute("SELECT pg_sleep(?)", (0.05,))

        def ps(sql: str, args: tuple[Any, ...]) -> Callable[[], Any]:
            def call() -> Any:
                with pscg.cursor() as cur:
                    cur.execute(sql, args)
                    return cur.fetchall() if cur.description else None
            return call

        ps_insert = ps("INSERT INTO t (ts, name, v) VALUES (%s, %s, %s)", (1.0, "x", 2.0))
        ps_small = ps("SELECT id, ts, name, v FROM t WHERE id <= %s", (20,))
        ps_big = ps("SELECT id, ts, name, v FROM t WHERE id <= %s", (2000,))
        ps_sleep = ps("SELECT pg_sleep(%s)", (0.05,))

        def off(fn: Callable[[], Any]) -> Callable[[], Any]:
            return lambda: offload.run(fn)

        ticker = Ticker()
        n = args.calls
        rows = [
            ("pg8000 on the hub", pg8_insert, pg8_small, pg8_big, pg8_sleep),
            ("psycopg on the hub", ps_insert, ps_small, ps_big, ps_sleep),
            ("psycopg via offload", off(ps_insert), off(ps_small), off(ps_big), off(ps_sleep)),
        ]
        print(f"{harness.machine_line()}")
        print(f"load: {open('/proc/loadavg').read().strip()}")
        print(f"calls: {n} inserts, {n} 20-row selects, {max(n // 20, 10)} 2000-row selects, "
              "10 pg_sleep(0.05)")
        print(f"{'':22} {'insert ms':>10} {'gap':>7} {'20 rows':>9} {'gap':>7} {'2000 rows':>10}"
              f" {'gap':>7} {'sleep gap':>10}")
        for name, ins, small, big, sleep in rows:
            for fn in (ins, small, big):            # warm up: prepare, cache, connect
                fn()
            i_ms, i_gap = timed(ins, n, ticker)
            s_ms, s_gap = timed(small, n, ticker)
            b_ms, b_gap = timed(big, max(n // 20, 10), ticker)
            _, z_gap = timed(sleep, 10, ticker)
            print(f"{name:22} {i_ms:10.3f} {i_gap:7.1f} {s_ms:9.3f} {s_gap:7.1f} {b_ms:10.2f}"
                  f" {b_gap:7.1f} {z_gap:10.1f}")
        ticker.stop()
        pg8.close()
        pscg.close()
        print("ms per call; gap: the longest the event loop was held meanwhile (ms)")
    finally:
        cluster.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
