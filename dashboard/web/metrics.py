"""``GET /metrics``: the latest values in the Prometheus text format, built at scrape time.

Nothing is registered at import time and there is no global registry: each scrape builds a
``CollectorRegistry`` holding one ``StoreCollector`` (client_python's "a collector is anything
with ``collect()``") that reads ``Store.latest()``. So every web instance answers the same from
the shared store, whichever process collected.

* Names: the contract's dotted names with ``_`` and a ``dashboard_`` prefix
  (``host.disk_percent{mount}`` -> ``dashboard_host_disk_percent{mount="/"}``), all gauges (the
  collectors already turned counters into rates), HELP from each collector's ``MetricSpec``.
* A sample older than three of its collector's intervals (plus the 5 s of slack /healthz
  allows before it says "stale") is not current: its values are left out (Prometheus then sees
  the series go stale instead of a frozen line), while
  ``dashboard_sample_age_seconds{source}`` keeps growing and ``dashboard_collector_up{source}``
  is 0, so "the collector stopped" can be alerted on.
* ``dashboard_alert_state{rule, severity, ...labels}`` is 1 for each firing alert, read from the
  alert engine's durable episodes (the same file), when the alerts package is there.

Auth is dashboard.auth's: login or ``Authorization: Bearer <token>``, unless ``metrics_public``.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from flask import Blueprint, Response, current_app

if TYPE_CHECKING:
    # prometheus_client is imported when /metrics is scraped, not in every worker (issue 9).
    from prometheus_client.metrics_core import Metric

from dashboard.collectors.catalog import all_metrics
from dashboard.model import Sample
from dashboard.store import alerts as alert_state
from dashboard.store.fence import for_conn as fence_for

bp = Blueprint("prometheus", __name__)

PREFIX = "dashboard_"
STALE_INTERVALS = 3          # a sample older than this many intervals is not "current"...
STALE_GRACE_S = 5.0          # ...plus the slack /healthz allows (scheduling jitter, agents' clocks)
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")


def prom_name(dotted: str) -> str:
    """``db.pool_utilization`` -> ``dashboard_db_pool_utilization``."""
    return PREFIX + _NOT_NAME.sub("_", dotted)


def label_name(key: str) -> str:
    # Prometheus label names: [a-zA-Z_][a-zA-Z0-9_]*, and "__" is reserved for its own use.
    name = _NOT_NAME.sub("_", key).lstrip("_") or "label"
    return "_" + name if name[0].isdigit() else name


def _labels(labels: Mapping[str, Any], reserved: tuple[str, ...] = ()) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in labels.items():
        name = label_name(str(k))
        if name in reserved:          # an alert label called "rule" must not hide the rule
            name = "label_" + name
        out[name] = str(v)
    return out


class StoreCollector:
    """Turns the store's newest sample of each series into metric families, on ``collect()``."""

    def __init__(self, runtime: Any, clock=time.time) -> None:
        self.runtime = runtime
        self.clock = clock

    # --- inputs -----------------------------------------------------------------------------------

    def intervals(self) -> dict[str, float]:
        """Each configured source's sampling interval (the shortest, if two share a source)."""
        out: dict[str, float] = {}
        for c in getattr(getattr(self.runtime, "runner", None), "collectors", ()):
            out[c.source] = min(out.get(c.source, float("inf")), float(c.interval_s))
        return out

    def max_age(self, source: str, intervals: Mapping[str, float]) -> float:
        interval = intervals.get(source, float(self.runtime.settings.interval_s))
        return STALE_INTERVALS * max(interval, 1.0) + STALE_GRACE_S

    def firing_alerts(self) -> list[dict[str, Any]]:
        with alert_state.reading(self.runtime.store.connect) as repo:
            return repo.firing()

    # --- the families -------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import Metric
        now = self.clock()
        catalog = all_metrics()
        intervals = self.intervals()
        samples = self.runtime.store.latest()

        newest: dict[str, float] = {}            # source -> newest sample time
        said_up: dict[str, tuple[float, float]] = {}   # source -> (ts, <source>.up) unlabelled
        current: dict[tuple[str, tuple], tuple[float, dict[str, str], float]] = {}
        for s in samples:
            newest[s.source] = max(newest.get(s.source, 0.0), s.ts)
            up = s.values.get(f"{s.source}.up")
            if not s.labels and up is not None and s.ts >= said_up.get(s.source, (0.0, 0.0))[0]:
                said_up[s.source] = (s.ts, up)
            if now - s.ts > self.max_age(s.source, intervals):
                continue
            self._add_values(s, current)

        families: dict[str, Metric] = {}
        for (dotted, _), (_, labels, value) in sorted(current.items(), key=lambda kv: kv[0]):
            fam = families.get(dotted)
            if fam is None:
                fam = families[dotted] = Metric(prom_name(dotted), self._help(dotted, catalog), "gauge")
            fam.add_sample(fam.name, labels, value)
        yield from families.values()
        yield from self._health(now, newest, said_up, intervals)
        yield self._alerts()
        yield self._fence()

    @staticmethod
    def _add_values(s: Sample, current: dict) -> None:
        labels = _labels(s.labels)
        key_labels = tuple(sorted(labels.items()))
        for dotted, value in s.values.items():
            key = (dotted, key_labels)
            seen = current.get(key)
            # Two sources writing one series (should not happen): the newer wins, never both.
            if seen is None or s.ts >= seen[0]:
                current[key] = (s.ts, labels, float(value))

    @staticmethod
    def _help(dotted: str, catalog: Mapping) -> str:
        spec = catalog.get(dotted)
        if spec is None:
            return f"{dotted} (no description in the collectors' METRICS)"
        unit = f" [{spec.unit}]" if spec.unit and spec.unit not in ("count", "bool") else ""
        return f"{spec.description}{unit} ({dotted})"

    def _health(self, now: float, newest: Mapping[str, float],
                said_up: Mapping[str, tuple[float, float]],
                intervals: Mapping[str, float]) -> Iterator[Metric]:
        from prometheus_client.metrics_core import Metric
        age = Metric(PREFIX + "sample_age_seconds",
                     "Seconds since the newest sample of each source; values of a source older "
                     f"than {STALE_INTERVALS} of its intervals are left out of this page", "gauge")
        up = Metric(PREFIX + "collector_up",
                    "1 when the source's newest sample is current and its collector reached the "
                    "target; 0 when it failed or stopped reporting", "gauge")
        for source in sorted(set(newest) | set(intervals)):
            ts = newest.get(source)
            if ts is None:           # configured, never reported
                up.add_sample(up.name, {"source": source}, 0.0)
                continue
            age.add_sample(age.name, {"source": source}, round(max(0.0, now - ts), 3))
            fresh = now - ts <= self.max_age(source, intervals)
            ok = said_up.get(source, (0.0, 1.0))[1] != 0.0
            up.add_sample(up.name, {"source": source}, 1.0 if fresh and ok else 0.0)
        yield age
        yield up

    def _alerts(self) -> Metric:
        from prometheus_client.metrics_core import Metric
        m = Metric(PREFIX + "alert_state",
                   "1 for each firing alert (rule, its current severity and the alert's labels); "
                   "absent when not firing", "gauge")
        seen: set[tuple] = set()
        for ep in self.firing_alerts():
            labels = {"rule": str(ep["rule"]), "severity": str(ep["severity"]),
                      **_labels(ep.get("labels") or {}, reserved=("rule", "severity"))}
            key = tuple(sorted(labels.items()))
            if key not in seen:      # one series per alert, however many episodes
                seen.add(key)
                m.add_sample(m.name, labels, 1.0)
        return m

    def _fence(self) -> Metric:
        from prometheus_client.metrics_core import CounterMetricFamily
        conn = self.runtime.store.connect()
        try:
            refused = fence_for(conn).refused()
        finally:
            conn.close()
        return CounterMetricFamily(
            PREFIX + "fence_refused", "Alert transitions and notification sends the store refused "
            "because a newer collector leader exists (a stale leader's late writes)", value=refused)


@bp.get("/metrics")
def metrics() -> Response:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(current_app.extensions["dashboard"]))
    resp = Response(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    resp.headers["Cache-Control"] = "no-store"
    return resp
