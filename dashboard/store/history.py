"""Durable history in SQLite (WAL): raw samples for 48 h, one-minute rollups for 400 days.

* ``append`` writes one collector tick in one transaction and hands back the samples with their
  sequence numbers (the Socket.IO ``resume`` cursor). WAL + ``synchronous=NORMAL`` means a
  committed tick survives ``kill -9`` of the process; at most the tick being written is lost.
* ``rollup`` turns complete minutes of raw samples into per-series (count, sum, min, max,
  quantile sketch) rows. It works from the raw table with a watermark, so it is idempotent and
  catches up after a crash or a restart.
* ``prune`` deletes what is past retention, in bounded batches so a writer never waits long.

Other modules (alerts, outbox, users) keep their own tables in the same file through
``connect()``; this module knows nothing about them.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import sqlite3
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from dashboard.model import Sample, series_key
from dashboard.store import latest as storelatest
from dashboard.store import sketch
from dashboard.store.datadir import make_private, private_file
from dashboard.store.history_reads import HistoryReads

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    ts     REAL NOT NULL,
    source TEXT NOT NULL,
    labels TEXT NOT NULL,
    vals   TEXT NOT NULL,
    error  TEXT
);
CREATE INDEX IF NOT EXISTS samples_source_ts ON samples(source, ts);
CREATE INDEX IF NOT EXISTS samples_ts ON samples(ts);
CREATE TABLE IF NOT EXISTS rollup_1m (
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,
    minute INTEGER NOT NULL,            -- epoch seconds of the minute's start
    n      INTEGER NOT NULL,
    sum    REAL NOT NULL,
    min    REAL NOT NULL,
    max    REAL NOT NULL,
    sketch TEXT NOT NULL,
    PRIMARY KEY (metric, labels, minute)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_minute ON rollup_1m(minute);
CREATE TABLE IF NOT EXISTS metric_sources (
    metric TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (metric, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- With latest_ticks (dashboard/store/latest.py), the newest sample of each (source, labels):
-- /api/latest, /metrics and the fleet view read these small tables instead of grouping an hour
-- of samples. Here only series missing from their source's newest append (files written before
-- latest_ticks: every series).
CREATE TABLE IF NOT EXISTS latest_samples (
    source TEXT NOT NULL,
    labels TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (source, labels)
) WITHOUT ROWID;
""" + storelatest.SCHEMA

FILE_NAME = "history.sqlite3"   # everything the dashboard keeps, in one file under data_dir


def file_in(data_dir: Path | str) -> Path:
    """The store's file in ``data_dir``: the one place its name is made."""
    return Path(data_dir) / FILE_NAME


ROLLUP_LAG_S = 5.0       # a minute is rolled up this long after it ends (late samples)
PRUNE_BATCH = 20_000


def prune_period_s(raw_retention_s: float) -> float:
    """How often ``prune`` runs: every 10 min, or six times per raw retention when that is
    shorter, so the raw table never holds more than retention + 1/6 of it (a 15 min retention
    pruned every 10 min would hold up to 25 min)."""
    return min(600.0, max(10.0, raw_retention_s / 6))


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection with the settings every user of the store's file needs."""
    conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _labels_text(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":")) if labels else ""


_FLOAT_ONLY = frozenset({float})


def _finite_floats(values: Iterable[Mapping[str, float]]) -> bool:
    """Whether every value is a float and finite (a sum is finite only if every term is, or it
    overflowed: then the caller checks again, value by value)."""
    flat = chain.from_iterable
    return (_FLOAT_ONLY.issuperset(map(type, flat(v.values() for v in values)))
            and math.isfinite(sum(flat(v.values() for v in values))))


