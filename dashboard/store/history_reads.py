"""Long reads of the history (samples, one-minute rollups) on a connection of their own.

The daily summary reads a day of rollups for many series, and ``/api/history`` up to 48 h of
samples: through ``Store``'s methods they would hold the store's lock, and the collectors'
appends would wait behind them. On their own connection (WAL) they run beside the appends.
``Store.rows_since`` opens one for /api/history; the reports' repository (``ReportsRepo``)
holds one for its own tables and these reads.

The rollups are aggregated inside SQLite (count, sum, min, max, minutes past a level, chart
buckets, the sketches concatenated), one primary-key range scan per series: no per-minute
Python objects, which is what keeps a day of many series fast.
"""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Sequence

from dashboard.store import sketch

# How a level is breached by a minute's mean, as SQL (never built from input):
# (direction, inclusive) -> operator.
_OPS = {("above", False): ">", ("above", True): ">=", ("below", False): "<", ("below", True): "<="}
_KEY = "metric = ? AND labels = ? AND minute >= ? AND minute < ?"

Row = tuple[float, str, str]          # ts, labels, values: the samples' text as stored (JSON)


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
    sketch: Counter                   # merged quantile buckets (empty unless asked for)


def parse_sketches(text: str | None) -> Counter:
    """Concatenated ``b:c,b:c`` texts -> merged buckets. Equal tokens are counted in C first,
    so Python parses each distinct (bucket, count) pair once, not every minute's buckets."""
    out: Counter = Counter()
    if text:
        for token, times in Counter(text.split(",")).items():
            b, _, c = token.partition(":")
            out[int(b)] += int(c) * times
    return out


