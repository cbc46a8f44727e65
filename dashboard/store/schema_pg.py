"""Every area the PostgreSQL backend keeps, with its migrations (``migrations.py``).

One table, so the store can migrate them all at start-up and tell a database written by a newer
dashboard (an area past its steps, or one it does not know). An area module declares its steps
as ``PG_MIGRATIONS`` and is listed here.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from dashboard.store import history_pg

AREAS: Mapping[str, Sequence[str]] = {
    "history": history_pg.PG_MIGRATIONS,
}


def known_versions() -> dict[str, int]:
    return {area: len(steps) for area, steps in AREAS.items()}
