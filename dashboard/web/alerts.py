"""Alerts over HTTP: ``/api/alerts``, acknowledgements, ``/api/silences``, the ``/alerts`` page
and the signed acknowledge link of notifications (``/alerts/ack/<token>``).

Roles come from dashboard/auth/guard.py's central check: GETs need a login, the POST/DELETE routes the
operator role; the link routes are reachable by whoever holds a valid signed link. A GET of the
link only shows a confirmation form (mail scanners fetch links); the POST uses the link up.
Bad input is a 4xx JSON error naming the field.
"""
from __future__ import annotations

import math
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from alerts import backtest
from alerts.messages import fmt_duration, fmt_time, fmt_value, labels_text
from alerts.rules import build_rules
from alerts.service import AlertNotFiring, AlertNotFound, AlertService
from dashboard import offload
from dashboard.auth import guard as auth
from dashboard.auth import signing
from dashboard.config.settings import ConfigError, Settings
from dashboard.store.history_reads import HistoryReads
from dashboard.web import reads
from dashboard.web.errors import BadRequest, seconds_arg
from dashboard.web.pages import asset_version

bp = Blueprint("alerts", __name__)

MAX_ACK_S = 30 * 86400
MAX_SILENCE_S = 90 * 86400
MAX_TEXT = 500
BACKTEST_MAX_S = 31 * 86400
BACKTEST_KEYS = ("warning", "critical", "clear", "for_s", "keep_firing_for_s")


def service() -> AlertService:
    return current_app.extensions["dashboard.alerting"]


def actor() -> str:
    p = auth.current_principal()
    return p.name if p is not None else "anonymous"


def _body() -> dict[str, Any]:
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _text(d: dict, key: str, required: bool = False) -> str:
    v = d.get(key, "")
    if v is None:
        v = ""
    if not isinstance(v, str):
        raise BadRequest(f"{key} must be a string")
    v = v.strip()
    if required and not v:
        raise BadRequest(f"{key} is required")
    if len(v) > MAX_TEXT:
        raise BadRequest(f"{key} is limited to {MAX_TEXT} characters")
    return v


def _number(d: dict, key: str) -> float | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadRequest(f"{key} must be a number")
    return float(v)


def _end(d: dict, start: float, limit: float, end_key: str) -> float | None:
    """An end time from ``<end_key>`` (epoch) or ``duration_s``, checked against ``limit``."""
    end, dur = _number(d, end_key), _number(d, "duration_s")
    if end is not None and dur is not None:
        raise BadRequest(f"give {end_key} or duration_s, not both")
    if dur is not None:
        if dur <= 0:
            raise BadRequest("duration_s must be more than 0")
        end = start + dur
    if end is not None:
        if end <= max(start, time.time()):
            raise BadRequest(f"{end_key} must be in the future")
        if end - start > limit:
            raise BadRequest(f"{end_key} is limited to {fmt_duration(limit)} ahead")
    return end


# --- API ---------------------------------------------------------------------------------------

@bp.get("/api/alerts")
def api_alerts():
    history = seconds_arg("history_s", "86400", 0, 400 * 86400, "between 0 and 34560000")
    return jsonify(service().overview(history_s=history))


# The alerts a fixed window shades: the newest that started in or before it; past this many the
# answer says ``truncated`` and the page says older ones are not shaded.
WINDOW_ALERTS = 200


@bp.get("/api/alerts/window")
def api_alerts_window():
    """The alerts whose span meets ``[from, to]`` (epoch seconds): what the live page's fixed
    window (``/?from=&to=``) shades; newest first, at most ``WINDOW_ALERTS`` (``truncated``)."""
    start = seconds_arg("from", "nan", 0, 1e11, "epoch seconds")
    end = seconds_arg("to", "nan", 0, 1e11, "epoch seconds")
    if not start < end <= start + 400 * 86400:
        raise BadRequest("to must be after from, at most 400 days later")
    svc = service()
    now = svc.clock()
    keys = ("id", "rule", "title", "labels", "severity", "peak_severity", "started_at", "fired_at",
            "resolved_at", "panel")
    with svc.lock:
        eps = [svc.describe(e, now) for e in svc.state.overlapping(start, end, WINDOW_ALERTS + 1)]
    return jsonify({"from": start, "to": end, "truncated": len(eps) > WINDOW_ALERTS,
                    "alerts": [{k: d[k] for k in keys} for d in eps[:WINDOW_ALERTS]]})


