"""What the live page draws: panels grouped by area, each naming the metrics it plots.

The page builds one Plotly chart per panel from this table; a labelled metric
(``host.disk_percent{mount}``) gets one trace per label set as series appear. Horizontal
reference lines are of two kinds: goals declared here (``targets``: the cache's 80 %, the
availability target), and the warning/critical levels of the panel's alert rule, taken from the
effective rules (defaults merged with ``[rules.NAME]``) by ``as_json(rules)``, so the page draws
the level the alert fires at, never a copy of it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class Line:
    value: float
    label: str
    severity: str = "warning"      # warning | critical | target


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    metrics: Sequence[str]
    unit: str
    area: str
    targets: Sequence[Line] = ()    # goals, not rule levels
    y_max: float | None = None      # e.g. 100 for percentages
    rule: str | None = None         # the alert rule whose breaches shade and levels are drawn
    names: dict[str, str] = field(default_factory=dict)   # metric -> legend name
    levels: bool = True             # draw the rule's levels (False: drawn another way, or at 0)
    match: dict[str, str] = field(default_factory=dict)   # only series with these labels
    empty: str = "no data yet"      # what the page says while the panel has no series


HOST_PANELS: tuple[Panel, ...] = (
    Panel("host-cpu", "CPU busy", ["host.cpu_percent"], "%", "host",
          (), 100, "host_cpu",
          {"host.cpu_percent": "CPU"}),
    Panel("host-load", "Load per core (1 min)", ["host.load_per_core"], "", "host",
          (), None, "host_load",
          {"host.load_per_core": "load/core"}),
    Panel("host-mem", "Memory and swap in use", ["host.mem_percent", "host.swap_percent"], "%",
          "host", (), 100,
          "host_memory", {"host.mem_percent": "memory", "host.swap_percent": "swap"}),
    Panel("host-disk", "Disk space used", ["host.disk_percent"], "%", "host",
          (), 100, "host_disk"),
    Panel("host-net", "Network", ["host.net_rx_bps", "host.net_tx_bps"], "B/s", "host",
          names={"host.net_rx_bps": "received", "host.net_tx_bps": "sent"}),
    Panel("host-io", "Disk I/O", ["host.disk_read_bps", "host.disk_write_bps"], "B/s", "host",
          names={"host.disk_read_bps": "read", "host.disk_write_bps": "written"}),
)

DB_PANELS: tuple[Panel, ...] = (
    Panel("db-pool", "Connection pool in use", ["db.pool_utilization"], "%", "db",
          (), 100, "db_pool_utilization", {"db.pool_utilization": "pool"}),
    Panel("db-conn-hour", "New connections per hour, against the limit",
          ["db.connections_per_hour", "db.connections_per_hour_limit"], "/h", "db",
          rule="db_connections_per_hour",
          names={"db.connections_per_hour": "connections/h", "db.connections_per_hour_limit": "limit"},
          levels=False),    # the limit is a trace of its own
    Panel("db-slow", "Slow queries per minute", ["db.slow_queries_per_min", "db.long_running"],
          "/min", "db", rule="db_slow_queries",
          names={"db.slow_queries_per_min": "slow/min", "db.long_running": "running ≥ slow now"},
          levels=False),    # any slow statement: a level on the axis says nothing
    Panel("db-avg", "Average query time", ["db.avg_query_ms"], "ms", "db",
          (), None, "db_avg_query_time", {"db.avg_query_ms": "avg"}),
    Panel("db-threads", "Connections and running statements",
          ["db.threads_connected", "db.threads_running", "db.pool_capacity"], "", "db",
          names={"db.threads_connected": "connected", "db.threads_running": "running",
                 "db.pool_capacity": "capacity"}),
    Panel("db-load", "Queries per second", ["db.queries_per_s"], "/s", "db",
          names={"db.queries_per_s": "queries/s"}),
    Panel("db-refused", "Refused and aborted connections",
          ["db.refused_connections", "db.aborted_connects_per_min"], "", "db",
          rule="db_refused_connections",
          names={"db.refused_connections": "refused", "db.aborted_connects_per_min": "aborted/min"},
          levels=False),    # any refused connection
    # Issue 17: InnoDB as every database monitor shows it; events are counts of the last minute.
    Panel("db-innodb-hit", "InnoDB buffer pool hit rate (over the last minute)",
          ["db.innodb_buffer_pool_hit_rate"], "%", "db", y_max=100,
          names={"db.innodb_buffer_pool_hit_rate": "hit rate"}),
    Panel("db-innodb-pages", "InnoDB buffer pool pages free and dirty",
          ["db.innodb_pages_free", "db.innodb_pages_dirty"], "", "db",
          names={"db.innodb_pages_free": "free", "db.innodb_pages_dirty": "dirty"}),
    Panel("db-innodb-locks", "Row lock waits and deadlocks in the last minute",
          ["db.innodb_row_lock_waits_per_min", "db.deadlocks_per_min"], "/min", "db",
          names={"db.innodb_row_lock_waits_per_min": "lock waits",
                 "db.deadlocks_per_min": "deadlocks"}),
    Panel("db-innodb-lock-time", "Time spent waiting for row locks in the last minute",
          ["db.innodb_row_lock_time_ms_per_min"], "ms", "db",
          names={"db.innodb_row_lock_time_ms_per_min": "lock wait"}),
    Panel("db-innodb-history", "InnoDB history list length", ["db.innodb_history_list_length"],
          "", "db", names={"db.innodb_history_list_length": "history list"}),
)

# Issue 4: the cache, the job queues and the application's own signals. Lines are the docs'
# targets and docs/thresholds.md rows 6-14 (the alert rules' defaults).
CACHE_PANELS: tuple[Panel, ...] = (
    Panel("cache-hit", "Cache hit rate (over the last minute)", ["cache.hit_rate"], "%", "cache",
          [Line(80, "goal 80 %", "target")], 100, "cache_hit_rate",
          {"cache.hit_rate": "hit rate"}),
    Panel("cache-traffic", "Cache hits, misses and evictions",
          ["cache.hits_per_s", "cache.misses_per_s", "cache.evicted_per_s"], "/s", "cache",
          names={"cache.hits_per_s": "hits/s", "cache.misses_per_s": "misses/s",
                 "cache.evicted_per_s": "evicted/s"}),
    Panel("cache-memory", "Cache memory used (of maxmemory)", ["cache.memory_percent"], "%",
          "cache", y_max=100, names={"cache.memory_percent": "memory"}),
    Panel("cache-load", "Cache commands and clients", ["cache.ops_per_s", "cache.clients"], "",
          "cache", names={"cache.ops_per_s": "commands/s", "cache.clients": "clients"}),
)

QUEUE_PANELS: tuple[Panel, ...] = (
    Panel("queue-pending", "Jobs pending", ["queue.pending"], "", "queue",
          (), None, "queue_pending"),
    Panel("queue-failed", "Failed jobs, new in the last minute", ["queue.failed_new"], "", "queue",
          (), None, "queue_failed"),
    Panel("queue-age", "Oldest pending job", ["queue.oldest_pending_age_s"], "s", "queue",
          (), None, "queue_oldest_age"),
    Panel("queue-drain", "Time to drain the queue", ["queue.drain_eta_s"], "s", "queue"),
    Panel("queue-flow", "Jobs taken minus jobs added, per second", ["queue.net_dequeue_per_s"],
          "/s", "queue"),
)

APP_PANELS: tuple[Panel, ...] = (
    Panel("app-response", "Response time", ["app.response_ms", "app.response_ms_p95"], "ms", "app",
          (), None, "app_response_time", {"app.response_ms": "avg", "app.response_ms_p95": "p95"}),
    Panel("app-errors", "Error rate", ["app.error_rate"], "%", "app",
          (), None, "app_error_rate",
          {"app.error_rate": "errors"}),
    Panel("app-checkout", "Checkout success rate", ["app.checkout_success_rate"], "%", "app",
          [Line(99, "goal 99 %", "target")], 100, "app_checkout_success",
          {"app.checkout_success_rate": "checkout success"}),
    Panel("app-availability", "Probes up today", ["app.availability_percent"], "%", "app",
          [Line(99.9, "target 99.9 %", "target")], 100, "app_availability"),
    Panel("app-workers", "PHP-FPM workers busy (of pm.max_children)", ["app.worker_utilization"],
          "%", "app", (), 100, "app_worker_utilization", {"app.worker_utilization": "busy"}),
    Panel("app-statsd", "StatsD packets received and malformed",
          ["statsd.packets_per_s", "statsd.malformed_per_s"], "/s", "app",
          names={"statsd.packets_per_s": "packets/s", "statsd.malformed_per_s": "malformed/s"}),
)

AREAS: dict[str, str] = {"host": "Host", "db": "Database", "cache": "Cache", "queue": "Queues",
                         "app": "Application"}

PANELS: list[Panel] = [*HOST_PANELS, *DB_PANELS, *CACHE_PANELS, *QUEUE_PANELS, *APP_PANELS]


def replica_panels(servers: Sequence[Any]) -> list[Panel]:
    """Issue 17: a replication panel per monitored server (``MySQLSettings``), its lag against
    the db_replica_lag levels and its two threads (1 = running); one unlabelled panel for a
    single ``[mysql]`` without a name."""
    out = []
    for s in servers:
        name = s.name
        out.append(Panel(f"db-replica-{name}" if name else "db-replica",
                         f"Replication: {name}" if name else "Replication",
                         ["db.replica_lag_s", "db.replica_io_running", "db.replica_sql_running"],
                         "s", "db", rule="db_replica_lag",
                         names={"db.replica_lag_s": "lag", "db.replica_io_running": "IO thread",
                                "db.replica_sql_running": "SQL thread"},
                         match={"server": name} if name else {},
                         # A server that replicates from nothing never has these figures.
                         empty="no replication figures: not a replica (or not yet read)"))
    return out


def rule_panels() -> dict[str, str]:
    """Rule name -> the id of the panel that draws it (links in notifications)."""
    return {p.rule: p.id for p in PANELS if p.rule}


def level_label(severity: str, value: float, unit: str) -> str:
    """``warning 80 %``, ``critical 1 s``, ``warning 10 min``: as an operator says the level."""
    if unit == "ms" and value >= 1000:
        value, unit = value / 1000, "s"
    if unit == "s" and value >= 60 and value % 60 == 0:
        value, unit = value / 60, "min"
    return f"{severity} {value:g}" + (f" {unit}" if unit and unit != "jobs" else "")


def level_lines(panel: Panel, rules: Mapping[str, Any]) -> list[Line]:
    """The warning and critical levels of the panel's effective rule (none when disabled)."""
    rule = rules.get(panel.rule) if panel.rule and panel.levels else None
    if rule is None or not rule.enabled:
        return []
    goals = {t.value for t in panel.targets}
    return [Line(level, level_label(sev, level, rule.unit), sev)
            for sev, level in (("warning", rule.warning), ("critical", rule.critical))
            if level is not None and level not in goals]


def as_json(rules: Mapping[str, Any], panels: Sequence[Panel] | None = None) -> list[dict]:
    """The page's panel table; ``rules``: the effective alert rules (``Runtime.rules``)."""
    out = []
    for p in PANELS if panels is None else panels:
        d = asdict(p)
        d["lines"] = [asdict(line) for line in (*p.targets, *level_lines(p, rules))]
        del d["targets"], d["levels"]
        out.append(d)
    return out