def _clean_tick(values: Sequence[Mapping[str, float]], chunk: int = 32) -> list[dict[str, float]]:
    """Each sample's values as stored: copies, finite floats only. Checked 32 samples at a time:
    one collector that reports an int (Redis INFO) leaves the other chunks on the fast path."""
    out: list[dict[str, float]] = []
    for i in range(0, len(values), chunk):
        part = values[i:i + chunk]
        if _finite_floats(part):
            out.extend(map(dict, part))
        else:
            out.extend(dict(v) if _finite_floats((v,)) else _finite(v) for v in part)
    return out


def _template(keys: tuple[str, ...]) -> str:
    """'{"a":%r,"b":%r}': the compact JSON of values with these keys, from a tuple of finite
    floats (float's repr is what json writes for one). One ``%`` per sample costs less than the
    C JSON encoder's call (0.41 against 0.49 ms a 306-sample tick) and needs the keys tuple that
    the sample's shape uses anyway."""
    return "{" + ",".join(json.dumps(k).replace("%", "%%") + ":%r" for k in keys) + "}"


_ROW = "(?,?,?,?,?)"
_INSERT_MAX = 128                # rows per INSERT: 640 parameters, under any SQLite's limit (999)
_INSERT = {n: "INSERT INTO samples(ts, source, labels, vals, error) VALUES " + ",".join([_ROW] * n)
           for n in (1 << i for i in range(_INSERT_MAX.bit_length()))}


_INSERT_NUMBERED = "INSERT INTO samples(seq, ts, source, labels, vals, error) VALUES (?,?,?,?,?,?)"


def _insert_rows(c: sqlite3.Connection, rows: list[tuple]) -> None:
    """Multi-row INSERTs of 128, 64, ... 1 rows: a handful of statements per tick instead of one
    per row (AUTOINCREMENT's bookkeeping and the statement's reset are paid per statement:
    0.67 against 1.10 ms for 306 rows), from a fixed set of statements that stay prepared."""
    i, n = 0, len(rows)
    while i < n:
        k = min(_INSERT_MAX, 1 << ((n - i).bit_length() - 1))
        c.execute(_INSERT[k], list(chain.from_iterable(rows[i:i + k])))
        i += k


# Sample is a frozen dataclass: its __init__ sets each of its six fields through
# object.__setattr__, 1 us a sample, 0.3 ms of a 306-sample tick. The samples append hands back
# are built by filling the new instance's __dict__: the same object at a third of the cost, while
# Sample keeps exactly these fields and no __slots__ or __post_init__ (else: the constructor).
_FAST_SAMPLE = (tuple(getattr(Sample, "__dataclass_fields__", ())) ==
                ("source", "ts", "values", "labels", "error", "seq")
                and not hasattr(Sample, "__slots__") and not hasattr(Sample, "__post_init__"))


def _stored_samples(samples: Sequence[Sample], values: list[dict[str, float]],
                    first: int) -> list[Sample]:
    """The samples as stored (clean values, sequence numbers), for the sinks."""
    if not _FAST_SAMPLE:
        return [Sample(s.source, s.ts, v, dict(s.labels), s.error, first + i)
                for i, (s, v) in enumerate(zip(samples, values))]
    out = []
    new = object.__new__
    for seq, (s, v) in enumerate(zip(samples, values), first):
        o = new(Sample)
        d = o.__dict__
        d["source"] = s.source
        d["ts"] = s.ts
        d["values"] = v
        d["labels"] = dict(s.labels)
        d["error"] = s.error
        d["seq"] = seq
        out.append(o)
    return out


LABELS_CACHE_MAX = 20_000        # label sets are few and stable (hosts, queues, mounts)


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    """Only real numbers are stored: None / NaN / inf mean "no value this tick"."""
    out = {}
    for k, v in values.items():
        if v is None or isinstance(v, bool):
            if isinstance(v, bool):
                out[k] = float(v)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError, OverflowError):   # 10**400 from an agent's JSON
            continue
        if math.isfinite(f):
            out[k] = f
    return out


def _finite_time(ts: object) -> bool:
    try:
        return math.isfinite(ts)  # type: ignore[arg-type]
    except (TypeError, OverflowError):
        return False


