"""The top-statements book's tables (``dashboard/collectors/mysql_statements.py``).

* ``db_statement_texts``: each statement's text and when it was first seen (``NULL`` = already
  there when monitoring began);
* ``db_statement_days`` and ``db_statement_hours``: per local day and per hour, what each
  statement did (calls, time, max, rows), summed over the increments the book is given;
* ``db_statement_meta``: the book's small state (when texts began to be kept, the slow-log
  cursor).

The repository keeps one connection for its life; its caller (the book) serialises the calls
with its own lock, as it did when it held the connection itself.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Callable, Iterable, Sequence

from dashboard.store.txn import Connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS db_statement_texts (
    key        TEXT PRIMARY KEY,
    schema_name TEXT,
    text       TEXT NOT NULL,
    first_seen REAL                 -- NULL: already there when monitoring began
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS db_statement_days (
    day TEXT NOT NULL, key TEXT NOT NULL, calls REAL, total_ms REAL, max_ms REAL,
    rows_examined REAL, rows_sent REAL, PRIMARY KEY (day, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS db_statement_hours (
    hour INTEGER NOT NULL, key TEXT NOT NULL, calls REAL, total_ms REAL, max_ms REAL,
    rows_examined REAL, rows_sent REAL, PRIMARY KEY (hour, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS db_statement_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_UPSERT = """INSERT INTO {t} VALUES (?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET
 calls = calls + excluded.calls, total_ms = total_ms + excluded.total_ms,
 max_ms = max(max_ms, excluded.max_ms), rows_examined = rows_examined + excluded.rows_examined,
 rows_sent = rows_sent + excluded.rows_sent"""

Totals = tuple[float, float, float, float, float]     # calls, total_ms, max_ms, rows ex., rows sent
Text = tuple[str, "str | None", str, "float | None"]   # key, schema, text, first seen


class StatementsRepo:
    """``connect``: the store's ``connect``; None keeps the tables in memory (a book without a
    store: the collector before the runtime hands it one, and tests)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection] | None = None) -> None:
        self._db = connect() if connect is not None else sqlite3.connect(
            ":memory:", check_same_thread=False, isolation_level=None)
        self._db.executescript(SCHEMA)

    def keys(self) -> set[str]:
        """Every statement whose text is kept."""
        return {k for (k,) in self._db.execute("SELECT key FROM db_statement_texts")}

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM db_statement_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO db_statement_meta VALUES (?, ?)", (key, value))

    def add(self, day: str, hour: int, texts: Sequence[Text],
            totals: Iterable[tuple[str, float, float, float, float, float]]) -> None:
        """New texts (a known key is left as it is) and one interval's ``(key, *Totals)`` added
        to the day's and the hour's totals, in one transaction."""
        rows = list(totals)
        self._db.execute("BEGIN")
        try:
            if texts:
                self._db.executemany("INSERT OR IGNORE INTO db_statement_texts VALUES (?,?,?,?)", texts)
            self._db.executemany(_UPSERT.format(t="db_statement_days"), [(day, *r) for r in rows])
            self._db.executemany(_UPSERT.format(t="db_statement_hours"), [(hour, *r) for r in rows])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def prune(self, hours_before: float, days_before: str, texts_seen_before: float,
              texts_since: float) -> bool:
        """Drop hour totals before ``hours_before``, day totals before the day ``days_before``,
        and texts first seen before ``texts_seen_before`` (texts there since monitoring began
        count from ``texts_since``) that no kept day calls. True when a text was dropped."""
        self._db.execute("DELETE FROM db_statement_hours WHERE hour < ?", (hours_before,))
        self._db.execute("DELETE FROM db_statement_days WHERE day < ?", (days_before,))
        before = self._db.total_changes
        self._db.execute(
            "DELETE FROM db_statement_texts WHERE COALESCE(first_seen, ?) < ? AND key NOT IN"
            " (SELECT key FROM db_statement_days WHERE day >= ?)",
            (texts_since, texts_seen_before, days_before))
        return self._db.total_changes != before

    def day(self, day: str) -> dict[str, Totals]:
        """Each statement called on ``day``: its totals."""
        return {k: tuple(r) for k, *r in self._db.execute(
            "SELECT key, calls, total_ms, max_ms, rows_examined, rows_sent"
            " FROM db_statement_days WHERE day = ? AND calls > 0", (day,))}

    def average_ms(self, since: float, until: float, min_calls: float) -> dict[str, float]:
        """Per statement with at least ``min_calls`` calls in the hours ``[since, until]``: its
        mean time per call."""
        return {k: total / calls for k, calls, total in self._db.execute(
            "SELECT key, SUM(calls), SUM(total_ms) FROM db_statement_hours"
            " WHERE hour >= ? AND hour <= ? GROUP BY key HAVING SUM(calls) >= ?",
            (since, until, min_calls))}

    def texts(self, keys: Sequence[str]) -> dict[str, tuple[str | None, str, float | None]]:
        """Schema, text and first sight of the given statements (the unknown ones left out)."""
        out: dict[str, tuple[str | None, str, float | None]] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            out.update((k, (s, t, f)) for k, s, t, f in self._db.execute(
                "SELECT key, schema_name, text, first_seen FROM db_statement_texts"
                f" WHERE key IN ({','.join('?' * len(part))})", part))
        return out

    @staticmethod
    def heaviest_of_day(db: Connection, day: str, limit: int) -> dict[str, Any] | None:
        """The day's sums (``total_ms``, ``calls``) and its ``limit`` statements of most total
        time, each ``(key, *Totals, schema, text)``, read on ``db`` (the reports' connection);
        None when no statement was ever recorded (the tables are not created here: a store
        without a MySQL collector has none)."""
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                      " AND name = 'db_statement_days'").fetchone() is None:
            return None
        total_ms, calls = db.execute("SELECT COALESCE(SUM(total_ms), 0), COALESCE(SUM(calls), 0)"
                                     " FROM db_statement_days WHERE day = ?", (day,)).fetchone()
        rows = db.execute(
            "SELECT d.key, d.calls, d.total_ms, d.max_ms, d.rows_examined, d.rows_sent,"
            " t.schema_name, t.text FROM db_statement_days d LEFT JOIN db_statement_texts t"
            " ON t.key = d.key WHERE d.day = ? AND d.calls > 0 ORDER BY d.total_ms DESC LIMIT ?",
            (day, limit)).fetchall()
        return {"total_ms": total_ms, "calls": calls, "rows": [tuple(r) for r in rows]}
