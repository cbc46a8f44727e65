"""Daily summary (issue 6): time to build it for a day of 1 s samples of 60 metrics or more.

Prints (figures, never assertions):
  1. a past day from the one-minute rollups (target <= 200 ms): first call, then median / max;
  2. today so far when the rollup job has not run for an hour: the last hour from raw samples,
     so the cost per hour of raw samples shows;
  3. today so far at 18:00 in normal operation: rollups up to the last complete minute plus the
     raw samples of the minute not rolled up yet (target <= 1 s);
  4. the page's extra work (chart points + plotly figures) for the past day.

Data (a temporary store, removed afterwards), 60 series sampled each second: host (10 + disk on
2 mounts), db (14), cache (8), queue (1 + 8 on each of 2 queues), a probe (3), statsd (6), with
realistic shapes (diurnal drift, noise, integer counts, constants).
 - The raw hour 17:00-18:00 of "today" goes through Store.append and Store.rollup, as in
   production.
 - The rollups of the past day and of today 00:00-17:00 are written through
   Store.write_rollup_blocks: for each minute and series the 60 one-second values are generated
   and reduced as Store.rollup reduces them (n, sum, min, max; the hour's sketch.build). Appending
   1.6 days of raw samples and rolling them up would take minutes here; the bench checks that
   both paths give identical minutes and sketches for the raw hour.
 - The 14 earlier days (trend and runway) only have their count / sum / min / max read by the
   report, so their minutes are written from the same shapes with a one-bucket sketch.
 - ``--queues N`` adds queues beyond the two of the 60 series, with the 3 series of each that
   the summary reads: ``--queues 96`` makes it read 301 series (348 in the store).

    .venv/bin/python bench/report.py [--repeat 7] [--queues 0]
"""
from __future__ import annotations

import argparse
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.config.load import from_dict  # noqa: E402
from dashboard.model import Sample  # noqa: E402
from dashboard.report.areas import AREAS  # noqa: E402
from dashboard.report.build import build_report  # noqa: E402
from dashboard.report.reader import labels_text  # noqa: E402
from dashboard.store import Store, sketch  # noqa: E402
from dashboard.store.history_reads import HistoryReads  # noqa: E402
from dashboard.store.rollups import HourBlock  # noqa: E402