def _timed(samples: Sequence[Sample]) -> Sequence[Sample]:
    """The samples whose time is a finite number. A sample stamped inf or nan would never be
    pruned, sorts anywhere and turns into ``Infinity``/``NaN`` (not JSON) in history and live
    messages. Checked with one sum on the usual path, like the values."""
    times = [s.ts for s in samples]
    if _FLOAT_ONLY.issuperset(map(type, times)) and math.isfinite(sum(times)):
        return samples
    return [s for s in samples if _finite_time(s.ts)]


class Store:
    def __init__(self, data_dir: Path | str, raw_retention_h: float = 48.0,
                 rollup_retention_d: float = 400.0) -> None:
        self.data_dir = make_private(data_dir)      # password hashes and tokens: owner only
        self.path = private_file(file_in(self.data_dir))
        self.raw_retention_s = raw_retention_h * 3600
        self.rollup_retention_s = rollup_retention_d * 86400
        self._lock = threading.Lock()
        self._labels_cache: dict[tuple, str] = {}
        self._known_shapes: set[tuple] = set()
        self._templates: dict[tuple[str, ...], str] = {}
        self._conn = connect(self.path)
        self._conn.executescript(SCHEMA)
        self._latest = storelatest.LatestWriter()
        self._sources_read_at = float("-inf")
        self.dropped_samples = 0                 # samples refused for a non-finite time
        self._dropped_logged_at = float("-inf")
        self._known_sources: set[tuple[str, str]] = {
            (m, s) for m, s in self._conn.execute("SELECT metric, source FROM metric_sources")}

    def connect(self) -> sqlite3.Connection:
        """A separate connection to the same file, for modules that keep their own tables."""
        return connect(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def reading(self) -> Iterator["Store"]:
        """This store for reads in another OS thread (dashboard/offload.py), on a connection and
        a lock of its own: the store's connection and lock belong to the event loop's thread
        (under eventlet the lock is a green one, which an OS thread must not wait on), and WAL
        runs the read beside the appends, which never wait for it. Reads only."""
        view = copy.copy(self)
        view._conn = self.connect()
        view._lock = threading.Lock()            # used by this one thread: never contended
        view._known_sources = set(self._known_sources)
        try:
            yield view
        finally:
            view._conn.close()

    # --- writing -------------------------------------------------------------------------------

    def _labels_text(self, labels: Mapping[str, str]) -> str:
        if not labels:
            return ""
        key = tuple(labels.items())
        text = self._labels_cache.get(key)
        if text is None:
            if len(self._labels_cache) >= LABELS_CACHE_MAX:
                self._labels_cache.clear()
            text = self._labels_cache[key] = _labels_text(labels)
        return text

    def append(self, samples: Sequence[Sample], first_seq: int | None = None) -> list[Sample]:
        """Store one tick's samples in one transaction; return them with sequence numbers.

        A sample without a finite time is left out (counted in ``dropped_samples``, logged at
        most once a minute) and the rest of the tick is stored. ``first_seq``: the samples get
        first_seq, first_seq + 1, ... instead of the next numbers (a tick numbered in memory
        while the disk was full, written back with the numbers the page saw: store/spool.py)."""
        timed = _timed(samples)
        if len(timed) != len(samples):
            self._dropped(len(samples) - len(timed))
            samples = timed
        if not samples:
            return []
        rows = []
        sources = []
        labels = []
        new_sources: list[tuple[str, str]] = []
        known, shapes = self._known_sources, self._known_shapes
        new_shapes: list[tuple] = []
        cleans = _clean_tick([s.values for s in samples])
        templates = self._templates
        for s, vals in zip(samples, cleans):
            src, lab = s.source, self._labels_text(s.labels)
            keys = tuple(vals)
            tmpl = templates.get(keys)
            if tmpl is None:
                if len(templates) >= LABELS_CACHE_MAX:
                    templates.clear()
                tmpl = templates[keys] = _template(keys)
            sources.append(src)
            labels.append(lab)
            rows.append((s.ts, src, lab, tmpl % tuple(vals.values()), s.error))
            shape = (src, keys)
            if shape not in shapes:              # a sample shape seen before has known metrics
                new_sources.extend((m, src) for m in vals if (m, src) not in known)
                new_shapes.append(shape)
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                # A few statements for the whole tick (issue 9: 300 samples a tick from 50 hosts
                # and 200 queues). AUTOINCREMENT under the write lock numbers them consecutively,
                # so their sequence numbers follow from the last one.
                if first_seq is None:
                    _insert_rows(c, rows)
                    first = c.execute("SELECT last_insert_rowid()").fetchone()[0] - len(rows) + 1
                else:
                    c.executemany(_INSERT_NUMBERED, [(first_seq + i, *r) for i, r in enumerate(rows)])
                    first = first_seq
                remember = self._latest.record(c, sources, labels, first)
                if new_sources:
                    c.executemany("INSERT OR IGNORE INTO metric_sources VALUES (?,?)", new_sources)
                c.execute("COMMIT")
            except BaseException:
                self._latest.forget()
                if c.in_transaction:         # SQLITE_FULL has already rolled it back
                    c.execute("ROLLBACK")
                raise
            remember()
            self._known_sources.update(new_sources)
            if len(shapes) < LABELS_CACHE_MAX:
                shapes.update(new_shapes)
        return _stored_samples(samples, cleans, first)

    def as_stored(self, samples: Sequence[Sample], first_seq: int) -> list[Sample]:
        """The samples as ``append(samples, first_seq)`` would store and return them, without
        writing: what the page gets while the store cannot write."""
        timed = _timed(samples)
        return _stored_samples(timed, _clean_tick([s.values for s in timed]), first_seq)

    def _dropped(self, n: int) -> None:
        self.dropped_samples += n
        now = time.monotonic()
        if now - self._dropped_logged_at >= 60:
            self._dropped_logged_at = now
            log.warning("store: %d samples so far left out for a time that is not a finite number",
                        self.dropped_samples)

    # --- reading raw samples -------------------------------------------------------------------

    def _read(self, sql: str, args: Iterable) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    @staticmethod
    def _row_to_sample(row: tuple) -> Sample:
        seq, ts, source, labels, vals, error = row
        return Sample(source, ts, json.loads(vals), json.loads(labels) if labels else {}, error, seq)

    def after(self, after_seq: int, since_ts: float | None = None, limit: int = 50_000) -> list[Sample]:
        """Samples with ``seq > after_seq`` (and ``ts >= since_ts``), oldest first: the resume path."""
        sql = "SELECT seq, ts, source, labels, vals, error FROM samples WHERE seq > ?"
        args: list = [after_seq]
        if since_ts is not None:
            sql += " AND ts >= ?"
            args.append(since_ts)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        return [self._row_to_sample(r) for r in self._read(sql, args)]

    def between(self, since: float, until: float | None = None,
                sources: Iterable[str] | None = None) -> list[Sample]:
        sql = "SELECT seq, ts, source, labels, vals, error FROM samples WHERE ts >= ?"
        args: list = [since]
        if until is not None:
            sql += " AND ts <= ?"
            args.append(until)
        if sources is not None:
            srcs = list(sources)
            if not srcs:
                return []
            sql += f" AND source IN ({','.join('?' * len(srcs))})"
            args.extend(srcs)
        sql += " ORDER BY seq"
        return [self._row_to_sample(r) for r in self._read(sql, args)]

    def rows_between(self, since: float, until: float | None = None) -> list[tuple[float, str, str]]:
        """(ts, labels, values) of the samples in [since, until] in sequence order, as stored
        (JSON text): for readers that decode only what they keep (/api/history)."""
        sql = "SELECT ts, labels, vals FROM samples WHERE ts >= ?"
        args: list = [since]
        if until is not None:
            sql += " AND ts <= ?"
            args.append(until)
        return self._read(sql + " ORDER BY seq", args)

    def rows_since(self, since: float, queue_labels: Sequence[str] | None = None,
                   other_agents_hosts: bool = True) -> list[tuple[float, str, str]] | None:
        """``rows_between(since)`` less rows filtered out in SQLite (``HistoryReads.rows_since``),
        on a connection of its own: a long read (/api/history) that WAL runs beside the appends,
        without the store's lock. None when they cannot be read so."""
        try:
            reads = HistoryReads(self.connect())
        except sqlite3.Error:
            return None
        try:
            return reads.rows_since(since, queue_labels, other_agents_hosts)
        finally:
            reads.close()

    def last_seq(self) -> int:
        row = self._read("SELECT MAX(seq) FROM samples", ())
        return row[0][0] or 0

    def latest(self, within_s: float = 3600) -> list[Sample]:
        """The newest sample of each (source, labels) taken in the last ``within_s`` seconds."""
        rows = storelatest.newest_rows(self._read(storelatest.LATEST_SQL, ()),
                                       time.time() - within_s)
        return [self._row_to_sample(r) for r in rows]

    def knows(self, metric: str) -> bool:
        """Whether any sample ever carried ``metric``. Another process (the collector leader,
        when this is a web-only instance) may have stored it since we looked: on a miss, read
        the table again, at most once a second."""
        if any(m == metric for m, _ in self._known_sources):
            return True
        now = time.monotonic()
        if now - self._sources_read_at >= 1.0:
            self._sources_read_at = now
            self._known_sources |= {(m, s) for m, s in self._read(
                "SELECT metric, source FROM metric_sources", ())}
        return any(m == metric for m, _ in self._known_sources)

    def sources_of(self, metric: str) -> list[str]:
        self.knows(metric)
        return sorted(s for m, s in self._known_sources if m == metric)

    def metrics(self) -> list[str]:
        return sorted({m for m, _ in self._known_sources})

    def series(self, metric: str, since: float, until: float | None = None,
               labels: Mapping[str, str] | None = None) -> dict[str, list[tuple[float, float]]]:
        """Raw points of one metric, per series key, filtered by a subset of labels."""
        out: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for s in self.between(since, until, self.sources_of(metric)):
            if metric not in s.values:
                continue
            if labels and any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            out[series_key(metric, s.labels)].append((s.ts, s.values[metric]))
        return dict(out)

    # --- rollups ---------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0][0] if row else None

    def rollup(self, now: float | None = None) -> int:
        """Roll up every complete minute not yet rolled up. Returns the number of minutes done."""
        now = time.time() if now is None else now
        end = int((now - ROLLUP_LAG_S) // 60) * 60          # exclusive: minutes before this are complete
        mark = self._meta("rollup_done_until")
        if mark is None:
            first = self._read("SELECT MIN(ts) FROM samples", ())[0][0]
            if first is None:
                return 0
            start = int(first // 60) * 60
        else:
            start = int(mark)
        done = 0
        # One hour at a time keeps each read and each write transaction small.
        while start < end:
            chunk_end = min(end, start + 3600)
            self._rollup_range(start, chunk_end)
            done += (chunk_end - start) // 60
            start = chunk_end
        return done

    def _rollup_range(self, start: int, end: int) -> None:
        acc: dict[tuple[str, str, int], list[float]] = defaultdict(list)
        for ts, labels, vals in self._read(
                "SELECT ts, labels, vals FROM samples WHERE ts >= ? AND ts < ?", (start, end)):
            minute = int(ts // 60) * 60
            for metric, v in json.loads(vals).items():
                acc[(metric, labels, minute)].append(v)
        rows = [(m, lab, minute, len(vs), sum(vs), min(vs), max(vs), sketch.encode(sketch.build(vs)))
                for (m, lab, minute), vs in acc.items()]
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany("INSERT OR REPLACE INTO rollup_1m VALUES (?,?,?,?,?,?,?,?)", rows)
                c.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_done_until', ?)", (str(end),))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def rollups(self, metric: str, since: float, until: float | None = None,
                labels: Mapping[str, str] | None = None) -> dict[str, list[dict]]:
        """One-minute rollups of one metric, per series key: minute, n, avg, min, max, sketch."""
        until = time.time() if until is None else until
        out: dict[str, list[dict]] = defaultdict(list)
        for lab, minute, n, total, lo, hi, sk in self._read(
                "SELECT labels, minute, n, sum, min, max, sketch FROM rollup_1m"
                " WHERE metric = ? AND minute >= ? AND minute <= ? ORDER BY minute",
                (metric, int(since // 60) * 60, until)):
            lab_d = json.loads(lab) if lab else {}
            if labels and any(lab_d.get(k) != v for k, v in labels.items()):
                continue
            out[series_key(metric, lab_d)].append(
                {"minute": minute, "n": n, "avg": total / n, "min": lo, "max": hi,
                 "sketch": sketch.decode(sk)})
        return dict(out)

    def rollup_metrics_between(self, since: float, until: float) -> Iterator[tuple]:
        """Every rollup row in a time range: (metric, labels dict, minute, n, sum, min, max, sketch)."""
        for m, lab, minute, n, total, lo, hi, sk in self._read(
                "SELECT metric, labels, minute, n, sum, min, max, sketch FROM rollup_1m"
                " WHERE minute >= ? AND minute < ? ORDER BY minute", (since, until)):
            yield m, (json.loads(lab) if lab else {}), minute, n, total, lo, hi, sketch.decode(sk)

    def rollup_buckets(self, since: float, until: float, bucket_s: int,
                       metric: str | None = None) -> list[tuple]:
        """The one-minute rollups in ``[since, until)`` (of ``metric``, or all) merged per series
        into buckets of ``bucket_s`` seconds (a multiple of 60) counted from ``since``'s minute:
        (metric, labels as stored, bucket start, n, sum, min, max, its last minute), by series
        then time. Merged inside SQLite (long windows, issue 15): no per-minute Python objects."""
        start, width = int(since // 60) * 60, int(bucket_s)
        sql = (f"SELECT metric, labels, {start} + (minute - {start}) / {width} * {width},"
               " SUM(n), SUM(sum), MIN(min), MAX(max), MAX(minute) FROM rollup_1m"
               " WHERE minute >= ? AND minute < ?")
        args: list = [start, until]
        if metric is not None:
            sql += " AND metric = ?"
            args.append(metric)
        return self._read(sql + " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", args)

    # --- retention -------------------------------------------------------------------------------

    @property
    def prune_every_s(self) -> float:
        return prune_period_s(self.raw_retention_s)

    def prune(self, now: float | None = None) -> int:
        """Delete raw samples and rollups past retention, in small batches. Returns rows deleted."""
        now = time.time() if now is None else now
        raw_cut = now - self.raw_retention_s
        deleted = 0
        while True:
            with self._lock:
                cur = self._conn.execute(
                    "DELETE FROM samples WHERE seq IN (SELECT seq FROM samples WHERE ts < ? "
                    "ORDER BY seq LIMIT ?)", (raw_cut, PRUNE_BATCH))
                n = cur.rowcount
            deleted += n
            if n < PRUNE_BATCH:
                break
        with self._lock:
            cur = self._conn.execute("DELETE FROM rollup_1m WHERE minute < ?",
                                     (now - self.rollup_retention_s,))
            deleted += cur.rowcount
        return deleted

    def stats(self) -> dict[str, int]:
        """Row counts and file size, for /healthz and the benchmarks."""
        raw = self._read("SELECT COUNT(*) FROM samples", ())[0][0]
        roll = self._read("SELECT COUNT(*) FROM rollup_1m", ())[0][0]
        size = sum(p.stat().st_size for p in self.data_dir.glob(FILE_NAME + "*") if p.exists())
        return {"raw_rows": raw, "rollup_rows": roll, "bytes": size}
