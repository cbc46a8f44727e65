"""InnoDB as every database monitor shows it (issue 17), from the status read each second.

* ``db.innodb_buffer_pool_hit_rate``: reads served from memory over the last 60 s,
  ``1 - Innodb_buffer_pool_reads / Innodb_buffer_pool_read_requests`` of the window's increases
  (a since-boot ratio would hide today's misses under months of hits).
* pages free and dirty, the history list length: levels, as the server reports them.
* row lock waits, lock time and deadlocks: events that can be rarer than one a second, so each
  is the count over the trailing 60 s (``..._per_min``), never a 1 s extrapolation.

MariaDB reports all of it in ``SHOW GLOBAL STATUS``. MySQL has no ``Innodb_deadlocks`` or
``Innodb_history_list_length``; there they come from ``information_schema.INNODB_METRICS``
(``lock_deadlocks``, ``trx_rseg_history_len``, both enabled by default), read only when the
status lacks them.
"""
from __future__ import annotations

from typing import Sequence

from dashboard.collectors.rates import TrailingCounts, WindowedCounters
from dashboard.model import MetricSpec

METRICS: Sequence[MetricSpec] = (
    MetricSpec("db.innodb_buffer_pool_hit_rate", "%",
               "Page reads served from the InnoDB buffer pool over the last 60 s"),
    MetricSpec("db.innodb_pages_free", "count", "Free pages in the InnoDB buffer pool"),
    MetricSpec("db.innodb_pages_dirty", "count", "Changed pages not yet written to disk"),
    MetricSpec("db.innodb_row_lock_waits_per_min", "/min",
               "Times a statement waited for a row lock, over the last 60 s"),
    MetricSpec("db.innodb_row_lock_time_ms_per_min", "ms",
               "Time spent waiting for row locks over the last 60 s"),
    MetricSpec("db.deadlocks_per_min", "/min", "InnoDB deadlocks over the last 60 s"),
    MetricSpec("db.innodb_history_list_length", "count",
               "Undo history not yet purged (grows behind long-open transactions)"),
)

STATUS_VARS = ("Innodb_buffer_pool_read_requests", "Innodb_buffer_pool_reads",
               "Innodb_buffer_pool_pages_free", "Innodb_buffer_pool_pages_dirty",
               "Innodb_row_lock_waits", "Innodb_row_lock_time", "Innodb_deadlocks",
               "Innodb_history_list_length")
# MySQL's names for the two figures its status lacks (INNODB_METRICS, read with PROCESS).
MYSQL_METRICS = {"lock_deadlocks": "Innodb_deadlocks",
                 "trx_rseg_history_len": "Innodb_history_list_length"}
MYSQL_METRICS_SQL = ("SELECT NAME, COUNT FROM information_schema.INNODB_METRICS WHERE NAME IN "
                     f"({', '.join(repr(n) for n in MYSQL_METRICS)})")
HIT_WINDOW_S = 60.0
RECOMMENDED_SHARE = (70.0, 80.0)      # docs/thresholds.md row 17: buffer pool of a dedicated host


def missing_from(status: dict[str, float]) -> bool:
    """True when the status lacks what MySQL keeps in INNODB_METRICS."""
    return any(name not in status for name in MYSQL_METRICS.values())


def from_metrics(rows: Sequence[tuple]) -> dict[str, float]:
    """INNODB_METRICS rows ``(NAME, COUNT)`` under the status names MariaDB uses."""
    return {MYSQL_METRICS[str(n)]: float(c) for n, c in rows if str(n) in MYSQL_METRICS}


class InnoDBFigures:
    """Status counters of one server -> the InnoDB figures of one sample."""

    def __init__(self) -> None:
        self._pool = WindowedCounters(HIT_WINDOW_S)
        self._per_min = TrailingCounts(60.0)

    def values(self, status: dict[str, float], now: float) -> dict[str, float | None]:
        out: dict[str, float | None] = {
            "db.innodb_pages_free": status.get("Innodb_buffer_pool_pages_free"),
            "db.innodb_pages_dirty": status.get("Innodb_buffer_pool_pages_dirty"),
            "db.innodb_history_list_length": status.get("Innodb_history_list_length"),
        }
        for name, var in (("db.innodb_row_lock_waits_per_min", "Innodb_row_lock_waits"),
                          ("db.innodb_row_lock_time_ms_per_min", "Innodb_row_lock_time"),
                          ("db.deadlocks_per_min", "Innodb_deadlocks")):
            if var in status:
                out[name] = self._per_min.count(var, status[var], now)
        requests = status.get("Innodb_buffer_pool_read_requests")
        reads = status.get("Innodb_buffer_pool_reads")
        if requests is not None and reads is not None:
            inc = self._pool.observe(now, requests, reads)
            if inc is not None and inc[0] > 0:
                out["db.innodb_buffer_pool_hit_rate"] = 100.0 * max(0.0, 1 - inc[1] / inc[0])
        return out


def buffer_pool_advice(pool_bytes: float, host_bytes: float | None, whose: str) -> tuple[str, bool]:
    """The platform docs' 70-80 % of RAM, said against ``whose`` memory when it is known; and
    whether the size follows it (False also when the memory is unknown: the page says so)."""
    size = f"innodb_buffer_pool_size is {pool_bytes / 2**20:.0f} MiB"
    if not host_bytes:
        return (f"{size}; the server does not report its host's memory: the platform docs "
                "recommend 70-80 % of the RAM of a dedicated database host", False)
    share = 100.0 * pool_bytes / host_bytes
    size += f", {share:.0f} % of {whose} {host_bytes / 2**30:.1f} GiB"
    lo, hi = RECOMMENDED_SHARE
    if lo <= share <= hi:
        return f"{size} (advice: 70-80 %)", True
    return f"advice: {size}; the platform docs recommend 70-80 % on a dedicated database host", False
