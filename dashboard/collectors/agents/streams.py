"""Every agent host's stream (``dashboard:agent:<host>``), read together with one XREAD.

Streams are found with SCAN (every ``DISCOVER_EVERY_S``, not every tick) and at most
``MAX_HOSTS`` of them are read: the ones already read first, then by name. The read position of
each is kept in a Redis hash, so a collector that takes over after a failover reads on from where
the previous leader stopped; a stream without one is read from its newest entry on (not its past).
"""
from __future__ import annotations

import time
from typing import Callable

from dashboard.process.agent import HOST_NAME, STREAM_PREFIX

POSITIONS_KEY = "dashboard:agents:positions"     # host -> last entry id read
MAX_HOSTS = 200
DISCOVER_EVERY_S = 10.0
READ_COUNT = 100                                 # entries per stream and read


class AgentStreams:
    def __init__(self, client, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._clock = clock
        self._positions: dict[str, bytes] = {}
        self._discovered_at = float("-inf")
        self.ignored = 0         # streams not read: beyond MAX_HOSTS, or a key that is no host name

    def read(self) -> list[tuple[str, list[tuple[bytes, dict]]]]:
        """(host, [(entry id, fields), ...]) of what was appended since the last read. The
        positions move past everything returned, whatever its content. Raises RedisError."""
        if self._clock() - self._discovered_at >= DISCOVER_EVERY_S:
            self._discover()
        if not self._positions:
            return []
        reply = self.client.xread({STREAM_PREFIX + h: p for h, p in self._positions.items()},
                                  count=READ_COUNT) or []
        out = [(key.decode()[len(STREAM_PREFIX):], items) for key, items in reply]
        moved = {host: items[-1][0] for host, items in out if items}
        if moved:
            self.client.hset(POSITIONS_KEY, mapping=moved)
            self._positions.update(moved)
        return out

    def _discover(self) -> None:
        found, bad = set(), 0
        for key in self.client.scan_iter(match=STREAM_PREFIX + "*", _type="stream", count=1000):
            host = key.decode("utf-8", "replace")[len(STREAM_PREFIX):]
            if HOST_NAME.fullmatch(host):
                found.add(host)
            else:
                bad += 1
        kept = sorted(found, key=lambda h: (h not in self._positions, h))[:MAX_HOSTS]
        self.ignored = bad + len(found) - len(kept)
        stored = {k.decode(): v for k, v in self.client.hgetall(POSITIONS_KEY).items()}
        gone = [h for h in stored if h not in kept]
        if gone:
            self.client.hdel(POSITIONS_KEY, *gone)
        positions = {}
        for host in kept:
            pos = self._positions.get(host) or stored.get(host)
            if pos is None:
                last = self.client.xrevrange(STREAM_PREFIX + host, count=1)
                pos = last[0][0] if last else b"0-0"
                self.client.hset(POSITIONS_KEY, host, pos)
            positions[host] = pos
        self._positions = positions
        self._discovered_at = self._clock()
