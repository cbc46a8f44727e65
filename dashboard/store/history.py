"""Durable history in SQLite (WAL): raw ticks for 48 h, one-minute rollups for 400 days.

The layout is made for time series (issue 15): each series and label set stored once under an
integer id (``catalog.py``), a tick's samples in one binary row (``ticks.py``), an hour of a
series' one-minute rollups and its quantile sketch in one binary row (``blocks.py``,
``rollups.py``), the newest sample of each series found through one row per source
(``latest.py``).

* ``append`` writes one collector tick in one transaction and hands back the samples with their
  sequence numbers (the Socket.IO ``resume`` cursor). WAL + ``synchronous=NORMAL`` means a
  committed tick survives ``kill -9`` of the process; at most the tick being written is lost.
* ``rollup`` turns complete minutes of raw samples into their hour blocks. It works from the
  raw ticks with a watermark, so it catches up after a crash or a restart and never rolls a
  minute twice (the watermark moves in the same transaction as the blocks).
* ``prune`` deletes what is past retention, in bounded batches so a writer never waits long.

The file's history schema is version 2 (``meta``: ``history.schema``). The tables of version 1
(``samples``, ``rollup_1m``, ``metric_sources``, ``latest_samples``, ``latest_ticks``) are
converted on open (``convert.py``); sequence numbers go on from theirs. Other modules (alerts,
outbox, users) keep their own tables in the same file through ``connect()``.

With ``store_url`` the same tables and rows live in PostgreSQL (``history_pg.py``: the schema,
how sequence numbers stay unique and in order across processes, reads in OS threads); this
class keeps the same interface and the same SQL where the two agree.
"""
from __future__ import annotations

import copy
import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from itertools import accumulate, chain
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from dashboard.model import Sample, series_key
from dashboard.store import convert, history_pg, schema_pg
from dashboard.store import fence as storefence
from dashboard.store import latest as storelatest
from dashboard.store import rollups as storerollups
from dashboard.store import ticks as storeticks
from dashboard.store.catalog import SCHEMA as CATALOG_SCHEMA
from dashboard.store.catalog import Catalog, ShapeKey, labels_text
from dashboard.store.clean import clean_tick, stored_samples, timed
from dashboard.store.datadir import make_private, private_file
from dashboard.store.history_reads import Bucket, BucketColumns, HistoryReads
from dashboard.store.migrations import SchemaTooNew, check_not_newer, migrate
from dashboard.store.pg import ConnParams, Pool
from dashboard.store.rollups import HourBlock
from dashboard.store.sqlite import FILE_NAME, connect, file_in
from dashboard.store.txn import Connection, is_pg

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
SCHEMA = ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
          + CATALOG_SCHEMA + storeticks.SCHEMA + storerollups.SCHEMA + storelatest.SCHEMA)
ROLLUP_LAG_S = 5.0       # a minute is rolled up this long after it ends (late samples)
PRUNE_BATCH = 2_000      # tick rows per delete transaction
LABELS_CACHE_MAX = 20_000        # label sets are few and stable (hosts, queues, mounts)


class SeqTaken(sqlite3.IntegrityError, ValueError):
    """An explicit first sequence number already used (another process wrote meanwhile): an
    integrity error, as a taken key is, so a writer that catches those never writes twice."""


def prune_period_s(raw_retention_s: float) -> float:
    """How often ``prune`` runs: every 10 min, or six times per raw retention when that is
    shorter, so the raw table never holds more than retention + 1/6 of it (a 15 min retention
    pruned every 10 min would hold up to 25 min)."""
    return min(600.0, max(10.0, raw_retention_s / 6))


