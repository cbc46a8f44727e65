"""Probes up / probes run per local day and probe (``probe_availability``), for the probes'
availability today (``dashboard/collectors/probes.py``), so a restart does not reset the day.

One connection for the repository's life, opened on the store's file in the data directory
(the probe collector is built from the settings, before the store is handed around).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from dashboard.store.history import connect, file_in

SCHEMA = """CREATE TABLE IF NOT EXISTS probe_availability (
    day TEXT NOT NULL, probe TEXT NOT NULL, ok INTEGER NOT NULL, total INTEGER NOT NULL,
    PRIMARY KEY (day, probe))"""


class ProbeDaysRepo:
    def __init__(self, data_dir: Path | str) -> None:
        path = file_in(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(path)
        self._conn.execute(SCHEMA)

    def counts(self, day: str, probe: str) -> tuple[int, int]:
        """(up, run) of ``probe`` on ``day`` (``YYYY-MM-DD``); (0, 0) when none was kept."""
        row = self._conn.execute("SELECT ok, total FROM probe_availability WHERE day=? AND probe=?",
                                 (day, probe)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def save(self, counts: Iterable[tuple[str, str, int, int]]) -> None:
        """Each ``(day, probe, up, run)`` replaces what was kept, all in one transaction."""
        c = self._conn
        c.execute("BEGIN")                       # one transaction for all probes (autocommit conn)
        try:
            c.executemany(
                "INSERT INTO probe_availability(day, probe, ok, total) VALUES (?,?,?,?) "
                "ON CONFLICT(day, probe) DO UPDATE SET ok=excluded.ok, total=excluded.total", counts)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()
