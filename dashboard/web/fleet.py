"""The fleet view: one row per host (this one and every agent), worst first."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, render_template

from dashboard import offload
from dashboard.web.pages import asset_version

bp = Blueprint("fleet", __name__)

# Each row figure and the alert rule whose critical level it is ranked against.
PRESSURE_RULES = {"cpu": "host_cpu", "mem": "host_memory", "disk": "host_disk", "load": "host_load"}


def pressure_levels(rules) -> dict[str, float]:
    """How close each figure may come before it is critical: the effective rules' critical
    levels (``[rules.host_cpu] critical = 80`` ranks CPU against 80), or their warning level
    where a rule has no critical one; a disabled rule does not rank."""
    out = {}
    for key, name in PRESSURE_RULES.items():
        rule = rules.get(name)
        level = None if rule is None or not rule.enabled else (rule.critical or rule.warning)
        if level:
            out[key] = float(level)
    return out


def fleet_rows(runtime, now: float | None = None) -> list[dict]:
    """``pressure``: the largest figure / its critical level (1.0 = at the critical level)."""
    now = time.time() if now is None else now
    settings = runtime.settings
    hosts: dict[str, dict] = {}

    def row(name: str) -> dict:
        return hosts.setdefault(name, {"host": name, "up": None, "last_ts": None, "cpu": None,
                                       "mem": None, "load": None, "disk": None, "agent": True})

    for s in offload.read(runtime.store, lambda view: view.latest(within_s=86400)):
        if s.source == "host":
            name = s.labels.get("host", settings.host_name)
            r = row(name)
            r["agent"] = False
            if "host.up" in s.values:
                r["up"] = s.values["host.up"] == 1.0 and now - s.ts < 3 * settings.interval_s + 5
        elif s.source == "agents" and "host" in s.labels:
            r = row(s.labels["host"])
            if "host.up" in s.values:
                r["up"] = s.values["host.up"] == 1.0
            # The newest sample of a retired host is its retirement (agent --retire).
            r["retired"] = s.values.get("host.retired") == 1.0
        else:
            continue
        v = s.values
        if "host.cpu_percent" in v:
            r["cpu"], r["last_ts"] = v["host.cpu_percent"], max(r["last_ts"] or 0, s.ts)
        if "host.mem_percent" in v:
            r["mem"] = v["host.mem_percent"]
        if "host.load_per_core" in v:
            r["load"] = v["host.load_per_core"]
        if "host.disk_percent" in v:
            r["disk"] = max(r["disk"] or 0.0, v["host.disk_percent"])
    out = [r for r in hosts.values() if not r.get("retired")]
    levels = pressure_levels(runtime.rules)
    for r in out:
        r["pressure"] = max([(r[k] or 0.0) / lim for k, lim in levels.items()], default=0.0)
        r["age_s"] = None if r["last_ts"] is None else round(now - r["last_ts"], 1)
    # Down hosts first, then the most pressed.
    out.sort(key=lambda r: (r["up"] is not False, -r["pressure"], r["host"]))
    return out


@bp.get("/fleet")
def fleet_page():
    rt = current_app.extensions["dashboard"]
    return render_template("fleet.html", rows=fleet_rows(rt), settings=rt.settings,
                           v=asset_version())


@bp.get("/api/fleet")
def fleet_api():
    return jsonify(ts=time.time(), hosts=fleet_rows(current_app.extensions["dashboard"]))