@bp.post("/api/alerts/<alert_id>/ack")
@auth.require_role("operator")
def api_ack(alert_id: str):
    d = _body()
    comment = _text(d, "comment")
    until = _end(d, time.time(), MAX_ACK_S, "until")
    try:
        ep = service().acknowledge(alert_id[:64], actor(), comment, until)
    except AlertNotFound:
        raise BadRequest(f"no alert {alert_id[:64]!r}", 404) from None
    except AlertNotFiring:
        raise BadRequest("this alert is already resolved", 409) from None
    return jsonify(alert=service().describe(ep, time.time()))


@bp.get("/api/silences")
def api_silences():
    svc = service()
    return jsonify(silences=svc.overview(history_s=7 * 86400)["silences"])


@bp.post("/api/silences")
@auth.require_role("operator")
def api_silence_create():
    svc = service()
    d = _body()
    rule = d.get("rule") or None
    if rule is not None and (not isinstance(rule, str) or rule not in svc.rules):
        raise BadRequest(f"rule: unknown rule {str(rule)[:80]!r}")
    labels = d.get("labels") or {}
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and len(k) <= 100 and len(v) <= 200
            for k, v in labels.items()):
        raise BadRequest("labels must be an object of non-empty names to strings")
    reason = _text(d, "reason", required=True)
    now = time.time()
    start = _number(d, "starts_at") or now
    if start < now - 60:
        raise BadRequest("starts_at must not be in the past")
    end = _end(d, start, MAX_SILENCE_S, "ends_at")
    if end is None:
        raise BadRequest("ends_at or duration_s is required")
    sil = svc.add_silence(rule, labels, start, end, actor(), reason)
    return jsonify(silence=sil), 201


@bp.delete("/api/silences/<int:silence_id>")
@auth.require_role("operator")
def api_silence_end(silence_id: int):
    svc = service()
    sil, ended = svc.end_silence(silence_id, actor())
    if sil is None:
        raise BadRequest(f"no silence {silence_id}", 404)
    if not ended:
        raise BadRequest("this silence has already ended", 409)
    return jsonify(silence=sil)


@bp.get("/api/alerts/backtest")
@reads.heavy
def api_backtest():
    """One rule with proposed settings replayed over the stored history (alerts/backtest.py):
    ``?rule=NAME&since=7d`` and any of ``warning``, ``critical``, ``clear``, ``for_s``,
    ``keep_firing_for_s``. A viewer may ask (it changes nothing); a heavy read."""
    settings: Settings = current_app.config["SETTINGS"]
    name = request.args.get("rule", "")
    if not name:
        raise BadRequest("rule is required, e.g. rule=host_cpu")
    if name not in build_rules(settings):
        raise BadRequest(f"rule: unknown rule {name[:80]!r}")
    if name in backtest.TICK_RULES:
        raise BadRequest(f"rule: {name} is judged from the dashboard's own state, not from stored "
                         "history")
    try:
        span = backtest.parse_since(request.args.get("since", "7d"))
    except ValueError as e:
        raise BadRequest(f"since: {e}") from None
    if span > BACKTEST_MAX_S:
        raise BadRequest("since: the page tests at most 31 days; use `python -m dashboard "
                         "backtest` for longer")
    change: dict[str, Any] = {"enabled": True}        # a disabled rule is tested as if enabled
    for key in BACKTEST_KEYS:
        raw = request.args.get(key, "").strip()
        if raw:
            try:
                value = float(raw)
            except ValueError:
                raise BadRequest(f"{key} must be a number, got {raw[:40]!r}") from None
            if not math.isfinite(value):
                raise BadRequest(f"{key} must be a finite number")
            change[key] = value
    try:
        rules = build_rules(backtest.apply_overrides(settings, {name: change}))
    except ConfigError as e:
        # "rules.NAME.warning: ..." -> "warning: ...": the form's field
        raise BadRequest(str(e).removeprefix(f"rules.{name}.")) from None
    until = time.time()
    doc = offload.read(current_app.extensions["dashboard"].store, _backtest, {name: rules[name]},
                       backtest.source_intervals(settings), until - span, until)
    return reads.json_response(backtest.public(doc))


