"""Samples from per-host agents (``python -m dashboard agent``), read from their Redis streams.

Every agent's metrics keep their contract names and gain a ``host`` label
(``host.cpu_percent{host="app2"}``). ``host.up{host}`` is 1 while an agent reports and 0 once
it has been silent for three of its intervals, which raises ``host_down`` for that host.
Each host appends to a stream of its own (``agent_streams``); the host of an entry is the
stream's, and an entry naming another host is refused.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

from dashboard.collectors.agents.entry import Entry, Refused, parse
from dashboard.collectors.agents.streams import MAX_HOSTS, AgentStreams
from dashboard.model import CollectorError, MetricSpec, Reading

log = logging.getLogger(__name__)

RETIRE_GRACE_S = 900.0
MAX_SERIES_PER_HOST = 64
LOG_EVERY_S = 60.0

METRICS: Sequence[MetricSpec] = (
    MetricSpec("host.up", "bool", "1 while the host's agent reports, 0 after 3 silent intervals",
               ("host",)),
    MetricSpec("agents.hosts", "count", "Agents that reported within 3 of their intervals"),
    MetricSpec("agents.malformed", "count",
               "Stream entries refused (not agent messages, or values out of bounds); skipped"),
    MetricSpec("agents.series_dropped", "count",
               f"Agent readings not stored: beyond {MAX_SERIES_PER_HOST} label sets of a host "
               f"or {MAX_HOSTS} hosts"),
    MetricSpec("agents.streams_ignored", "count",
               f"Agent streams not read: beyond {MAX_HOSTS} hosts, or a key that is no host name"),
    MetricSpec("host.retired", "bool", "1: the host was taken out of service (agent --retire)",
               ("host",)),
)


class AgentsCollector:
    source = "agents"
    metrics = METRICS

    def __init__(self, client, interval_s: float = 1.0, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.streams = AgentStreams(client)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._seen: dict[str, tuple[float, float]] = {}    # host -> (last ts, its interval)
        self.malformed = 0
        self.series_dropped = 0
        self._series: dict[str, set[tuple]] = {}            # host -> its label sets
        self._retired: dict[str, float] = {}                # host -> when it was retired
        self._logged_at = dict.fromkeys(("refused", "dropped", "ignored"), float("-inf"))

    def collect(self) -> list[Reading]:
        import redis

        try:
            entries = self.streams.read()
        except redis.RedisError as e:
            raise CollectorError(f"agents: message queue not reachable ({type(e).__name__})") from None
        if self.streams.ignored:
            self._log_once("ignored", "agents: %d agent streams not read (more than %d hosts, or "
                           "a key that is no host name)", self.streams.ignored, MAX_HOSTS)
        out: list[Reading] = []
        retired: list[str] = []
        now = self._clock()
        for host, items in entries:
            for _entry_id, fields in items:
                try:
                    out.extend(self._readings(parse(fields, host, now), retired))
                except Exception as e:  # noqa: BLE001 - no entry may stop ingestion
                    self.malformed += 1
                    self._log_once("refused", "agents: %d stream entries refused so far "
                                   "(last: %s, stream of %s)", self.malformed,
                                   str(e) if isinstance(e, Refused) else type(e).__name__, host)
        alive = 0
        for host, (last, interval) in self._seen.items():
            if now - last <= 3 * max(interval, self.interval_s) + 1:
                alive += 1
            else:
                # Silent for three of its intervals: down (host_down fires on this).
                out.append(Reading({"host.up": 0.0}, {"host": host}))
        for host in retired:
            self._retired[host] = now
        for host, since in list(self._retired.items()):
            # Taken out of service on purpose: reported up (and retired) for a while, long
            # enough for host_down to resolve past its keep_firing_for_s, then forgotten, so it
            # neither pages forever nor lingers in the fleet view as down.
            if now - since > RETIRE_GRACE_S:
                del self._retired[host]
            else:
                out.append(Reading({"host.up": 1.0, "host.retired": 1.0}, {"host": host}))
        out.append(Reading({"agents.hosts": float(alive), "agents.malformed": float(self.malformed),
                            "agents.series_dropped": float(self.series_dropped),
                            "agents.streams_ignored": float(self.streams.ignored)}))
        return out

    def _readings(self, entry: Entry, retired: list[str]) -> list[Reading]:
        """What a (checked) entry adds: its readings, or its host's retirement."""
        host = entry.host
        if host not in self._series and len(self._series) >= MAX_HOSTS:
            self._drop(len(entry.readings) or 1)
            return []
        series = self._series.setdefault(host, set())
        if entry.retire:
            self._seen.pop(host, None)
            del self._series[host]
            retired.append(host)
            return []
        self._retired.pop(host, None)            # back in service
        prev = self._seen.get(host)
        if prev is None or entry.ts > prev[0]:
            self._seen[host] = (entry.ts, entry.interval_s)
        out = []
        for r in entry.readings:
            key = tuple(sorted(r.labels.items()))
            if key not in series:
                if len(series) >= MAX_SERIES_PER_HOST:
                    self._drop(1)
                    continue
                series.add(key)
            if len(r.labels) == 1 and "host.cpu_percent" in r.values:
                # In the same sample, so "latest" keeps both.
                r = Reading({**r.values, "host.up": 1.0}, r.labels, ts=r.ts)
            if r.values:
                out.append(r)
        return out

    def _drop(self, n: int) -> None:
        self.series_dropped += n
        self._log_once("dropped", "agents: %d readings not stored so far: more than %d label sets "
                       "of one host or more than %d hosts", self.series_dropped,
                       MAX_SERIES_PER_HOST, MAX_HOSTS)

    def _log_once(self, kind: str, msg: str, *args: object) -> None:
        """A warning at most once a minute per kind: a hostile agent must not flood the log."""
        now = time.monotonic()
        if now - self._logged_at[kind] >= LOG_EVERY_S:
            self._logged_at[kind] = now
            log.warning(msg, *args)

    def close(self) -> None:
        pass
