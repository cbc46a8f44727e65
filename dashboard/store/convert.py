"""Converting a data dir written by the version-1 layout (one JSON row per sample, one row per
series-minute) into the time-series layout, on the first start of a newer dashboard (issue 15).

* What is converted: the raw samples still within the raw retention (with their own sequence
  numbers, so a page that resumes after the upgrade neither misses nor repeats a sample) and
  every one-minute rollup (as hour blocks; each hour's sketch is the merge of its minutes').
  The version-1 tables are dropped only once everything is in the new ones.
* Nothing is lost on a crash: rollups are written a batch of series at a time and the hour
  blocks *replace* what those hours held, so a batch done twice is written once; the raw samples
  go on from the last sequence number already converted; the version-1 tables stay until the
  end. A ``kill -9`` mid-conversion leaves a file the next start finishes converting.
* Several processes starting on the same old data dir (gunicorn, ``collect``, the CLI) convert
  it once: the first takes an exclusive lock on ``history.convert.lock`` beside the file, the
  others wait on it and then find nothing left to convert.
* A large file takes a while: progress is written to the console every few seconds.
"""
from __future__ import annotations

import fcntl
import json
import math
import sys
import time
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from dashboard.model import Sample
from dashboard.store.rollups import HourBlock, MinuteRow
from dashboard.store.txn import Connection

if TYPE_CHECKING:
    from dashboard.store.history import Store

V1_TABLES = ("samples", "rollup_1m", "metric_sources", "latest_samples", "latest_ticks")
LOCK_NAME = "history.convert.lock"
BLOCKS_PER_WRITE = 2_000        # rollup hour blocks per write transaction
RAW_PER_BATCH = 5_000           # raw samples per write transaction
SAY_EVERY_S = 3.0
MARK = "convert.rollups_after"  # meta: the last (metric, labels) whose rollups are converted


def needed(conn: Connection) -> bool:
    """Whether the file still holds version-1 tables."""
    return bool(conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN ('samples', 'rollup_1m')"
    ).fetchone())


@contextmanager
def _exclusive(store: Store) -> Iterator[None]:
    with open(store.data_dir / LOCK_NAME, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)           # the others wait here, then find nothing to do
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _v1_sketch(text: str) -> Counter[int]:
    """A version-1 sketch (``bucket:count,bucket:count``)."""
    out: Counter[int] = Counter()
    for part in text.split(",") if text else ():
        b, c = part.split(":")
        out[int(b)] += int(c)
    return out


class _Progress:
    def __init__(self, total: int, say: Callable[[str], None]) -> None:
        self.total, self.done, self.say = total, 0, say
        self._said_at = time.monotonic()

    def add(self, n: int, what: str) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._said_at >= SAY_EVERY_S:
            self._said_at = now
            pct = 100 * self.done / max(self.total, 1)
            self.say(f"store: converting the history to the new layout: {what}, "
                     f"{self.done:,} of {self.total:,} rows ({pct:.0f} %)")


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(store: Store, say: Callable[[str], None] = _stderr) -> bool:
    """Convert ``store``'s file if it still holds version-1 tables; True when this call did."""
    conn = store.connect()
    try:
        with _exclusive(store):
            if not needed(conn):
                return False
            started = time.monotonic()
            total = _count(conn, "rollup_1m") + _count(conn, "samples",
                                                      time.time() - store.raw_retention_s)
            say(f"store: converting the history in {store.path} to the new layout "
                f"({total:,} rows); the old tables stay until it is done")
            progress = _Progress(total, say)
            _rollups(conn, store, progress)
            _raw(conn, store, progress)
            conn.execute("BEGIN IMMEDIATE")
            # Numbers go on past the old samples even when none of them was recent enough to
            # keep (``Store.last_seq`` reads the floor while no tick is stored).
            if _count(conn, "samples"):
                conn.execute("INSERT OR REPLACE INTO meta SELECT 'history.seq_floor',"
                             " CAST(MAX(seq) AS TEXT) FROM samples")
            for t in V1_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {t}")
            conn.execute("DELETE FROM meta WHERE key = ?", (MARK,))
            conn.execute("COMMIT")
            say(f"store: history converted ({total:,} rows in {time.monotonic() - started:.1f} s)")
            return True
    finally:
        conn.close()