def _backtest(store: Any, rules: dict, intervals: dict[str, float], since: float,
              until: float) -> dict[str, Any]:
    with HistoryReads(store.history_connect()) as history:
        return backtest.backtest(history, rules, intervals, since, until)


# --- pages ---------------------------------------------------------------------------------------

def _page_helpers() -> dict[str, Any]:
    tz = current_app.config["SETTINGS"].timezone
    return {"fmt_time": lambda t: fmt_time(t, tz) if t else "", "fmt_duration": fmt_duration,
            "fmt_value": fmt_value, "labels_text": labels_text}


@bp.get("/alerts")
def alerts_page():
    svc = service()
    history_days = 7
    data = svc.overview(history_s=history_days * 86400, limit=500)
    return render_template("alerts.html", data=data, rules=sorted(svc.rules),
                           history_days=history_days, settings=current_app.config["SETTINGS"],
                           backtest_rules=_backtest_rules(svc), v=asset_version(),
                           **_page_helpers())


def _backtest_rules(svc: AlertService) -> dict[str, dict[str, Any]]:
    """The backtest form's rules with their effective settings (the form's starting values)."""
    return {n: {"title": r.title, "unit": r.unit, "direction": r.direction, "warning": r.warning,
                "critical": r.critical, "clear": r.clear_level, "for_s": r.for_s,
                "keep_firing_for_s": r.keep_firing_for_s, "enabled": r.enabled}
            for n, r in sorted(build_rules(current_app.config["SETTINGS"]).items())
            if n not in backtest.TICK_RULES}


def _link_alert() -> dict[str, Any] | None:
    claims = auth.link_claims()
    data = claims.data if claims and isinstance(claims.data, dict) else {}
    alert_id = str(data.get("alert", ""))[:64]
    svc = service()
    with svc.lock:
        ep = svc.state.episode(alert_id)
        return svc.describe(ep, time.time()) if ep else None


@bp.get("/alerts/ack/<token>")
@auth.signed_link("ack")
def ack_link_page(token: str):
    return render_template("alert_ack.html", alert=_link_alert(), done=False, error=None,
                           token=token, v=asset_version(), **_page_helpers())


@bp.post("/alerts/ack/<token>")
@auth.signed_link("ack")
def ack_link_use(token: str):
    ep, error = _link_alert(), None
    try:
        claims = signing.signer().consume(token, "ack")
    except signing.LinkRefused as e:
        return render_template("alert_ack.html", alert=ep, done=False, error=str(e), token=None,
                               v=asset_version(), **_page_helpers()), 409
    p = auth.current_principal()
    channel = claims.data.get("channel", "") if isinstance(claims.data, dict) else ""
    by = f"link ({channel})" if p is None or p.kind == "link" else p.name
    comment = _text(request.form.to_dict(), "comment")
    if ep is None:
        error = "This alert is no longer known."
    else:
        try:
            ep = service().describe(service().acknowledge(ep["id"], by, comment), time.time())
        except AlertNotFiring:
            error = "This alert has already resolved; there is nothing to acknowledge."
    return render_template("alert_ack.html", alert=ep, done=error is None, error=error, token=None,
                           v=asset_version(), **_page_helpers()), (200 if error is None else 409)
