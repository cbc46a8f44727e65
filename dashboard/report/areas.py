"""What the daily summary reports on: the areas, their metrics, levels, limits and the checklist.

Levels come from the alert rules (``alerts.rules.build_rules``), so a ``[rules.NAME]`` override
moves the report's breach minutes, headroom and verdicts together with the alerts. ``limit`` is
the hard ceiling an area can run out of (100 % of the pool, the hosting's connections per hour,
a full disk), against which headroom and runway are measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from alerts.rules import build_rules
from dashboard.config.settings import Settings


@dataclass(frozen=True)
class Area:
    key: str
    title: str
    metric: str
    unit: str
    rule: str
    group: str                      # db | cache | queue | host | app (the live page's areas)
    limit: str | None = None        # "percent" (100) | "connections_per_hour" | None
    scale: float = 1.0              # availability: 0/1 -> percent
    runway: bool = False            # days until the limit, from the 14-day trend of peaks
    binary: bool = False            # an up/down signal: quantiles say nothing, the mean is all
    optional: bool = False          # left out of a day without data (not every platform has it)


AREAS: tuple[Area, ...] = (
    Area("pool", "Connection pool in use", "db.pool_utilization", "%", "db_pool_utilization",
         "db", "percent", runway=True),
    Area("connections_per_hour", "New DB connections per hour", "db.connections_per_hour", "/h",
         "db_connections_per_hour", "db", "connections_per_hour", runway=True),
    Area("slow_queries", "Slow queries", "db.slow_queries_per_min", "/min", "db_slow_queries", "db"),
    Area("avg_query_time", "Average query time", "db.avg_query_ms", "ms", "db_avg_query_time", "db"),
    # Issue 17: per replica ({server}); the day's p95 and max say how stale its reads got.
    Area("replica_lag", "Replica lag", "db.replica_lag_s", "s", "db_replica_lag", "db",
         optional=True),
    Area("cache_hit_rate", "Cache hit rate", "cache.hit_rate", "%", "cache_hit_rate", "cache"),
    Area("queue_pending", "Queue depth (pending jobs)", "queue.pending", "jobs", "queue_pending",
         "queue"),
    Area("queue_age", "Oldest pending job", "queue.oldest_pending_age_s", "s", "queue_oldest_age",
         "queue"),
    Area("queue_failed", "New failed jobs", "queue.failed_new", "jobs", "queue_failed", "queue"),
    Area("host_cpu", "Host CPU busy", "host.cpu_percent", "%", "host_cpu", "host", "percent"),
    Area("host_memory", "Host memory in use", "host.mem_percent", "%", "host_memory", "host",
         "percent"),
    Area("host_disk", "Host disk space used", "host.disk_percent", "%", "host_disk", "host",
         "percent", runway=True),
    Area("response_time", "Response time", "app.response_ms", "ms", "app_response_time", "app"),
    Area("error_rate", "Error rate", "app.error_rate", "%", "app_error_rate", "app"),
    Area("checkout_success", "Checkout success rate", "app.checkout_success_rate", "%",
         "app_checkout_success", "app"),
    Area("availability", "Availability", "app.up", "%", "app_availability", "app", scale=100.0,
         binary=True),
)
AREA_BY_KEY: Mapping[str, Area] = {a.key: a for a in AREAS}

# Read with the cache area: the day's hit rate is sum(hits) / sum(hits + misses), weighted by
# traffic, not the mean of a windowed percentage.
CACHE_TRAFFIC = ("cache.hits_per_s", "cache.misses_per_s")


@dataclass(frozen=True)
class Check:
    """One line of the docs' routine, answered from one area's figure against a rule level."""
    id: str
    text: str
    area: str
    figure: str                     # "avg" | "peak" | "p95" | "day_rate"
    level: str                      # "warning" | "critical" (of the area's rule)
    source: str


CHECKLIST: tuple[Check, ...] = (
    Check("cache_hit_rate", "Cache hit rate above {level}", "cache_hit_rate", "day_rate",
          "critical", "SCALING_CHECKLIST Daily: verify cache hit rate > 60 %"),
    Check("queue_pending", "Queue pending below {level}", "queue_pending", "peak", "warning",
          "SCALING_CHECKLIST Daily: verify queue pending < 50 jobs"),
    Check("failed_jobs", "No failed jobs", "queue_failed", "peak", "warning",
          "SCALING_CHECKLIST Daily: verify no failed jobs"),
    Check("response_time", "Response time below {level}", "response_time", "avg", "warning",
          "SCALING_CHECKLIST: verify response times < 500 ms"),
    Check("error_rate", "Error rate below {level}", "error_rate", "avg", "warning",
          "SYSTEM_CAPACITY_REPORT: error rate should be < 0.1 %"),
    Check("checkout_success", "Checkout success above {level}", "checkout_success", "avg",
          "warning", "SYSTEM_CAPACITY_REPORT: checkout success should be > 99 %"),
    Check("availability", "Availability at least {level}", "availability", "avg", "warning",
          "SCALING_VISUAL_SUMMARY: uptime 99.9 %+"),
    Check("avg_query_time", "Average query time below {level}", "avg_query_time", "avg",
          "warning", "SCALING_VISUAL_SUMMARY: average query time < 100 ms"),
    Check("pool", "Connection pool at most {level}", "pool", "peak", "warning",
          "SYSTEM_CAPACITY_REPORT: pool should not exceed 80 % of capacity"),
    Check("connections_per_hour", "New connections per hour within the limit of {level}",
          "connections_per_hour", "peak", "critical",
          "SCALING_TO_1000_USERS: the hosting's connections-per-hour limit"),
    Check("slow_queries", "No slow queries", "slow_queries", "peak", "warning",
          "SCALING_VISUAL_SUMMARY: slow query threshold 1000 ms (weekly: review slow queries)"),
    Check("host_cpu", "CPU p95 below {level}", "host_cpu", "p95", "warning",
          "weekly resource check; level is the dashboard's default, not the docs'"),
    Check("host_memory", "Memory at most {level}", "host_memory", "peak", "warning",
          "weekly resource check; level is the dashboard's default, not the docs'"),
    Check("host_disk", "Disk at most {level}", "host_disk", "peak", "warning",
          "level is the dashboard's default, not the docs'"),
)


def rules(settings: Settings) -> dict:
    """The alert rules with the configuration's overrides: the report's levels."""
    return build_rules(settings)


def limit_of(area: Area, settings: Settings) -> float | None:
    if area.limit == "percent":
        return 100.0
    if area.limit == "connections_per_hour":
        return float(settings.mysql.connections_per_hour_limit if settings.mysql else 500)
    return None
