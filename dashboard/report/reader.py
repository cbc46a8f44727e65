"""One series over a time range, aggregated: rollups where they exist, raw samples after.

The store rolls complete minutes up behind a watermark (``meta.rollup_done_until``). Minutes
before it are aggregated inside SQLite from ``rollup_1m`` (count, sum, min, max, minutes past
each level, 5-minute chart buckets, all sketches concatenated), one primary-key range scan per
series: no per-minute Python objects, which is what keeps a day of many series fast. Minutes
from the watermark on (the last minute or two of today, or more if the rollup job was not
running) are rolled up here from raw samples exactly as ``Store.rollup`` does it, and merged.

Reads use the report's own connection (WAL: they never wait for the collector's writes).
"""
from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from dashboard.store import sketch
from dashboard.store import Store

CHART_BUCKET_S = 300            # the day's chart: 5-minute mean, min and max (peaks kept)

# How a rule's level is breached by a minute's mean, as SQL (never built from input).
SQL_OPS = {("above", False): ">", ("above", True): ">=", ("below", False): "<", ("below", True): "<="}


@dataclass(frozen=True)
class Level:
    name: str                   # warning | critical
    value: float
    direction: str              # above | below
    inclusive: bool

    def breached_by(self, v: float) -> bool:
        if self.direction == "above":
            return v >= self.value if self.inclusive else v > self.value
        return v <= self.value if self.inclusive else v < self.value


@dataclass
class Agg:
    """What a series did over some minutes; two of them merge into one."""
    minutes: int = 0
    n: int = 0
    total: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    lo_at: int | None = None    # first minute holding the minimum / maximum
    hi_at: int | None = None
    breach: dict[str, int] = field(default_factory=dict)
    sketch: Counter = field(default_factory=Counter)
    buckets: dict[int, list[float]] = field(default_factory=dict)   # chart: n, sum, min, max
    minute_set: set[int] | None = None                               # raw minutes only

    def merge(self, other: "Agg") -> "Agg":
        if other.lo < self.lo or (other.lo == self.lo and self.lo_at is None):
            self.lo, self.lo_at = other.lo, other.lo_at
        if other.hi > self.hi or (other.hi == self.hi and self.hi_at is None):
            self.hi, self.hi_at = other.hi, other.hi_at
        self.minutes += other.minutes
        self.n += other.n
        self.total += other.total
        for k, v in other.breach.items():
            self.breach[k] = self.breach.get(k, 0) + v
        self.sketch.update(other.sketch)
        for b, acc in other.buckets.items():
            _bucket_add(self.buckets, b, *acc)
        return self


def _bucket_add(buckets: dict[int, list[float]], b: int, n: float, total: float, lo: float,
                hi: float) -> None:
    acc = buckets.get(b)
    if acc is None:
        buckets[b] = [n, total, lo, hi]
    else:
        acc[0] += n; acc[1] += total; acc[2] = min(acc[2], lo); acc[3] = max(acc[3], hi)


def labels_text(labels: Mapping[str, str]) -> str:
    """The store's text form of a label set (sorted compact JSON, "" for none)."""
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":")) if labels else ""


def labels_dict(text: str) -> dict[str, str]:
    return json.loads(text) if text else {}


def watermark(conn: sqlite3.Connection) -> float | None:
    """Minutes before this epoch are rolled up (None: nothing rolled up yet)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'rollup_done_until'").fetchone()
    return float(row[0]) if row else None


def rollup_label_sets(conn: sqlite3.Connection, metric: str) -> list[str]:
    """Every label set of ``metric`` in the rollups, one index seek per label set."""
    out: list[str] = []
    row = conn.execute("SELECT labels FROM rollup_1m WHERE metric = ? AND labels >= ''"
                       " ORDER BY labels LIMIT 1", (metric,)).fetchone()
    while row is not None:
        out.append(row[0])
        row = conn.execute("SELECT labels FROM rollup_1m WHERE metric = ? AND labels > ?"
                           " ORDER BY labels LIMIT 1", (metric, row[0])).fetchone()
    return out


def parse_sketches(text: str | None) -> Counter:
    """Concatenated ``b:c,b:c`` texts -> merged buckets. Equal tokens are counted in C first,
    so Python parses each distinct (bucket, count) pair once, not every minute's buckets."""
    out: Counter = Counter()
    if text:
        for token, times in Counter(text.split(",")).items():
            b, _, c = token.partition(":")
            out[int(b)] += int(c) * times
    return out


_KEY = "metric = ? AND labels = ? AND minute >= ? AND minute < ?"


