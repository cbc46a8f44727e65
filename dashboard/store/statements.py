"""The top-statements book's tables (``dashboard/collectors/mysql_statements.py``).

* ``db_statement_texts``: each statement's text and when it was first seen (``NULL`` = already
  there when monitoring began);
* ``db_statement_days`` and ``db_statement_hours``: per local day and per hour, what each
  statement did (calls, time, max, rows), summed over the increments the book is given;
* ``db_statement_meta``: the book's small state (when texts began to be kept, the slow-log
  cursor).

The repository keeps one connection for its life; its caller (the book) serialises the calls
with its own lock, as it did when it held the connection itself. The same SQL on SQLite and
PostgreSQL (``txn.py``); only the schema is written twice (``PG_MIGRATIONS``).
"""
from __future__ import annotations

import sqlite3
from typing import Any, Callable, Iterable, Sequence

from dashboard.store.migrations import ensure
from dashboard.store.txn import Connection, has_table, immediate

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
PG_MIGRATIONS = ["""
CREATE TABLE db_statement_texts (
    key        TEXT PRIMARY KEY,
    schema_name TEXT,
    text       TEXT NOT NULL,
    first_seen DOUBLE PRECISION
);
CREATE TABLE db_statement_days (
    day TEXT NOT NULL, key TEXT NOT NULL, calls DOUBLE PRECISION, total_ms DOUBLE PRECISION,
    max_ms DOUBLE PRECISION, rows_examined DOUBLE PRECISION, rows_sent DOUBLE PRECISION,
    PRIMARY KEY (day, key));
CREATE TABLE db_statement_hours (
    hour BIGINT NOT NULL, key TEXT NOT NULL, calls DOUBLE PRECISION, total_ms DOUBLE PRECISION,
    max_ms DOUBLE PRECISION, rows_examined DOUBLE PRECISION, rows_sent DOUBLE PRECISION,
    PRIMARY KEY (hour, key));
CREATE TABLE db_statement_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""]
# The stored row is named by its table: a bare column would be ambiguous beside ``excluded``
# on PostgreSQL. The larger maximum by CASE: SQLite has no GREATEST, PostgreSQL no max(a, b).
_UPSERT = """INSERT INTO {t} VALUES (?,?,?,?,?,?,?) ON CONFLICT ({k}, key) DO UPDATE SET
 calls = {t}.calls + excluded.calls, total_ms = {t}.total_ms + excluded.total_ms,
 max_ms = CASE WHEN excluded.max_ms > {t}.max_ms THEN excluded.max_ms ELSE {t}.max_ms END,
 rows_examined = {t}.rows_examined + excluded.rows_examined,
 rows_sent = {t}.rows_sent + excluded.rows_sent"""

Totals = tuple[float, float, float, float, float]     # calls, total_ms, max_ms, rows ex., rows sent
Text = tuple[str, "str | None", str, "float | None"]   # key, schema, text, first seen


class StatementsRepo:
    """``connect``: the store's ``connect``; None keeps the tables in memory (a book without a
    store: the collector before the runtime hands it one, and tests)."""

    def __init__(self, connect: Callable[[], Connection] | None = None) -> None:
        self._db: Connection = connect() if connect is not None else sqlite3.connect(
            ":memory:", check_same_thread=False, isolation_level=None)
        ensure(self._db, SCHEMA, "statements", PG_MIGRATIONS)

    def keys(self) -> set[str]:
        """Every statement whose text is kept."""
        return {k for (k,) in self._db.execute("SELECT key FROM db_statement_texts")}

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM db_statement_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO db_statement_meta VALUES (?, ?) ON CONFLICT (key)"
                         " DO UPDATE SET value = excluded.value", (key, value))

    def add(self, day: str, hour: int, texts: Sequence[Text],
            totals: Iterable[tuple[str, float, float, float, float, float]]) -> None:
        """New texts (a known key is left as it is) and one interval's ``(key, *Totals)`` added
        to the day's and the hour's totals, in one transaction."""
        rows = list(totals)
        with immediate(self._db):
            if texts:
                self._db.executemany("INSERT INTO db_statement_texts VALUES (?,?,?,?)"
                                     " ON CONFLICT DO NOTHING", texts)
            self._db.executemany(_UPSERT.format(t="db_statement_days", k="day"),
                                 [(day, *r) for r in rows])
            self._db.executemany(_UPSERT.format(t="db_statement_hours", k="hour"),
                                 [(hour, *r) for r in rows])

    def prune(self, hours_before: float, days_before: str, texts_seen_before: float,
              texts_since: float) -> bool:
        """Drop hour totals before ``hours_before``, day totals before the day ``days_before``,
        and texts first seen before ``texts_seen_before`` (texts there since monitoring began
        count from ``texts_since``) that no kept day calls. True when a text was dropped."""
        self._db.execute("DELETE FROM db_statement_hours WHERE hour < ?", (hours_before,))
        self._db.execute("DELETE FROM db_statement_days WHERE day < ?", (days_before,))
        dropped = self._db.execute(
            "DELETE FROM db_statement_texts WHERE COALESCE(first_seen, ?) < ? AND key NOT IN"
            " (SELECT key FROM db_statement_days WHERE day >= ?)",
            (texts_since, texts_seen_before, days_before)).rowcount
        return dropped > 0

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
        if not has_table(db, "db_statement_days"):
            return None
        total_ms, calls = db.execute("SELECT COALESCE(SUM(total_ms), 0), COALESCE(SUM(calls), 0)"
                                     " FROM db_statement_days WHERE day = ?", (day,)).fetchone()
        rows = db.execute(
            "SELECT d.key, d.calls, d.total_ms, d.max_ms, d.rows_examined, d.rows_sent,"
            " t.schema_name, t.text FROM db_statement_days d LEFT JOIN db_statement_texts t"
            " ON t.key = d.key WHERE d.day = ? AND d.calls > 0 ORDER BY d.total_ms DESC LIMIT ?",
            (day, limit)).fetchall()
        return {"total_ms": total_ms, "calls": calls, "rows": [tuple(r) for r in rows]}
