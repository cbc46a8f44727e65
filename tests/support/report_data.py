"""A day of samples with a known shape, for the daily-summary tests (issue 6).

Written through the store's public interface (``Store.append`` then ``Store.rollup``); the
samples are also returned, so each test computes its reference figures from them itself.

Shape (local time, ``tz``), every ``step`` seconds:
- db: pool ~40 %, 09:00-09:30 at 88 % (past warning), 20 s at 97 % at 14:00 (the day's peak, but
  not a breach minute by its mean); no db samples at all 03:00-04:00 (a gap);
  connections/hour rising 300 -> ~420; avg query 30 ms, 150 ms 12:00-12:10; 2 slow/min 16:00-16:03;
- cache: hit rate ~85 %, 55 % 11:00-11:20; hits + misses = 100/s;
- queue ``emails``: pending ~10, 63 08:00-08:15, exactly 50 08:20-08:22 (the inclusive level);
  oldest age 700 s 08:00-08:15; ``reports``: one new failed job 13:00-13:05;
- host: CPU 20-60 %, memory ~70 %, disk ``/`` 55 % rising, ``/data`` 81 %;
- app: probe ``home`` down 10:00-10:03, response 120 ms, 800 ms 10:05-10:15;
  error rate 0.05 %, 0.5 % 17:00-17:30; checkout 99.5 %.
"""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from dashboard.model import Sample
from dashboard.store import Store


def day_bounds(d: date, tz: ZoneInfo) -> tuple[float, float]:
    start = datetime.combine(d, dtime(0)).replace(tzinfo=tz).timestamp()
    end = datetime.combine(d + timedelta(days=1), dtime(0)).replace(tzinfo=tz).timestamp()
    return start, end


def _between(h: float, a: float, b: float) -> bool:
    return a <= h < b


def tick(ts: float, start: float, rnd: random.Random) -> list[Sample]:
    h = (ts - start) / 3600            # hours since local midnight (elapsed, DST-proof)
    out: list[Sample] = []
    if not _between(h, 3, 4):
        pool = 40 + 10 * math.sin(2 * math.pi * h / 24) + rnd.uniform(-2, 2)
        if _between(h, 9, 9.5):
            pool = 88.0
        if _between(h, 14, 14 + 20 / 3600):
            pool = 97.0
        out.append(Sample("db", ts, {
            "db.up": 1.0, "db.pool_utilization": pool,
            "db.connections_per_hour": 300 + 5 * h + rnd.uniform(-3, 3),
            "db.avg_query_ms": 150.0 if _between(h, 12, 12 + 10 / 60) else 30 + rnd.uniform(-5, 5),
            "db.slow_queries_per_min": 2.0 if _between(h, 16, 16 + 3 / 60) else 0.0}))
    hit = 55.0 if _between(h, 11, 11 + 20 / 60) else 85 + rnd.uniform(-3, 3)
    out.append(Sample("cache", ts, {"cache.up": 1.0, "cache.hit_rate": hit,
                                    "cache.hits_per_s": hit, "cache.misses_per_s": 100 - hit}))
    pending = 10 + rnd.randint(-5, 5)
    age = 60 + rnd.uniform(0, 30)
    if _between(h, 8, 8.25):
        pending, age = 63, 700.0
    elif _between(h, 8 + 20 / 60, 8 + 22 / 60):
        pending = 50
    out.append(Sample("queue", ts, {"queue.up": 1.0}))
    out.append(Sample("queue", ts, {"queue.pending": float(pending), "queue.oldest_pending_age_s": age,
                                    "queue.failed_new": 0.0}, {"queue": "emails"}))
    out.append(Sample("queue", ts, {"queue.pending": 3.0, "queue.oldest_pending_age_s": 30.0,
                                    "queue.failed_new": 1.0 if _between(h, 13, 13 + 5 / 60) else 0.0},
                      {"queue": "reports"}))
    out.append(Sample("host", ts, {"host.up": 1.0,
                                   "host.cpu_percent": 40 + 20 * math.sin(h) + rnd.uniform(-5, 5),
                                   "host.mem_percent": 70 + rnd.uniform(-1, 1)}))
    out.append(Sample("host", ts, {"host.disk_percent": 55 + h / 100}, {"mount": "/"}))
    out.append(Sample("host", ts, {"host.disk_percent": 81.0}, {"mount": "/data"}))
    up = 0.0 if _between(h, 10, 10.05) else 1.0
    resp = 800.0 if _between(h, 10 + 5 / 60, 10.25) else 120 + rnd.uniform(-20, 20)
    out.append(Sample("app", ts, {"app.up": up, "app.response_ms": resp}, {"probe": "home"}))
    out.append(Sample("statsd", ts, {
        "statsd.up": 1.0,
        "app.error_rate": 0.5 if _between(h, 17, 17.5) else 0.05 + rnd.uniform(-0.02, 0.02),
        "app.checkout_success_rate": 99.5 + rnd.uniform(-0.3, 0.3)}))
    return out


def write_day(store: Store, d: date, tz: ZoneInfo, step: float = 10.0, seed: int = 6,
              until: float | None = None) -> list[Sample]:
    """Append the shaped day (up to ``until``) in hour-sized batches; return every sample."""
    start, end = day_bounds(d, tz)
    end = min(end, until) if until is not None else end
    rnd = random.Random(seed)
    every: list[Sample] = []
    batch: list[Sample] = []
    ts = start
    while ts < end:
        batch.extend(tick(ts, start, rnd))
        ts += step
        if len(batch) >= 3000:
            every.extend(store.append(batch))
            batch = []
    every.extend(store.append(batch))
    return every


def write_history(store: Store, d: date, tz: ZoneInfo, days: int, step: float = 60.0) -> dict:
    """``days`` days before ``d`` with daily peaks rising linearly (for trend and runway):
    pool peak 50 + 2 i %, connections/hour peak 300 + 5 i, disk ``/`` peak 60 + 1 i %.
    Returns {metric: [peak per day, oldest first]}."""
    peaks: dict[str, list[float]] = {"db.pool_utilization": [], "db.connections_per_hour": [],
                                     "host.disk_percent": []}
    for i in range(days):
        day = d - timedelta(days=days - i)
        start, end = day_bounds(day, tz)
        p, c, k = 50.0 + 2 * i, 300.0 + 5 * i, 60.0 + i
        batch = []
        ts = start
        while ts < end:
            noon = abs((ts - start) / 3600 - 12) < 0.5      # the day's peak hour
            batch.append(Sample("db", ts, {"db.pool_utilization": p if noon else p - 20,
                                           "db.connections_per_hour": c if noon else c - 100}))
            batch.append(Sample("host", ts, {"host.disk_percent": k if noon else k - 0.5},
                                {"mount": "/"}))
            ts += step
        store.append(batch)
        peaks["db.pool_utilization"].append(p)
        peaks["db.connections_per_hour"].append(c)
        peaks["host.disk_percent"].append(k)
    return peaks
