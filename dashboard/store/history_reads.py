"""Long reads of the history (raw ticks, rollup blocks) on a connection of their own.

The daily summary reads a day of rollups for many series, and ``/api/history`` up to 48 h of
samples or a week of rollups: through ``Store``'s methods they would hold the store's lock, and
the collectors' appends would wait behind them. On their own connection (WAL) they run beside
the appends. ``Store.rows_since`` and ``Store.rollup_metrics_between`` open one; the reports'
repository (``ReportsRepo``) holds one for its own tables and these reads.

A series' minutes over a range are its hour blocks decoded into columns (``rollups.py``), and
the figures come from C-level passes over them (``sum``, ``min``, ``list.index``, ``map``): no
per-minute Python object.
"""
from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from operator import truediv
from types import TracebackType
from typing import Iterable, Iterator, Sequence

from dashboard.store import sketch
from dashboard.store.blocks import Minutes
from dashboard.store.catalog import Catalog, Shape, labels_text
from dashboard.store.rollups import BlockReads
from dashboard.store.ticks import Row, TickReads
from dashboard.store.txn import Connection

# How a level is breached by a minute's mean: (direction, inclusive) -> comparison.
_OPS = {("above", False): operator.gt, ("above", True): operator.ge,
        ("below", False): operator.lt, ("below", True): operator.le}


@dataclass
class RolledSeries:
    """What one series' rolled-up minutes did over a time range."""

    minutes: int
    n: int
    total: float
    lo: float
    hi: float
    lo_at: int                        # first minute holding the minimum / maximum
    hi_at: int
    breaches: list[int]               # minutes whose mean (times the scale) is past each level
    sketch: Counter[int]              # merged quantile buckets (empty unless asked for)


# metric, labels as stored, bucket start, n, sum, min, max, the bucket's last minute
Bucket = tuple[str, str, int, int, float, float, float, int]


# metric, labels as stored, the buckets (``minute``: each bucket's start), each one's last minute
BucketColumns = tuple[str, str, Minutes, list[int]]


