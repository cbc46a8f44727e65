"""Queues kept in Redis: plain lists, RQ and Celery (Redis broker), read in one pipeline.

Cheap whatever the queue's length: only O(1) commands -- LLEN, ZCARD, SCARD, LINDEX at the
consuming end (one item, for its age), HGET of that one job -- never LRANGE or a scan of a list.
Every command's key lookup is recorded in the server's ``OwnReads`` ledger so that the cache hit
rate can leave our polling out (see ``redisconn``).

RQ's key layout (rq 1.x-3.x, prefix ``rq``): ``rq:queues`` (set of queue keys),
``rq:queue:<name>`` (list of job ids, RPUSH / LPOP, so the oldest is at index 0),
``rq:failed:<name>``, ``rq:wip:<name>`` (started), ``rq:scheduled:<name>`` (sorted sets),
``rq:workers:<name>`` (set of worker keys), ``rq:job:<id>`` (hash with ``enqueued_at``).
Discovery collects the first ``MAX_RQ_QUEUES`` of ``rq:queues`` by name; ``not_shown`` counts
the rest (``queue.not_shown``, and a note in ``check``).
Celery's Redis transport (kombu) keeps a queue as a list per priority step: ``celery``,
``celery\\x06\\x163``, ``celery\\x06\\x166``, ``celery\\x06\\x169``, pushed with LPUSH and
consumed with BRPOP, so the oldest message is at index -1.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from dashboard.collectors import resp
from dashboard.collectors.base import capped
from dashboard.collectors.queues.base import BackendDown, QueueRead
from dashboard.collectors.redisconn import describe_error, make_client, own_reads
from dashboard.config.settings import QueueSettings

RQ_REDISCOVER_S = 30.0      # new RQ queues appear within this long; SMEMBERS is not per tick
MAX_RQ_QUEUES = 50          # per prefix: an app may name a queue per customer; each is ~12 series
_COUNT_BY_TYPE = {"list": "LLEN", "zset": "ZCARD", "set": "SCARD", "hash": "HLEN", "stream": "XLEN"}

Handler = Callable[[Any], None]


def to_epoch(v: Any) -> float:
    """Epoch seconds from epoch seconds / milliseconds or an ISO 8601 string (naive = UTC)."""
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and re.fullmatch(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", v):
        v = float(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v / 1000.0 if v > 1e11 else float(v)
    if isinstance(v, str):
        dt = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
    raise ValueError(f"not a time: {v!r}")


def field_of(item: bytes, path: str) -> Any:
    obj: Any = json.loads(item)
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            raise KeyError(path)
        obj = obj[part]
    return obj


def _exists(result: Any) -> bool:
    """Did the command find its key? Empty lists/sets/zsets do not exist in Redis."""
    if isinstance(result, Exception):
        return True                      # WRONGTYPE and the like: the key is there
    if isinstance(result, (bytes, str)) and result in (b"none", "none"):
        return False                     # TYPE of a missing key
    if isinstance(result, (int, set, list)):
        return bool(result)
    return result is not None


class RedisQueues:
    def __init__(self, url: str, queues: Sequence[QueueSettings], timeout_s: float = 2.0,
                 client: resp.Client | None = None, wall: Callable[[], float] = time.time) -> None:
        self.url = url
        self.client = client or make_client(url, timeout_s)
        self.timeout_s = timeout_s
        self.queues = list(queues)
        self._ledger = own_reads(url)
        self._wall = wall
        self._rq_names: dict[str, tuple[float, list[str]]] = {}     # prefix -> (when, names)
        self._rq_more: dict[str, int] = {}                          # prefix -> names left out
        self._types: dict[str, str] = {}                            # failed_key -> Redis type
        self._heads: dict[str, tuple[bytes, float | None]] = {}     # rq list key -> head job
        self._notes: dict[str, str] = {}

    # --- one pipelined round trip, counted in the ledger ---------------------------------------

    def _run(self, plan: list[tuple[tuple[Any, ...], Handler]]) -> None:
        if not plan:
            return
        locked = self._ledger.lock.acquire(timeout=1.0)
        try:
            results = self.client.pipeline([cmd for cmd, _ in plan])
            hits = sum(1 for r in results if _exists(r))
            self._ledger.record(hits, len(results) - hits)
        except resp.RedisError as e:
            raise BackendDown(str(describe_error(self.url, e))) from None
        finally:
            if locked:
                self._ledger.lock.release()
        for (_, handle), result in zip(plan, results):
            handle(result)

    # --- the tick ----------------------------------------------------------------------------------

    def read(self) -> list[QueueRead]:
        now = self._wall()
        self._discover_rq(now)
        reads: list[QueueRead] = []
        plan: list[tuple[tuple, Handler]] = []
        follow_up: list[Callable[[], list[tuple[tuple, Handler]]]] = []
        for q in self.queues:
            window = float(q.options.get("window_s", 60.0))
            if q.kind == "redis-list":
                r = QueueRead(q.name, window_s=window)
                self._plan_list(q, r, plan, now)
                reads.append(r)
            elif q.kind == "celery":
                r = QueueRead(q.name, window_s=window)
                self._plan_celery(q, r, plan, now)
                reads.append(r)
            elif q.kind == "rq":
                prefix = q.options.get("prefix", "rq")
                names = [q.key] if q.key else self._rq_names.get(prefix, (0.0, []))[1]
                for name in names:
                    r = QueueRead(name, window_s=window)
                    follow_up.append(self._plan_rq(prefix, name, r, plan, now))
                    reads.append(r)
        self._run(plan)
        second: list[tuple[tuple, Handler]] = []
        for step in follow_up:
            second += step()
        self._run(second)
        return reads

    # --- kinds ---------------------------------------------------------------------------------

    def _age(self, label: str, item: Any, path: str, now: float) -> float | None:
        """Age of the job ``item`` from its JSON field ``path``; a note when it has none."""
        if item is None or isinstance(item, Exception):
            return None
        try:
            age = now - to_epoch(field_of(item, path))
        except (ValueError, KeyError, TypeError):
            self._notes[label] = (f"queue {label}: the item at the consuming end has no usable "
                                  f"{path!r} field (JSON, epoch or ISO 8601 time); no oldest-job age")
            return None
        self._notes.pop(label, None)
        return age

    def _oldest(self, r: QueueRead, path: str, now: float) -> Handler:
        def handle(item: Any) -> None:
            age = self._age(r.label, item, path, now)
            if age is not None and (r.oldest_age_s is None or age > r.oldest_age_s):
                r.oldest_age_s = age
        return handle

    @staticmethod
    def _set(r: QueueRead, attr: str, key: bytes | str | None) -> Handler:
        def handle(v: Any) -> None:
            if isinstance(v, Exception):
                r.error = f"{key!r}: {v}"[:300]
            elif attr.startswith("queue."):
                r.extra[attr] = float(v or 0)
            else:
                setattr(r, attr, float(v or 0))
        return handle

    def _plan_list(self, q: QueueSettings, r: QueueRead, plan: list, now: float) -> None:
        o = q.options
        plan.append((("LLEN", q.key), self._set(r, "pending", q.key)))
        if o.get("processing_key"):
            plan.append((("LLEN", o["processing_key"]),
                         self._set(r, "queue.processing", o["processing_key"])))
        if o.get("age_field"):
            end = 0 if o.get("consume_from", "left") == "left" else -1
            plan.append((("LINDEX", q.key, end), self._oldest(r, o["age_field"], now)))
        failed_key = o.get("failed_key")
        if failed_key:
            kind = self._types.get(failed_key)
            if kind in _COUNT_BY_TYPE:
                plan.append(((_COUNT_BY_TYPE[kind], failed_key), self._set(r, "failed", failed_key)))
            else:   # not known yet (or did not exist): learn its type, count from the next tick
                def learn(t: Any, k: str = failed_key) -> None:
                    t = t.decode() if isinstance(t, bytes) else str(t)
                    if t in _COUNT_BY_TYPE:
                        self._types[k] = t
                    elif t == "none":
                        r.failed = 0.0
                plan.append((("TYPE", failed_key), learn))

    def _plan_celery(self, q: QueueSettings, r: QueueRead, plan: list, now: float) -> None:
        o = q.options
        name = q.key or "celery"
        steps = o.get("priority_steps", [0, 3, 6, 9])
        sep = o.get("separator", "\x06\x16")
        r.pending = 0.0
        for step in steps:
            key = name if step == 0 else f"{name}{sep}{step}"

            def add(n: Any, step: int = step, key: str = key) -> None:
                if isinstance(n, Exception):
                    r.error = f"{key!r}: {n}"[:300]
                    return
                r.pending = (r.pending or 0.0) + float(n)
                if len(steps) > 1:
                    r.by_priority[str(step)] = float(n)
            plan.append((("LLEN", key), add))
            if o.get("age_field"):
                plan.append((("LINDEX", key, -1), self._oldest(r, o["age_field"], now)))

    def _plan_rq(self, prefix: str, name: str, r: QueueRead, plan: list,
                 now: float) -> Callable[[], list]:
        qkey = f"{prefix}:queue:{name}"
        plan.append((("LLEN", qkey), self._set(r, "pending", qkey)))
        plan.append((("ZCARD", f"{prefix}:failed:{name}"), self._set(r, "failed", name)))
        plan.append((("ZCARD", f"{prefix}:wip:{name}"), self._set(r, "queue.processing", name)))
        plan.append((("ZCARD", f"{prefix}:scheduled:{name}"), self._set(r, "queue.scheduled", name)))
        plan.append((("SCARD", f"{prefix}:workers:{name}"), self._set(r, "queue.workers", name)))
        head: list[Any] = [None]
        plan.append((("LINDEX", qkey, 0), lambda v: head.__setitem__(0, v)))

        def follow_up() -> list:
            job_id = head[0]
            if not isinstance(job_id, bytes):
                self._heads.pop(qkey, None)
                return []
            cached = self._heads.get(qkey)
            if cached and cached[0] == job_id:
                if cached[1] is not None:
                    r.oldest_age_s = now - cached[1]
                return []

            def enqueued(v: Any) -> None:
                try:
                    ts = to_epoch(v) if v is not None and not isinstance(v, Exception) else None
                except ValueError:
                    ts = None
                self._heads[qkey] = (job_id, ts)
                if ts is not None:
                    r.oldest_age_s = now - ts
            return [(("HGET", f"{prefix}:job:{job_id.decode(errors='replace')}", "enqueued_at"),
                     enqueued)]
        return follow_up

    def _discover_rq(self, now: float) -> None:
        """Refresh the RQ queue names of every auto-discovering rq queue (every 30 s)."""
        plan: list[tuple[tuple[Any, ...], Handler]] = []
        for q in self.queues:
            prefix = q.options.get("prefix", "rq")
            if q.kind != "rq" or q.key or now - self._rq_names.get(prefix, (-1e18, []))[0] < RQ_REDISCOVER_S:
                continue

            def found(members: Any, prefix: str = prefix) -> None:
                if isinstance(members, Exception):
                    return
                start = f"{prefix}:queue:"
                names, more = capped((m.decode(errors="replace")[len(start):] for m in members
                                      if m.decode(errors="replace").startswith(start)),
                                     MAX_RQ_QUEUES)
                self._rq_names[prefix] = (now, names)
                self._rq_more[prefix] = more
                if not names:
                    self._notes["rq:" + prefix] = f"rq: no queues in {prefix}:queues yet"
                elif more:
                    self._notes["rq:" + prefix] = (f"rq: {more} more queues of {prefix}:queues "
                                                   f"not shown (at most {MAX_RQ_QUEUES})")
                else:
                    self._notes.pop("rq:" + prefix, None)
            plan.append((("SMEMBERS", f"{prefix}:queues"), found))
        self._run(plan)

    def notes(self) -> list[str]:
        return list(self._notes.values())

    def not_shown(self) -> int | None:
        """Discovered RQ queues left out by the cap (all prefixes); None without discovery."""
        return sum(self._rq_more.values()) if self._rq_more else None

    def close(self) -> None:
        self.client.close()
