"""Alerts of one day, for the managers' daily summary (issue 6), from ``alert_episodes``.

An alert belongs to the day it fired in. Alerts that fired earlier and were still firing when
the day began are counted apart ("carried over"), so a long outage is neither lost nor counted
twice. Times to acknowledge and to resolve are from firing (the on-call page), not from the
first breach (the hold time before firing is the rule's, not the people's).
"""
from __future__ import annotations

import statistics
from typing import Any

from dashboard.store.alerts import AlertStateRepo


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"count": 0, "median_s": None, "max_s": None}
    return {"count": len(values), "median_s": statistics.median(values), "max_s": max(values)}


def day_summary(repo: AlertStateRepo, start: float, end: float, now: float) -> dict[str, Any]:
    """Alerts fired in ``[start, end)``: counts by severity, time to ack / resolve, the longest."""
    if not repo.exists():
        return {"available": False, "count": 0, "by_severity": {}, "alerts": [],
                "carried_over": 0, "time_to_ack": _spread([]), "time_to_resolve": _spread([]),
                "longest": None, "unacknowledged": 0, "still_firing": 0}
    fired = repo.fired_between(start, end)
    carried = repo.carried_over(start)
    horizon = min(now, end) if now < end else now
    alerts = []
    for ep in fired:
        stop = ep["resolved_at"] if ep["resolved_at"] is not None else max(horizon, ep["fired_at"])
        alerts.append({
            "id": ep["id"], "rule": ep["rule"], "labels": ep["labels"],
            "severity": ep["peak_severity"], "status": ep["status"],
            "fired_at": ep["fired_at"], "acked_at": ep["acked_at"], "acked_by": ep["acked_by"],
            "resolved_at": ep["resolved_at"], "peak": ep["peak"], "threshold": ep["threshold"],
            "duration_s": stop - ep["fired_at"],
            "time_to_ack_s": None if ep["acked_at"] is None else ep["acked_at"] - ep["fired_at"],
            "time_to_resolve_s": None if ep["resolved_at"] is None
            else ep["resolved_at"] - ep["fired_at"],
        })
    by_sev: dict[str, int] = {}
    for a in alerts:
        by_sev[a["severity"]] = by_sev.get(a["severity"], 0) + 1
    longest = max(alerts, key=lambda a: a["duration_s"], default=None)
    return {
        "available": True, "count": len(alerts), "by_severity": by_sev, "alerts": alerts,
        "carried_over": carried,
        "time_to_ack": _spread([a["time_to_ack_s"] for a in alerts if a["time_to_ack_s"] is not None]),
        "time_to_resolve": _spread([a["time_to_resolve_s"] for a in alerts
                                    if a["time_to_resolve_s"] is not None]),
        "longest": longest,
        "unacknowledged": sum(1 for a in alerts if a["acked_at"] is None),
        "still_firing": sum(1 for a in alerts if a["resolved_at"] is None),
    }
