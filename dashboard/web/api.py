"""JSON API: ``/api/latest``, ``/api/series``, ``/api/history``.

Every bad parameter is a 400 with ``{"error": "..."}`` naming the parameter, never a 500.
"""
from __future__ import annotations

import math
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from dashboard.model import series_key
from dashboard.web.errors import BadRequest
from dashboard.web.history import QUEUE_LIMIT, add_rows, busiest_queues, live_rows, live_view

bp = Blueprint("api", __name__, url_prefix="/api")

RAW_MAX_WINDOW_S = 3600          # longer windows are drawn from one-minute rollups
RANK_WINDOW_S = 300              # the busiest queues are ranked on samples this recent
MAX_SPAN_S = 400 * 86400
RESERVED = {"metric", "since", "until", "step"}


def runtime():
    return current_app.extensions["dashboard"]


def _epoch(name: str, default: float | None = None) -> float | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise BadRequest(f"{name} is required (seconds since the epoch)")
        return default
    try:
        v = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number of seconds since the epoch, got {raw[:40]!r}") from None
    if not math.isfinite(v) or v < 0:
        raise BadRequest(f"{name} must be a finite, non-negative number of seconds")
    return v


def _r(v: float) -> float:
    return round(v, 4)


@bp.get("/latest")
def latest():
    samples = runtime().store.latest()
    return jsonify(ts=time.time(), samples=[s.to_wire() for s in samples],
                   collectors=runtime().collector_status())


@bp.get("/series")
def series():
    rt = runtime()
    metric = request.args.get("metric", "")
    if not metric:
        raise BadRequest("metric is required, e.g. metric=host.cpu_percent")
    if not rt.store.knows(metric):
        raise BadRequest(f"unknown metric {metric[:80]!r}", 404 if "." in metric else 400)
    now = time.time()
    since = _epoch("since")
    until = _epoch("until", now)
    assert since is not None and until is not None
    if until <= since:
        raise BadRequest("until must be later than since")
    if until - since > MAX_SPAN_S:
        raise BadRequest("the span from since to until is limited to 400 days")
    step = request.args.get("step") or ("raw" if until - since <= RAW_MAX_WINDOW_S else "1m")
    if step not in ("raw", "1m"):
        raise BadRequest("step must be raw or 1m")
    labels = {k: v for k, v in request.args.items() if k not in RESERVED}
    if step == "raw":
        if since < now - rt.store.raw_retention_s:
            raise BadRequest("raw samples are kept for "
                             f"{rt.store.raw_retention_s / 3600:g} h; use step=1m for older data")
        data = rt.store.series(metric, since, until, labels)
        out = {k: [[round(t, 3), _r(v)] for t, v in pts] for k, pts in data.items()}
    else:
        data = rt.store.rollups(metric, since, until, labels)
        out = {k: [{"ts": r["minute"], "n": r["n"], "avg": _r(r["avg"]), "min": _r(r["min"]),
                    "max": _r(r["max"])} for r in rows] for k, rows in data.items()}
    return jsonify(metric=metric, since=since, until=until, step=step, series=out)


@bp.get("/history")
def history():
    """Everything the live page draws for a window, in one response, in columns per series."""
    rt = runtime()
    raw = request.args.get("window_s", "900")
    try:
        window = float(raw)
    except ValueError:
        raise BadRequest("window_s must be a number of seconds") from None
    if not math.isfinite(window) or not 10 <= window <= 7 * 86400:
        raise BadRequest("window_s must be between 10 and 604800")
    view = None
    queues: dict[str, Any] | None = None
    seen: dict[str, float] = {}        # queue -> time of its newest sample
    if request.args.get("view") is not None:
        if request.args["view"] != "live":
            raise BadRequest("view must be 'live' (only what the live page draws) or absent")
        # Queue panels draw the busiest queues, or the ones asked for by name (queue=NAME...).
        pinned = request.args.getlist("queue")
        if len(pinned) > 50 or any(not q or len(q) > 200 for q in pinned):
            raise BadRequest("queue: at most 50 queue names of 1-200 characters")
        # Ranked on the last few minutes, whatever the window: a queue removed days ago must not
        # take a slot with its last depth (nor force live_rows' unfiltered read, as it has no rows).
        latest = rt.store.latest(within_s=min(window, RANK_WINDOW_S))
        ranked = busiest_queues(latest)
        shown = list(dict.fromkeys(pinned)) if pinned else ranked[:QUEUE_LIMIT]
        for s in latest:
            if s.source == "queue" and "queue" in s.labels and "priority" not in s.labels:
                seen[s.labels["queue"]] = max(seen.get(s.labels["queue"], 0.0), s.ts)
        queues = {"shown": shown, "total": len(ranked), "limit": QUEUE_LIMIT,
                  "pinned": bool(pinned)}
        view = live_view(request.args.get("host") or None,
                         shown if pinned or len(ranked) > QUEUE_LIMIT else None)
    elif request.args.get("host") is not None or request.args.get("queue") is not None:
        raise BadRequest("host and queue are filters of view=live")
    now = time.time()
    since = now - window
    series: dict[str, dict[str, Any]] = {}

    def add(metric: str, labels: dict, t: float, v: float) -> None:
        if view is not None and not view.keeps(metric, labels):
            return
        key = series_key(metric, labels)
        s = series.get(key)
        if s is None:
            s = series[key] = {"metric": metric, "labels": labels, "t": [], "v": []}
        s["t"].append(round(t, 3))
        s["v"].append(_r(v))

    last_seq = rt.store.last_seq()

    def rows(after: float) -> list:
        if view is None:
            return rt.store.rows_between(after)
        # Only a queue with a sample since ``after`` must have rows in the read (else the
        # label text differs and live_rows reads everything).
        return live_rows(rt.store, after, view, {q for q, ts in seen.items() if ts >= after})

    if window <= RAW_MAX_WINDOW_S:
        resolution = "raw"
        add_rows(series, rows(since), _r, view)
    else:
        resolution = "1m"
        rolled_until = since
        for m, labels, minute, n, total, _lo, _hi in rt.store.rollup_metrics_between(since, now):
            add(m, labels, minute + 30, total / n)       # plotted at the minute's middle
            rolled_until = max(rolled_until, minute + 60)
        add_rows(series, rows(rolled_until), _r, view)   # not rolled up yet
    extra = {} if queues is None else {"queues": queues}
    return jsonify(now=now, window_s=window, resolution=resolution, last_seq=last_seq,
                   series=series, **extra)