TZ = "Europe/Berlin"
# (source, metric, labels, kind, level): kinds are drawn by value() below
SERIES: list[tuple[str, str, dict, str, float]] = [
    ("host", "host.up", {}, "flag", 1), ("host", "host.cpu_percent", {}, "noisy", 35),
    ("host", "host.load1", {}, "smooth", 2), ("host", "host.load_per_core", {}, "smooth", 0.5),
    ("host", "host.mem_percent", {}, "smooth", 70), ("host", "host.swap_percent", {}, "const", 2),
    ("host", "host.net_rx_bps", {}, "noisy", 2e6), ("host", "host.net_tx_bps", {}, "noisy", 3e6),
    ("host", "host.disk_read_bps", {}, "noisy", 5e5), ("host", "host.disk_write_bps", {}, "noisy", 1e6),
    ("host", "host.disk_percent", {"mount": "/"}, "smooth", 55),
    ("host", "host.disk_percent", {"mount": "/data"}, "smooth", 70),
    ("db", "db.up", {}, "flag", 1), ("db", "db.threads_connected", {}, "int", 60),
    ("db", "db.threads_running", {}, "int", 5), ("db", "db.pool_capacity", {}, "const", 100),
    ("db", "db.pool_utilization", {}, "int", 60), ("db", "db.max_used_connections", {}, "const", 88),
    ("db", "db.refused_connections", {}, "const", 0),
    ("db", "db.aborted_connects_per_min", {}, "smooth", 0.2),
    ("db", "db.queries_per_s", {}, "noisy", 800), ("db", "db.connections_per_hour", {}, "smooth", 350),
    ("db", "db.connections_per_hour_limit", {}, "const", 500),
    ("db", "db.slow_queries_per_min", {}, "smooth", 0.5),
    ("db", "db.avg_query_ms", {}, "noisy", 25), ("db", "db.long_running", {}, "int", 1),
    ("cache", "cache.up", {}, "flag", 1), ("cache", "cache.hit_rate", {}, "smooth", 86),
    ("cache", "cache.hits_per_s", {}, "noisy", 900), ("cache", "cache.misses_per_s", {}, "noisy", 150),
    ("cache", "cache.evicted_per_s", {}, "const", 0), ("cache", "cache.memory_percent", {}, "smooth", 60),
    ("cache", "cache.clients", {}, "int", 40), ("cache", "cache.ops_per_s", {}, "noisy", 1200),
    ("queue", "queue.up", {}, "flag", 1),
    *[("queue", m, {"queue": q}, kind, lvl) for q in ("emails", "reports") for m, kind, lvl in (
        ("queue.pending", "int", 12), ("queue.failed", "const", 3), ("queue.failed_new", "const", 0),
        ("queue.oldest_pending_age_s", "smooth", 90), ("queue.enqueued_per_s", "noisy", 4),
        ("queue.dequeued_per_s", "noisy", 4), ("queue.net_dequeue_per_s", "noisy", 0.5),
        ("queue.drain_eta_s", "smooth", 30))],
    ("app", "app.up", {"probe": "home"}, "flag", 1),
    ("app", "app.response_ms", {"probe": "home"}, "noisy", 150),
    ("app", "app.status", {"probe": "home"}, "const", 200),
    ("statsd", "statsd.up", {}, "flag", 1), ("statsd", "app.error_rate", {}, "smooth", 0.05),
    ("statsd", "app.checkout_success_rate", {}, "smooth", 99.5),
    ("statsd", "app.response_ms_p95", {}, "noisy", 300),
    ("statsd", "app.requests_per_s", {}, "noisy", 200), ("statsd", "statsd.packets_per_s", {}, "noisy", 400),
]
assert len(SERIES) == 60


def more_queues(n: int) -> list[tuple[str, str, dict, str, float]]:
    """``n`` more queues: their series the summary reads (pending, oldest age, new failures),
    shaped like the first two queues'."""
    read = {a.metric for a in AREAS}
    two = [x for x in SERIES if x[2].get("queue") == "emails" and x[1] in read]
    return [(src, m, {"queue": f"q{i:03d}"}, kind, lvl) for i in range(n) for src, m, _, kind, lvl in two]


def value(kind: str, level: float, hour: float, rnd: random.Random) -> float:
    day = 1 + 0.3 * math.sin(2 * math.pi * (hour - 9) / 24)          # busier by day
    if kind == "noisy":
        return max(0.0, rnd.gauss(level * day, level * 0.1))
    if kind == "smooth":
        return level * (0.97 + 0.03 * day) + rnd.uniform(-0.001, 0.001) * level
    if kind == "int":
        return float(max(0, round(rnd.gauss(level * day, max(1.0, level * 0.05)))))
    if kind == "flag":
        return 0.0 if rnd.random() < 1e-4 else 1.0
    return float(level)


def minute_values(minute: float, start: float, rnd: random.Random) -> list[list[float]]:
    hour = (minute - start) / 3600
    return [[value(kind, lvl, hour + s / 3600, rnd) for s in range(60)] for _, _, _, kind, lvl in SERIES]


def minute_row(vs: list[float]) -> tuple[int, float, float, float]:
    """What Store.rollup keeps of a minute: n, sum, min, max."""
    return len(vs), sum(vs), min(vs), max(vs)


