"""The database area's own data: statements running now and top statements over a window.

* ``GET /api/db/statements?window=5m|1h|today&sort=total_ms&order=desc&limit=50`` answers with
  the source in use (and how to enable a better one), notices, the "running now" list and the
  top statements of the window. Bad parameters are a 400 with ``{"error": ...}``; no MySQL
  configured is a 404.
* Socket.IO event ``db_statements`` on ``/live``: pushed after a ``db`` tick when something
  changed -- ``now`` (the running-now list) each second while statements run, ``top`` (all
  three windows, 30 rows each, texts cut at 500 characters) after each digest read.

Statement texts come from the monitored server: they are data, and the page renders them as
text (``textContent``), never as HTML.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, jsonify, request

from dashboard.collectors.mysql.statements import SORTS, WINDOWS, StatementBook
from dashboard.model import Sample
from dashboard.runtime import Parts
from dashboard.web.errors import BadRequest

if TYPE_CHECKING:
    from dashboard.runtime import Runtime

bp = Blueprint("db", __name__, url_prefix="/api/db")
EVENT = "db_statements"
PUSH_ROWS = 30
PUSH_TEXT = 500


def _book(runtime: Any) -> StatementBook | None:
    for c in runtime.runner.collectors:
        if c.source == "db" and hasattr(c, "book"):
            return c.book
    return None


@bp.get("/statements")
def statements():
    book = _book(current_app.extensions["dashboard"])
    if book is None:
        raise BadRequest("no MySQL/MariaDB is configured ([mysql] url)", 404)
    window = request.args.get("window", "1h")
    if window not in WINDOWS:
        raise BadRequest(f"window must be one of {', '.join(WINDOWS)}")
    sort = request.args.get("sort", "total_ms")
    if sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}")
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("order must be asc or desc")
    raw = request.args.get("limit", "50")
    # str.isdigit() accepts "²" and other digits int() refuses: ASCII digits only.
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= 500:
        raise BadRequest("limit must be a whole number from 1 to 500")
    top = book.top(window, sort, int(raw), descending=order == "desc")
    return jsonify(ts=time.time(), **book.status(), now=book.now(), top=top)


def live_payload(book: StatementBook, seen: dict) -> dict | None:
    """What changed since the last push (``seen`` keeps the versions already sent)."""
    out: dict = {}
    if book.now_version != seen.get("now"):
        seen["now"] = book.now_version
        out["now"] = book.now()
    status = book.status()
    if book.version != seen.get("top") or status != seen.get("status"):
        seen["top"], seen["status"] = book.version, status
        out.update(status)
        out["top"] = {w: book.top(w, limit=PUSH_ROWS, text_limit=PUSH_TEXT) for w in WINDOWS}
    if out:
        out["ts"] = time.time()
    return out or None


def statements_push(runtime: Runtime) -> Parts:
    """When MySQL is configured: a sink pushing the live ``db_statements`` event after db ticks."""
    if _book(runtime) is None:
        return Parts()
    seen: dict = {}

    def push(samples: list[Sample]) -> None:
        if not any(s.source == "db" for s in samples):
            return
        book = _book(runtime)
        payload = live_payload(book, seen) if book is not None else None
        if payload:
            runtime.emit(EVENT, payload, namespace="/live")

    return Parts(sinks=[push])
