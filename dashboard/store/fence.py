"""Fencing tokens: a leader's writes are refused once a newer leader exists.

The collector leader lock lives in Redis (``dashboard/process/cluster.py``). A leader that was
paused or partitioned may not know yet that it lost the lock, and a late write of its own (an
alert transition, an outbox message it is about to send) would then duplicate or contradict the
new leader's. So each leader, on winning the lock, takes a token from the store
(``next_fence()``): a number that never goes backwards, whatever happens to Redis. Every alert
transition and outbox send it writes carries the token, and the store checks it (``check``)
inside the same write transaction: a token lower than the highest one issued means a newer
leader exists, and the write is refused with ``StaleFence`` (logged once per token; counted, once
the refused transaction is rolled back, in the store by ``count_refused``, which /metrics shows
as ``dashboard_fence_refused_total``, and in this process's ``refused_total``).

Interface (a PostgreSQL repository does the same with a sequence and a one-row table read under
the transaction's lock): ``next_fence() -> int`` in a transaction of its own, ``check(token)``
inside the caller's write transaction. SQLite: one row in the store's file, incremented under
``BEGIN IMMEDIATE``; the write lock held by both ``next_fence`` and every fenced write makes the
check and the write one atomic step.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Protocol

from dashboard.store.txn import Connection, immediate

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS fence (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token INTEGER NOT NULL,              -- the highest token issued; never goes backwards
    refused INTEGER NOT NULL DEFAULT 0   -- stale writes refused, by every process
);
"""

_lock = threading.Lock()
refused_total = 0                        # writes refused in this process (stale tokens)
_logged: set[int] = set()                # stale tokens already logged


class StaleFence(RuntimeError):
    """A write carrying a token lower than the highest issued: a newer leader exists."""

    def __init__(self, token: int, highest: int) -> None:
        super().__init__(f"fencing token {token} is stale (a newer leader holds {highest}); "
                         "write refused")
        self.token, self.highest = token, highest


class Fence(Protocol):
    """What a store backend provides for fencing."""

    def next_fence(self) -> int: ...
    def check(self, token: int | None) -> None: ...
    def count_refused(self) -> None: ...
    def refused(self) -> int: ...


def refused(token: int, highest: int) -> StaleFence:
    """Count a refused write, log it the first time for ``token``; the error to raise."""
    global refused_total
    with _lock:
        refused_total += 1
        first = token not in _logged
        _logged.add(token)
    if first:
        log.error("fencing: a write with token %d refused; the highest issued is %d (another "
                  "process leads the collectors now)", token, highest)
    return StaleFence(token, highest)


def create(conn: Connection) -> None:
    conn.executescript(SCHEMA)


def add_column(conn: Connection, table: str, column: str) -> None:
    """``ALTER TABLE ... ADD COLUMN column INTEGER`` unless it is there (files made before)."""
    cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    if column not in cols:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER")


class SqliteFence:
    """The fence row of the store's file, through the caller's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def create(self) -> None:
        create(self.conn)

    def next_fence(self) -> int:
        """A token higher than every one issued before: one write transaction."""
        create(self.conn)
        with immediate(self.conn):
            self.conn.execute("INSERT OR IGNORE INTO fence (id, token) VALUES (1, 0)")
            self.conn.execute("UPDATE fence SET token = token + 1 WHERE id = 1")
            token = int(self.conn.execute("SELECT token FROM fence WHERE id = 1").fetchone()[0])
        return token

    def highest(self) -> int:
        row = self.conn.execute("SELECT token FROM fence WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def count_refused(self) -> None:
        """After a refused write was rolled back: one more in the store's count."""
        with immediate(self.conn):
            self.conn.execute("UPDATE fence SET refused = refused + 1 WHERE id = 1")

    def refused(self) -> int:
        """How many stale writes the store refused, from every process; 0 without a fence."""
        try:
            row = self.conn.execute("SELECT refused FROM fence WHERE id = 1").fetchone()
        except sqlite3.OperationalError:          # no fence table: no leader ever wrote here
            return 0
        return int(row[0]) if row else 0

    def check(self, token: int | None) -> None:
        """Inside the caller's write transaction: raise ``StaleFence`` if ``token`` is lower
        than the highest issued. None (a write not made by a leader: a web instance ending a
        silence) is not fenced."""
        if token is None:
            return
        highest = self.highest()
        if token < highest:
            raise refused(token, highest)