def write_rollups(store: Store, since: float, until: float, start: float, rnd: random.Random) -> int:
    """One-second values reduced to minutes and hour sketches, an hour of blocks at a time."""
    n = 0
    for hour in range(int(since), int(until), 3600):
        minutes: list[dict[int, tuple[int, float, float, float]]] = [{} for _ in SERIES]
        buckets: list[Counter[int]] = [Counter() for _ in SERIES]
        for minute in range(hour, min(hour + 3600, int(until)), 60):
            for i, vs in enumerate(minute_values(minute, start, rnd)):
                minutes[i][minute] = minute_row(vs)
                buckets[i].update(sketch.build(vs))
        n += store.write_rollup_blocks(
            (HourBlock(metric, labels, hour, minutes[i], buckets[i])
             for i, (_, metric, labels, _, _) in enumerate(SERIES)),
            rolled_until=min(hour + 3600, int(until)))
    return n * 60


def write_history(store: Store, days: list[tuple[float, float]], rnd: random.Random) -> int:
    n = 0
    for i, (start, end) in enumerate(days):
        for hour in range(int(start), int(end), 3600):
            given = []
            for _, metric, labels, kind, lvl in SERIES:
                minutes, buckets = {}, Counter()
                for minute in range(hour, hour + 3600, 60):
                    v = value(kind, lvl * (1 + 0.01 * i), (minute - start) / 3600, rnd)
                    spread = v * 0.1 if kind == "noisy" else 0.0
                    minutes[minute] = (60, 60 * v, v - spread, v + spread)
                    buckets[sketch.bucket_of(v)] += 60
                given.append(HourBlock(metric, labels, hour, minutes, buckets))
            n += store.write_rollup_blocks(given)
    return n * 60


def append_raw(store: Store, since: float, until: float, start: float, rnd: random.Random) -> dict:
    """One-second samples through Store.append; returns {minute: per-series values}."""
    kept: dict[int, list[list[float]]] = {}
    batch: list[Sample] = []
    minute = int(since)
    while minute < until:
        per_series = minute_values(minute, start, rnd)
        kept[minute] = per_series
        for s in range(60):
            groups: dict[tuple[str, str], tuple[dict, dict]] = {}
            for (source, metric, labels, _, _), vs in zip(SERIES, per_series):
                g = groups.setdefault((source, labels_text(labels)), ({}, labels))
                g[0][metric] = vs[s]
            batch.extend(Sample(src, minute + s, vals, labels)
                         for (src, _), (vals, labels) in groups.items())
        if len(batch) >= 6000:
            store.append(batch)
            batch = []
        minute += 60
    store.append(batch)
    return kept


def store_rolled(store: Store) -> float:
    with HistoryReads(store.connect()) as reads:
        return reads.rolled_until() or 0.0


def local(d: date, hh: int, tz: ZoneInfo) -> float:
    return datetime.combine(d, dtime(hh)).replace(tzinfo=tz).timestamp()


def timed(fn, repeat: int) -> tuple[float, list[float], object]:
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return first, runs, out


