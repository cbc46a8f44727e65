"""The store's layout (issue 15): bytes per value, the tick write, the long reads.

Prints (figures, never assertions), on a temporary store removed afterwards:
  1. the tick write: ``Store.append`` of the large installation's tick (issue 9: the local host,
     50 agent hosts, 200 queues, db, cache: 306 samples, ~1,600 values), values moving a little
     each tick, wall and CPU p50/p95 (target <= 2 ms); then ``Store.latest()``;
  2. raw bytes per value: the raw rows and their index (``dbstat``) over the values stored
     (target <= 8 B); the catalog (series, label sets, shapes) is printed apart: it does not
     grow with time;
  3. rollups: ``--series`` series x ``--hours`` hours sampled every ``--step`` s, minutes
     reduced as ``Store.rollup`` does and written through ``Store.write_rollup_blocks`` (the
     bulk path, timed); bytes per series-minute, sketches and index included (target <= 16 B).
     Values are drawn like the collectors': whole counts, percents with 1-2 decimals, readings
     with 3, rates at full float precision, flags (``--full`` draws every value at full
     precision: the worst case, where the bytes are the values' own entropy);
  4. the rollup job: ``Store.rollup`` run a minute at a time over an hour of 1 s raw ticks of
     the same series (each run adds a minute to every series' block), and the blocks' size;
  5. reads at ``--series`` series: the web layer's read of a 24 h and a 7 d window
     (``Store.rollup_metrics_between``, every minute of every series; the 7 d from the day's
     blocks repeated), and the daily summary's per-series read of one day
     (``HistoryReads.rolled_series`` with the sketch and two levels).

    .venv/bin/python bench/store_size.py [--series 300] [--hours 24] [--step 5] [--ticks 300]
                                         [--full] [--store-url URL|private]

``--store-url``: the same on PostgreSQL (``bench/pgstore.py``; bytes are the tables' with their
indexes and TOAST, ``pg_total_relation_size``); each part on a database of its own.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, pgstore  # noqa: E402
from dashboard.model import Sample  # noqa: E402
from dashboard.store import Store, sketch  # noqa: E402
from dashboard.store.history_pg import TABLES as PG_TABLES  # noqa: E402
from dashboard.store.history_reads import HistoryReads  # noqa: E402
from dashboard.store.rollups import HourBlock  # noqa: E402

HOST_METRICS = [("host.cpu_percent", 2, 35), ("host.load1", 2, 1.5), ("host.mem_percent", 1, 60),
                ("host.swap_percent", 1, 2), ("host.net_rx_bps", None, 2e6),
                ("host.net_tx_bps", None, 3e6), ("host.disk_read_bps", None, 5e5),
                ("host.disk_write_bps", None, 1e6), ("host.up", 0, 1)]
QUEUE_METRICS = [("queue.pending", 0, 12), ("queue.failed", 0, 3), ("queue.up", 0, 1),
                 ("queue.oldest_pending_age_s", 1, 90), ("queue.drain_eta_s", 1, 30)]
# (decimals or None for full precision, level): the mix of kinds the rollup series are drawn from
KINDS = [(0, 12), (0, 40), (1, 60), (2, 35), (3, 1.5), (3, 700), (None, 2e6), (None, 150),
         (0, 1), (1, 99.5)]


def draw(decimals: int | None, level: float, rnd: random.Random, full: bool) -> float:
    v = max(0.0, rnd.gauss(level, level * 0.05 + 0.5))
    if full or decimals is None:
        return v
    return round(v, decimals)


def installation_tick(ts: float, rnd: random.Random) -> list[Sample]:
    """One tick of the large installation, readings rounded as the collectors round them."""
    out = [Sample("host", ts, {m: draw(d, lvl, rnd, False) for m, d, lvl in HOST_METRICS})]
    out += [Sample("host", ts, {"host.disk_percent": draw(1, 55, rnd, False)}, {"mount": m})
            for m in ("/", "/data")]
    for h in range(50):
        host = f"app{h + 1:02d}"
        out.append(Sample("agents", ts, {m: round(draw(None, lvl, rnd, False), 3)
                                         for m, _, lvl in HOST_METRICS}, {"host": host}))
        out.append(Sample("agents", ts, {"host.disk_percent": draw(1, 50, rnd, False)},
                          {"host": host, "mount": "/"}))
    for q in range(200):
        out.append(Sample("queue", ts, {m: draw(d, lvl, rnd, False) for m, d, lvl in QUEUE_METRICS},
                          {"queue": f"q{q:03d}"}))
    out.append(Sample("db", ts, {f"db.m{i}": draw(i % 3, 50 + i, rnd, False) for i in range(13)}))
    out.append(Sample("cache", ts, {f"cache.m{i}": draw(i % 2, 80, rnd, False) for i in range(7)}))
    return out


def table_bytes(store: Store, names: tuple[str, ...]) -> int:
    """The bytes of the history's tables and indexes ``names`` (SQLite's ``dbstat``; on
    PostgreSQL the tables among them, each with its indexes and TOAST)."""
    conn = store.connect()
    try:
        if store.backend == "postgresql":
            tables = [n for n in names if n in PG_TABLES]
            return int(conn.execute("SELECT " + " + ".join(
                f"pg_total_relation_size('{t}')" for t in tables)).fetchone()[0])
        marks = ",".join("?" * len(names))
        return int(conn.execute(f"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ({marks})",
                                names).fetchone()[0])
    finally:
        conn.close()


def bench_write(tmp: Path, ticks: int, url: str | None = None) -> dict[str, float]:
    """Prints the figures; returns the tick write's wall p50 and p95 (ms)."""
    store = Store(tmp / "write", store_url=url)
    rnd = random.Random(15)
    t0 = time.time() - ticks
    wall, cpu = [], []
    values = 0
    for i in range(ticks):
        tick = installation_tick(t0 + i, rnd)
        values += sum(len(s.values) for s in tick)
        w, c = time.perf_counter(), time.process_time()
        store.append(tick)
        wall.append(1000 * (time.perf_counter() - w))
        cpu.append(1000 * (time.process_time() - c))
    p = harness.percentile
    print(f"1. the tick write: {len(tick)} samples, {values // ticks} values a tick, {ticks} ticks")
    print(f"   Store.append wall p50 {p(wall, 50):.2f} ms, p95 {p(wall, 95):.2f} ms, max "
          f"{max(wall):.2f} ms; CPU p50 {p(cpu, 50):.2f} ms (target <= 2 ms: "
          f"{'met' if p(wall, 50) <= 2 else 'MISSED'} at p50)")
    med, first = timed(lambda: store.latest(within_s=1e9), 20)
    print(f"   Store.latest() (/api/latest, /metrics, the fleet): median {med:.2f} ms")
    raw = table_bytes(store, ("ticks", "ticks_ts"))
    catalog = table_bytes(store, ("series", "label_sets", "shapes", "sqlite_autoindex_series_1",
                                  "sqlite_autoindex_label_sets_1", "sqlite_autoindex_shapes_1"))
    print(f"2. raw: {raw / values:.2f} B per value (rows + index: {raw / 2**20:.2f} MiB for "
          f"{values:,} values; target <= 8 B); catalog {catalog / 1024:.0f} KiB, once")
    store.close()
    return {"p50": p(wall, 50), "p95": p(wall, 95), "samples": len(tick)}


