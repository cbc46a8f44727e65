"""The store: every table the dashboard keeps, behind this package.

No module outside it opens the database file or writes SQL. Each area has its module here:
``history`` (raw ticks, one-minute rollups, the newest tick per series via ``latest``, and the
quantile ``sketch`` of each rollup), and a small repository per area for the rest. A second
backend is a new module per area behind the same interfaces.
"""
from __future__ import annotations

from dashboard.store.history import Store, prune_period_s
from dashboard.store.sqlite import connect

__all__ = ["Store", "connect", "prune_period_s"]
