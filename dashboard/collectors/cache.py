"""The cache: Redis ``INFO`` and, when configured, memcached ``stats``.

``cache.hit_rate`` is hits / (hits + misses) over a sliding window (``redis.hit_rate_window_s``,
default 60 s) from counter deltas -- never the since-boot ratio, which after a week of uptime
barely moves when the cache goes cold. The dashboard's own queue polling is subtracted (see
``redisconn``), so it never dilutes the figure.

Redis and memcached share the source ``cache``: the first configured one (Redis, else memcached)
writes the unlabelled series the alert rules and panels use; memcached next to Redis writes the
same metrics labelled ``server="memcached"`` and, when only it is down, reports
``cache.up{server="memcached"} = 0`` with the error instead of failing the whole tick.
"""
from __future__ import annotations

import re
import socket
import time
from typing import Callable, Sequence

from dashboard.collectors import resp
from dashboard.collectors.rates import RateTracker, WindowedCounters
from dashboard.collectors.redisconn import OwnReads, describe_error, make_client, own_reads
from dashboard.model import CollectorError, MetricSpec, Reading

METRICS: Sequence[MetricSpec] = (
    MetricSpec("cache.up", "bool", "The cache answered (per server when memcached runs next to Redis)"),
    MetricSpec("cache.hit_rate", "%", "Reads served from the cache over the window (default 60 s)"),
    MetricSpec("cache.hits_per_s", "/s", "Cache hits per second"),
    MetricSpec("cache.misses_per_s", "/s", "Cache misses per second"),
    MetricSpec("cache.evicted_per_s", "/s", "Keys evicted for lack of memory per second"),
    MetricSpec("cache.memory_percent", "%", "Memory used, of maxmemory (or of the host's RAM when "
               "no limit is set; cache.memory_of_host = 1 then)"),
    MetricSpec("cache.memory_used_bytes", "bytes", "Memory used by the cache"),
    MetricSpec("cache.memory_limit_bytes", "bytes", "maxmemory / limit_maxbytes, or the host's RAM"),
    MetricSpec("cache.memory_of_host", "bool", "1 when no memory limit is set and the percentage "
               "is of the host's RAM"),
    MetricSpec("cache.clients", "count", "Connected clients"),
    MetricSpec("cache.ops_per_s", "/s", "Commands processed per second (includes the dashboard's own)"),
)

_INFO_FIELDS = re.compile(
    rb"^(keyspace_hits|keyspace_misses|evicted_keys|used_memory|maxmemory|total_system_memory|"
    rb"connected_clients|total_commands_processed):(\d+)\r?$", re.M)


class RedisInfo:
    """``INFO stats memory clients`` over one persistent client, parsed for the fields we use.

    The reply stays bytes (a generic INFO parser costs more than the round trip): we pick eight
    integers with one regex.
    """

    def __init__(self, url: str, timeout_s: float = 2.0, client: resp.Client | None = None) -> None:
        self.url = url
        self.client = client or make_client(url, timeout_s)
        self._sections: tuple[str, ...] = ("stats", "memory", "clients")

    def read(self) -> dict[str, int]:
        try:
            raw = self.client.execute("INFO", *self._sections)
        except resp.ResponseError:
            # Redis < 7 takes one section per INFO; ask for everything once and keep doing so.
            self._sections = ()
            raw = self.client.execute("INFO")
        if isinstance(raw, str):
            raw = raw.encode()
        if not isinstance(raw, bytes):
            raise resp.ProtocolError(f"malformed reply: INFO answered a {type(raw).__name__}")
        return {k.decode(): int(v) for k, v in _INFO_FIELDS.findall(raw)}

    def close(self) -> None:
        self.client.close()


class MemcachedStats:
    """The text protocol's ``stats`` on one persistent TCP connection with short timeouts."""

    def __init__(self, address: str, timeout_s: float = 2.0) -> None:
        host, _, port = address.rpartition(":")
        self.address = (host, int(port))
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None

    def read(self) -> dict[str, float]:
        for attempt in (0, 1):  # a connection the server dropped is replaced once
            try:
                if self._sock is None:
                    self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
                self._sock.sendall(b"stats\r\n")
                data = b""
                while not data.endswith(b"END\r\n"):
                    chunk = self._sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("connection closed by memcached")
                    data += chunk
                    if len(data) > 1 << 20:
                        raise ConnectionError("stats answer too long")
                break
            except OSError as e:
                self.close()
                if attempt:
                    raise CollectorError(f"memcached {self.address[0]}:{self.address[1]}: "
                                         f"{type(e).__name__}: {e}") from None
        out: dict[str, float] = {}
        for line in data.split(b"\r\n"):
            parts = line.split(b" ")
            if len(parts) == 3 and parts[0] == b"STAT":
                try:
                    out[parts[1].decode()] = float(parts[2])
                except ValueError:
                    pass  # version strings and the like
        return out

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


