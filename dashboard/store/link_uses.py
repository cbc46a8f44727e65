"""Nonces of signed one-use links already used (``signed_link_uses``), for
``dashboard/signing.py``: a link is used once, also across processes sharing the store.

Each call opens its own connection (``connect``: the store's), as links are checked from web
requests in any thread or process.
"""
from __future__ import annotations

import sqlite3
from typing import Callable

SCHEMA = """
CREATE TABLE IF NOT EXISTS signed_link_uses (
    nonce   TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    used_at REAL NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
"""


class LinkUsesRepo:
    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        conn = connect()
        try:
            conn.executescript(SCHEMA)
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
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO signed_link_uses (nonce, purpose, used_at, expires) "
                             "VALUES (?, ?, ?, ?)", (nonce, purpose, now, expires))
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                return False
            conn.execute("DELETE FROM signed_link_uses WHERE expires < ?", (forget_before,))
            conn.execute("COMMIT")
            return True
        finally:
            conn.close()
