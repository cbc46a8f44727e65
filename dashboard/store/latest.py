"""The newest sample of each series, kept at a cost per tick that does not grow with the tick.

Upserting every sample's sequence number into ``latest_samples`` was a B-tree write per sample:
0.5-0.7 ms of a 306-sample tick (issue 9: 50 agent hosts, 200 queues), a fifth of the store's
write. Instead, per source, ``latest_ticks`` holds the sequence range of that source's newest
append (one row per source per tick), and ``latest_samples`` only holds series that were in a
source's previous append but not in its newest one (a queue removed from the config, a target
down so only its ``<source>.up = 0`` sample came). The newest sample of a series is then:

* the newest one of its source's newest append, if it is in it;
* else the one ``latest_samples`` points at.

Both live in the same transaction as the samples, so ``kill -9`` leaves them consistent with the
samples table, and every process reading the file (web-only instances, ``/metrics``) sees the
same answer. Files written before this scheme have a complete ``latest_samples`` and no
``latest_ticks``: they read correctly as they are, nothing to migrate.

The writer keeps each source's previous append (series -> seq) in memory to know what was
dropped. That memory is valid only while no other process wrote samples in between (a collector
leader that handed over and took back over): a gap in the sequence numbers says another writer
was there, and the previous appends are then read back from the file.
"""
from __future__ import annotations

import sqlite3
from typing import Callable, Sequence

SCHEMA = """
-- Per source, the sequence range of its newest append (dashboard/store/latest.py).
CREATE TABLE IF NOT EXISTS latest_ticks (
    source    TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
) WITHOUT ROWID;
"""

Key = str                                   # the labels' stored text, within one source


class LatestWriter:
    """Writer-side state: each source's previous append as {labels text: seq}."""

    def __init__(self) -> None:
        self._prev: dict[str, dict[Key, int]] = {}
        self._last_seq: int | None = None          # None: unknown, read back before trusting _prev

    def record(self, c: sqlite3.Connection, sources: Sequence[str], labels: Sequence[Key],
               first: int) -> Callable[[], None]:
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
                before = self._read_back(c, src)
            if len(before) != len(keys) or before.keys() != keys.keys():
                dropped.extend((src, lab, seq) for lab, seq in before.items() if lab not in keys)
        if dropped:
            c.executemany("INSERT OR REPLACE INTO latest_samples VALUES (?,?,?)", dropped)
        c.executemany("INSERT OR REPLACE INTO latest_ticks VALUES (?,?,?)",
                      [(src, lo, hi) for src, (lo, hi) in ranges.items()])
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
    def _read_back(c: sqlite3.Connection, source: str) -> dict[Key, int]:
        out: dict[Key, int] = {}
        for lab, seq in c.execute(
                "SELECT s.labels, s.seq FROM latest_ticks t CROSS JOIN samples s"
                " ON s.seq BETWEEN t.first_seq AND t.last_seq AND +s.source = t.source"
                " WHERE t.source = ? ORDER BY s.seq", (source,)):
            out[lab] = seq
        return out


LATEST_SQL = (
    "SELECT s.seq, s.ts, s.source, s.labels, s.vals, s.error FROM latest_ticks t CROSS JOIN samples s"
    " ON s.seq BETWEEN t.first_seq AND t.last_seq AND +s.source = t.source"
    " UNION ALL "
    "SELECT s.seq, s.ts, s.source, s.labels, s.vals, s.error FROM latest_samples l"
    " JOIN samples s ON s.seq = l.seq"
    " ORDER BY 3, 4, 1")


def newest_rows(rows: list[tuple], since_ts: float) -> list[tuple]:
    """The newest row of each (source, labels) among ``LATEST_SQL``'s (ordered by source,
    labels, seq: the last of each run), if taken at or after ``since_ts``."""
    out = []
    for i, row in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        if (nxt is None or nxt[2] != row[2] or nxt[3] != row[3]) and row[1] >= since_ts:
            out.append(row)
    return out
