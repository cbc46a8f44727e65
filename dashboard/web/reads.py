"""Long reads of the web worker (issue 15): answered off the event loop, at most two at a time
per login. The reads themselves run in an OS thread on a connection of their own
(``offload.read``): a day of rollups read there leaves the hub free for every socket, ``/healthz``
and the collection.

* ``json_response`` encodes a large answer there too, one series at a time: one encoder call of
  megabytes is one C call that holds the GIL, and with it the hub, until it ends. The encoder is
  ``orjson``: the stdlib's ``json`` took 250 ms for the 24 h window of 300 series (1.7 million
  numbers, each through ``float.__repr__``), orjson 35 ms for the same bytes' worth.
* ``@heavy`` lets each login (a user's sessions, or one token) run ``HEAVY_PER_LOGIN`` such
  views at once. A further one waits ``DASHBOARD_HEAVY_READ_WAIT_S`` (1 s) for a slot, then gets
  a 429 with ``Retry-After``: one viewer firing many long reads cannot take every thread and
  core from the others.
"""
from __future__ import annotations

import functools
import threading
import time
from typing import Any, Callable

import orjson
from flask import Response, current_app, request

from dashboard import offload
from dashboard.auth.guard import current_principal
from dashboard.web import errors
from dashboard.web.live import env_seconds

HEAVY_PER_LOGIN = 2
WAIT_ENV = "DASHBOARD_HEAVY_READ_WAIT_S"
WAIT_S = 1.0
RETRY_AFTER_S = 2


def _encode(doc: dict[str, Any]) -> bytes:
    """``doc`` as compact JSON, a large ``series`` mapping one entry per ``dumps`` call."""
    def dumps(value: Any) -> bytes:        # keys that are not text as text, as json.dumps did
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    series = doc.get("series")
    if not isinstance(series, dict):
        return dumps(doc)
    head = dumps({k: v for k, v in doc.items() if k != "series"})
    parts = [dumps(str(k)) + b":" + dumps(v) for k, v in series.items()]
    return (head[:-1] + (b"," if len(head) > 2 else b"") + b'"series":{' + b",".join(parts)
            + b"}}")


def json_response(doc: dict[str, Any]) -> Response:
    return Response(offload.run(_encode, doc), mimetype="application/json")


class Slots:
    """At most ``per_key`` holders per key; a further one waits up to ``wait_s`` for a slot."""

    def __init__(self, per_key: int, wait_s: float) -> None:
        self.per_key = per_key
        self.wait_s = wait_s
        self._cond = threading.Condition()       # made in the worker: green under eventlet
        self._held: dict[Any, int] = {}

    def acquire(self, key: Any) -> bool:
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while self._held.get(key, 0) >= self.per_key:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            self._held[key] = self._held.get(key, 0) + 1
        return True

    def release(self, key: Any) -> None:
        with self._cond:
            if self._held[key] <= 1:
                del self._held[key]
            else:
                self._held[key] -= 1
            self._cond.notify_all()


def _slots() -> Slots:
    slots = current_app.extensions.get("dashboard.heavy_reads")
    if slots is None:
        slots = current_app.extensions["dashboard.heavy_reads"] = Slots(
            HEAVY_PER_LOGIN, env_seconds(WAIT_ENV, WAIT_S))
    return slots


def heavy(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view that reads much of the store: at most ``HEAVY_PER_LOGIN`` at once per login."""
    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        p = current_principal()
        key = (p.kind, p.id, p.name) if p is not None else ("address", request.remote_addr)
        slots = _slots()
        if not slots.acquire(key):
            resp = errors.refuse(429, f"long reads are limited to {HEAVY_PER_LOGIN} at a time per "
                                      f"login; retry in {RETRY_AFTER_S} s")
            resp.headers["Retry-After"] = str(RETRY_AFTER_S)
            return resp
        try:
            return view(*args, **kwargs)
        finally:
            slots.release(key)
    return limited
