"""Samples from per-host agents (``python -m dashboard agent``), read from a Redis stream.

Every agent's metrics keep their contract names and gain a ``host`` label
(``host.cpu_percent{host="app2"}``). ``host.up{host}`` is 1 while an agent reports and 0 once
it has been silent for three of its intervals, which raises ``host_down`` for that host.
The read position is kept in Redis, so a collector that takes over after a failover reads on
from where the previous leader stopped.
"""
from __future__ import annotations

import json
import re
import time
from typing import Callable, Sequence

from dashboard.process.agent import STREAM
from dashboard.model import CollectorError, MetricSpec, Reading

CURSOR_KEY = "dashboard:agents:cursor"
RETIRE_GRACE_S = 900.0

METRICS: Sequence[MetricSpec] = (
    MetricSpec("host.up", "bool", "1 while the host's agent reports, 0 after 3 silent intervals",
               ("host",)),
    MetricSpec("agents.hosts", "count", "Agents that reported within 3 of their intervals"),
    MetricSpec("agents.malformed", "count", "Stream entries that were not agent messages (skipped)"),
    MetricSpec("host.retired", "bool", "1: the host was taken out of service (agent --retire)",
               ("host",)),
)
# Host names become labels, legend text and URL parts: keep them to what host names can be.
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


class AgentsCollector:
    source = "agents"
    metrics = METRICS

    def __init__(self, client, interval_s: float = 1.0, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._seen: dict[str, tuple[float, float]] = {}    # host -> (last ts, its interval)
        self.malformed = 0
        self._retired: dict[str, float] = {}                # host -> when it was retired

    def collect(self) -> list[Reading]:
        import redis

        try:
            cursor = self.client.get(CURSOR_KEY) or b"$"
            # "$" on the very first read: only what comes from now on, not the stream's past.
            if cursor == b"$":
                last = self.client.xrevrange(STREAM, count=1)
                cursor = last[0][0] if last else b"0-0"
                self.client.set(CURSOR_KEY, cursor)
            entries = self.client.xread({STREAM: cursor}, count=5000) or []
        except redis.RedisError as e:
            raise CollectorError(f"agents: message queue not reachable ({type(e).__name__})") from None
        out: list[Reading] = []
        new_cursor = cursor
        retired: list[str] = []
        for _stream, items in entries:
            for entry_id, fields in items:
                new_cursor = entry_id            # always move on: a bad entry is skipped once
                try:
                    out.extend(self._readings(fields, retired))
                except (TypeError, AttributeError, ValueError, KeyError):
                    self.malformed += 1
        if new_cursor != cursor:
            self.client.set(CURSOR_KEY, new_cursor)
        now = self._clock()
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
        out.append(Reading({"agents.hosts": float(alive), "agents.malformed": float(self.malformed)}))
        return out

    def _readings(self, fields: dict, retired: list[str]) -> list[Reading]:
        """Readings of one stream entry; raises (TypeError, ValueError, ...) on a malformed one."""
        f = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
             for k, v in fields.items()}
        host = f["host"]
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("not a host name")
        if f.get("retire") == "1":
            self._seen.pop(host, None)
            retired.append(host)
            return []
        self._retired.pop(host, None)            # back in service
        ts, interval = float(f["ts"]), float(f["interval_s"])
        readings = json.loads(f["readings"])
        if not isinstance(readings, list):
            raise ValueError("readings is not a list")
        prev = self._seen.get(host)
        if prev is None or ts > prev[0]:
            self._seen[host] = (ts, interval)
        out = []
        for r in readings:
            values = {k: float(v) for k, v in r.get("values", {}).items()
                      if isinstance(v, (int, float)) and not k.endswith(".up")}
            labels = {**{str(k): str(v) for k, v in r.get("labels", {}).items()}, "host": host}
            if len(labels) == 1 and "host.cpu_percent" in values:
                values["host.up"] = 1.0          # in the same sample, so "latest" keeps both
            if values:
                out.append(Reading(values, labels, ts=ts))
        return out

    def close(self) -> None:
        pass