class HistoryReads:
    """Reads on ``conn``, a connection to the store's file that this object's owner closes
    (``close``, or the repository that made it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def close(self) -> None:
        self._conn.close()

    def rolled_until(self) -> float | None:
        """Minutes before this epoch are rolled up (None: nothing rolled up yet)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'rollup_done_until'").fetchone()
        return float(row[0]) if row else None

    def label_sets(self, metric: str) -> list[str]:
        """Every label set (as stored: sorted compact JSON, "" for none) of ``metric`` in the
        rollups, one index seek per label set."""
        out: list[str] = []
        row = self._conn.execute("SELECT labels FROM rollup_1m WHERE metric = ? AND labels >= ''"
                                 " ORDER BY labels LIMIT 1", (metric,)).fetchone()
        while row is not None:
            out.append(row[0])
            row = self._conn.execute("SELECT labels FROM rollup_1m WHERE metric = ? AND labels > ?"
                                     " ORDER BY labels LIMIT 1", (metric, row[0])).fetchone()
        return out

    def rolled_series(self, metric: str, labels: str, since: float, until: float,
                      levels: Sequence[tuple[str, bool, float]], scale: float,
                      quantiles: bool = True) -> RolledSeries | None:
        """The rolled-up minutes of one series in ``[since, until)``; None when there are none.
        ``levels``: (direction ``above``/``below``, inclusive, value) of each level whose
        minutes past it are counted, a minute's mean times ``scale`` against the value."""
        key = (metric, labels, int(since), int(until))
        breach_sql = "".join(
            f", SUM((CAST(sum AS REAL) / n) * ? {_OPS[(direction, inclusive)]} ?)"
            for direction, inclusive, _ in levels)
        breach_args = [a for _, _, value in levels for a in (scale, value)]
        sketch_sql = "group_concat(sketch, ',')" if quantiles else "NULL"
        row = self._conn.execute(
            f"SELECT COUNT(*), SUM(n), SUM(sum), MIN(min), MAX(max), {sketch_sql}{breach_sql}"
            f" FROM rollup_1m WHERE {_KEY}", (*breach_args, *key)).fetchone()
        if not row[0]:
            return None
        minutes, n, total, lo, hi, sketches, *breaches = row
        if lo == hi and sketches:
            sketches = f"{sketch.bucket_of(lo)}:{n}"     # a constant: nothing to merge
        lo_at = self._conn.execute(f"SELECT MIN(minute) FROM rollup_1m WHERE {_KEY} AND min = ?",
                                   (*key, lo)).fetchone()[0]
        hi_at = self._conn.execute(f"SELECT MIN(minute) FROM rollup_1m WHERE {_KEY} AND max = ?",
                                   (*key, hi)).fetchone()[0]
        return RolledSeries(minutes, n, total, lo, hi, lo_at, hi_at,
                            [int(b or 0) for b in breaches], parse_sketches(sketches))

    def rolled_buckets(self, metric: str, labels: str, since: float, until: float, start: float,
                       bucket_s: int) -> dict[int, list[float]]:
        """The rolled-up minutes of one series in ``[since, until)`` in buckets of ``bucket_s``
        counted from ``start``: bucket -> [n, sum, min, max]."""
        return {b: [bn, btotal, blo, bhi] for b, bn, btotal, blo, bhi in self._conn.execute(
            f"SELECT (minute - ?) / {int(bucket_s)}, SUM(n), SUM(sum), MIN(min), MAX(max)"
            f" FROM rollup_1m WHERE {_KEY} GROUP BY 1",
            (int(start), metric, labels, int(since), int(until)))}

    def rolled_totals(self, metric: str, labels: str, since: float,
                      until: float) -> tuple[int, int, float, float, float] | None:
        """(minutes, n, sum, min, max) of one series' rolled-up minutes in ``[since, until)``;
        None when there are none."""
        row = self._conn.execute(
            f"SELECT COUNT(*), SUM(n), SUM(sum), MIN(min), MAX(max) FROM rollup_1m WHERE {_KEY}",
            (metric, labels, int(since), int(until))).fetchone()
        return tuple(row) if row[0] else None

    def rolled_minutes(self, metrics: Sequence[str], since: float, until: float) -> set[int]:
        """Distinct rolled-up minutes of the unlabelled series of ``metrics``."""
        if not metrics:
            return set()
        marks = ",".join("?" * len(metrics))
        return {m for (m,) in self._conn.execute(
            f"SELECT DISTINCT minute FROM rollup_1m WHERE metric IN ({marks}) AND labels = ''"
            " AND minute >= ? AND minute < ?", (*metrics, int(since), int(until)))}

    def samples(self, since: float, until: float,
                sources: Sequence[str]) -> Iterator[tuple[float, str, dict[str, float]]]:
        """(ts, labels as stored, values) of the samples of ``sources`` in ``[since, until)``,
        in sequence order."""
        for ts, labels, vals in self._conn.execute(
                f"SELECT ts, labels, vals FROM samples WHERE ts >= ? AND ts < ? AND source IN"
                f" ({','.join('?' * len(sources))}) ORDER BY seq", (since, until, *sources)):
            yield ts, labels, json.loads(vals)

    def rows_since(self, since: float, queue_labels: Sequence[str] | None,
                   other_agents_hosts: bool) -> list[Row] | None:
        """``Store.rows_between(since)`` less, filtered in SQLite, the rows of queues whose
        label text is not in ``queue_labels`` (None: every queue) and, unless
        ``other_agents_hosts``, the agents' rows that only hold host metrics of a host.
        None when this SQLite cannot filter so (no JSON functions): read everything then."""
        conds: list[str] = []
        args: list = [since]
        if queue_labels is not None:
            conds.append("(source != 'queue' OR labels = '' OR labels IN"
                         " (SELECT value FROM json_each(?)))")
            args.append(json.dumps(list(queue_labels)))
        if not other_agents_hosts:
            # The agents' rows with a "host" label and only host.* values: every quote in the
            # values belongs to a key (values are numbers), a key of 6 characters '"host.' per
            # two quotes.
            conds.append("NOT (source = 'agents' AND instr(labels, '\"host\"') > 0 AND "
                         "length(vals) - length(replace(vals, '\"', '')) = "
                         "(length(vals) - length(replace(vals, '\"host.', ''))) / 3)")
        sql = "SELECT ts, labels, vals FROM samples WHERE ts >= ?"
        if conds:
            sql += " AND " + " AND ".join(conds)
        try:
            return self._conn.execute(sql + " ORDER BY seq", args).fetchall()
        except sqlite3.Error:
            return None
