"""One persistent Redis client per collector, and the ledger of the dashboard's own key reads.

Why a ledger: Redis counts every read lookup (LLEN, LINDEX, ZCARD, HGET, ...) in
``keyspace_hits`` / ``keyspace_misses``, so the queue collector's polling would leak into the
cache hit rate -- ten empty queues polled each second are twenty misses a second, enough to
page someone at night about a "30 % hit rate" on an idle shop. The queue collector records
each lookup it makes (hit or miss) in the ledger of that Redis server, under the ledger's lock
while its pipeline runs; the cache collector reads ``INFO`` under the same lock and subtracts,
so neither sees the other half-done.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dashboard.collectors.resp import Client
from dashboard.model import CollectorError


def make_client(url: str, timeout_s: float = 2.0) -> Client:
    """A client (our own RESP2 one, see ``resp``) with short timeouts and a single retry.

    No backoff and no second retry: a stopped server must not become a many-second hang of the
    collector; one retry is enough to replace a connection that died while the server restarted
    (the first command on it fails, the retry reconnects). Named ``dashboard`` in CLIENT LIST.
    """
    return Client(url, timeout_s=timeout_s, name="dashboard")


def server_of(url: str) -> str:
    """``host:port`` of a Redis URL: keyspace statistics are per server, not per database."""
    p = urlsplit(url)
    if p.scheme == "unix":
        return p.path
    return f"{p.hostname}:{p.port or 6379}"


def describe_error(url: str, e: BaseException) -> CollectorError:
    """A secret-free CollectorError for a failed Redis call (the URL may hold a password)."""
    text = str(e).split("\n")[0]
    if "password" in text.lower() or "auth" in text.lower():
        text = "authentication failed (check the password in redis.url)"
    return CollectorError(f"redis {server_of(url)}: {type(e).__name__}: {text}"[:300])


@dataclass
class OwnReads:
    """Read lookups the dashboard itself made on one Redis server, counted since start."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    misses: int = 0

    def record(self, hits: int, misses: int) -> None:
        # Called with ``lock`` held by the queue collector (see the module docstring).
        self.hits += hits
        self.misses += misses


_ledgers: dict[str, OwnReads] = {}
_ledgers_lock = threading.Lock()


def own_reads(url: str) -> OwnReads:
    """The ledger of the server behind ``url`` (shared by every collector in this process)."""
    key = server_of(url)
    with _ledgers_lock:
        return _ledgers.setdefault(key, OwnReads())