def rolled_agg(conn: sqlite3.Connection, metric: str, labels: str, since: float, until: float,
               levels: Sequence[Level], scale: float, chart_start: float | None,
               quantiles: bool = True) -> Agg | None:
    """The rolled-up minutes of one series in ``[since, until)``, aggregated in SQLite."""
    key = (metric, labels, int(since), int(until))
    breach_sql = "".join(
        f", SUM((CAST(sum AS REAL) / n) * ? {SQL_OPS[(lv.direction, lv.inclusive)]} ?)" for lv in levels)
    breach_args = [a for lv in levels for a in (scale, lv.value)]
    sketch_sql = "group_concat(sketch, ',')" if quantiles else "NULL"
    row = conn.execute(
        f"SELECT COUNT(*), SUM(n), SUM(sum), MIN(min), MAX(max), {sketch_sql}{breach_sql}"
        f" FROM rollup_1m WHERE {_KEY}", (*breach_args, *key)).fetchone()
    if not row[0]:
        return None
    minutes, n, total, lo, hi, sketches, *breaches = row
    if lo == hi and sketches:
        sketches = f"{sketch.bucket_of(lo)}:{n}"     # a constant: nothing to merge
    lo_at = conn.execute(f"SELECT MIN(minute) FROM rollup_1m WHERE {_KEY} AND min = ?",
                         (*key, lo)).fetchone()[0]
    hi_at = conn.execute(f"SELECT MIN(minute) FROM rollup_1m WHERE {_KEY} AND max = ?",
                         (*key, hi)).fetchone()[0]
    agg = Agg(minutes, n, total, lo, hi, lo_at, hi_at,
              {lv.name: int(b or 0) for lv, b in zip(levels, breaches)}, parse_sketches(sketches))
    if chart_start is not None:
        start = int(chart_start)
        for b, bn, btotal, blo, bhi in conn.execute(
                f"SELECT (minute - ?) / {CHART_BUCKET_S}, SUM(n), SUM(sum), MIN(min), MAX(max)"
                f" FROM rollup_1m WHERE {_KEY} GROUP BY 1", (start, *key)):
            agg.buckets[b] = [bn, btotal, blo, bhi]
    return agg


def raw_aggs(store: Store, conn: sqlite3.Connection, metrics: Iterable[str], since: float,
             until: float, levels_of: Mapping[str, tuple[Sequence[Level], float]],
             chart_start: float | None) -> dict[tuple[str, str], Agg]:
    """Raw samples in ``[since, until)`` rolled up to minutes as the store does, aggregated.

    Read on the report's own connection, not through ``Store.between``: that holds the store's
    lock, and a long read there would hold up the collectors' appends."""
    wanted = set(metrics)
    sources = sorted({s for m in wanted for s in store.sources_of(m)})
    if not sources or until <= since:
        return {}
    acc: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for ts, labels, vals in conn.execute(
            f"SELECT ts, labels, vals FROM samples WHERE ts >= ? AND ts < ? AND source IN"
            f" ({','.join('?' * len(sources))}) ORDER BY seq", (since, until, *sources)):
        minute = int(ts // 60) * 60
        for metric, v in json.loads(vals).items():
            if metric in wanted:
                acc[(metric, labels, minute)].append(v)
    out: dict[tuple[str, str], Agg] = {}
    for (metric, lab, minute), vs in sorted(acc.items(), key=lambda kv: kv[0][2]):
        levels, scale = levels_of.get(metric, ((), 1.0))
        n, total, lo, hi = len(vs), sum(vs), min(vs), max(vs)
        one = Agg(1, n, total, lo, hi, minute, minute,
                  {lv.name: int(lv.breached_by(total / n * scale)) for lv in levels},
                  sketch.build(vs), minute_set={minute})
        if chart_start is not None:
            one.buckets[int((minute - int(chart_start)) // CHART_BUCKET_S)] = [n, total, lo, hi]
        a = out.get((metric, lab))
        if a is None:
            out[(metric, lab)] = one
        else:
            a.merge(one)
            a.minute_set.add(minute)            # type: ignore[union-attr]
    return out


def minutes_of(conn: sqlite3.Connection, metrics: Sequence[str], since: float,
               until: float) -> set[int]:
    """Distinct rolled-up minutes of the unlabelled series of ``metrics`` (coverage)."""
    if not metrics:
        return set()
    marks = ",".join("?" * len(metrics))
    return {m for (m,) in conn.execute(
        f"SELECT DISTINCT minute FROM rollup_1m WHERE metric IN ({marks}) AND labels = ''"
        " AND minute >= ? AND minute < ?", (*metrics, int(since), int(until)))}
