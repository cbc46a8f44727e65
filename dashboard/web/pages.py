"""HTML pages, ``/healthz`` and the pre-gzipped third-party assets."""
from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request, send_file

from dashboard.web import panels
from dashboard.web.errors import BadRequest

bp = Blueprint("pages", __name__)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
VENDOR_FILES = {"plotly-basic.min.js", "socket.io.min.js"}
ANONYMOUS_HEALTH = ("status", "age_s")     # what /healthz tells a caller without a login


@lru_cache(maxsize=1)
def asset_version() -> str:
    """Changes whenever the installed assets change, so browsers may cache them for a year."""
    h = hashlib.sha256()
    for name in sorted(VENDOR_FILES):
        p = VENDOR_DIR / name
        h.update(p.read_bytes() if p.exists() else b"")
    for p in sorted(STATIC_DIR.glob("*.*")):
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


@bp.get("/healthz")
def healthz():
    """No login: the overall status, each collector's status (ok / error / stale) and age, and
    the store's (``error`` while it cannot write: degraded, however well the collectors do).

    Always 200 while the process answers (the contract); ``status`` says whether all is well.
    Error texts name internal addresses and users (``monitor@10.0.0.5``, ``127.0.0.1:6379``):
    they, the interval and the last sample time go only to a logged-in caller (session or token).
    """
    rt = current_app.extensions["dashboard"]
    collectors = rt.collector_status()
    store = rt.store_status()
    if g.principal is None:
        collectors = {name: {k: c.get(k) for k in ANONYMOUS_HEALTH} for name, c in collectors.items()}
        store = {k: store[k] for k in ANONYMOUS_HEALTH}
    remote = not rt.started and rt.status_reader is not None     # a web-only instance
    ok = ((rt.started or remote) and store["status"] == "ok"
          and all(c["status"] == "ok" for c in collectors.values()))
    body = {"status": "ok" if ok else ("starting" if not (rt.started or remote) else "degraded"),
            "ts": time.time(), "collectors": collectors, "store": store}
    return jsonify(body)


FIXED_MIN_S, FIXED_MAX_S = 10, 7 * 86400     # a fixed window (/?from=&to=), as /api/history's
# (a page's link keeps within it: dashboard/alert_context.py WINDOW_MAX_S)


def fixed_window() -> dict[str, int] | None:
    """``/?from=EPOCH&to=EPOCH`` (the link in a page): the live page on that past window, not
    live. None without them; a 400 when they make no window."""
    if request.args.get("from") is None and request.args.get("to") is None:
        return None
    try:
        start, end = int(request.args["from"]), int(request.args["to"])
    except (KeyError, ValueError):
        raise BadRequest("from and to must both be epoch seconds") from None
    if not (0 < start and FIXED_MIN_S <= end - start <= FIXED_MAX_S):
        raise BadRequest("to must be 10 s to 7 days after from")
    return {"from": start, "to": end}


@bp.get("/")
def live_page():
    rt = current_app.extensions["dashboard"]
    sources = {c.source: c.interval_s for c in rt.runner.collectors}
    shown = [*panels.PANELS, *panels.replica_panels(rt.settings.mysql_servers)]
    fixed = fixed_window()
    live_args = [(k, v) for k, v in request.args.items(multi=True) if k in ("host", "queue")]
    return render_template("live.html", panels=panels.as_json(rt.rules, shown), areas=panels.AREAS,
                           sources=sources, settings=rt.settings, v=asset_version(), fixed=fixed,
                           live_url="/" + ("?" + urlencode(live_args) if live_args else ""))


@bp.get("/vendor/<name>")
def vendor(name: str):
    """plotly.js and the Socket.IO client, installed from the npm registry at set-up."""
    if name not in VENDOR_FILES:
        abort(404)
    path = VENDOR_DIR / name
    gz = path.with_name(name + ".gz")
    if "gzip" in request.headers.get("Accept-Encoding", "") and gz.exists():
        resp = send_file(gz, mimetype="text/javascript", max_age=365 * 86400)
        resp.headers["Content-Encoding"] = "gzip"
        resp.vary.add("Accept-Encoding")
        return resp
    if not path.exists():
        abort(404, description="run scripts/setup.sh to install the browser assets")
    return send_file(path, mimetype="text/javascript", max_age=365 * 86400)
