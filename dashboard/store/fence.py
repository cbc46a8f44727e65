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

Interface (``Fence``; ``for_conn`` picks the backend's): ``next_fence() -> int`` in a transaction
of its own, ``check(token)`` inside the caller's write transaction.

* SQLite: one row in the store's file, incremented under ``BEGIN IMMEDIATE``; the write lock held
  by both ``next_fence`` and every fenced write makes the check and the write one atomic step.
* PostgreSQL (``store_url``): tokens come from a real ``SEQUENCE`` (``fence_tokens``): ``nextval``
  never hands out a value twice or goes backwards, whatever happens to Redis, and a rolled back
  or crashed ``next_fence`` only skips a number. ``next_fence`` records its token as the highest
  issued in the one-row table ``fence`` in the same transaction (``UPDATE``: the row's lock), and
  ``check`` reads that row ``FOR SHARE`` inside the caller's write transaction: a concurrent
  ``next_fence`` waits for the fenced write to commit, or the check waits for the new token to
  commit and sees it. So a write checked against an old token can never land after a newer token
  was issued. ``next_fence`` takes no other lock (not the store's advisory write lock), so it
  cannot deadlock with a writer holding that one while it waits for the row.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Protocol

from dashboard.store.migrations import migrate
from dashboard.store.pg import PgConnection
from dashboard.store.txn import Connection, has_table, immediate

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS fence (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token INTEGER NOT NULL,              -- the highest token issued; never goes backwards
    refused INTEGER NOT NULL DEFAULT 0   -- stale writes refused, by every process
);
"""

# PostgreSQL's, by version (``migrations.py``, area "fence"): append, never edit a released step.
PG_MIGRATIONS = ["""
CREATE SEQUENCE fence_tokens AS BIGINT MINVALUE 1 NO CYCLE;
CREATE TABLE fence (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token BIGINT NOT NULL,               -- the highest token issued (fence_tokens' last handed out)
    refused BIGINT NOT NULL DEFAULT 0    -- stale writes refused, by every process
);
INSERT INTO fence (id, token) VALUES (1, 0);
"""]

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

    def create(self) -> None: ...
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


class PgFence:
    """The fence on PostgreSQL: the sequence ``fence_tokens`` and the row ``fence`` (module
    docstring), through the caller's connection."""

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def create(self) -> None:
        migrate(self.conn, "fence", PG_MIGRATIONS)

    def next_fence(self) -> int:
        """A token higher than every one issued before, recorded as the highest issued: one
        transaction, which only locks the ``fence`` row (waiting for a fenced write that read it
        to commit)."""
        self.create()
        self.conn.execute("BEGIN")
        try:
            token = int(self.conn.execute("SELECT nextval('fence_tokens')").fetchone()[0])
            # GREATEST: two takers racing commit in either order; the row keeps the higher.
            self.conn.execute("UPDATE fence SET token = GREATEST(token, ?) WHERE id = 1", (token,))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.rollback()
            raise
        return token

    def highest(self) -> int:
        row = self.conn.execute("SELECT token FROM fence WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def count_refused(self) -> None:
        """After a refused write was rolled back: one more in the store's count."""
        self.conn.execute("UPDATE fence SET refused = refused + 1 WHERE id = 1")

    def refused(self) -> int:
        """How many stale writes the store refused, from every process; 0 without a fence."""
        if not has_table(self.conn, "fence"):
            return 0
        row = self.conn.execute("SELECT refused FROM fence WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def check(self, token: int | None) -> None:
        """Inside the caller's write transaction: raise ``StaleFence`` if ``token`` is lower than
        the highest issued. The row is read ``FOR SHARE``, a lock held to the transaction's end,
        so no token can be issued between this check and the commit of the write it guards.
        None is not fenced (as ``SqliteFence.check``)."""
        if token is None:
            return
        if not self.conn.in_transaction:
            # Outside a transaction the lock would end with this statement: the guard would be
            # a race. A programming error, never a stale leader.
            raise RuntimeError("fence check outside a write transaction")
        row = self.conn.execute("SELECT token FROM fence WHERE id = 1 FOR SHARE").fetchone()
        highest = int(row[0]) if row else 0
        if token < highest:
            raise refused(token, highest)


def for_conn(conn: Connection) -> Fence:
    """The fence of the store ``conn`` reaches (PostgreSQL's or the SQLite file's)."""
    if isinstance(conn, PgConnection):
        return PgFence(conn)
    return SqliteFence(conn)
