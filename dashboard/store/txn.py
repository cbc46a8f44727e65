"""What the repositories share: the connection they are built from, and a write transaction.

A repository is built on a caller's connection (``Store.connect()``); several repositories on one
connection share its transactions, so ``immediate(conn)`` groups their writes into one commit.

The connection is SQLite's (the file under ``data_dir``) or PostgreSQL's (``store_url``:
``pg.PgConnection``, the same surface); repositories write one SQL text for both (``?``
parameters, ``INSERT ... ON CONFLICT``, ``RETURNING``) and ask ``is_pg`` only where the two
really differ (their schema, a catalogue lookup).
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator, Union

from dashboard.store.pg import PgConnection

Connection = Union[sqlite3.Connection, PgConnection]
IntegrityError = sqlite3.IntegrityError      # a taken key, on either backend
StoreError = sqlite3.Error                   # anything the store failed at, on either backend


def is_pg(conn: Connection) -> bool:
    return isinstance(conn, PgConnection)


def has_table(conn: Connection, name: str) -> bool:
    """Whether the table exists (a reader on a store where its writer never ran)."""
    if isinstance(conn, PgConnection):
        return conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0] is True
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


@contextmanager
def immediate(conn: Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock at once, so no writer fails half-way on a busy file),
    COMMIT at the end of the block, ROLLBACK on any exception (kill -9 inside: nothing of it is
    on disk). On PostgreSQL a transaction that takes the store's advisory write lock first, so a
    check-then-write (the first admin, a claimed delivery) is one writer's at a time there too."""
    if isinstance(conn, PgConnection):
        conn.begin_immediate()
    else:
        conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:      # SQLITE_FULL (a full disk) has already rolled it back
            conn.execute("ROLLBACK")
        raise


class Duplicate(Exception):
    """A write that would repeat a key that must be unique (a name, a token's hash). Raised by
    the repositories instead of the backend's own error, which never leaves the store."""