def _merged(m: Minutes, start: int, width: int) -> tuple[Minutes, list[int]]:
    """``m``'s minutes merged into buckets of ``width`` seconds counted from ``start``, and each
    bucket's last minute: the minutes of a bucket are one slice (they are in time order),
    summed and compared in C."""
    keys = [start + (t - start) // width * width for t in m.minute]
    cuts = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
    bounds = list(zip([0, *cuts], [*cuts, len(keys)]))
    return (Minutes([keys[a] for a, _ in bounds], [sum(m.n[a:b]) for a, b in bounds],
                    [sum(m.total[a:b]) for a, b in bounds], [min(m.lo[a:b]) for a, b in bounds],
                    [max(m.hi[a:b]) for a, b in bounds]),
            [m.minute[b - 1] for _, b in bounds])


class HistoryReads:
    """Reads on ``conn``, a connection to the store's file that this object's owner closes
    (``close``, ``with``, or the repository that made it)."""

    ROLLED_UNTIL = "history.rolled_until"      # meta: minutes before it are rolled up

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        catalog = Catalog()
        self._ticks = TickReads(conn, catalog)
        self._blocks = BlockReads(conn, catalog)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> HistoryReads:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def rolled_until(self) -> float | None:
        """Minutes before this epoch are rolled up (None: nothing rolled up yet)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                                 (self.ROLLED_UNTIL,)).fetchone()
        return float(row[0]) if row else None

    def label_sets(self, metric: str) -> list[str]:
        """Every label set (as stored: sorted compact JSON, "" for none) of ``metric`` in the
        rollups."""
        return self._blocks.label_sets(metric)

    def _series(self, metric: str, labels: str) -> int | None:
        return self._blocks.catalog.series_id(self._conn, metric, labels)

    def rolled_series(self, metric: str, labels: str, since: float, until: float,
                      levels: Sequence[tuple[str, bool, float]], scale: float,
                      quantiles: bool = True) -> RolledSeries | None:
        """The rolled-up minutes of one series in ``[since, until)``; None when there are none.
        ``levels``: (direction ``above``/``below``, inclusive, value) of each level whose
        minutes past it are counted, a minute's mean times ``scale`` against the value. The
        sketch is exact over whole hours (``BlockReads.span``)."""
        sid = self._series(metric, labels)
        if sid is None:
            return None
        span = self._blocks.span(sid, since, until, quantiles)
        m = span.minutes
        if not m.minute:
            return None
        lo, hi = min(m.lo), max(m.hi)
        means = list(map(truediv, m.total, m.n))
        if scale != 1.0:
            means = list(map(operator.mul, means, repeat(scale)))
        breaches = [sum(map(_OPS[(direction, inclusive)], means, repeat(value)))
                    for direction, inclusive, value in levels]
        n = sum(m.n)
        buckets = span.buckets
        if lo == hi and quantiles:
            buckets = Counter({sketch.bucket_of(lo): n})     # a constant: nothing to merge
        return RolledSeries(len(m.minute), n, sum(m.total), lo, hi, m.minute[m.lo.index(lo)],
                            m.minute[m.hi.index(hi)], breaches, buckets)

    def rolled_buckets(self, metric: str, labels: str, since: float, until: float, start: float,
                       bucket_s: int) -> dict[int, list[float]]:
        """The rolled-up minutes of one series in ``[since, until)`` in buckets of ``bucket_s``
        counted from ``start``: bucket -> [n, sum, min, max]."""
        sid = self._series(metric, labels)
        out: dict[int, list[float]] = {}
        if sid is None:
            return out
        first = int(start)
        for m in self._blocks.blocks(sid, since, until):
            for minute, n, total, lo, hi in zip(m.minute, m.n, m.total, m.lo, m.hi):
                b = int((minute - first) / bucket_s)      # SQL's integer division: toward zero
                acc = out.get(b)
                if acc is None:
                    out[b] = [n, total, lo, hi]
                else:
                    acc[0] += n
                    acc[1] += total
                    acc[2] = min(acc[2], lo)
                    acc[3] = max(acc[3], hi)
        return out

    def rolled_totals(self, metric: str, labels: str, since: float,
                      until: float) -> tuple[int, int, float, float, float] | None:
        """(minutes, n, sum, min, max) of one series' rolled-up minutes in ``[since, until)``;
        None when there are none."""
        r = self.rolled_series(metric, labels, since, until, (), 1.0, quantiles=False)
        return None if r is None else (r.minutes, r.n, r.total, r.lo, r.hi)

    def rolled_minutes(self, metrics: Sequence[str], since: float, until: float) -> set[int]:
        """Distinct rolled-up minutes of the unlabelled series of ``metrics``."""
        out: set[int] = set()
        for metric in metrics:
            sid = self._series(metric, "")
            if sid is not None:
                for m in self._blocks.blocks(sid, since, until):
                    out.update(m.minute)
        return out

    def minutes_between(self, since: float, until: float, metrics: Iterable[str] | None
                        ) -> Iterator[tuple[str, dict[str, str], int, int, float, float, float]]:
        """``Store.rollup_metrics_between``: every rolled-up minute of every series (of
        ``metrics``, None: all) in ``[since, until)``, series by series."""
        wanted = None if metrics is None else set(metrics)
        for sid, metric, labels in self._blocks.every_series():
            if wanted is not None and metric not in wanted:
                continue
            lab = dict(labels)
            for m in self._blocks.blocks(sid, since, until):
                yield from zip(repeat(metric), repeat(lab), m.minute, m.n, m.total, m.lo, m.hi)

    def bucket_columns(self, since: float, until: float, width: int,
                       metric: str | None = None) -> Iterator[BucketColumns]:
        """``Store.rollup_bucket_columns``: per series (of ``metric``, None: all), its rolled-up
        minutes in ``[since, until)`` merged into buckets of ``width`` seconds counted from
        ``since``'s minute, as columns in time order. One-minute buckets are the blocks' own
        columns, joined (``BlockReads.joined``: no Python per minute, a day of 300 series is
        432,000 minutes)."""
        start = int(since // 60) * 60
        for sid, m_name, labels in self._blocks.every_series():
            if metric is not None and m_name != metric:
                continue
            cols = self._blocks.joined(sid, start, until)
            if not cols.minute:
                continue
            if width > 60:
                cols, lasts = _merged(cols, start, width)
            else:
                lasts = cols.minute
            yield m_name, labels_text(labels), cols, lasts

    def hour_columns(self, since: float, until: float, width: int,
                     metric: str | None = None) -> Iterator[BucketColumns]:
        """``bucket_columns`` for buckets of whole hours (``width`` a multiple of 3600), from the
        hours' summaries: windows of days decode no minutes (7 days of 300 series are 50,400
        blocks). The hours are those starting in ``[since, until)``; a bucket's last minute is
        its last hour's, or the last rolled up."""
        start = int(since // 3600) * 3600
        rolled = self.rolled_until()
        names = {sid: (m, lab) for sid, m, lab in self._blocks.every_series()}
        for sid, cols in self._blocks.hours(start, until).items():
            m_name, labels = names.get(sid, ("", {}))
            if not m_name or (metric is not None and m_name != metric):
                continue
            ends = cols.minute
            if width > 3600:
                cols, ends = _merged(cols, start, width)     # each bucket's last hour
            lasts = [h + 3540 if rolled is None else min(h + 3540, int(rolled) - 60)
                     for h in ends]
            yield m_name, labels_text(labels), cols, lasts

    def buckets_between(self, since: float, until: float, width: int,
                        metric: str | None = None) -> Iterator[Bucket]:
        """``Store.rollup_buckets``: ``bucket_columns`` a bucket at a time."""
        for m_name, text, c, lasts in self.bucket_columns(since, until, width, metric):
            yield from zip(repeat(m_name), repeat(text), c.minute, c.n, c.total, c.lo, c.hi, lasts)

    def samples(self, since: float, until: float,
                sources: Sequence[str]) -> Iterator[tuple[float, str, dict[str, float]]]:
        """(ts, labels as stored, values) of the samples of ``sources`` in ``[since, until)``,
        in sequence order."""
        wanted = set(sources)
        for _, shape, ts, vals, _ in self._ticks.samples(
                since, until, lambda s: s.source in wanted, until_open=True):
            yield ts, shape.labels_text, vals

    def raw_since(self) -> float | None:
        """The time of the oldest raw sample still kept (None: none is)."""
        return self._ticks.first_time()

    def metric_samples(self, metrics: Iterable[str], since: float, until: float,
                       chunk_s: float = 300.0
                       ) -> Iterator[tuple[float, str, dict[str, str], dict[str, float]]]:
        """(ts, source, labels, values) of the raw samples in ``[since, until)`` whose shape
        carries any of ``metrics``, read ``chunk_s`` at a time: a week of ticks never sits in
        memory at once (the backtest, alerts/backtest.py). Labels are shared per shape: callers
        copy them to keep them."""
        wanted = frozenset(metrics)

        def keep(shape: Shape) -> bool:
            return not wanted.isdisjoint(shape.metrics)
        start = since
        while start < until:
            end = min(start + chunk_s, until)
            for _, shape, ts, vals, _ in self._ticks.samples(start, end, keep, until_open=True):
                yield ts, shape.source, shape.labels, vals
            start = end

    def rows_since(self, since: float, queue_labels: Sequence[str] | None,
                   other_agents_hosts: bool, until: float | None = None) -> list[Row]:
        """``Store.rows_between(since)`` less, judged once per sample shape, the rows of queues
        whose label text is not in ``queue_labels`` (None: every queue) and, unless
        ``other_agents_hosts``, the agents' rows that only hold host metrics of a host."""
        queues = None if queue_labels is None else set(queue_labels)

        def keep(shape: Shape) -> bool:
            if (queues is not None and shape.source == "queue" and shape.labels_text
                    and shape.labels_text not in queues):
                return False
            return other_agents_hosts or not (
                shape.source == "agents" and "host" in shape.labels
                and all(m.startswith("host.") for m in shape.metrics))
        return self._ticks.rows(since, until, keep)
