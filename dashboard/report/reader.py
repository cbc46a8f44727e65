"""One series over a time range, aggregated: rollups where they exist, raw samples after.

The store rolls complete minutes up behind a watermark. Minutes before it are aggregated in
the store (``HistoryReads.rolled_series``: count, sum, min, max, minutes past each level,
5-minute chart buckets, the merged sketch). Minutes from the watermark on (the last minute or
two of today, or more if the rollup job was not running) are rolled up here from raw samples
exactly as ``Store.rollup`` does it, and merged.

Reads use the report's own connection (``ReportsRepo.history``: they never wait for the
collector's writes).
"""
from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from dashboard.store import Store, sketch
from dashboard.store.history_reads import HistoryReads

CHART_BUCKET_S = 300            # the day's chart: 5-minute mean, min and max (peaks kept)


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


def rolled_agg(history: HistoryReads, metric: str, labels: str, since: float, until: float,
               levels: Sequence[Level], scale: float, chart_start: float | None,
               quantiles: bool = True) -> Agg | None:
    """The rolled-up minutes of one series in ``[since, until)``, aggregated in the store."""
    r = history.rolled_series(metric, labels, since, until,
                              [(lv.direction, lv.inclusive, lv.value) for lv in levels], scale,
                              quantiles)
    if r is None:
        return None
    agg = Agg(r.minutes, r.n, r.total, r.lo, r.hi, r.lo_at, r.hi_at,
              {lv.name: b for lv, b in zip(levels, r.breaches)}, r.sketch)
    if chart_start is not None:
        agg.buckets = history.rolled_buckets(metric, labels, since, until, chart_start,
                                             CHART_BUCKET_S)
    return agg


def raw_aggs(store: Store, history: HistoryReads, metrics: Iterable[str], since: float,
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
    for ts, labels, vals in history.samples(since, until, sources):
        minute = int(ts // 60) * 60
        for metric, v in vals.items():
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