def series_kinds(n: int) -> list[tuple[str, dict[str, str], int | None, float]]:
    return [(f"bench.m{i % 25}", {"item": f"i{i // 25:03d}"}, *KINDS[i % len(KINDS)])
            for i in range(n)]


def hour_blocks(series: list, hour: int, step: int, rnd: random.Random,
                full: bool) -> list[HourBlock]:
    """One hour of every series, its minutes reduced as Store.rollup reduces them."""
    out = []
    per_minute = 60 // step
    for metric, labels, decimals, level in series:
        minutes = {}
        buckets: Counter[int] = Counter()
        for minute in range(hour, hour + 3600, 60):
            vs = [draw(decimals, level, rnd, full) for _ in range(per_minute)]
            minutes[minute] = (len(vs), sum(vs), min(vs), max(vs))
            buckets.update(sketch.build(vs))
        out.append(HourBlock(metric, labels, hour, minutes, buckets))
    return out


def bench_rollups(tmp: Path, args: argparse.Namespace, url: str | None = None
                  ) -> tuple[Store, list, int]:
    store = Store(tmp / "rollups", rollup_retention_d=30, store_url=url)
    rnd = random.Random(16)
    series = series_kinds(args.series)
    start = (int(time.time()) // 86400 - 8) * 86400
    gen = write = 0.0
    day: list[HourBlock] = []
    for h in range(args.hours):
        t = time.perf_counter()
        hb = hour_blocks(series, start + 3600 * h, args.step, rnd, args.full)
        gen += time.perf_counter() - t
        t = time.perf_counter()
        store.write_rollup_blocks(hb)
        write += time.perf_counter() - t
        day += hb
    minutes = args.series * args.hours * 60
    size = table_bytes(store, ("rollups", "rollups_series_hour"))
    print(f"3. rollups: {args.series} series x {args.hours} h at {args.step} s "
          f"({'full precision' if args.full else 'values as collectors round them'}): "
          f"{size / minutes:.2f} B per series-minute incl. sketches ({size / 2**20:.2f} MiB; "
          f"target <= 16 B); Store.write_rollup_blocks {write:.2f} s "
          f"(+ {gen:.1f} s drawing the values)")
    return store, day, start


def bench_rollup_job(tmp: Path, args: argparse.Namespace, url: str | None = None) -> None:
    store = Store(tmp / "job", store_url=url)
    rnd = random.Random(17)
    series = series_kinds(args.series)
    hour = (int(time.time()) // 3600 - 2) * 3600
    ticks = [[Sample("bench", hour + s, {metric: draw(d, lvl, rnd, args.full)}, labels)
              for metric, labels, d, lvl in series] for s in range(3600)]
    t = time.perf_counter()
    store.append_many(ticks)
    fill = time.perf_counter() - t
    runs = []
    for minute in range(60):                       # as in production: a minute at a time
        t = time.perf_counter()
        store.rollup(now=hour + 60 * (minute + 1) + 10)
        runs.append(1000 * (time.perf_counter() - t))
    size = table_bytes(store, ("rollups", "rollups_series_hour"))
    print(f"4. the rollup job, a minute at a time over an hour of {args.series} series at 1 s: "
          f"median {statistics.median(runs):.0f} ms a run, max {max(runs):.0f} ms; the hour's "
          f"blocks {size / (60 * args.series):.2f} B per series-minute "
          f"(Store.append_many of the hour's 3,600 ticks: {fill:.1f} s)")
    store.close()


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, times[0] * 1000


def bench_reads(store: Store, day: list[HourBlock], start: int, args: argparse.Namespace) -> None:
    for d in range(1, 7):                 # the 7 d window: the day's blocks, six more times
        store.write_rollup_blocks(HourBlock(b.metric, b.labels, b.hour + 86400 * d,
                                            {m + 86400 * d: r for m, r in b.minutes.items()},
                                            b.buckets) for b in day)
    print(f"5. reads at {args.series} series")
    until = start + 86400 * 7
    for label, span in (("24 h", 86400), ("7 d", 7 * 86400)):
        counts: list[int] = []
        med, first = timed(lambda since=until - span, counts=counts: counts.append(
            sum(1 for _ in store.rollup_metrics_between(since, until))), 5)
        print(f"   web read of a {label} window (rollup_metrics_between, {counts[0]:,} minutes): "
              f"median {med:.0f} ms, first {first:.0f} ms")
    series = series_kinds(args.series)
    levels = [("above", False, 50.0), ("above", False, 90.0)]

    def report_day() -> None:
        with HistoryReads(store.connect()) as reads:
            for metric, labels, _, _ in series:
                lab = "" if not labels else '{"item":"%s"}' % labels["item"]
                reads.rolled_series(metric, lab, start, start + 86400, levels, 1.0)
    med, first = timed(report_day, 3)
    print(f"   daily summary's read of one day of {len(series)} series (rolled_series with "
          f"sketch and 2 levels): median {med:.0f} ms, first {first:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--step", type=int, default=5, help="seconds between the rollups' samples")
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--full", action="store_true", help="every rollup value at full precision")
    ap.add_argument("--store-url", help=pgstore.HELP)
    args = ap.parse_args()
    print(harness.machine_line(), f"load average {os.getloadavg()[0]:.2f}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        with pgstore.databases(args.store_url) as database:
            url = database()
            print(f"store: {pgstore.masked(url)}")
            bench_write(tmp, args.ticks, url)
            store, day, start = bench_rollups(tmp, args, database())
            bench_rollup_job(tmp, args, database())
            bench_reads(store, day, start, args)
            store.close()
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
