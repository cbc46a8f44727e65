"""Probes up / probes run per local day and probe (``probe_availability``), for the probes'
availability today (``dashboard/collectors/probes.py``), so a restart does not reset the day.

One connection for the repository's life, of its own (the probe collector is built from the
settings, before the store is handed around): to the store's file in the data directory, or to
``store_url``'s PostgreSQL. The same SQL on both (``txn.py``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from dashboard.store.migrations import ensure
from dashboard.store.pg import ConnParams, PgConnection, PgUnavailable
from dashboard.store.sqlite import connect, file_in
from dashboard.store.txn import Connection, immediate

SCHEMA = """CREATE TABLE IF NOT EXISTS probe_availability (
    day TEXT NOT NULL, probe TEXT NOT NULL, ok INTEGER NOT NULL, total INTEGER NOT NULL,
    PRIMARY KEY (day, probe))"""
PG_MIGRATIONS = ["""CREATE TABLE probe_availability (
    day TEXT NOT NULL, probe TEXT NOT NULL, ok BIGINT NOT NULL, total BIGINT NOT NULL,
    PRIMARY KEY (day, probe))"""]


class ProbeDaysRepo:
    """A PostgreSQL that does not answer when the collector is made (or later) fails the calls
    (``sqlite3.Error``, as a full disk does), not the making: the caller keeps its counts and
    tries again; the table is made at the first call that reaches the server."""

    def __init__(self, data_dir: Path | str, store_url: str | None = None) -> None:
        self._conn: Connection
        self._ready = False
        if store_url:
            self._conn = PgConnection(ConnParams.from_url(store_url), lazy=True)
        else:
            path = file_in(data_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect(path)
        self._ensure()

    def _ensure(self) -> None:
        if not self._ready:
            try:
                ensure(self._conn, SCHEMA, "probe_days", PG_MIGRATIONS)
            except PgUnavailable:
                return              # asked again at the next call
            self._ready = True

    def counts(self, day: str, probe: str) -> tuple[int, int]:
        """(up, run) of ``probe`` on ``day`` (``YYYY-MM-DD``); (0, 0) when none was kept."""
        self._ensure()
        row = self._conn.execute("SELECT ok, total FROM probe_availability WHERE day=? AND probe=?",
                                 (day, probe)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def save(self, counts: Iterable[tuple[str, str, int, int]]) -> None:
        """Each ``(day, probe, up, run)`` replaces what was kept, all in one transaction."""
        self._ensure()
        with immediate(self._conn):           # one transaction for all probes (autocommit conn)
            self._conn.executemany(
                "INSERT INTO probe_availability(day, probe, ok, total) VALUES (?,?,?,?) "
                "ON CONFLICT(day, probe) DO UPDATE SET ok=excluded.ok, total=excluded.total", counts)

    def close(self) -> None:
        self._conn.close()
