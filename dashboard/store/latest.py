"""The newest sample of each series, kept at a cost per tick that does not grow with the tick.

Per source, ``newest_ticks`` holds the sequence range of that source's newest append (one row per
source per tick), and ``newest_left`` only holds series that were in a source's previous append
but not in its newest one (a queue removed from the config, a target down so only its
``<source>.up = 0`` sample came). The newest sample of a series is then:

* the newest one of its source's newest append, if it is in it;
* else the one ``newest_left`` points at.

Upserting a row per sample instead was 0.5-0.7 ms of a 306-sample tick (issue 9). Both tables
live in the same transaction as the tick, so ``kill -9`` leaves them consistent with it, and
every process reading the file (web-only instances, ``/metrics``) sees the same answer.

The writer keeps each source's previous append (series -> seq) in memory to know what was
dropped. That memory is valid only while no other process wrote samples in between (a collector
leader that handed over and took back over): a gap in the sequence numbers says another writer
was there, and the previous appends are then read back from the file.
"""
from __future__ import annotations

from typing import Callable, Sequence

from dashboard.model import Sample
from dashboard.store.ticks import TickReads
from dashboard.store.txn import is_pg

SCHEMA = """
-- Per source, the sequence range of its newest append (dashboard/store/latest.py).
CREATE TABLE IF NOT EXISTS newest_ticks (
    source    TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
) WITHOUT ROWID;
-- Series missing from their source's newest append: the sequence number of their newest sample.
CREATE TABLE IF NOT EXISTS newest_left (
    source TEXT NOT NULL,
    labels TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (source, labels)
) WITHOUT ROWID;
"""

_LEFT_PG = ("INSERT INTO newest_left SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]),"
            " CAST(? AS BIGINT[])) ON CONFLICT (source, labels) DO UPDATE SET seq = excluded.seq")
_NEWEST_PG = ("INSERT INTO newest_ticks SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]),"
              " CAST(? AS BIGINT[])) ON CONFLICT (source) DO UPDATE SET"
              " first_seq = excluded.first_seq, last_seq = excluded.last_seq")

Key = str                                   # the labels' stored text, within one source
Commit = Callable[[], None]


class LatestWriter:
    """Writer-side state: each source's previous append as {labels text: seq}."""

    def __init__(self) -> None:
        self._prev: dict[str, dict[Key, int]] = {}
        self._last_seq: int | None = None          # None: unknown, read back before trusting _prev

    def record(self, reads: TickReads, sources: Sequence[str], labels: Sequence[Key],
               first: int) -> Commit:
        """Inside the append's transaction, after its samples got ``first``... sequence numbers:
        write what the newest samples need. Returns the in-memory update to apply after COMMIT
        (a rolled-back append must not change it)."""
        if self._last_seq is None or first != self._last_seq + 1:
            prev: dict[str, dict[Key, int]] = {}     # another writer was here: read back
        else:
            prev = self._prev
        now: dict[str, dict[Key, int]] = {}
        ranges: dict[str, list[int]] = {}
        for i, (src, lab) in enumerate(zip(sources, labels)):
            seq = first + i
            keys = now.get(src)
            if keys is None:
                keys = now[src] = {}
                ranges[src] = [seq, seq]
            keys[lab] = seq
            ranges[src][1] = seq
        dropped: list[tuple[str, str, int]] = []
        for src, keys in now.items():
            before = prev.get(src)
            if before is None:
                before = self._read_back(reads, src)
            if len(before) != len(keys) or before.keys() != keys.keys():
                dropped.extend((src, lab, seq) for lab, seq in before.items() if lab not in keys)
        c = reads.conn
        newest = [(src, lo, hi) for src, (lo, hi) in ranges.items()]
        if is_pg(c):                # a statement each, not a round trip per row
            if dropped:
                c.execute(_LEFT_PG, [list(col) for col in zip(*dropped)])
            c.execute(_NEWEST_PG, [list(col) for col in zip(*newest)])
        else:
            if dropped:
                c.executemany("INSERT OR REPLACE INTO newest_left VALUES (?,?,?)", dropped)
            c.executemany("INSERT OR REPLACE INTO newest_ticks VALUES (?,?,?)", newest)
        last = first + len(sources) - 1

        def commit() -> None:
            if prev is not self._prev:
                self._prev = prev
            prev.update(now)
            self._last_seq = last
        return commit

    def forget(self) -> None:
        """After a failed append: what the file holds is no longer known here."""
        self._last_seq = None

    @staticmethod
    def _read_back(reads: TickReads, source: str) -> dict[Key, int]:
        row = reads.conn.execute("SELECT first_seq, last_seq FROM newest_ticks WHERE source = ?",
                                 (source,)).fetchone()
        if row is None:
            return {}
        return {lab: seq for seq, lab, _ in _range(reads, row[0], row[1], source)}


def _range(reads: TickReads, first: int, last: int,
           source: str) -> list[tuple[int, str, Sample]]:
    return [(seq, lab, s) for seq, (lab, s) in reads.numbered(range(first, last + 1)).items()
            if s.source == source]


def newest(reads: TickReads, since_ts: float) -> list[Sample]:
    """The newest sample of each (source, labels) taken at or after ``since_ts``, ordered by
    source and labels."""
    best: dict[tuple[str, str], Sample] = {}
    for src, first, last in reads.conn.execute("SELECT * FROM newest_ticks").fetchall():
        for _, lab, s in _range(reads, first, last, src):
            best[(src, lab)] = s
    left = reads.conn.execute("SELECT source, labels, seq FROM newest_left").fetchall()
    found = reads.numbered(seq for _, _, seq in left)
    for src, lab, seq in left:
        hit = found.get(seq)
        if hit is not None and (src, lab) not in best:
            best[(src, lab)] = hit[1]
    return [best[k] for k in sorted(best) if best[k].ts >= since_ts]
