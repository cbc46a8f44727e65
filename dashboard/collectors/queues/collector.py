"""Job queues: how many wait, how many failed, how old the oldest is, and when it will drain.

Each configured queue has a kind (``redis-list``, ``rq``, ``celery``, ``sql``; options in
``options``). Readers do the I/O -- one pipelined round trip per Redis server
(``redis``), one statement per SQL queue under a statement time limit
(``sql``) -- and return plain counts; this module turns counts into flows over a window:

- ``queue.net_dequeue_per_s`` = how fast ``pending`` falls, from its ups and downs over the
  window (default 60 s). ``queue.drain_eta_s`` = pending / that rate; when the queue is not
  shrinking there is no finite ETA: the value is left out and ``queue.draining = 0`` says "not
  draining" (the page writes those words).
- ``queue.enqueued_per_s`` / ``queue.dequeued_per_s`` where the backend has an enqueue counter
  (SQL: ``MAX(id)`` of an auto-increment key); a Redis list keeps no such counter, so only the
  net rate exists there.
- ``queue.failed_new``: failures added over the window (the alert rule's "> 0 new"), counted
  from increases of the failed total, so a clean-up of old failures is not a "new failure".

RQ queues found by discovery are capped (``queue_redis.MAX_RQ_QUEUES``): ``queue.not_shown``
counts those left out, and ``check`` says so.

A queue that cannot be read gets ``queue.up{queue} = 0`` with the reason on its sample (e.g.
which index to add); a backend that cannot be reached at all makes the unlabelled
``queue.up = 0``, and the whole tick an error when no backend answers.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Sequence

from dashboard.collectors.queues.base import BackendDown, QueueRead, Reader
from dashboard.collectors.queues.redis import RedisQueues
from dashboard.collectors.queues.sql import SqlQueues
from dashboard.collectors.rates import WindowedCounters
from dashboard.config.settings import MySQLSettings, QueueSettings
from dashboard.model import CollectorError, MetricSpec, Reading

if TYPE_CHECKING:
    from dashboard.collectors.mysql.conn import MySQLConnection

METRICS: Sequence[MetricSpec] = (
    MetricSpec("queue.up", "bool", "Every queue backend answered (per queue: its figures could be read)"),
    MetricSpec("queue.pending", "count", "Jobs waiting", ("queue",)),
    MetricSpec("queue.pending_by_priority", "count", "Jobs waiting, per priority", ("queue", "priority")),
    MetricSpec("queue.processing", "count", "Jobs being worked on (RQ started registry, SQL "
               "processing rows, a redis-list's processing list)", ("queue",)),
    MetricSpec("queue.failed", "count", "Failed jobs kept by the queue", ("queue",)),
    MetricSpec("queue.failed_new", "count", "Failed jobs added over the window", ("queue",)),
    MetricSpec("queue.scheduled", "count", "RQ jobs scheduled for later", ("queue",)),
    MetricSpec("queue.workers", "count", "RQ workers listening on the queue", ("queue",)),
    MetricSpec("queue.oldest_pending_age_s", "s", "Age of the job at the consuming end", ("queue",)),
    MetricSpec("queue.enqueued_per_s", "/s", "Jobs added per second over the window", ("queue",)),
    MetricSpec("queue.dequeued_per_s", "/s", "Jobs taken per second over the window", ("queue",)),
    MetricSpec("queue.net_dequeue_per_s", "/s", "How fast pending falls over the window "
               "(negative: growing)", ("queue",)),
    MetricSpec("queue.drain_eta_s", "s", "pending / net dequeue rate; absent when not draining",
               ("queue",)),
    MetricSpec("queue.draining", "bool", "0 when jobs wait and the queue is not shrinking", ("queue",)),
    MetricSpec("queue.not_shown", "count", "Discovered RQ queues beyond the first 50, not collected"),
)


class QueueFlow:
    """Counts of one queue -> rates, new failures and the drain ETA over a sliding window.

    ``pending`` is a level, not a counter, so its rises and falls are accumulated into two
    monotonic counters (``ups``, ``downs``) that ``WindowedCounters`` can difference safely.
    """

    def __init__(self, window_s: float) -> None:
        self._flow = WindowedCounters(window_s)     # ups, downs, failures added
        self._enqueued = WindowedCounters(window_s)
        self._pending: float | None = None
        self._failed: float | None = None
        self._ups = self._downs = self._failed_new = 0.0

    def values(self, now: float, r: QueueRead) -> dict[str, float]:
        out: dict[str, float] = {}
        if r.failed is not None:
            out["queue.failed"] = r.failed
            if self._failed is not None and r.failed > self._failed:
                self._failed_new += r.failed - self._failed
            self._failed = r.failed
        if r.pending is None:
            return out
        pending = r.pending
        out["queue.pending"] = pending
        if self._pending is not None:
            step = pending - self._pending
            self._ups += max(step, 0.0)
            self._downs += max(-step, 0.0)
        self._pending = pending
        flow = self._flow.observe(now, self._ups, self._downs, self._failed_new)
        span = self._flow.span_s()
        enq = self._enqueued.observe(now, r.enqueued_total) if r.enqueued_total is not None else None
        enq_span = self._enqueued.span_s()
        if flow is None or span <= 0:
            return out
        ups, downs, failed_new = flow
        if r.failed is not None:
            out["queue.failed_new"] = failed_new
        net = (downs - ups) / span
        out["queue.net_dequeue_per_s"] = net
        if enq is not None and enq_span > 0:
            out["queue.enqueued_per_s"] = enq[0] / enq_span
            # dequeued = enqueued - growth of pending
            out["queue.dequeued_per_s"] = max(0.0, (enq[0] - (ups - downs)) / enq_span)
        if pending <= 0:
            out["queue.drain_eta_s"], out["queue.draining"] = 0.0, 1.0
        elif net > 0:
            out["queue.drain_eta_s"], out["queue.draining"] = pending / net, 1.0
        else:
            out["queue.draining"] = 0.0         # no finite ETA: the page says "not draining"
        return out


class QueueCollector:
    source = "queue"
    metrics = METRICS

    def __init__(self, queues: Sequence[QueueSettings], redis_url: str | None = None,
                 mysql: MySQLSettings | None = None, interval_s: float = 1.0,
                 timeout_s: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 readers: Sequence[Reader] | None = None,
                 mysql_conn: MySQLConnection | None = None) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._flows: dict[str, QueueFlow] = {}
        self._readers = list(readers) if readers is not None else \
            build_readers(queues, redis_url, mysql, timeout_s, clock, mysql_conn)

    def collect(self) -> list[Reading]:
        now = self._clock()
        out: list[Reading] = []
        down: list[str] = []
        for reader in self._readers:
            try:
                reads = reader.read()
            except BackendDown as e:
                down.append(str(e))
                continue
            for r in reads:
                out.append(self._reading(now, r))
                out += [Reading({"queue.pending_by_priority": n}, {"queue": r.label, "priority": p})
                        for p, n in r.by_priority.items()]
        if down and len(down) == len(self._readers):
            raise CollectorError("; ".join(down))
        plain: dict[str, float] = {}
        left_out = [n for n in (reader.not_shown() for reader in self._readers) if n is not None]
        if left_out:
            plain["queue.not_shown"] = float(sum(left_out))
        if down:
            plain["queue.up"] = 0.0
        if plain:
            out.insert(0, Reading(plain, error="; ".join(down) if down else None))
        return out

    def _reading(self, now: float, r: QueueRead) -> Reading:
        labels = {"queue": r.label}
        if r.error is not None:
            return Reading({"queue.up": 0.0}, labels, error=r.error)
        flow = self._flows.get(r.label)
        if flow is None:
            flow = self._flows[r.label] = QueueFlow(r.window_s)
        values = {"queue.up": 1.0, **r.extra, **flow.values(now, r)}
        if r.oldest_age_s is not None:
            values["queue.oldest_pending_age_s"] = max(0.0, r.oldest_age_s)
        return Reading(values, labels)

    def check_notes(self) -> list[str]:
        return [n for reader in self._readers for n in reader.notes()]

    def close(self) -> None:
        for reader in self._readers:
            reader.close()


def build_readers(queues: Sequence[QueueSettings], redis_url: str | None,
                  mysql: MySQLSettings | None, timeout_s: float,
                  clock: Callable[[], float] = time.monotonic,
                  mysql_conn: MySQLConnection | None = None) -> list[Reader]:
    """One reader per backend: a Redis server's queues share one pipeline, a MySQL server's
    SQL queues one connection -- on the monitored server (url = mysql.url) ``mysql_conn``, the
    MySQL collector's digests connection, so the dashboard keeps to two connections there.
    Imports are local so a deployment without SQL queues never loads PyMySQL."""
    io_timeout = max(0.5, min(2.0, timeout_s / 4))
    by_redis: dict[str, list[QueueSettings]] = {}
    by_mysql: dict[str, list[QueueSettings]] = {}
    for q in queues:
        if q.kind == "sql":
            url = q.options.get("url") or (mysql.url if mysql else None)
            if not url:
                raise CollectorError(f"queue {q.name}: kind sql needs mysql.url or the queue's url option")
            by_mysql.setdefault(url, []).append(q)
        else:
            url = q.options.get("url") or redis_url
            if not url:
                raise CollectorError(f"queue {q.name}: kind {q.kind} needs redis.url "
                                     "or the queue's url option")
            by_redis.setdefault(url, []).append(q)
    readers: list[Reader] = []
    if by_redis:
        readers += [RedisQueues(url, qs, io_timeout) for url, qs in by_redis.items()]
    if by_mysql:
        readers += [SqlQueues(url, qs, mysql, clock=clock,
                              shared=mysql_conn if mysql and url == mysql.url else None)
                    for url, qs in by_mysql.items()]
    return readers
