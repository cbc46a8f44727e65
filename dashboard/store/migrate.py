"""``python -m dashboard migrate-store --to postgresql://…``: the SQLite data dir's tables copied
into PostgreSQL (issue 16).

Every table of the areas in ``schema_pg.AREAS`` (users, tokens, sessions, alert state, episodes,
events, silences, the outbox, signed-link uses, probe availability, statements, reports) is
copied row by row in batches, each batch one transaction, with ``INSERT ... ON CONFLICT DO
NOTHING``: a run that stops (killed, the server gone) is simply run again and goes on, rows
already copied are left as they are, and a second run copies nothing twice. Progress is one
line per table. Identity columns' sequences are moved past the copied ids, so new rows do not
collide. The history's tables are copied last, by their layout's own copier
(``history_pg.copy_history``: ids and sequence numbers kept, batches of blobs as one statement);
a file still in the version-1 layout is converted first, as the dashboard's first start would.

The source is only read (the dashboard should be stopped meanwhile, or the copy misses what it
writes after; running again picks that up).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

from dashboard.store import convert, history_pg, schema_pg
from dashboard.store.history import Store, open_pg
from dashboard.store.history_pg import HistoryMismatch
from dashboard.store.pg import PgConnection
from dashboard.store.sqlite import connect, file_in
from dashboard.store.txn import has_table, immediate

__all__ = ["HistoryMismatch", "run"]

BATCH = 1000
# The tables of each area, in an order that copies what others refer to first.
TABLES = {
    "accounts": ("auth_users", "auth_tokens", "auth_sessions", "auth_known_addresses"),
    "alerts": ("alert_state", "alert_episodes", "alert_events", "alert_told", "alert_silences"),
    "outbox": ("outbox_messages", "outbox_items", "outbox_channels"),
    "link_uses": ("signed_link_uses",),
    "probe_days": ("probe_availability",),
    "statements": ("db_statement_texts", "db_statement_days", "db_statement_hours",
                   "db_statement_meta"),
    "reports": ("report_deliveries", "report_day_series", "report_day_done"),
}


def _columns(src: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in src.execute(f"PRAGMA table_info({table})")]


def _copy_table(src: sqlite3.Connection, dst: PgConnection, table: str) -> tuple[int, int]:
    """(rows read, rows new in the target)."""
    cols = _columns(src, table)
    names = ", ".join(cols)
    insert = (f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})"
              " ON CONFLICT DO NOTHING")
    read = new = 0
    cur = src.execute(f"SELECT {names} FROM {table}")
    while True:
        rows = cur.fetchmany(BATCH)
        if not rows:
            break
        with immediate(dst):
            new += dst.executemany(insert, rows).rowcount
        read += len(rows)
    seq = dst.execute("SELECT pg_get_serial_sequence(?, 'id')", (table,)).fetchone()[0] \
        if "id" in cols else None
    if seq is not None:             # an identity column: new rows number on past the copied ones
        dst.execute(f"SELECT setval(?, GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1),"
                    f" (SELECT MAX(id) IS NOT NULL FROM {table}))", (seq,))
    return read, new


def run(data_dir: Path | str, store_url: str, say: Callable[[str], None]) -> int:
    """Copy every area's tables of ``data_dir``'s file into ``store_url``'s database; the rows
    new in the target."""
    path = file_in(data_dir)
    if not path.exists():
        raise FileNotFoundError(f"no store file in {data_dir} ({path.name})")
    pool = open_pg(store_url, 2)               # migrated to this dashboard's schema first
    src = connect(path)
    if convert.needed(src):                    # the version-1 history: the new layout first
        src.close()
        say("history: converting the file to the time-series layout first")
        Store(data_dir).close()
        src = connect(path)
    total = 0
    try:
        dst = pool.connect()
        try:
            for area in schema_pg.AREAS:
                for table in TABLES.get(area, ()):     # the history: its converter's job
                    if not has_table(src, table):
                        say(f"{table}: not in the file (this area never ran): skipped")
                        continue
                    read, new = _copy_table(src, dst, table)
                    total += new
                    say(f"{table}: {read} rows, {new} new")
            if has_table(src, "ticks"):
                total += history_pg.copy_history(src, dst, say)
            else:
                say("history: not in the file: skipped")
        finally:
            dst.close()
    finally:
        src.close()
        pool.close()
    return total
