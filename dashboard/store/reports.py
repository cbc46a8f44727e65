"""The daily summary's tables, and what it reads of the others (``dashboard/report/``).

* ``report_deliveries``: the morning e-mail of each day, claimed before sending and marked sent
  or failed, so a restart or a second scheduler sends it once;
* ``report_day_series`` and ``report_day_done``: per local day (of a time zone) and series, the
  count, sum, min and max of a day completely rolled up: such a day never changes again, so
  the trend and the runway read 14 small rows instead of 14 days of minutes.

One connection for the repository's life, of its own: the report's reads of the history
(``history``: a ``HistoryReads`` on the same connection) never wait for the collectors' writes
nor hold the store's lock.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Callable, Mapping

from dashboard.store.history_reads import HistoryReads
from dashboard.store.migrations import ensure
from dashboard.store.statements import StatementsRepo
from dashboard.store.txn import Connection, immediate

SCHEMA = """
CREATE TABLE IF NOT EXISTS report_deliveries (
    date TEXT PRIMARY KEY,            -- the local day reported on
    claimed_at REAL NOT NULL,
    sent_at REAL,
    recipients TEXT NOT NULL,
    error TEXT,
    permanent INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS report_day_series (
    tz TEXT NOT NULL, day TEXT NOT NULL, metric TEXT NOT NULL, labels TEXT NOT NULL,
    minutes INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL,
    max REAL NOT NULL,
    PRIMARY KEY (tz, day, metric, labels)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS report_day_done (
    tz TEXT NOT NULL, day TEXT NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (tz, day)
) WITHOUT ROWID;
"""
PG_MIGRATIONS = ["""
CREATE TABLE report_deliveries (
    date TEXT PRIMARY KEY,
    claimed_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    recipients TEXT NOT NULL,
    error TEXT,
    permanent INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE report_day_series (
    tz TEXT NOT NULL, day TEXT NOT NULL, metric TEXT NOT NULL, labels TEXT NOT NULL,
    minutes BIGINT NOT NULL, n BIGINT NOT NULL, sum DOUBLE PRECISION NOT NULL,
    min DOUBLE PRECISION NOT NULL, max DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tz, day, metric, labels)
);
CREATE TABLE report_day_done (
    tz TEXT NOT NULL, day TEXT NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (tz, day)
);
"""]
DELIVERY_COLUMNS = ("date", "claimed_at", "sent_at", "recipients", "error", "permanent")

Totals = tuple[int, int, float, float, float]    # minutes, n, sum, min, max of a series-day


class ReportsRepo:
    """``connect``: the store's ``connect``; ``history_connect``: the store's
    ``history_connect``, for the history's tables when they are not on ``connect``'s database.
    Close it (``close`` or ``with closing(...)``)."""

    def __init__(self, connect: Callable[[], Connection],
                 history_connect: Callable[[], Connection] | None = None) -> None:
        self._conn = connect()
        ensure(self._conn, SCHEMA, "reports", PG_MIGRATIONS)
        self._history_conn: Connection | None = None
        if isinstance(self._conn, sqlite3.Connection):      # one file: one connection for both
            self.history = HistoryReads(self._conn)
        else:
            if history_connect is None:
                raise ValueError("the history's tables are elsewhere: pass history_connect")
            self._history_conn = history_connect()
            self.history = HistoryReads(self._history_conn)

    def close(self) -> None:
        self._conn.close()
        if self._history_conn is not None:
            self._history_conn.close()

    # --- the morning e-mail --------------------------------------------------------------------

    def claim_delivery(self, day: str, now: float, recipients: str,
                       stale_s: float) -> str | None:
        """Take ``day``'s e-mail for sending; None when taken, else why not. A failure that may
        pass, or a claim older than ``stale_s`` without a result (a crashed sender), is taken
        again."""
        conn = self._conn
        with immediate(conn):
            row = conn.execute("SELECT sent_at, error, permanent, claimed_at FROM report_deliveries"
                               " WHERE date = ?", (day,)).fetchone()
            why = None
            if row is None:
                conn.execute("INSERT INTO report_deliveries (date, claimed_at, recipients)"
                             " VALUES (?, ?, ?)", (day, now, recipients))
            else:
                sent_at, error, permanent, claimed_at = row
                if sent_at is not None:
                    why = "already sent"
                elif permanent:
                    why = "refused permanently"
                elif error is None and now - claimed_at <= stale_s:
                    why = "being sent"            # by another process, a moment ago
                else:                             # a failure that may pass, or a dead sender
                    conn.execute("UPDATE report_deliveries SET claimed_at = ? WHERE date = ?",
                                 (now, day))
        return why

    def delivery_failed(self, day: str, error: str, permanent: bool, now: float) -> None:
        self._conn.execute("UPDATE report_deliveries SET error = ?, permanent = ?,"
                           " claimed_at = ? WHERE date = ?", (error, int(permanent), now, day))

    def delivery_sent(self, day: str, at: float) -> None:
        self._conn.execute("UPDATE report_deliveries SET sent_at = ?, error = NULL WHERE date = ?",
                           (at, day))

    def delivery_tried(self, day: str) -> bool:
        """Whether ``day``'s e-mail was ever claimed (sent, failed or being sent)."""
        return self._conn.execute("SELECT 1 FROM report_deliveries WHERE date = ?",
                                  (day,)).fetchone() is not None

    def deliveries(self, limit: int = 30) -> list[dict[str, Any]]:
        """The newest days' deliveries, newest first (``DELIVERY_COLUMNS``)."""
        return [dict(zip(DELIVERY_COLUMNS, r)) for r in self._conn.execute(
            f"SELECT {','.join(DELIVERY_COLUMNS)} FROM report_deliveries"
            " ORDER BY date DESC LIMIT ?", (limit,))]

    # --- days completely rolled up ---------------------------------------------------------------

    def kept_day(self, tz: str, day: str, signature: str) -> dict[tuple[str, str], Totals] | None:
        """The totals kept for ``day`` (``YYYY-MM-DD`` in the zone ``tz``) when they were kept
        for the same metrics (``signature``); else None."""
        done = self._conn.execute("SELECT metrics FROM report_day_done WHERE tz = ? AND day = ?",
                                  (tz, day)).fetchone()
        if done is None or done[0] != signature:
            return None
        return {(m, lab): (minutes, n, total, lo, hi) for m, lab, minutes, n, total, lo, hi in
                self._conn.execute(
            "SELECT metric, labels, minutes, n, sum, min, max FROM report_day_series"
            " WHERE tz = ? AND day = ?", (tz, day))}

    def keep_day(self, tz: str, day: str, signature: str,
                 totals: Mapping[tuple[str, str], Totals]) -> None:
        """Keep ``day``'s totals per (metric, labels) for the metrics of ``signature``,
        replacing what was kept."""
        conn = self._conn
        with immediate(conn):
            conn.execute("DELETE FROM report_day_series WHERE tz = ? AND day = ?", (tz, day))
            conn.executemany("INSERT INTO report_day_series VALUES (?,?,?,?,?,?,?,?,?)",
                             [(tz, day, m, lab, *t) for (m, lab), t in totals.items()])
            conn.execute("INSERT INTO report_day_done VALUES (?, ?, ?) ON CONFLICT (tz, day)"
                         " DO UPDATE SET metrics = excluded.metrics", (tz, day, signature))

    # --- the other areas' figures of a day -----------------------------------------------------

    def heaviest_statements(self, day: str, limit: int) -> dict[str, Any] | None:
        """``StatementsRepo.heaviest_of_day``, read on this repository's connection."""
        return StatementsRepo.heaviest_of_day(self._conn, day, limit)
