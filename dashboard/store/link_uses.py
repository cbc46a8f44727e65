"""Nonces of signed one-use links already used (``signed_link_uses``), for
``dashboard/signing.py``: a link is used once, also across processes sharing the store.

Each call opens its own connection (``connect``: the store's), as links are checked from web
requests in any thread or process. The same SQL on SQLite and PostgreSQL (``txn.py``).
"""
from __future__ import annotations

from typing import Callable

from dashboard.store.migrations import ensure
from dashboard.store.txn import Connection, IntegrityError, immediate

SCHEMA = """
CREATE TABLE IF NOT EXISTS signed_link_uses (
    nonce   TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    used_at REAL NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
"""

PG_MIGRATIONS = ["""
CREATE TABLE signed_link_uses (
    nonce   TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    used_at DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
"""]


class LinkUsesRepo:
    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        conn = connect()
        try:
            ensure(conn, SCHEMA, "link_uses", PG_MIGRATIONS)
        finally:
            conn.close()

    def used(self, nonce: str) -> bool:
        conn = self._connect()
        try:
            return conn.execute("SELECT 1 FROM signed_link_uses WHERE nonce = ?",
                                (nonce,)).fetchone() is not None
        finally:
            conn.close()

    def use(self, nonce: str, purpose: str, now: float, expires: float,
            forget_before: float) -> bool:
        """Record the nonce as used now; False (nothing recorded) when it was used already.
        In the same transaction, uses of links that expired before ``forget_before`` are
        dropped: a nonce is only needed while its link could still verify."""
        conn = self._connect()
        try:
            with immediate(conn):
                conn.execute("INSERT INTO signed_link_uses (nonce, purpose, used_at, expires) "
                             "VALUES (?, ?, ?, ?)", (nonce, purpose, now, expires))
                conn.execute("DELETE FROM signed_link_uses WHERE expires < ?", (forget_before,))
            return True
        except IntegrityError:
            return False
        finally:
            conn.close()
