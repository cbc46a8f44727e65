"""A synthetic history (issue 15): a data dir filled as if the dashboard had collected for
``--hours``, for benchmarks and capacity planning, and what it takes on disk.

Written through the store's own bulk interface, so the file is what the dashboard would have
made: raw ticks (``Store.append_many``, one append per collector per tick, as the runtime
stores them) for the newest min(``--hours``, raw retention) hours, and one-minute rollup hour
blocks (``Store.write_rollup_blocks``) for every complete minute, the raw hours' reduced from
the very values written raw as ``Store.rollup`` reduces them, with the rollup watermark where
the job, run at the end, would have left it: the job goes on from there. The raw retention is
the configuration's (``dashboard.config.load``: the file named by ``--config`` or
``$DASHBOARD_CONFIG``, and ``DASHBOARD_RAW_RETENTION_H``).

Series carry the dashboard's real metric names: ``host.*`` per agent host label, ``queue.*`` per
queue label, ``db.*`` and ``cache.*`` (taken in turn, so a few series hold every kind). Values
follow a daily wave and a slow random walk with noise (``bench.store_size.draw``: rounded as the
collectors round them) and rare spikes; percents stay within 100, flags are 1 with rare outages.
All samples of a tick share one time on a grid of ``--interval`` seconds ending now.

Prints the time it took and the load average, then bytes per raw value and per rolled-up
series-minute (``dbstat``: tables and their indexes) and what a series takes a day and the
history at the retention for 100 / 300 / 1,000 series.

    .venv/bin/python bench/synthetic_history.py --data-dir DIR [--series 300] [--hours 24]
                                                [--interval S] [--config FILE] [--seed 15]
                                                [--store-url URL]

``--store-url postgresql://...`` (default: the configuration's ``store_url``) fills that
database's history instead of the data dir's file (an empty one; sizes are its tables').
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from bisect import bisect_left
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count, groupby
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.store_size import HOST_METRICS, QUEUE_METRICS, draw, table_bytes  # noqa: E402
from dashboard.collectors.catalog import all_metrics  # noqa: E402
from dashboard.config.load import load  # noqa: E402
from dashboard.model import Sample  # noqa: E402
from dashboard.store import Store, sketch  # noqa: E402
from dashboard.store.history import ROLLUP_LAG_S  # noqa: E402
from dashboard.store.rollups import HourBlock  # noqa: E402

# How db.* and cache.* values are drawn, by the catalog's unit: (decimals or None, level).
UNIT_DRAW: dict[str, tuple[int | None, float]] = {
    "%": (1, 40.0), "count": (0, 20.0), "/s": (None, 300.0), "/min": (1, 2.0),
    "/h": (0, 400.0), "ms": (3, 2.5), "bytes": (0, 2e8), "bool": (0, 1.0)}
SPIKE_P = 1 / 240          # chance a minute holds a spike (3-30 samples at 2-5x the level)
OUTAGE_P = 1 / 20_000      # chance a flag drops to 0 for the minute
DAY = 86400.0


@dataclass(frozen=True)
class Series:
    metric: str
    labels: dict[str, str]
    source: str                # the collector that reports it (one append per source a tick)
    decimals: int | None
    level: float
    unit: str


class Trend:
    """A series' level: a daily wave around its typical level, times a slow random walk."""

    def __init__(self, series: Series, rnd: random.Random) -> None:
        self.series, self.rnd = series, rnd
        self.phase, self.amp, self.walk = rnd.random(), rnd.uniform(0.1, 0.4), 1.0

    def minute(self, t: float, k: int) -> list[float]:
        """``k`` values of the minute starting at ``t``."""
        s, rnd = self.series, self.rnd
        if s.unit == "bool":
            return [0.0 if rnd.random() < OUTAGE_P else s.level] * k
        self.walk = min(2.0, max(0.5, self.walk * math.exp(rnd.gauss(0, 0.02))))
        level = s.level * self.walk * (1 + self.amp * math.sin(2 * math.pi * (t / DAY + self.phase)))
        vs = [draw(s.decimals, level, rnd, False) for _ in range(k)]
        if rnd.random() < SPIKE_P:
            a = rnd.randrange(k)
            b = min(k, a + rnd.randint(3, 30))
            f = rnd.uniform(2, 5)
            vs[a:b] = [draw(s.decimals, level * f, rnd, False) for _ in range(b - a)]
        return [min(100.0, v) for v in vs] if s.unit == "%" else vs


