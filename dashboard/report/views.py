"""The daily summary over HTTP: the page ``/reports/daily`` and ``/api/reports/daily``.

``?date=YYYY-MM-DD`` (default: yesterday; ``today`` for today so far) and ``&format=csv`` on
both. A malformed or future date is a 400 with ``{"error": ...}`` on both. The page is
rendered on the server; its charts are plotly figures built here and drawn by
static/report.js from JSON blocks (no inline script: the CSP forbids it).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from dashboard import offload
from dashboard.report.days import MIN_DATE, BadDate
from dashboard.web import reads
from dashboard.web.errors import BadRequest
from dashboard.web.pages import asset_version

# render and build are imported by the views that use them: a worker that never serves a report
# never loads them (issue 9).

bp = Blueprint("reports", __name__)
FORMATS = {"/reports/daily": ("html", "csv"), "/api/reports/daily": ("json", "csv")}


def _document(route: str) -> tuple[dict[str, Any], str]:
    allowed = FORMATS[route]
    fmt = request.args.get("format", allowed[0])
    if fmt not in allowed:
        raise BadRequest(f"format: expected {' or '.join(allowed)}, got {fmt[:20]!r}")
    # lazy: the report's build loads on the first report request, not in every web worker
    from dashboard.report.build import build_report
    rt = current_app.extensions["dashboard"]
    try:
        # Off the event loop, on a connection of its own (issue 15): a day of many series.
        return offload.read(rt.store, build_report, rt.settings, request.args.get("date"),
                            None, fmt == "html"), fmt
    except BadDate as e:
        raise BadRequest(str(e)) from None


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: everything but the chart points (the page's business)."""
    out = dict(doc)
    out["areas"] = [dict(a, series=[{k: v for k, v in s.items() if k != "chart"}
                                    for s in a["series"]]) for a in doc["areas"]]
    return out


def _csv(doc: dict[str, Any]) -> Response:
    # lazy: as above
    from dashboard.report import render
    return Response(render.to_csv(doc), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="daily-summary-{doc["date"]}.csv"'})


@bp.get("/api/reports/daily")
@reads.heavy
def api_daily():
    doc, fmt = _document("/api/reports/daily")
    return _csv(doc) if fmt == "csv" else jsonify(public(doc))


@bp.get("/reports/daily")
@reads.heavy
def daily_page():
    doc, fmt = _document("/reports/daily")
    if fmt == "csv":
        return _csv(doc)
    # lazy: plotly (charts) loads on the first report page only
    from dashboard.report import charts, render
    d = date.fromisoformat(doc["date"])
    nav = {"prev": (d - timedelta(days=1)).isoformat() if d > MIN_DATE else None,
           "next": None if doc["day"]["today"] else (d + timedelta(days=1)).isoformat()}
    return render_template("report_daily.html", doc=doc, figures=offload.run(charts.figures, doc),
                           nav=nav,
                           settings=current_app.extensions["dashboard"].settings,
                           r=render, v=asset_version())