class _Figures:
    """Counters -> the cache metrics, for one server."""

    def __init__(self, window_s: float) -> None:
        self.window = WindowedCounters(window_s)
        self.rates = RateTracker()

    def values(self, now: float, hits: float, misses: float, evicted: float, commands: float,
               used: float, limit: float, of_host: bool, clients: float) -> dict[str, float]:
        # Floats, not INFO's ints: a tick of floats only is checked by the store in one pass
        # (dashboard/store/clean.py), one int sends its samples through value by value.
        out: dict[str, float] = {"cache.clients": float(clients), "cache.memory_used_bytes": float(used),
                                 "cache.memory_of_host": 1.0 if of_host else 0.0}
        if limit > 0:
            out["cache.memory_limit_bytes"] = float(limit)
            out["cache.memory_percent"] = used / limit * 100.0
        deltas = self.window.observe(now, hits, misses)
        if deltas is not None and deltas[0] + deltas[1] > 0:
            out["cache.hit_rate"] = deltas[0] / (deltas[0] + deltas[1]) * 100.0
        for name, value in (("cache.hits_per_s", hits), ("cache.misses_per_s", misses),
                            ("cache.evicted_per_s", evicted), ("cache.ops_per_s", commands)):
            rate = self.rates.rate(name, value, now)
            if rate is not None:
                out[name] = rate
        return out


class CacheCollector:
    source = "cache"
    metrics = METRICS

    def __init__(self, redis_url: str | None = None, memcached: str | None = None,
                 window_s: float = 60.0, interval_s: float = 1.0, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 redis_client: resp.Client | None = None) -> None:
        if not redis_url and not memcached:
            raise ValueError("CacheCollector needs a Redis URL or a memcached address")
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        io_timeout = max(0.5, min(2.0, timeout_s / 2))
        self._redis = RedisInfo(redis_url, io_timeout, redis_client) if redis_url else None
        self._ledger: OwnReads | None = own_reads(redis_url) if redis_url else None
        self._memcached = MemcachedStats(memcached, io_timeout) if memcached else None
        self._redis_figures = _Figures(window_s)
        self._mc_figures = _Figures(window_s)
        self._notes: dict[str, str] = {}

    def _redis_values(self, now: float) -> dict[str, float]:
        assert self._redis is not None and self._ledger is not None
        # Hold the ledger's lock so a queue tick is either wholly before or wholly after INFO.
        # (not for long: a queue tick stuck on a dead server must not make this one time out)
        locked = self._ledger.lock.acquire(timeout=1.0)
        try:
            info = self._redis.read()
            own_hits, own_misses = self._ledger.hits, self._ledger.misses
        except resp.RedisError as e:
            raise describe_error(self._redis.url, e) from None
        finally:
            if locked:
                self._ledger.lock.release()
        try:
            hits = info["keyspace_hits"] - own_hits
            misses = info["keyspace_misses"] - own_misses
        except KeyError:
            raise CollectorError("redis INFO has no keyspace_hits/keyspace_misses") from None
        maxmemory = info.get("maxmemory", 0)
        of_host = maxmemory == 0
        limit = info.get("total_system_memory", 0) if of_host else maxmemory
        if of_host:
            self._notes["redis"] = (
                f"redis: no maxmemory set, so cache.memory_percent is of the host's RAM "
                f"({limit / 2**30:.1f} GiB); set maxmemory and an eviction policy so the cache "
                f"cannot take the host's memory")
        else:
            self._notes.pop("redis", None)
        return self._redis_figures.values(
            now, hits, misses, info.get("evicted_keys", 0), info.get("total_commands_processed", 0),
            info.get("used_memory", 0), limit, of_host, info.get("connected_clients", 0))

    def _memcached_values(self, now: float) -> dict[str, float]:
        assert self._memcached is not None
        s = self._memcached.read()
        return self._mc_figures.values(
            now, s.get("get_hits", 0), s.get("get_misses", 0), s.get("evictions", 0),
            s.get("cmd_get", 0) + s.get("cmd_set", 0), s.get("bytes", 0),
            s.get("limit_maxbytes", 0), False, s.get("curr_connections", 0))

    def collect(self) -> list[Reading]:
        now = self._clock()
        if self._redis is None:
            return [Reading(self._memcached_values(now))]
        out = [Reading(self._redis_values(now))]
        if self._memcached is not None:
            label = {"server": "memcached"}
            try:
                out.append(Reading({"cache.up": 1.0, **self._memcached_values(now)}, label))
            except CollectorError as e:
                out.append(Reading({"cache.up": 0.0}, label, error=str(e)))
        return out

    def check_notes(self) -> list[str]:
        notes = list(self._notes.values())
        if self._redis is not None and self._memcached is not None:
            notes.append("memcached runs next to Redis: its figures are labelled server=memcached")
        return notes

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
        if self._memcached is not None:
            self._memcached.close()
