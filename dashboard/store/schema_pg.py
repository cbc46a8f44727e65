"""Every area the PostgreSQL backend keeps, with its migrations (``migrations.py``).

One table, so the store can migrate them all at start-up and tell a database written by a newer
dashboard (an area past its steps, or one it does not know). An area module declares its steps
as ``PG_MIGRATIONS`` and is listed here.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from dashboard.store import (
    accounts,
    alerts,
    fence,
    history_pg,
    link_uses,
    outbox,
    probe_days,
    reports,
    statements,
)

AREAS: Mapping[str, Sequence[str]] = {
    "history": history_pg.PG_MIGRATIONS,
    "accounts": accounts.PG_MIGRATIONS,
    "alerts": alerts.PG_MIGRATIONS,
    "fence": fence.PG_MIGRATIONS,
    "outbox": outbox.PG_MIGRATIONS,
    "link_uses": link_uses.PG_MIGRATIONS,
    "probe_days": probe_days.PG_MIGRATIONS,
    "statements": statements.PG_MIGRATIONS,
    "reports": reports.PG_MIGRATIONS,
}


def known_versions() -> dict[str, int]:
    return {area: len(steps) for area, steps in AREAS.items()}
