"""What the repositories share: the connection they are built from, and a write transaction.

A repository is built on a caller's connection (``Store.connect()``); several repositories on one
connection share its transactions, so ``immediate(conn)`` groups their writes into one commit.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator

Connection = sqlite3.Connection


@contextmanager
def immediate(conn: Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock at once, so no writer fails half-way on a busy file),
    COMMIT at the end of the block, ROLLBACK on any exception (kill -9 inside: nothing of it is
    on disk)."""
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
