"""Raw samples: one row per append (a tick), every sample of it in one compressed blob.

A row is keyed by the sequence number of its first sample; its samples are numbered on from
there, one number per sample, so ``after(seq)`` (the live page's ``resume``) replays them in
order exactly as one row per sample did. The blob holds, per sample, its shape (``catalog.py``:
source, labels and metric names, stored once) and time, then the values as float64, deflated:
~3 B a value for a tick of queues and hosts, against ~25-30 B of JSON text plus two indexes.

A row also keeps the time of its latest sample (indexed: time ranges, pruning whole rows). An
append whose samples span more than ``ROW_SPAN_S`` (a batch written back after an outage, a
test's day) is cut into several rows; ``meta`` keeps the widest span written (``SPAN_KEY``,
0 while every row is one collection's samples), and a time range looks that much further.
"""
from __future__ import annotations

import json
import zlib
from array import array
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from dashboard.model import Sample
from dashboard.store import columns
from dashboard.store.catalog import Catalog, Shape
from dashboard.store.txn import Connection, is_pg

SCHEMA = """
CREATE TABLE IF NOT EXISTS ticks (
    seq  INTEGER PRIMARY KEY,          -- the first sample's sequence number
    ts   REAL NOT NULL,                -- the latest sample's time
    n    INTEGER NOT NULL,             -- samples: seq .. seq + n - 1
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ticks_ts ON ticks(ts);
"""
ROW_SPAN_S = 300.0
SPAN_KEY = "history.row_span"
Row = tuple[float, str, dict[str, float]]     # ts, label text ("" for none), values


def encode(shapes: Sequence[int], times: Sequence[float], values: Sequence[float],
           errors: dict[int, str]) -> bytes:
    """The blob of one row: sample count, value count, shape ids, times, values, errors."""
    body = b"".join((len(shapes).to_bytes(4, "little"), len(values).to_bytes(4, "little"),
                     columns.pack_ints(shapes), array("d", times).tobytes(),
                     array("d", values).tobytes(),
                     json.dumps(errors).encode() if errors else b""))
    return zlib.compress(body, 1)


@dataclass
class Decoded:
    shapes: list[int]
    times: list[float]
    values: list[float]
    errors: dict[int, str]


def decode(blob: bytes) -> Decoded:
    body = zlib.decompress(blob)
    n = int.from_bytes(body[:4], "little")
    nvals = int.from_bytes(body[4:8], "little")
    shapes, at = columns.unpack_ints(body, 8, n)
    times, values = array("d"), array("d")
    times.frombytes(body[at:at + 8 * n])
    at += 8 * n
    values.frombytes(body[at:at + 8 * nvals])
    at += 8 * nvals
    errors = {int(k): v for k, v in json.loads(body[at:]).items()} if at < len(body) else {}
    return Decoded(shapes, times.tolist(), values.tolist(), errors)


def row_cuts(times: Sequence[float]) -> list[tuple[int, int]]:
    """[start, end) index ranges of the rows an append is stored in: runs of samples whose
    times stay within ``ROW_SPAN_S`` of each other."""
    if max(times) - min(times) <= ROW_SPAN_S:
        return [(0, len(times))]
    cuts, start = [], 0
    lo = hi = times[0]
    for i, t in enumerate(times):
        lo, hi = min(lo, t), max(hi, t)
        if hi - lo > ROW_SPAN_S:
            cuts.append((start, i))
            start, lo, hi = i, t, t
    cuts.append((start, len(times)))
    return cuts