def show(label: str, first: float, runs: list[float], target: float | None = None) -> None:
    med = statistics.median(runs)
    verdict = ("" if target is None
               else f"  (target <= {target * 1000:.0f} ms: {'met' if med <= target else 'MISSED'})")
    print(f"  {label:<58} first {first * 1000:7.1f} ms  median {med * 1000:7.1f} ms  "
          f"max {max(runs) * 1000:7.1f} ms{verdict}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--queues", type=int, default=0, help="queues beyond the first two")
    args = ap.parse_args()
    SERIES.extend(more_queues(args.queues))
    tz = ZoneInfo(TZ)
    today = date(2026, 10, 20)                       # "today" is given to the report as `now`
    yesterday = today - timedelta(days=1)
    t_start, y_start = local(today, 0, tz), local(yesterday, 0, tz)
    now_18 = local(today, 18, tz)
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        store = Store(tmp)
        settings = from_dict({"data_dir": str(tmp), "timezone": TZ})
        rnd = random.Random(6)
        t = time.perf_counter()
        hist = [(local(yesterday - timedelta(days=i), 0, tz), local(yesterday - timedelta(days=i - 1), 0, tz))
                for i in range(14, 0, -1)]
        n_hist = write_history(store, hist, rnd)
        n_roll = write_rollups(store, y_start, local(today, 17, tz), y_start, rnd)
        kept = append_raw(store, local(today, 17, tz), now_18, t_start, rnd)
        print(f"data: {len(SERIES)} series at 1 s; {n_hist} history series-minutes (14 days), "
              f"{n_roll} series-minutes "
              f"(yesterday + today to 17:00), {len(kept) * 3600} raw samples x 60 series-values "
              f"(17:00-18:00) written in {time.perf_counter() - t:.1f} s")

        read = sum(1 for _, m, *_ in SERIES if m in {a.metric for a in AREAS})
        print(f"\n1. a past day from rollups (1440 minutes x {len(SERIES)} series; the report reads "
              f"{read} series)")
        first, runs, doc = timed(lambda: build_report(store, settings, yesterday.isoformat(), now=now_18),
                                 args.repeat)
        show("summary (JSON/CSV/e-mail content, trend, runway)", first, runs, 0.2)
        print("     (the first call also totals the 14 earlier days once: a day completely rolled up is\n"
              "      kept in report_day_series; every later report reads those totals)")
        sketched = sum(s["samples"] for a in doc["areas"] for s in a["series"])
        print(f"     {sketched:,} one-second values behind the figures; coverage {doc['coverage']['status']}")

        print("\n2. today so far at 18:00, rollup job stalled since 17:00 (last hour from raw samples)")
        first, runs, _ = timed(lambda: build_report(store, settings, "today", now=now_18),
                               max(3, args.repeat // 2))
        show("summary, 17 h of rollups + 60 min of raw samples", first, runs, 1.0)

        t = time.perf_counter()
        store.rollup(now=now_18)                     # the production path rolls up the raw hour
        t_roll = time.perf_counter() - t
        print("\n3. today so far at 18:00 in normal operation (rollup every minute)")
        first, runs, doc = timed(lambda: build_report(store, settings, "today", now=now_18 + 30), args.repeat)
        show("summary, rollups up to 17:59 + the raw minute not rolled up", first, runs, 1.0)

        # The direct path writes what Store.rollup writes: compare the raw hour's minutes and
        # sketches.
        h17 = int(local(today, 17, tz))
        got = {(m, labels_text(lab), minute): (n, s, lo, hi)
               for m, lab, minute, n, s, lo, hi in store.rollup_metrics_between(h17, now_18)}
        kept = {minute: per for minute, per in kept.items() if minute < store_rolled(store)}
        want = {(m, labels_text(lab), minute): minute_row(vs) for minute, per in kept.items()
                for (_, m, lab, _, _), vs in zip(SERIES, per)}
        same = sum(1 for k, v in got.items() if want.get(k) == v)
        with HistoryReads(store.connect()) as reads:
            sketches_same = sum(
                reads.rolled_series(m, labels_text(lab), h17, now_18, (), 1.0).sketch
                == sketch.build(v for per in kept.values() for v in per[i])
                for i, (_, m, lab, _, _) in enumerate(SERIES))
        print(f"     Store.rollup of the raw hour took {t_roll:.2f} s; of its {len(got)} minutes "
              f"({len(SERIES)} series x {len(got) // len(SERIES)} complete minutes) {same} equal "
              f"the direct writer's, and {sketches_same} of {len(SERIES)} hour sketches")

        print("\n4. the page's extra work for the past day")
        first, runs, doc = timed(lambda: build_report(store, settings, yesterday.isoformat(),
                                                      now=now_18, charts=True), args.repeat)
        show("summary with 5-minute chart points", first, runs)
        from dashboard.report import charts
        first, runs, figs = timed(lambda: charts.figures(doc), max(3, args.repeat // 2))
        show(f"plotly figures for {len(figs)} areas (first includes importing plotly)", first, runs)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
