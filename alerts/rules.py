"""Alert rules: the thresholds of ``docs/thresholds.md`` under the contract's rule names.

Each rule judges one metric, one alert per label set (per queue, mount, probe...). A rule has a
warning and/or a critical level, a direction (``above``: bad when the value is higher), a hold
``for_s`` (pending before firing), a ``clear`` level for hysteresis (a firing alert resolves only
once the value is back past ``clear``, so a value hovering on the line does not flap), a
``keep_firing_for_s`` (the value must stay clear that long before "resolved" goes out) and repeat
intervals while firing and unacknowledged (critical 30 min, warning 4 h).

``build_rules(settings)`` merges the ``[rules.NAME]`` overrides into the defaults and refuses,
with a ``ConfigError`` naming the key, any override that makes no sense (a warning level past the
critical one, a clear level on the wrong side, a channel that does not exist).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from dashboard.config.settings import (
    DOWN_RULE_SOURCES,
    RULE_NAMES,
    SEVERITIES,
    ConfigError,
    Settings,
)

REPEAT_S = {"critical": 30 * 60.0, "warning": 4 * 3600.0}


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    title: str                      # what an operator calls it, used in messages
    unit: str
    direction: str                  # "above" | "below"
    warning: float | None
    critical: float | None
    clear: float | None = None      # None: no hysteresis (resolve as soon as the level is not breached)
    for_s: float = 60.0
    keep_firing_for_s: float = 60.0   # calm that long before "resolved": no flapping
    repeat_s: Mapping[str, float] = field(default_factory=lambda: dict(REPEAT_S))
    labels: tuple[str, ...] = ()    # one alert per value of these labels
    inclusive: bool = False         # ">= level" instead of "> level" (queue pending: ">= 50")
    window_s: float = 0.0           # > 0: judge the mean over this trailing window
    min_window_s: float = 0.0       # ...once the window holds at least this much data
    scale: float = 1.0              # applied to the (windowed) value, e.g. 0/1 -> percent
    enabled: bool = True
    severity_channels: Mapping[str, tuple[str, ...]] | None = None   # routing override
    source_doc: str = ""            # where the default comes from

    @property
    def source(self) -> str:
        """The collector source whose samples carry this rule's metric."""
        return self.metric.split(".", 1)[0]

    def breaches(self, value: float, level: float | None) -> bool:
        if level is None:
            return False
        if self.direction == "above":
            return value >= level if self.inclusive else value > level
        return value <= level if self.inclusive else value < level

    def is_clear_of(self, value: float, level: float) -> bool:
        """Back on the good side of ``level`` (the clear level, not just under the threshold)."""
        return value <= level if self.direction == "above" else value >= level

    @property
    def clear_level(self) -> float:
        """Where a firing alert resolves."""
        if self.clear is not None:
            return self.clear
        return self.warning if self.warning is not None else self.critical  # type: ignore[return-value]

    @property
    def critical_clear_level(self) -> float | None:
        """Where a critical alert falls back to warning: the same hysteresis margin below it."""
        if self.critical is None:
            return None
        if self.warning is None:
            return self.clear_level
        margin = abs(self.warning - self.clear_level)
        if self.direction == "above":
            return max(self.critical - margin, self.warning)
        return min(self.critical + margin, self.warning)


def _rule(name: str, metric: str, title: str, unit: str, direction: str, warning: float | None,
          critical: float | None, clear: float | None, for_s: float, doc: str, **kw: Any) -> Rule:
    return Rule(name=name, metric=metric, title=title, unit=unit, direction=direction,
                warning=warning, critical=critical, clear=clear, for_s=for_s, source_doc=doc, **kw)