class TickReads:
    """Reads of the raw rows on ``conn`` (the store's, or a reader's own connection)."""

    def __init__(self, conn: Connection, catalog: Catalog) -> None:
        self.conn = conn
        self.catalog = catalog

    def _walk(self, rows: Iterable[tuple[int, bytes]]
              ) -> Iterator[tuple[int, Shape, float, dict[str, float], str | None]]:
        """(seq, shape, ts, values, error) of every sample of ``rows`` (seq, data)."""
        shapes: dict[int, Shape] = {}
        for first, data in rows:
            d = decode(data)
            vals, pos = d.values, 0
            for i, (sid, ts) in enumerate(zip(d.shapes, d.times)):
                shape = shapes.get(sid)
                if shape is None:
                    shape = shapes[sid] = self.catalog.shape(self.conn, sid)
                k = len(shape.metrics)
                yield (first + i, shape, ts, dict(zip(shape.metrics, vals[pos:pos + k])),
                       d.errors.get(i))
                pos += k

    def _in_time(self, since: float, until: float | None) -> Iterable[tuple[int, bytes]]:
        # From the first row (in sequence order) of the range on: found in the ts index, then
        # read in rowid order. "ts >= ? ORDER BY seq" alone was planned as a scan of the whole
        # table (every row's blob: 40 ms at 25 h of 300 series at 1 s) for the few rows a 24 h
        # history reads past the rollups.
        # PostgreSQL has no INDEXED BY (nor numbered ? parameters) and plans the plain query on
        # the ts index by itself.
        if is_pg(self.conn):
            pg_sql, pg_args = "SELECT seq, data FROM ticks WHERE ts >= ?", [since]
            if until is not None:
                pg_sql += " AND ts <= ?"
                pg_args.append(until + self.span())
            return self.conn.execute(pg_sql + " ORDER BY seq", pg_args).fetchall()
        sql = ("SELECT seq, data FROM ticks WHERE seq >= (SELECT MIN(seq) FROM ticks"
               " INDEXED BY ticks_ts WHERE ts >= ?1) AND ts >= ?1")
        args: list[float] = [since]
        if until is not None:
            sql += (" AND ts <= ?2 AND seq <= (SELECT MAX(seq) FROM ticks INDEXED BY ticks_ts"
                    " WHERE ts >= ?1 AND ts <= ?2)")
            args.append(until + self.span())
        return self.conn.execute(sql + " ORDER BY seq", args).fetchall()

    def samples(self, since: float, until: float | None = None,
                keep: Callable[[Shape], bool] | None = None, until_open: bool = False
                ) -> Iterator[tuple[int, Shape, float, dict[str, float], str | None]]:
        """Samples with ``since <= ts <= until`` (``< until`` if ``until_open``) of the shapes
        ``keep`` accepts (asked once per shape), in sequence order."""
        verdict: dict[int, bool] = {}
        for seq, shape, ts, vals, err in self._walk(self._in_time(since, until)):
            if ts < since or (until is not None and (ts >= until if until_open else ts > until)):
                continue
            if keep is not None:
                ok = verdict.get(shape.id)
                if ok is None:
                    ok = verdict[shape.id] = keep(shape)
                if not ok:
                    continue
            yield seq, shape, ts, vals, err

    def rows(self, since: float, until: float | None = None,
             keep: Callable[[Shape], bool] | None = None) -> list[Row]:
        return [(ts, shape.labels_text, vals)
                for _, shape, ts, vals, _ in self.samples(since, until, keep)]

    def between(self, since: float, until: float | None = None,
                sources: Iterable[str] | None = None) -> list[Sample]:
        wanted = None if sources is None else set(sources)
        keep = None if wanted is None else (lambda shape: shape.source in wanted)
        return [Sample(shape.source, ts, vals, dict(shape.labels), err, seq)
                for seq, shape, ts, vals, err in self.samples(since, until, keep)]

    def after(self, after_seq: int, since_ts: float | None, limit: int) -> list[Sample]:
        """Samples numbered past ``after_seq`` (taken at ``since_ts`` or later), oldest first."""
        row = self.conn.execute("SELECT seq FROM ticks WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
                                (after_seq + 1,)).fetchone()
        start = after_seq + 1 if row is None else row[0]
        out: list[Sample] = []
        while len(out) < limit:
            rows = self.conn.execute("SELECT seq, data FROM ticks WHERE seq >= ? ORDER BY seq"
                                     " LIMIT 64", (start,)).fetchall()
            if not rows:
                break
            for seq, shape, ts, vals, err in self._walk(rows):
                if seq > after_seq and (since_ts is None or ts >= since_ts):
                    out.append(Sample(shape.source, ts, vals, dict(shape.labels), err, seq))
                    if len(out) >= limit:
                        break
            start = rows[-1][0] + 1
        return out

    def numbered(self, seqs: Iterable[int]) -> dict[int, tuple[str, Sample]]:
        """The samples with these sequence numbers that are still stored, with their label text."""
        want = sorted(set(seqs))
        out: dict[int, tuple[str, Sample]] = {}
        for seq in want:
            if seq in out:
                continue
            row = self.conn.execute("SELECT seq, n, data FROM ticks WHERE seq <= ?"
                                    " ORDER BY seq DESC LIMIT 1", (seq,)).fetchone()
            if row is None or seq >= row[0] + row[1]:
                continue
            for s, shape, ts, vals, err in self._walk([(row[0], row[2])]):
                out[s] = (shape.labels_text,
                          Sample(shape.source, ts, vals, dict(shape.labels), err, s))
        return {s: out[s] for s in want if s in out}

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT seq + n - 1 FROM ticks ORDER BY seq DESC LIMIT 1"
                                ).fetchone()
        return 0 if row is None else int(row[0])

    def span(self) -> float:
        """The widest time span of a row's samples."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (SPAN_KEY,)).fetchone()
        return 0.0 if row is None else float(row[0])

    def first_time(self) -> float | None:
        """The time of the oldest sample (in a row whose latest one is at most a span after the
        earliest latest one)."""
        rows = self.conn.execute("SELECT data FROM ticks WHERE ts <= (SELECT MIN(ts) FROM ticks)"
                                 " + ?", (self.span(),)).fetchall()
        return min((min(decode(d).times) for d, in rows), default=None)