def _open_schema(conn: sqlite3.Connection, path: Path) -> int:
    """Create the tables, refusing a file of a newer schema; the sequence number the file's
    version-1 samples reached (0 without them), so numbers keep growing across the change."""
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = conn.execute("SELECT value FROM meta WHERE key = 'history.schema'").fetchone()
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise SchemaTooNew(f"{path}: history schema {row[0]} was written by a newer dashboard "
                           f"(this one reads up to {SCHEMA_VERSION}): upgrade it, or point "
                           "data_dir elsewhere")
    conn.executescript(SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('history.schema', ?)", (str(SCHEMA_VERSION),))
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'samples'").fetchone() is None:
        return 0
    return int(conn.execute("SELECT MAX(seq) FROM samples").fetchone()[0] or 0)


def open_pg(store_url: str, pool_size: int) -> Pool:
    """The PostgreSQL backend's pool, its schema migrated (every area of ``schema_pg``);
    ``SchemaTooNew`` (one line) for a database a newer dashboard wrote, ``PgUnavailable`` when
    the server does not answer."""
    pool = Pool(ConnParams.from_url(store_url), pool_size)
    try:
        conn = pool.connect()
        try:
            check_not_newer(conn, schema_pg.known_versions())
            for area, steps in schema_pg.AREAS.items():
                migrate(conn, area, steps)
        finally:
            conn.close()
    except BaseException:
        pool.close()
        raise
    return pool


class Store:
    """``store_url`` (``postgresql://...``): the history and the tables of the other areas
    (accounts, alerts, outbox, reports, ...) are in PostgreSQL, and ``connect()`` hands out its
    pooled connections (``store_pool_size`` at most; the history's writer holds one); empty:
    everything in the SQLite file under ``data_dir``."""

    def __init__(self, data_dir: Path | str, raw_retention_h: float = 48.0,
                 rollup_retention_d: float = 400.0, store_url: str | None = None,
                 pool_size: int = 20) -> None:
        self.pool = open_pg(store_url, pool_size) if store_url else None
        self.backend = "postgresql" if self.pool is not None else "sqlite"
        self.data_dir = make_private(data_dir)      # password hashes and tokens: owner only
        self.path = file_in(self.data_dir)          # SQLite's file (not made on PostgreSQL)
        self.raw_retention_s = raw_retention_h * 3600
        self.rollup_retention_s = rollup_retention_d * 86400
        self._lock = threading.Lock()
        self._labels_cache: dict[tuple[tuple[str, str], ...], str] = {}
        self._conn: Connection
        self._in_thread = False                  # a reading() view: connections of its own
        if self.pool is not None:
            self._thread_conns = history_pg.ThreadConnections(self.pool.params, pool_size)
            try:
                self._conn = self.pool.connect()     # the writer's; its schema is migrated
            except BaseException:
                self.pool.close()
                raise
            self._legacy_seq = 0
        else:
            self._conn = connect(private_file(self.path))
            self._legacy_seq = _open_schema(self._conn, self.path)
        self._catalog = Catalog()
        self._ticks = storeticks.TickReads(self._conn, self._catalog)
        self._latest = storelatest.LatestWriter()
        self._row_span: float | None = None          # None: read it from meta
        self._sources_read_at = float("-inf")
        self.dropped_samples = 0                 # samples refused for a non-finite time
        self._dropped_logged_at = float("-inf")
        with self._lock:
            self._catalog.refresh(self._conn)
        if self.pool is None and convert.needed(self._conn):    # the version-1 layout's file
            convert.run(self)

    def connect(self) -> Connection:
        """A connection of its own for modules that keep their own tables: to the same file, or
        (``store_url``) one of the pool's, given back by its ``close()``; in a ``reading()``
        view (an OS thread: the daily summary's repositories) one of the thread's own."""
        if self.pool is not None:
            return self._thread_conns.connect() if self._in_thread else self.pool.connect()
        return connect(self.path)

    def health(self) -> dict[str, Any]:
        """The PostgreSQL server's (``status`` ok | error, ``error``, ``since``); always ok on
        SQLite, whose trouble shows where it is written (``spool.py``)."""
        return self.pool.health() if self.pool is not None else {"status": "ok"}

    def history_connect(self) -> Connection:
        """A connection of its own to the history's tables (long readers), closed by its user:
        on PostgreSQL a pooled one, or in a ``reading()`` view (an OS thread) one of the
        thread's own (``history_pg.ThreadConnection``)."""
        if self.pool is None:
            return connect(self.path)
        if self._in_thread:
            return self._thread_conns.connect()
        return self.pool.connect()

    def next_fence(self) -> int:
        """A fencing token higher than every one issued before (``store/fence.py``)."""
        conn = self.connect()
        try:
            return storefence.for_conn(conn).next_fence()
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()                   # on PostgreSQL: back to the pool, closed next
        if self.pool is not None:
            self.pool.close()
            self._thread_conns.close()

    @contextmanager
    def reading(self) -> Iterator["Store"]:
        """This store for reads in another OS thread (dashboard/offload.py), on a connection and
        a lock of its own: the store's connection and lock belong to the event loop's thread
        (under eventlet the lock is a green one, which an OS thread must not wait on), and WAL
        runs the read beside the appends, which never wait for it. Reads only. With
        ``store_url`` the view's connections (``connect``, ``history_connect``) are the OS
        threads' own (``history_pg.ThreadConnections``: real sockets, a real lock, kept idle
        for the next read): the store's pool, its lock and its connections' sockets belong to
        the event loop."""
        view = copy.copy(self)
        view._in_thread = True
        view._conn = view.history_connect()
        view._lock = threading.Lock()            # used by this one thread: never contended
        view._catalog = Catalog()                # the writer's grows on the loop's thread
        view._catalog.refresh(view._conn)
        view._ticks = storeticks.TickReads(view._conn, view._catalog)
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
            text = self._labels_cache[key] = labels_text(labels)
        return text

    def append(self, samples: Sequence[Sample], first_seq: int | None = None) -> list[Sample]:
        """Store one tick's samples in one transaction; return them with sequence numbers:
        ``first_seq``, ``first_seq + 1``, ... when given (samples numbered while the store could
        not be written: past the last stored number), else on from the last stored one.

        A sample without a finite time is left out (counted in ``dropped_samples``, logged at
        most once a minute) and the rest of the tick is stored."""
        kept = timed(samples)
        if len(kept) != len(samples):
            self._dropped(len(samples) - len(kept))
        if not kept:
            return []
        cleans = clean_tick([s.values for s in kept])
        with self._lock:
            self._begin()
            try:
                first, remember = self._write(kept, cleans, first_seq)
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            remember()
        return stored_samples(kept, cleans, first)

    def append_many(self, ticks: Iterable[Sequence[Sample]]) -> int:
        """Store many ticks in one transaction (filling a history: ``bench/``, a converter);
        each is numbered on from the last as ``append`` does. Returns the samples stored."""
        stored = 0
        with self._lock:
            self._begin()
            try:
                for samples in ticks:
                    kept = timed(samples)
                    if kept:
                        _, remember = self._write(kept, clean_tick([s.values for s in kept]), None)
                        remember()
                        stored += len(kept)
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return stored

    def converted_seq(self) -> int:
        """The newest sequence number in the raw ticks (0: none yet): where a conversion of the
        version-1 samples goes on from (``convert.py``)."""
        with self._lock:
            return self._ticks.last_seq() or 0

    def append_converted(self, samples: Sequence[Sample]) -> None:
        """Version-1 samples with their own consecutive sequence numbers, which lie under the
        version-1 floor new ticks number on from (``convert.py``)."""
        kept = timed(samples)
        if not kept:
            return
        with self._lock:
            self._begin()
            try:
                _, remember = self._write(kept, clean_tick([s.values for s in kept]),
                                          kept[0].seq, converting=True)
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            remember()

    def _begin(self) -> None:
        if isinstance(self._conn, sqlite3.Connection):
            self._conn.execute("BEGIN IMMEDIATE")
        else:
            history_pg.begin(self._conn)

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(history_pg.SET_META, (key, value))     # an upsert both engines read

    def _rollback(self) -> None:
        self._latest.forget()
        self._catalog.forget()
        self._row_span = None
        if self._conn.in_transaction:            # SQLITE_FULL has already rolled it back
            self._conn.execute("ROLLBACK")

    def _write(self, samples: Sequence[Sample], cleans: list[dict[str, float]],
               first_seq: int | None, converting: bool = False) -> tuple[int, storelatest.Commit]:
        """Inside the write transaction: the tick's rows and newest-sample records."""
        c, catalog = self._conn, self._catalog
        sources = [s.source for s in samples]
        labels = [self._labels_text(s.labels) for s in samples]
        keys: list[ShapeKey] = list(zip(sources, labels, map(tuple, cleans)))
        known = catalog.shapes_by_key
        if not all(map(known.__contains__, keys)):
            catalog.add_shapes(c, [k for k in keys if k not in known])
        shapes = list(map(known.__getitem__, keys))
        last = self._ticks.last_seq() or (0 if converting else int(
            self._meta("history.seq_floor") or self._legacy_seq))
        if first_seq is not None and first_seq <= last:
            raise SeqTaken(f"sequence number {first_seq} is taken (the store is at {last})")
        first = last + 1 if first_seq is None else first_seq
        times = [s.ts for s in samples]
        values = list(chain.from_iterable(v.values() for v in cleans))
        errors = {i: s.error for i, s in enumerate(samples) if s.error}
        cuts = storeticks.row_cuts(times)
        ends = [0, *accumulate(map(len, cleans))]
        c.executemany("INSERT INTO ticks VALUES (?,?,?,?)", [
            (first + a, max(times[a:b]), b - a,
             storeticks.encode(shapes[a:b], times[a:b], values[ends[a]:ends[b]],
                               {i - a: e for i, e in errors.items() if a <= i < b}))
            for a, b in cuts])
        self._widen(max(max(times[a:b]) - min(times[a:b]) for a, b in cuts))
        return first, self._latest.record(self._ticks, sources, labels, first)

    def _widen(self, spread: float) -> None:
        """Record a row's time span if it is the widest yet (readers look that far)."""
        if self._row_span is None:
            self._row_span = self._ticks.span()
        if spread > self._row_span:          # another writer may have widened it further
            if is_pg(self._conn):
                self._conn.execute(history_pg.WIDEN, (storeticks.SPAN_KEY, repr(float(spread))))
            else:
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?1, MAX(?2, COALESCE("
                    "(SELECT CAST(value AS REAL) FROM meta WHERE key = ?1), 0)))",
                    (storeticks.SPAN_KEY, spread))
            self._row_span = spread

    def write_rollup_blocks(self, blocks: Iterable[HourBlock],
                            rolled_until: float | None = None) -> int:
        """Write whole hours of one-minute rollups (a synthetic or converted history), replacing
        those hours of those series, in one transaction; with ``rolled_until``, the minutes
        before it count as rolled up (the rollup job goes on from there). Returns the blocks."""
        with self._lock:
            self._begin()
            try:
                n = storerollups.replace_blocks(self._conn, self._catalog, blocks)
                if rolled_until is not None:
                    self._set_meta(HistoryReads.ROLLED_UNTIL, str(int(rolled_until)))
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return n

    def as_stored(self, samples: Sequence[Sample], first_seq: int) -> list[Sample]:
        """The samples as ``append(samples, first_seq)`` would store and return them, without
        writing: what the page gets while the store cannot write."""
        kept = timed(samples)
        return stored_samples(kept, clean_tick([s.values for s in kept]), first_seq)

    def _dropped(self, n: int) -> None:
        self.dropped_samples += n
        now = time.monotonic()
        if now - self._dropped_logged_at >= 60:
            self._dropped_logged_at = now
            log.warning("store: %d samples so far left out for a time that is not a finite number",
                        self.dropped_samples)

    # --- reading raw samples -------------------------------------------------------------------

    def after(self, after_seq: int, since_ts: float | None = None,
              limit: int = 50_000) -> list[Sample]:
        """Samples with ``seq > after_seq`` (and ``ts >= since_ts``), oldest first: the resume
        path."""
        with self._lock:
            return self._ticks.after(after_seq, since_ts, limit)

    def between(self, since: float, until: float | None = None,
                sources: Iterable[str] | None = None) -> list[Sample]:
        with self._lock:
            return self._ticks.between(since, until, sources)

    def rows_between(self, since: float,
                     until: float | None = None) -> list[storeticks.Row]:
        """(ts, label text, values) of the samples in [since, until] in sequence order: for
        readers that key series on the label text (/api/history)."""
        with self._lock:
            return self._ticks.rows(since, until)

    def rows_since(self, since: float, queue_labels: Sequence[str] | None = None,
                   other_agents_hosts: bool = True, until: float | None = None) -> list[storeticks.Row]:
        """``rows_between(since, until)`` less rows left out by their shape
        (``HistoryReads.rows_since``), on a connection of its own: a long read (/api/history) that
        WAL runs beside the appends, without the store's lock."""
        with self._reads() as reads:
            return reads.rows_since(since, queue_labels, other_agents_hosts, until)

    def _reads(self) -> HistoryReads:
        return HistoryReads(self.history_connect())

    def last_seq(self) -> int:
        with self._lock:
            return self._ticks.last_seq() or int(self._meta("history.seq_floor")
                                                 or self._legacy_seq)

    def latest(self, within_s: float = 3600) -> list[Sample]:
        """The newest sample of each (source, labels) taken in the last ``within_s`` seconds."""
        with self._lock:
            return storelatest.newest(self._ticks, time.time() - within_s)

    def _metric_sources(self) -> set[tuple[str, str]]:
        return self._catalog.metric_sources()

    def knows(self, metric: str) -> bool:
        """Whether any sample or rollup ever carried ``metric``. Another process (the collector
        leader, when this is a web-only instance) may have stored it since we looked: on a
        miss, read the catalog again, at most once a second."""
        if any(m == metric for m, _ in self._catalog.series_by_key):
            return True
        now = time.monotonic()
        if now - self._sources_read_at >= 1.0:
            self._sources_read_at = now
            with self._lock:
                self._catalog.refresh(self._conn)
        return any(m == metric for m, _ in self._catalog.series_by_key)

    def sources_of(self, metric: str) -> list[str]:
        self.knows(metric)
        return sorted({s for m, s in self._metric_sources() if m == metric})

    def metrics(self) -> list[str]:
        return sorted({m for m, _ in self._catalog.series_by_key})

    def series(self, metric: str, since: float, until: float | None = None,
               labels: Mapping[str, str] | None = None) -> dict[str, list[tuple[float, float]]]:
        """Raw points of one metric, per series key, filtered by a subset of labels."""
        out: dict[str, list[tuple[float, float]]] = {}
        for s in self.between(since, until, self.sources_of(metric)):
            if metric not in s.values:
                continue
            if labels and any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            out.setdefault(series_key(metric, s.labels), []).append((s.ts, s.values[metric]))
        return out

    # --- rollups ---------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def rollup(self, now: float | None = None) -> int:
        """Roll up every complete minute not yet rolled up. Returns the number of minutes done."""
        now = time.time() if now is None else now
        end = int((now - ROLLUP_LAG_S) // 60) * 60     # exclusive: minutes before it are complete
        with self._lock:
            mark = self._meta(HistoryReads.ROLLED_UNTIL)
            first = self._ticks.first_time() if mark is None else float(mark)
        if first is None:
            return 0
        start = int(first // 60) * 60
        done = 0
        # An hour at a time (whole clock hours): each read and write stays small, and each
        # chunk adds to one block per series.
        while start < end:
            chunk_end = min(end, (start // storerollups.HOUR + 1) * storerollups.HOUR)
            if self._rollup_range(start, chunk_end):
                done += (chunk_end - start) // 60
            start = chunk_end
        return done

    def _rollup_range(self, start: int, end: int) -> bool:
        """Roll ``[start, end)`` into its hour's blocks, unless another process did meanwhile
        (blocks add up what they are given: a chunk rolled twice would count twice)."""
        with self._lock:
            rolled = storerollups.roll(self._ticks, start, end)
            self._begin()
            try:
                mark = self._meta(HistoryReads.ROLLED_UNTIL)     # under the write lock now
                if mark is not None and float(mark) > start:
                    self._conn.execute("ROLLBACK")
                    return False
                storerollups.merge_into(self._conn, start // 3600 * 3600, rolled)
                self._set_meta(HistoryReads.ROLLED_UNTIL, str(end))
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return True

    def rollups(self, metric: str, since: float, until: float | None = None,
                labels: Mapping[str, str] | None = None) -> dict[str, list[dict[str, float]]]:
        """One-minute rollups of one metric, per series key: minute, n, avg, min, max. (The
        quantile sketch is kept per hour: ``HistoryReads.rolled_series``.)"""
        until = time.time() if until is None else until
        out: dict[str, list[dict[str, float]]] = {}
        for m, lab, minute, n, total, lo, hi in self.rollup_metrics_between(
                int(since // 60) * 60, until + 1, [metric]):
            if labels and any(lab.get(k) != v for k, v in labels.items()):
                continue
            out.setdefault(series_key(m, lab), []).append(
                {"minute": minute, "n": n, "avg": total / n, "min": lo, "max": hi})
        return out

    def rollup_metrics_between(self, since: float, until: float,
                               metrics: Iterable[str] | None = None) -> Iterator[tuple[
                                   str, dict[str, str], int, int, float, float, float]]:
        """Every rolled-up minute in ``[since, until)`` of ``metrics`` (None: all), series by
        series, each in time order: (metric, labels, minute, n, sum, min, max). Read on a
        connection of its own, without the store's lock (a day of 300 series is ~430,000)."""
        with self._reads() as reads:
            yield from reads.minutes_between(since, until, metrics)

    def rollup_buckets(self, since: float, until: float, bucket_s: int,
                       metric: str | None = None) -> list[Bucket]:
        """The one-minute rollups in ``[since, until)`` (of ``metric``, or all) merged per series
        into buckets of ``bucket_s`` seconds (a multiple of 60) counted from ``since``'s minute:
        (metric, labels as stored, bucket start, n, sum, min, max, its last minute), by series
        then time (long windows, issue 15: at most ``downsample.MAX_POINTS`` a series)."""
        with self._reads() as reads:
            return list(reads.buckets_between(since, until, int(bucket_s), metric))

    def rollup_hour_columns(self, since: float, until: float, bucket_s: int,
                            metric: str | None = None) -> list[BucketColumns]:
        """``rollup_bucket_columns`` for buckets of whole hours (``bucket_s`` a multiple of 3600),
        from each hour's stored summary: a window of days decodes no minutes."""
        with self._reads() as reads:
            return list(reads.hour_columns(since, until, int(bucket_s), metric))

    def rollup_bucket_columns(self, since: float, until: float, bucket_s: int,
                              metric: str | None = None) -> list[BucketColumns]:
        """``rollup_buckets`` as columns per series: (metric, labels as stored, the buckets
        (``minute``: each one's start; ``n``, ``total``, ``lo``, ``hi``), each one's last minute).
        For readers that build columns anyway (``/api/history``): no tuple per bucket."""
        with self._reads() as reads:
            return list(reads.bucket_columns(since, until, int(bucket_s), metric))

    # --- retention -------------------------------------------------------------------------------

    @property
    def prune_every_s(self) -> float:
        return prune_period_s(self.raw_retention_s)

    def prune(self, now: float | None = None) -> int:
        """Delete raw ticks whose samples are all past retention, in small batches, and rollup
        blocks whose hour is. Returns the samples and blocks deleted."""
        now = time.time() if now is None else now
        raw_cut = now - self.raw_retention_s
        deleted = 0
        while True:
            with self._lock:
                self._begin()
                try:
                    # The newest number survives its tick: numbering goes on from it.
                    # (Never lowered: with no tick left, the floor it had stays.)
                    pg = is_pg(self._conn)
                    self._conn.execute(history_pg.SEQ_FLOOR if pg else
                        "INSERT OR REPLACE INTO meta VALUES ('history.seq_floor', MAX("
                        "(SELECT COALESCE(MAX(seq + n - 1), 0) FROM ticks), COALESCE((SELECT"
                        " CAST(value AS INTEGER) FROM meta WHERE key = 'history.seq_floor'), 0)))")
                    rows = self._conn.execute(
                        "SELECT seq, n FROM ticks WHERE ts < ? ORDER BY ts LIMIT ?",
                        (float(raw_cut), PRUNE_BATCH)).fetchall()
                    if pg:                  # one statement for the batch
                        self._conn.execute(history_pg.DELETE_TICKS, ([seq for seq, _ in rows],))
                    else:
                        self._conn.executemany("DELETE FROM ticks WHERE seq = ?",
                                               [(seq,) for seq, _ in rows])
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            deleted += int(sum(n for _, n in rows))
            if len(rows) < PRUNE_BATCH:
                break
        with self._lock:
            deleted += storerollups.prune(self._conn, self._catalog,
                                          now - self.rollup_retention_s)
        return deleted

    def stats(self) -> dict[str, int]:
        """Samples, tick rows, rollup blocks and size (the file, or on PostgreSQL the history's
        tables with their indexes and TOAST), for the benchmarks."""
        with self._lock:
            samples, rows = self._conn.execute(
                "SELECT COALESCE(SUM(n), 0), COUNT(*) FROM ticks").fetchone()
            blocks = self._conn.execute("SELECT COUNT(*) FROM rollups").fetchone()[0]
            if is_pg(self._conn):
                size = int(self._conn.execute(history_pg.SIZE).fetchone()[0])
        if not is_pg(self._conn):
            size = sum(p.stat().st_size for p in self.data_dir.glob(FILE_NAME + "*")
                       if p.exists())
        return {"raw_samples": int(samples), "raw_rows": int(rows), "rollup_blocks": int(blocks),
                "bytes": size}