def default_rules(settings: Settings) -> dict[str, Rule]:
    """The shipped defaults (docs/thresholds.md row numbers in ``source_doc``)."""
    limit = float(settings.mysql.connections_per_hour_limit if settings.mysql else 500)
    rules = [
        _rule("db_pool_utilization", "db.pool_utilization", "DB connection pool utilisation", "%",
              "above", 80, 95, 75, 60, "THRESHOLDS #1: pool > 80 % warning, > 95 % critical"),
        _rule("db_connections_per_hour", "db.connections_per_hour", "New DB connections per hour",
              "/h", "above", 0.8 * limit, limit, 0.75 * limit, 60,
              "THRESHOLDS #3: > 80 % of the hourly limit, > the limit (default 500/h)"),
        _rule("db_refused_connections", "db.refused_connections", "Refused DB connections", "",
              "above", None, 0, 0, 0, "THRESHOLDS #1: any refused connection is critical",
              keep_firing_for_s=300),
        # The value is the count over the trailing 60 s, so one slow statement holds it at 1 for
        # 60 s: shorter than the 90 s hold, it does not page; a slow statement at least every
        # minute keeps it above 0 past the hold, and does (docs/alerts.md).
        _rule("db_slow_queries", "db.slow_queries_per_min", "Slow queries (>= 1000 ms)", "/min",
              "above", 0, None, 0, 90, "THRESHOLDS #4: a statement running >= 1000 ms, "
              "in consecutive minutes", keep_firing_for_s=300),
        # Issue 17: replicas serving reads. Lag: a replica minutes behind serves stale reads.
        _rule("db_replica_lag", "db.replica_lag_s", "Replica lag", "s", "above", 30, 300, 25, 60,
              "dashboard default (docs/thresholds.md row 20): > 30 s warning, > 5 min critical",
              labels=("server",)),
        _rule("db_replica_broken", "db.replica_running", "Replication stopped", "", "below",
              None, 1, 1, 30, "dashboard default (docs/thresholds.md row 20): an IO or SQL "
              "thread not running for 30 s", labels=("server",)),
        _rule("db_avg_query_time", "db.avg_query_ms", "Average query time", "ms", "above",
              100, 1000, 90, 60, "THRESHOLDS #5: > 100 ms warning, > 1000 ms critical"),
        _rule("cache_hit_rate", "cache.hit_rate", "Cache hit rate", "%", "below", 75, 60, 78, 120,
              "THRESHOLDS #6: < 75 % warning, < 60 % critical (over a window)"),
        _rule("queue_pending", "queue.pending", "Pending jobs", "jobs", "above", 50, 200, 40, 60,
              "THRESHOLDS #7: >= 50 warning, >= 200 critical", labels=("queue",), inclusive=True),
        _rule("queue_failed", "queue.failed_new", "New failed jobs", "jobs", "above", 0, None, 0, 0,
              "THRESHOLDS #8: any new failed job in the window", labels=("queue",),
              keep_firing_for_s=300),
        _rule("queue_oldest_age", "queue.oldest_pending_age_s", "Oldest pending job age", "s",
              "above", 600, 1800, 540, 30,
              "THRESHOLDS #9: > 10 min (two missed 5-min cron runs), > 30 min", labels=("queue",)),
        _rule("app_response_time", "app.response_ms", "Response time", "ms", "above", 500, 1000,
              450, 60, "THRESHOLDS #10: > 500 ms warning, > 1 s critical", labels=("probe",)),
        _rule("app_error_rate", "app.error_rate", "Error rate", "%", "above", 0.1, 1.0, 0.08, 60,
              "THRESHOLDS #11: > 0.1 % warning, > 1 % critical"),
        _rule("app_checkout_success", "app.checkout_success_rate", "Checkout success rate", "%",
              "below", 99, 95, 99.2, 60, "THRESHOLDS #12: < 99 % warning, < 95 % critical"),
        _rule("app_availability", "app.up", "Availability (24 h)", "%", "below", 99.9, 99, 99.9,
              0, "THRESHOLDS #13: daily availability < 99.9 % warning, < 99 % critical",
              labels=("probe",), window_s=86400, min_window_s=3600, scale=100.0),
        _rule("app_worker_utilization", "app.worker_utilization", "PHP-FPM worker utilisation",
              "%", "above", 80, 95, 75, 60, "THRESHOLDS #14: busy / pm.max_children"),
        _rule("host_cpu", "host.cpu_percent", "CPU busy", "%", "above", 80, 95, 75, 300,
              "dashboard default (not in the docs): > 80 % / 95 % sustained 5 min"),
        _rule("host_memory", "host.mem_percent", "Memory in use", "%", "above", 85, 95, 80, 60,
              "dashboard default (not in the docs): > 85 % / 95 %"),
        _rule("host_disk", "host.disk_percent", "Disk space used", "%", "above", 80, 90, 78, 60,
              "dashboard default (not in the docs): > 80 % / 90 %", labels=("mount",)),
        _rule("host_load", "host.load_per_core", "Load per core", "", "above", 1.5, 3.0, 1.3, 300,
              "dashboard default (not in the docs): > 1.5 / 3 per core"),
    ]
    for source in DOWN_RULE_SOURCES:
        # "up" is 1 or 0: any 0 held for 30 s (the docs' health-check cadence) is critical.
        rules.append(_rule(f"{source}_down", f"{source}.up", f"{source} collector cannot reach "
                           "its target", "", "below", None, 1, 1, 30,
                           "collector cannot reach its target, or no sample for 3 intervals",
                           labels=("probe",) if source == "app" else ()))
    # The store itself (dashboard/store/spool.py; judged by the alert service's tick, the only
    # rule not fed by a collector's samples): its writes failing for 30 s is critical, and it
    # resolves at the first write that succeeds again.
    rules.append(_rule("store_down", "store.up", "The store cannot write (history, alert state)",
                       "", "below", None, 1, 1, 30,
                       "dashboard default: a store that cannot write is loud, not silent",
                       keep_firing_for_s=0))
    # A channel that cannot deliver (judged by the alert service's tick from the outbox, like
    # store_down): the seconds since its first failed attempt with no delivery after it. Past
    # 10 minutes it pages, through the other channels only (alerts/service.py routes it), and it
    # resolves at the channel's next delivery.
    rules.append(_rule("notify_channel_failing", "notify.channel_failing_s",
                       "Notification channel failing", "s", "above", None, 600, 0, 0,
                       "dashboard default: a channel failing for 10 min cannot page anyone",
                       labels=("channel",), keep_firing_for_s=0))
    out = {r.name: r for r in rules}
    assert set(RULE_NAMES) <= out.keys()
    return out


