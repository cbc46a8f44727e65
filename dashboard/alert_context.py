"""What changed around an alert: the ``context`` of a firing page (issue 18, "pages that say why").

``AlertContext.build(rule, labels, since, at)`` is called once per firing (or escalated)
transition, when its outbox items are made, and returns a plain dict stored in each item:

* ``statements`` (database, queue and application alerts): the three statements whose total time
  per minute grew most in the 5 minutes before ``at`` against the hour before, from the MySQL
  collector's statement book (in memory: the book keeps 65 minutes of increments; the sums run in
  an OS thread);
* ``cache_hit_rate``: now (the newest sample, kept in memory by ``observe``) and an hour before
  (a two-minute read of the store around then, in an OS thread: ``dashboard.offload``);
* ``queue`` (queue alerts, from the alert's ``queue`` label): depth, jobs taken per second (where
  the backend counts them) and how fast the depth falls;
* ``host``: CPU and load of this dashboard's host (newest samples, in memory);
* ``window``: the live page fixed on that moment, ``/?from=EPOCH&to=EPOCH`` (a queue alert's link
  also pins its queue), which the page opens after a login like the panel links.

Everything that comes from the monitored system (statement texts, schema, queue names) is cut to
``TEXT_MAX`` here and escaped by each channel where it is rendered (alerts/messages.py). Nothing
here may stop a page: ``AlertService`` sends the page without a context when ``build`` raises.
"""
from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlencode

from dashboard import offload
from dashboard.model import Sample

if TYPE_CHECKING:
    from alerts.rules import Rule
    from dashboard.collectors.mysql.statements import StatementBook
    from dashboard.store import Store

TEXT_MAX = 200                 # a statement's text, a queue or host name, as put in a page
WINDOW_BEFORE_S = 3600.0       # the linked window: from an hour before the breach began...
WINDOW_AFTER_S = 900.0         # ...to a quarter of an hour after the page
# ...and at most what the live page opens (dashboard/web/pages.py FIXED_MAX_S, the longest
# /api/history window): an alert that fired for weeks before it escalated gets its last 7 days.
WINDOW_MAX_S = 7 * 86400
HOUR_S = 3600.0
WHY_SOURCES = ("db", "queue", "app")   # rules on these metrics get statements and the cache
# A queue's depth and processing rate: jobs taken per second where the backend counts what was
# added (RQ, Celery, SQL), else how fast the depth falls (a plain Redis list).
QUEUE_METRICS = ("queue.pending", "queue.dequeued_per_s", "queue.net_dequeue_per_s")


def clip(text: Any, limit: int = TEXT_MAX) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit - 1] + "…"


class AlertContext:
    """``book``: the statement book now (the collector replaces it when the runtime wires it);
    ``recent_s`` / ``base_s``: the statements' windows (tests shorten them)."""

    def __init__(self, public_url: str, store: Store | None = None,
                 book: Callable[[], StatementBook | None] = lambda: None,
                 recent_s: float = 300.0, base_s: float = 3600.0) -> None:
        self.base = public_url.rstrip("/")
        self.store, self.book = store, book
        self.recent_s, self.base_s = recent_s, base_s
        self._lock = threading.Lock()
        self._host: dict[str, float] = {}
        self._cache: float | None = None
        self._queues: dict[str, dict[str, float]] = {}
        # The sums of the last moment asked about: a storm's pages share their tick's moment, and
        # each build runs while the tick's publish waits (~20 ms of sums with 500 statements).
        self._moment: tuple[float, dict[str, Any]] = (math.nan, {})

    # --- fed by each stored tick (a sink before the alert engine's) ----------------------------

    def observe(self, samples: list[Sample]) -> None:
        with self._lock:
            for s in samples:
                v = s.values
                if s.source == "host" and "host" not in s.labels:
                    self._host.update((k, v[k]) for k in ("host.cpu_percent", "host.load1") if k in v)
                elif s.source == "cache" and "cache.hit_rate" in v:
                    self._cache = v["cache.hit_rate"]
                elif s.source == "queue" and "queue" in s.labels and "priority" not in s.labels:
                    q = self._queues.setdefault(s.labels["queue"], {})
                    q.update((k, v[k]) for k in QUEUE_METRICS if k in v)

    # --- made at the transition ------------------------------------------------------------------

    def build(self, rule: Rule, labels: Mapping[str, str], since: float, at: float) -> dict[str, Any]:
        area = rule.metric.split(".", 1)[0]
        why = area in WHY_SOURCES and not rule.name.endswith("_down")
        with self._lock:
            host = dict(self._host)
            cache_now = self._cache
            queue = dict(self._queues.get(labels.get("queue", ""), {})) if "queue" in labels else None
        out: dict[str, Any] = {"window": self.window(since, at, labels.get("queue") if area == "queue"
                                                     else None),
                               "host": {"cpu_percent": host.get("host.cpu_percent"),
                                        "load1": host.get("host.load1")} if host else None,
                               "statements": None, "cache_hit_rate": None, "queue": None}
        if area == "queue" and queue is not None:
            out["queue"] = {"name": clip(labels["queue"]), "pending": queue.get("queue.pending"),
                            "dequeued_per_s": queue.get("queue.dequeued_per_s"),
                            "net_dequeue_per_s": queue.get("queue.net_dequeue_per_s")}
        if not why:
            return out
        with self._lock:
            if self._moment[0] != at:
                self._moment = (at, {})
            memo = self._moment[1]
        if "top" not in memo:
            book = self.book()
            # The sums (up to 65 min of intervals x every statement: ~17 ms for 500 statements)
            # run in an OS thread; the book's lock is held only to copy the list of intervals.
            memo["top"] = (book.growth(at, self.recent_s, self.base_s, 3, TEXT_MAX + 1,
                                       run=offload.run) if book is not None else None)
        top = memo["top"]
        if top is not None:
            out["statements"] = {
                "recent_s": top["recent_s"], "base_s": top["base_s"],
                "rows": [{"id": clip(r["id"], 64), "schema": None if r["schema"] is None
                          else clip(r["schema"], 64), "text": clip(r["text"]),
                          "ms_per_min": r["ms_per_min"], "before_ms_per_min": r["before_ms_per_min"],
                          "growth_ms_per_min": r["growth_ms_per_min"], "calls": r["calls"]}
                         for r in top["rows"]]}
        if cache_now is not None:
            if "hour_before" not in memo:
                memo["hour_before"] = self._hour_before(at)
            out["cache_hit_rate"] = {"now": round(cache_now, 2), "hour_before": memo["hour_before"]}
        return out

    def window(self, since: float, at: float, queue: str | None) -> dict[str, Any]:
        end = int(at + WINDOW_AFTER_S)
        start = max(int(min(since, at) - WINDOW_BEFORE_S), end - WINDOW_MAX_S)
        query: list[tuple[str, Any]] = [("from", start), ("to", end)]
        if queue:
            query.append(("queue", clip(queue)))
        return {"from": start, "to": end, "url": f"{self.base}/?{urlencode(query)}"}

    def _hour_before(self, at: float) -> float | None:
        """The mean cache hit rate in the two minutes around an hour before ``at``: a short read
        of the store, in an OS thread (the collecting loop goes on meanwhile)."""
        if self.store is None:
            return None

        def read(view: Any) -> list[float]:
            return [s.values["cache.hit_rate"] for s in view.between(at - HOUR_S - 60, at - HOUR_S + 60,
                                                                      ["cache"])
                    if "cache.hit_rate" in s.values]
        values = offload.read(self.store, read)
        return round(sum(values) / len(values), 2) if values else None
