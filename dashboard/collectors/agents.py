"""Samples from per-host agents (``python -m dashboard agent``), read from a Redis stream.

Every agent's metrics keep their contract names and gain a ``host`` label
(``host.cpu_percent{host="app2"}``). ``host.up{host}`` is 1 while an agent reports and 0 once
it has been silent for three of its intervals, which raises ``host_down`` for that host.
The read position is kept in Redis, so a collector that takes over after a failover reads on
from where the previous leader stopped.
"""
from __future__ import annotations

import json
import time
from typing import Callable, Sequence

from dashboard.agent import STREAM
from dashboard.model import CollectorError, MetricSpec, Reading

CURSOR_KEY = "dashboard:agents:cursor"

METRICS: Sequence[MetricSpec] = (
    MetricSpec("host.up", "bool", "1 while the host's agent reports, 0 after 3 silent intervals",
               ("host",)),
    MetricSpec("agents.hosts", "count", "Agents that reported within 3 of their intervals"),
)


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
        for _stream, items in entries:
            for entry_id, fields in items:
                new_cursor = entry_id
                out.extend(self._readings(fields))
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
        out.append(Reading({"agents.hosts": float(alive)}))
        return out

    def _readings(self, fields: dict) -> list[Reading]:
        f = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
             for k, v in fields.items()}
        try:
            host, ts, interval = f["host"], float(f["ts"]), float(f["interval_s"])
            readings = json.loads(f["readings"])
        except (KeyError, ValueError):
            return []                                        # not an agent message: ignore
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