def _channels(raw: Any, key: str, channel_names: set[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "expected a table like { critical = [\"pager\"], warning = [\"mail\"] }")
    out = {}
    for sev, names in raw.items():
        if sev not in SEVERITIES:
            raise ConfigError(f"{key}.{sev}", "expected warning or critical")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{key}.{sev}", "expected a list of notify channel names")
        for n in names:
            if n not in channel_names:
                raise ConfigError(f"{key}.{sev}", f"no [[notify]] channel is named {n!r}")
        out[sev] = tuple(names)
    return out


def _check(rule: Rule, pre: str, changed: frozenset[str] | set[str] = frozenset()) -> None:
    """Refuse levels that contradict each other, naming the key that is wrong."""
    w, c, cl = rule.warning, rule.critical, rule.clear
    if w is None and c is None:
        raise ConfigError(f"{pre}warning", "a rule needs a warning or a critical level")
    def worse(a: float, b: float) -> bool:
        return a > b if rule.direction == "above" else a < b

    side = "above" if rule.direction == "above" else "below"
    if w is not None and c is not None and not worse(c, w):
        key = "critical" if "critical" in changed and "warning" not in changed else "warning"
        raise ConfigError(f"{pre}{key}", f"warning {w:g} must be less severe than critical {c:g} "
                          f"(this rule fires when the value is {side} the level)")
    first = w if w is not None else c
    if cl is not None and first is not None and worse(cl, first):
        raise ConfigError(f"{pre}clear", f"{cl:g} is past the level {first:g} it should clear; "
                          f"for a rule that fires {side} a level, clear must be on the good side")
    if rule.window_s and rule.min_window_s > rule.window_s:
        raise ConfigError(f"{pre}for_s", "the window is shorter than the data it needs")


def build_rules(settings: Settings) -> dict[str, Rule]:
    """Defaults merged with ``settings.rules``; raises ``ConfigError`` naming a bad key."""
    rules = default_rules(settings)
    channel_names = {n.name for n in settings.notify}
    for name, body in settings.rules.items():
        if name not in rules:                     # config.py already refuses unknown names
            raise ConfigError(f"rules.{name}", f"unknown rule {name!r}")
        pre = f"rules.{name}."
        changes: dict[str, Any] = {}
        for k in ("warning", "critical", "clear", "for_s", "keep_firing_for_s", "enabled"):
            if k in body:
                changes[k] = body[k]
        if "repeat_s" in body:
            if body["repeat_s"] <= 0:
                raise ConfigError(pre + "repeat_s", "must be more than 0 seconds")
            changes["repeat_s"] = {s: float(body["repeat_s"]) for s in SEVERITIES}
        if "severity_channels" in body:
            changes["severity_channels"] = _channels(body["severity_channels"],
                                                     pre + "severity_channels", channel_names)
        rule = dataclasses.replace(rules[name], **changes)
        # A moved threshold with the default clear level could leave clear on the wrong side:
        # then the clear level follows the threshold (no hysteresis) instead of refusing.
        if "clear" not in body and rule.clear is not None:
            first = rule.warning if rule.warning is not None else rule.critical
            if first is not None and not rule.is_clear_of(rule.clear, first):
                rule = dataclasses.replace(rule, clear=first)
        _check(rule, pre, set(body))
        rules[name] = rule
    return rules