def series_list(n: int) -> list[Series]:
    """``n`` series: agent hosts' host.*, queues' queue.*, db.*, cache.*, one of each in turn
    (db.* and cache.* run out; hosts and queues go on)."""
    units = {name: spec.unit for name, spec in all_metrics().items()}

    def labelled(metrics: list, source: str, label: str, fmt: str) -> Iterator[Series]:
        for i in count(1):
            for m, d, lvl in metrics:
                yield Series(m, {label: fmt.format(i)}, source, d, lvl, units[m])

    def plain(prefix: str, source: str) -> Iterator[Series]:
        for name, unit in units.items():
            if name.startswith(prefix) and unit in UNIT_DRAW:
                yield Series(name, {}, source, *UNIT_DRAW[unit], unit)

    streams = [labelled(HOST_METRICS, "agents", "host", "app{:02d}"),
               labelled(QUEUE_METRICS, "queue", "queue", "q{:03d}"),
               plain("db.", "db"), plain("cache.", "cache")]
    out: list[Series] = []
    while len(out) < n:
        for st in list(streams):
            s = next(st, None)
            if s is None:
                streams.remove(st)
            elif len(out) < n:
                out.append(s)
    return out


def clock_hours(t0: float, n: int, interval: float) -> Iterator[tuple[int, list[float]]]:
    """The grid's ``n`` times from ``t0``, a clock hour at a time."""
    i = 0
    while i < n:
        hour = int((t0 + i * interval) // 3600) * 3600
        times = []
        while i < n and (t := t0 + i * interval) < hour + 3600:
            times.append(t)
            i += 1
        yield hour, times


@dataclass
class Filled:
    raw_values: int = 0
    raw_samples: int = 0
    series_minutes: int = 0
    blocks: int = 0
    took: dict[str, float] = field(default_factory=dict)     # seconds per step

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self.took[step] = self.took.get(step, 0.0) + time.perf_counter() - t


Groups = dict[tuple[str, tuple[tuple[str, str], ...]], list[int]]   # (source, labels) -> series


def raw_ticks(series: list[Series], groups: Groups, times: list[float],
              cols: list[list[float]]) -> list[list[Sample]]:
    """One append per source per time, one sample per label set, as the collectors report."""
    by_source: dict[str, list[tuple[dict[str, str], list[str], list[tuple[float, ...]]]]] = {}
    for (src, labels), idx in groups.items():
        by_source.setdefault(src, []).append(
            (dict(labels), [series[j].metric for j in idx], list(zip(*(cols[j] for j in idx)))))
    return [[Sample(src, ts, dict(zip(names, rows[r])), labels) for labels, names, rows in tick]
            for r, ts in enumerate(times) for src, tick in by_source.items()]


def fill(store: Store, series: list[Series], hours: float, interval: float, raw_h: float,
         seed: int) -> Filled:
    """Write the history ending now; the figures of what was written and the time it took."""
    rnd = random.Random(seed)
    trends = [Trend(s, random.Random(rnd.random())) for s in series]
    groups: Groups = {}
    for j, s in enumerate(series):
        groups.setdefault((s.source, tuple(sorted(s.labels.items()))), []).append(j)
    n = int(hours * 3600 // interval)
    end = time.time()
    t0 = end - (n - 1) * interval
    raw_from = end - raw_h * 3600
    rolled_until = int((end - ROLLUP_LAG_S) // 60) * 60       # where the job would be now
    out = Filled()
    for hour, times in clock_hours(t0, n, interval):
        with out.timed("drawing values"):
            minutes = [(m, len(list(ts))) for m, ts in groupby(times, lambda x: int(x // 60) * 60)]
            cols = [[v for m, k in minutes for v in tr.minute(m, k)] for tr in trends]
        with out.timed("making samples"):
            lo = bisect_left(times, raw_from)
            ticks = raw_ticks(series, groups, times[lo:], [c[lo:] for c in cols])
        with out.timed("reducing minutes"):
            blocks = [b for b in (block(s, hour, minutes, col, rolled_until)
                                  for s, col in zip(series, cols)) if b.minutes]
        with out.timed("Store.append_many"):
            out.raw_samples += store.append_many(ticks)
        with out.timed("Store.write_rollup_blocks"):
            out.blocks += store.write_rollup_blocks(blocks, min(rolled_until, hour + 3600))
        out.raw_values += (len(times) - lo) * len(series)
        out.series_minutes += sum(len(b.minutes) for b in blocks)
    return out


def block(s: Series, hour: int, minutes: list[tuple[int, int]], values: list[float],
          rolled_until: int) -> HourBlock:
    """The hour's complete minutes as ``Store.rollup`` reduces them: count, sum in time order,
    min, max, and the sketch of every value."""
    rows = {}
    a = 0
    for m, k in minutes:
        if m >= rolled_until:
            break
        vs = values[a:a + k]
        rows[m] = (k, sum(vs), min(vs), max(vs))
        a += k
    return HourBlock(s.metric, s.labels, hour, rows, sketch.build(values[:a]))


def disk_figures(store: Store, filled: Filled, interval: float, raw_h: float,
                 rollup_d: float) -> None:
    raw = table_bytes(store, ("ticks", "ticks_ts"))
    rolled = table_bytes(store, ("rollups", "rollups_series_hour"))
    per_value = raw / filled.raw_values if filled.raw_values else float("nan")
    per_minute = rolled / filled.series_minutes
    raw_day = per_value * DAY / interval
    rollup_day = per_minute * 1440
    print(f"raw: {per_value:.2f} B per value ({raw / 2**20:.1f} MiB for {filled.raw_values:,} "
          f"values, ticks and ticks_ts); rollups: {per_minute:.2f} B per series-minute "
          f"({rolled / 2**20:.1f} MiB for {filled.series_minutes:,}, sketches and index included)")
    print(f"a series a day: raw {raw_day / 2**20:.2f} MiB (a value every {interval:g} s), "
          f"rollups {rollup_day / 1024:.1f} KiB")
    print(f"at the retention (raw {raw_h:g} h, rollups {rollup_d:g} days):")
    for n in (100, 300, 1000):
        r, u = n * raw_day * raw_h / 24, n * rollup_day * rollup_d
        print(f"  {n:>5,} series: raw {r / 2**30:.2f} GiB + rollups {u / 2**30:.2f} GiB "
              f"= {(r + u) / 2**30:.2f} GiB")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--interval", type=float, help="seconds between samples (the settings')")
    ap.add_argument("--config", help="configuration file (default: $DASHBOARD_CONFIG)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--store-url", help="postgresql://user:pass@host:port/db (default: the "
                    "configuration's store_url; none: the data dir's SQLite file)")
    args = ap.parse_args()
    settings = load(args.config)
    interval = args.interval or settings.interval_s
    raw_h = min(args.hours, settings.raw_retention_h)
    store = Store(args.data_dir, settings.raw_retention_h, settings.rollup_retention_d,
                  store_url=args.store_url or settings.store_url)
    try:
        if any(store.stats()[k] for k in ("raw_samples", "rollup_blocks")):
            print(f"{args.data_dir} already holds a history: give an empty data dir",
                  file=sys.stderr)
            return 2
        print(harness.machine_line())
        series = series_list(args.series)
        t = time.perf_counter()
        filled = fill(store, series, args.hours, interval, raw_h, args.seed)
        took = time.perf_counter() - t
        print(f"{len(series)} series x {args.hours:g} h at {interval:g} s: raw the newest "
              f"{raw_h:g} h ({filled.raw_samples:,} samples, {filled.raw_values:,} values), "
              f"{filled.blocks:,} rollup blocks ({filled.series_minutes:,} series-minutes); "
              f"in {took:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in filled.took.items())}), "
              f"load average {os.getloadavg()[0]:.2f}")
        disk_figures(store, filled, interval, settings.raw_retention_h,
                     settings.rollup_retention_d)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
