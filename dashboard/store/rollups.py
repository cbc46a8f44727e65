"""One-minute rollups in hour blocks (``blocks.py``): made from raw ticks, merged, read back.

``rollups`` has one row per series and hour: the hour's minutes (count, sum, min, max) and its
quantile sketch. The rollup job adds the minutes it rolls up to their hour's row (read, merged,
written back in its transaction), so a block grows a minute at a time and the watermark in
``meta`` says which minutes are in.

On PostgreSQL (``history_pg.py``) a block is keyed by (series, hour) and rewritten in place (an
upsert), and a batch of blocks is one statement.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

from dashboard.store import blocks, sketch
from dashboard.store.blocks import Minutes
from dashboard.store.catalog import Catalog
from dashboard.store.ticks import TickReads
from dashboard.store.txn import Connection, is_pg

# A rowid table: a block rewritten (the rollup job adds a minute to the hour's block each
# minute) is deleted and appended anew (REPLACE), so an hour's final blocks end up packed in
# full pages at the end of the table. Keyed by (series, hour) in place, a block growing in the
# middle of the tree split its pages: half of them was empty (21 against 9.4 B a series-minute).
SCHEMA = """
CREATE TABLE IF NOT EXISTS rollups (
    id      INTEGER PRIMARY KEY,
    series  INTEGER NOT NULL,          -- series.id
    hour    INTEGER NOT NULL,          -- epoch seconds of the hour's start
    minutes BLOB NOT NULL,             -- blocks.encode_minutes
    sketch  BLOB NOT NULL,             -- sketch.encode
    n       INTEGER NOT NULL,          -- the hour's summary: windows of days read these
    total   REAL NOT NULL,             --   columns and decode no minutes (``hours``)
    lo      REAL NOT NULL,
    hi      REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS rollups_series_hour ON rollups(series, hour);
"""
HOUR = 3600
MinuteRow = tuple[int, float, float, float]          # n, sum, min, max


@dataclass(frozen=True)
class HourBlock:
    """One series' rolled-up hour, as a writer hands it over (``Store.write_rollup_blocks``)."""

    metric: str
    labels: Mapping[str, str]
    hour: int                                        # epoch seconds, a multiple of 3600
    minutes: Mapping[int, MinuteRow]                 # minute (epoch seconds) -> n, sum, min, max
    buckets: Mapping[int, int]                       # sketch.build of the hour's values


def roll(reads: TickReads, start: int, end: int) -> dict[int, tuple[dict[int, MinuteRow],
                                                                     Counter[int]]]:
    """The raw samples in ``[start, end)`` (within one hour) rolled up: series id -> (minute ->
    (n, sum, min, max), the sketch of all their values)."""
    acc: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for _, shape, ts, vals, _ in reads.samples(start, end, until_open=True):
        minute = int(ts // 60) * 60
        for sid, v in zip(shape.series, vals.values()):
            acc[sid][minute].append(v)
    out = {}
    for sid, per_minute in acc.items():
        rows = {m: (len(vs), sum(vs), min(vs), max(vs)) for m, vs in per_minute.items()}
        out[sid] = (rows, sketch.build(v for vs in per_minute.values() for v in vs))
    return out


def merge_into(conn: Connection, hour: int,
               rolled: Mapping[int, tuple[Mapping[int, MinuteRow], Mapping[int, int]]]) -> None:
    """Add minutes and sketch counts to the blocks of ``hour`` (inside a write transaction). A
    minute already in a block is merged with the new one, as the sketch counts are."""
    if not rolled:
        old = {}
    elif is_pg(conn):               # one statement text whatever the number of series
        old = {sid: (m, s) for sid, m, s in conn.execute(
            "SELECT series, minutes, sketch FROM rollups WHERE hour = ?"
            " AND series = ANY(CAST(? AS BIGINT[]))", (hour, list(rolled)))}
    else:
        old = {sid: (m, s) for sid, m, s in conn.execute(
            "SELECT series, minutes, sketch FROM rollups WHERE hour = ? AND series IN"
            f" ({','.join('?' * len(rolled))})", (hour, *rolled))}
    rows = []
    for sid, (minutes, buckets) in rolled.items():
        merged = dict(minutes)
        total = Counter(buckets)
        if sid in old:
            have = blocks.decode_minutes(hour, old[sid][0]).as_dict()
            for m, row in merged.items():
                if m in have:
                    a = have[m]
                    merged[m] = (a[0] + row[0], a[1] + row[1], min(a[2], row[2]),
                                 max(a[3], row[3]))
            merged = {**have, **merged}
            total.update(sketch.decode(old[sid][1]))
        rows.append(_row(sid, hour, Minutes.of(merged), total))
    _write(conn, rows)


def replace_blocks(conn: Connection, catalog: Catalog, given: Iterable[HourBlock]) -> int:
    """Write whole blocks (the bulk path), replacing what those hours held; returns how many."""
    rows = []
    for b in given:
        if b.hour % HOUR or any(not b.hour <= m < b.hour + HOUR or m % 60 for m in b.minutes):
            raise ValueError(f"{b.metric}: hour {b.hour} must be whole and hold its minutes")
        sid = catalog.add_series(conn, b.metric, b.labels)
        rows.append(_row(sid, b.hour, Minutes.of(b.minutes), b.buckets))
    _write(conn, rows)
    return len(rows)


_INSERT = ("INSERT OR REPLACE INTO rollups(series, hour, minutes, sketch, n, total, lo, hi)"
           " VALUES (?,?,?,?,?,?,?,?)")
_UPSERT_PG = ("INSERT INTO rollups(series, hour, minutes, sketch, n, total, lo, hi)"
              " SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BYTEA[]),"
              " CAST(? AS BYTEA[]), CAST(? AS BIGINT[]), CAST(? AS FLOAT8[]), CAST(? AS FLOAT8[]),"
              " CAST(? AS FLOAT8[])) ON CONFLICT (series, hour) DO UPDATE SET"
              " minutes = excluded.minutes, sketch = excluded.sketch, n = excluded.n,"
              " total = excluded.total, lo = excluded.lo, hi = excluded.hi")
PG_BATCH = 1_000                 # blocks per statement on PostgreSQL


def _write(conn: Connection, rows: list[tuple[int, int, bytes, bytes, int, float, float, float]]
           ) -> None:
    """Blocks written over what their (series, hour) held."""
    if not is_pg(conn):
        conn.executemany(_INSERT, rows)
        return
    for i in range(0, len(rows), PG_BATCH):
        conn.execute(_UPSERT_PG, [list(c) for c in zip(*rows[i:i + PG_BATCH])])


def _row(sid: int, hour: int, m: Minutes, buckets: Mapping[int, int]) -> tuple[
        int, int, bytes, bytes, int, float, float, float]:
    """A block's row: its minutes, its sketch, and the hour's summary."""
    return (sid, hour, blocks.encode_minutes(hour, m), sketch.encode(buckets), sum(m.n),
            sum(m.total), min(m.lo), max(m.hi))


@dataclass
class Span:
    """One series' rolled-up minutes over a time range, as columns, and their sketch."""

    minutes: Minutes
    buckets: Counter[int]


def _clip(m: Minutes, since: int, until: int) -> Minutes | None:
    """The minutes of ``m`` in ``[since, until)`` (None when that is all of them)."""
    a, b = bisect_left(m.minute, since), bisect_left(m.minute, until)
    if a == 0 and b == len(m.minute):
        return None
    return Minutes(m.minute[a:b], m.n[a:b], m.total[a:b], m.lo[a:b], m.hi[a:b])


class BlockReads:
    """Reads of the rollup blocks on ``conn``."""

    def __init__(self, conn: Connection, catalog: Catalog) -> None:
        self.conn = conn
        self.catalog = catalog

    def _rows(self, sid: int, since: int, until: int, with_sketch: bool
              ) -> list[tuple[int, bytes, bytes | None]]:
        col = "sketch" if with_sketch else "NULL"
        return self.conn.execute(
            f"SELECT hour, minutes, {col} FROM rollups WHERE series = ? AND hour > ?"
            " AND hour < ? ORDER BY hour", (sid, since - HOUR, until)).fetchall()

    def hours(self, since: float, until: float) -> dict[int, Minutes]:
        """Every series' hour summaries (n, sum, min, max of each hour whose block starts in
        ``[since, until)``) as columns by series, the hours in ``minute``: no block decoded."""
        out: dict[int, Minutes] = {}
        for sid, hour, n, total, lo, hi in self.conn.execute(
                "SELECT series, hour, n, total, lo, hi FROM rollups WHERE hour >= ? AND hour < ?"
                " ORDER BY series, hour", (int(since), int(until))):
            m = out.get(sid)
            if m is None:
                m = out[sid] = Minutes([], [], [], [], [])
            m.minute.append(hour)
            m.n.append(n)
            m.total.append(total)
            m.lo.append(lo)
            m.hi.append(hi)
        return out

    def blocks(self, sid: int, since: float, until: float) -> Iterator[Minutes]:
        """The minutes of series ``sid`` in ``[since, until)``, a block at a time."""
        lo, hi = int(since), int(until)
        for hour, data, _ in self._rows(sid, lo, hi, False):
            m = blocks.decode_minutes(hour, data)
            part = _clip(m, lo, hi)
            m = m if part is None else part
            if m.minute:
                yield m

    def joined(self, sid: int, since: float, until: float) -> Minutes:
        """``blocks`` joined into one set of columns: a block wholly inside the range is decoded
        straight onto them (``blocks.extend_minutes``), only the cut ones at its ends are
        decoded and clipped on their own."""
        lo, hi = int(since), int(until)
        out = Minutes([], [], [], [], [])
        for hour, data, _ in self._rows(sid, lo, hi, False):
            if hour >= lo and hour + HOUR <= hi:
                blocks.extend_minutes(hour, data, out)
                continue
            m = blocks.decode_minutes(hour, data)
            part = _clip(m, lo, hi)
            m = m if part is None else part
            out.minute += m.minute
            out.n += m.n
            out.total += m.total
            out.lo += m.lo
            out.hi += m.hi
        return out

    def span(self, sid: int, since: float, until: float, quantiles: bool) -> Span:
        """Every minute of ``sid`` in ``[since, until)`` and, if ``quantiles``, the sketch of
        their values: whole blocks' sketches merged, cut blocks' from their minutes."""
        lo, hi = int(since), int(until)
        cols = Minutes([], [], [], [], [])
        keys: list[int] = []
        counts: list[int] = []
        for hour, data, sk in self._rows(sid, lo, hi, quantiles):
            m = blocks.decode_minutes(hour, data)
            part = _clip(m, lo, hi)
            if quantiles:
                if part is None and sk is not None:
                    k, c = sketch.decode_columns(sk)
                elif part is not None:
                    approx = blocks.approx_sketch(part)
                    k, c = list(approx), list(approx.values())
                keys += k
                counts += c
            m = m if part is None else part
            cols.minute += m.minute
            cols.n += m.n
            cols.total += m.total
            cols.lo += m.lo
            cols.hi += m.hi
        return Span(cols, sketch.merge_columns(keys, counts))

    def label_sets(self, metric: str) -> list[str]:
        """The label texts of ``metric``'s series that have rollups."""
        self.catalog.refresh(self.conn)
        out = []
        for (m, lab), sid in self.catalog.series_by_key.items():
            if m == metric and self.conn.execute(
                    "SELECT 1 FROM rollups WHERE series = ? LIMIT 1", (sid,)).fetchone():
                out.append(self.catalog.labels[lab])
        return sorted(out)

    def every_series(self) -> list[tuple[int, str, dict[str, str]]]:
        """(id, metric, labels) of every series known."""
        self.catalog.refresh(self.conn)
        return [(sid, m, self.catalog.label_dict(lab))
                for sid, (m, lab) in sorted(self.catalog.series.items())]


def prune(conn: Connection, catalog: Catalog, before: float) -> int:
    """Delete the blocks of hours that ended before ``before`` (a series' range delete each)."""
    catalog.refresh(conn)
    cut = int(before) // HOUR * HOUR - HOUR
    return sum(conn.execute("DELETE FROM rollups WHERE series = ? AND hour <= ?",
                            (sid, cut)).rowcount for sid in catalog.series)
