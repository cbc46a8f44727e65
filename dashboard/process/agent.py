"""``python -m dashboard agent``: host statistics of one app server, published through Redis.

Each app server behind the load balancer runs an agent. It samples the same host metrics as the
dashboard's own host collector (and PHP-FPM when configured) and appends them to its own Redis
stream, ``dashboard:agent:<host>``, which the leading collector process reads
(``dashboard.collectors.agents``). A stream, not pub/sub: samples published while the collector
restarts or fails over are read afterwards instead of being lost. The stream is capped, so a
collector that is gone for long cannot make Redis grow without bound.

One stream per host, so that each host can have a Redis user of its own that may append to that
stream and do nothing else (``dashboard.agent_acl``): an owned app server cannot write as another
host, nor touch the leader lock, the status, the rate limits or the Socket.IO channel.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time

from dashboard.collectors.base import Collector

log = logging.getLogger(__name__)

STREAM_PREFIX = "dashboard:agent:"
STREAM_MAXLEN = 4_000            # ~30 min of host and PHP-FPM entries at 1 s
# Host names become labels, legend text, URL parts and Redis key names: keep them to what host
# names can be (no glob characters either, so a stream key is its own ACL key pattern).
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


def stream_key(host: str) -> str:
    if not HOST_NAME.fullmatch(host):
        raise ValueError("not a host name (letters, digits, '.', '_', '-')")
    return STREAM_PREFIX + host


def message(host: str, interval_s: float, ts: float, source: str, readings) -> dict[str, str]:
    return {"host": host, "interval_s": repr(interval_s), "ts": repr(ts), "source": source,
            "readings": json.dumps([{"values": dict(r.values), "labels": dict(r.labels)}
                                    for r in readings], separators=(",", ":"))}


def retire(client, host: str) -> None:
    """Tell the collector that ``host`` is out of service: it resolves its host_down (if any)
    and drops it from the fleet view, instead of paging about it forever. An entry on the host's
    own stream: an agent's user can retire its own host only, the dashboard's any."""
    client.xadd(stream_key(host), {"host": host, "retire": "1"}, maxlen=STREAM_MAXLEN,
                approximate=True)


class Agent:
    def __init__(self, client, host: str, collectors: list[Collector], interval_s: float) -> None:
        self.client = client
        self.host = host
        self.stream = stream_key(host)
        self.collectors = collectors
        self.interval_s = interval_s
        self.stop_event = threading.Event()
        self.published = 0

    def publish_once(self) -> None:
        ts = time.time()
        pipe = self.client.pipeline(transaction=False)
        for c in self.collectors:
            try:
                readings = c.collect()
            except Exception as e:  # noqa: BLE001 - e.g. PHP-FPM down: report it, keep going
                log.warning("%s: %s", c.source, e)
                readings = []
            pipe.xadd(self.stream, message(self.host, self.interval_s, ts, c.source, readings),
                      maxlen=STREAM_MAXLEN, approximate=True)
        pipe.execute()
        self.published += 1

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            try:
                self.publish_once()
            except Exception as e:  # noqa: BLE001 - Redis away: try again next interval
                log.warning("cannot publish to the message queue: %s", type(e).__name__)
            next_at += self.interval_s
            delay = next_at - time.monotonic()
            if delay < 0:                      # fell behind (suspended host): do not burst
                next_at, delay = time.monotonic(), 0
            self.stop_event.wait(delay)