def _count(conn: Connection, table: str, since: float | None = None) -> int:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
        return 0
    where, args = ("", ()) if since is None else (" WHERE ts >= ?", (since,))
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}{where}", args).fetchone()[0])


def _rollups(conn: Connection, store: Store, progress: _Progress) -> None:
    """Every version-1 rollup as hour blocks, a series at a time, written ``BLOCKS_PER_WRITE``
    blocks at a time: memory holds at most that many hours, whatever the history's length."""
    if not _count(conn, "rollup_1m"):
        return
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (MARK,)).fetchone()
    after = tuple(json.loads(row[0])) if row else ("", "")
    mark = conn.execute("SELECT value FROM meta WHERE key = 'rollup_done_until'").fetchone()
    rolled = float(mark[0]) if mark else None
    series = conn.execute("SELECT DISTINCT metric, labels FROM rollup_1m"
                          " WHERE (metric, labels) > (?, ?) ORDER BY metric, labels",
                          after).fetchall()
    blocks: list[HourBlock] = []
    rows = 0

    def write() -> None:
        nonlocal rows
        # Replacing whole hours: blocks written again after a crash are written once.
        store.write_rollup_blocks(blocks, rolled)
        blocks.clear()
        progress.add(rows, "rollups")
        rows = 0

    for metric, labels in series:
        lab = json.loads(labels) if labels else {}
        hour = -1                                       # the hour being gathered
        minutes: dict[int, MinuteRow] = {}
        counts: Counter[int] = Counter()
        for minute, n, total, lo, hi, sk in conn.execute(
                "SELECT minute, n, sum, min, max, sketch FROM rollup_1m"
                " WHERE metric = ? AND labels = ? ORDER BY minute", (metric, labels)):
            if minute - minute % 3600 != hour:
                if minutes:
                    blocks.append(HourBlock(metric, lab, hour, minutes, counts))
                    if len(blocks) >= BLOCKS_PER_WRITE:
                        write()
                hour, minutes, counts = minute - minute % 3600, {}, Counter()
            minutes[minute] = (n, total, lo, hi)
            counts.update(_v1_sketch(sk))
            rows += 1
        if minutes:
            blocks.append(HourBlock(metric, lab, hour, minutes, counts))
        write()                 # the series is whole in the new table: the mark moves past it
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                     (MARK, json.dumps([metric, labels])))


def _raw(conn: Connection, store: Store, progress: _Progress) -> None:
    """The version-1 samples within the raw retention, with their own sequence numbers, in
    runs of consecutive numbers; on from the last one already converted."""
    if not _count(conn, "samples"):
        return
    since = time.time() - store.raw_retention_s
    cursor = store.converted_seq()
    while True:
        rows = conn.execute("SELECT seq, ts, source, labels, vals, error FROM samples"
                            " WHERE seq > ? AND ts >= ? ORDER BY seq LIMIT ?",
                            (cursor, since, RAW_PER_BATCH)).fetchall()
        if not rows:
            return
        cursor = rows[-1][0]
        run_: list[Sample] = []
        for seq, ts, source, labels, vals, error in rows:
            if not math.isfinite(ts):            # refused since; a gap in the numbers
                continue
            if run_ and seq != (run_[-1].seq or 0) + 1:
                store.append_converted(run_)
                run_ = []
            run_.append(Sample(source, ts, json.loads(vals), json.loads(labels) if labels else {},
                               error, seq))
        if run_:
            store.append_converted(run_)
        progress.add(len(rows), "raw samples")
