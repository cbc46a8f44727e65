"""JSON API: ``/api/latest``, ``/api/series``, ``/api/history``.

Every bad parameter is a 400 with ``{"error": "..."}`` naming the parameter, never a 500.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from dashboard import offload
from dashboard.model import series_key
from dashboard.web import downsample, reads
from dashboard.web.errors import BadRequest, seconds_arg
from dashboard.web.history import RAW_MAX_WINDOW_S, history_doc, round_value

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_SPAN_S = 400 * 86400         # /api/series: the rollups' retention
MAX_WINDOW_S = 7 * 86400         # /api/history
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


@bp.get("/latest")
def latest():
    samples = runtime().store.latest()
    return jsonify(ts=time.time(), samples=[s.to_wire() for s in samples],
                   collectors=runtime().collector_status())


@bp.get("/series")
@reads.heavy
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
        raise BadRequest(f"the span from since to until is limited to 400 days ({MAX_SPAN_S} s)")
    step = request.args.get("step") or ("raw" if until - since <= RAW_MAX_WINDOW_S else "1m")
    if step not in ("raw", "1m"):
        raise BadRequest("step must be raw or 1m")
    labels = {k: v for k, v in request.args.items() if k not in RESERVED}
    if step == "raw" and since < now - rt.store.raw_retention_s:
        raise BadRequest("raw samples are kept for "
                         f"{rt.store.raw_retention_s / 3600:g} h; use step=1m for older data")
    bucket_s = 0 if step == "raw" else downsample.bucket_width(until - since, 60)
    out = offload.read(rt.store, _series_points, metric, since, until, labels, bucket_s)
    return reads.json_response(dict(metric=metric, since=since, until=until, step=step,
                                    bucket_s=bucket_s, series=out))


def _series_points(store: Any, metric: str, since: float, until: float, labels: dict[str, str],
                   bucket_s: int) -> dict[str, list]:
    """``/api/series``' points: raw ``[t, v]`` pairs (``bucket_s`` 0), else rollups merged into
    buckets of ``bucket_s`` (one minute, or more: at most ``downsample.MAX_POINTS``), each
    ``{ts: its start, n, avg, min, max}``."""
    if not bucket_s:
        return {k: [[round(t, 3), round_value(v)] for t, v in pts]
                for k, pts in store.series(metric, since, until, labels).items()}
    out: dict[str, list] = {}
    labels_of: dict[str, dict[str, str] | None] = {}       # None: another label set
    for _m, text, start, n, total, lo, hi, _last in store.rollup_buckets(since, until, bucket_s,
                                                                         metric):
        if text not in labels_of:
            lab = json.loads(text) if text else {}
            labels_of[text] = None if any(lab.get(k) != v for k, v in labels.items()) else lab
        lab_d = labels_of[text]
        if lab_d is not None:
            out.setdefault(series_key(metric, lab_d), []).append(
                {"ts": start, "n": n, "avg": round_value(total / n), "min": round_value(lo),
                 "max": round_value(hi)})
    return out



@bp.get("/history")
@reads.heavy
def history():
    """Everything the live page draws for a window, in one response, in columns per series."""
    window = seconds_arg("window_s", "900", 10, MAX_WINDOW_S,
                         f"from 10 s to 7 days ({MAX_WINDOW_S} s)")
    live = request.args.get("view") is not None
    pinned = request.args.getlist("queue")
    if live:
        if request.args["view"] != "live":
            raise BadRequest("view must be 'live' (only what the live page draws) or absent")
        # Queue panels draw the busiest queues, or the ones asked for by name (queue=NAME...).
        if len(pinned) > 50 or any(not q or len(q) > 200 for q in pinned):
            raise BadRequest("queue: at most 50 queue names of 1-200 characters")
    elif request.args.get("host") is not None or pinned:
        raise BadRequest("host and queue are filters of view=live")
    now, fixed = time.time(), False
    if request.args.get("until") is not None:       # the live page's fixed window (/?from=&to=)
        until = seconds_arg("until", "0", 0, 1e11, "epoch seconds")
        now, fixed = min(until, now), until < now
    # The collector held off until the answer is encoded and dropped: each of its collections
    # walked the answer's growing lists again (25-50 ms of a 24 h read of 300 series), and one
    # right after the read would walk them once more.
    with offload.gc_paused():
        return reads.json_response(offload.read(runtime().store, history_doc, window, now, live,
                                                request.args.get("host") or None, pinned, fixed))
