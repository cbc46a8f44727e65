"""The PostgreSQL backend's schema: versioned migrations per area, recorded in ``schema_version``.

Each area of the store (``accounts``, ``alerts``, ``outbox``, ... and the history's) declares its
PostgreSQL schema as a list of steps, ``PG_MIGRATIONS``: step *n* (1-based) takes the area from
version *n - 1* to *n*. Steps are only ever appended; a released step never changes. Areas keep
their own versions (one row each in ``schema_version``) so areas grow independently.

``migrate`` applies the steps a database lacks, each area in one transaction under a lock of its
own (DDL is transactional in PostgreSQL: a process killed half-way leaves the previous version),
so several processes starting together migrate once. A database whose area is at a version past
the code's steps, or that has an area this code does not know, was written by a newer dashboard:
``SchemaTooNew``, one line, and the process does not start (it would misread it).

SQLite keeps its ``CREATE TABLE IF NOT EXISTS`` schemas (``ensure`` runs them), as before.
"""
from __future__ import annotations

import threading
import time
from typing import Mapping, Sequence

from dashboard.store.pg import PgConnection
from dashboard.store.txn import Connection

VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version (area TEXT PRIMARY KEY,"
                 " version INTEGER NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
MIGRATE_LOCK_KEY = 0x64617369    # the migrations' advisory lock ("dasi"): one migrator at a time

_done: set[tuple[str, int, str, str, int]] = set()    # (host, port, db, area, version) applied here
_done_lock = threading.Lock()


class SchemaTooNew(RuntimeError):
    """The store (the SQLite file's history, or a PostgreSQL area) was written by a newer
    dashboard; this one would misread it. Its message is one line; the commands exit 2."""


def _too_new(area: str, version: int, known: int | None) -> SchemaTooNew:
    if known is None:
        return SchemaTooNew(f"store_url: the database has schema area {area!r} (version {version}),"
                            " which this dashboard does not know: it was written by a newer one;"
                            " upgrade this one, or point store_url elsewhere")
    return SchemaTooNew(f"store_url: schema area {area!r} is at version {version}, written by a"
                        f" newer dashboard (this one knows up to {known}): upgrade this one, or"
                        " point store_url elsewhere")


def stored_versions(conn: PgConnection) -> dict[str, int]:
    """Each area's version in the database ({} when none was ever migrated)."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return {}
    return {a: int(v) for a, v in conn.execute("SELECT area, version FROM schema_version")}


def check_not_newer(conn: PgConnection, known: Mapping[str, int]) -> None:
    """``SchemaTooNew`` when an area of the database is past ``known`` (area -> the code's
    latest version) or unknown to it."""
    for area, version in sorted(stored_versions(conn).items()):
        if version > known.get(area, -1):
            raise _too_new(area, version, known.get(area))


def migrate(conn: PgConnection, area: str, steps: Sequence[str]) -> int:
    """Bring ``area`` to ``len(steps)``; the version it was at before."""
    p = conn.params
    key = (p.host, p.port, p.database, area, len(steps))
    with _done_lock:
        if key in _done:
            return len(steps)
    conn.execute("BEGIN")
    try:
        conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK_KEY})")
        conn.executescript(VERSION_TABLE)
        row = conn.execute("SELECT version FROM schema_version WHERE area = ?", (area,)).fetchone()
        before = int(row[0]) if row else 0
        if before > len(steps):
            raise _too_new(area, before, len(steps))
        for step in steps[before:]:
            conn.executescript(step)
        if before < len(steps):
            conn.execute("INSERT INTO schema_version (area, version, applied_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (area) DO UPDATE SET version = excluded.version,"
                         " applied_at = excluded.applied_at", (area, len(steps), time.time()))
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise
    with _done_lock:
        _done.add(key)
    return before


def ensure(conn: Connection, sqlite_schema: str, area: str, pg_steps: Sequence[str]) -> None:
    """An area's tables on ``conn``: SQLite's schema script, or PostgreSQL's migrations."""
    if isinstance(conn, PgConnection):
        migrate(conn, area, pg_steps)
    else:
        conn.executescript(sqlite_schema)
