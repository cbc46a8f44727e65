"""What the pages and the API show about alerts, read from the store (right in any process:
the collecting one or a web instance that only reads)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alerts.service import AlertService


def counts(svc: "AlertService") -> dict[str, int]:
    """Firing alerts by severity, from the store: right in any process (web or collector)."""
    out = {"critical": 0, "warning": 0, "acknowledged": 0, "pending": len(pending_states(svc))}
    with svc.lock:
        for sev, (n, acked) in svc.state.firing_by_severity().items():
            out[sev] = out.get(sev, 0) + n
            out["acknowledged"] += acked
    return out


def pending_states(svc: "AlertService") -> list[dict[str, Any]]:
    with svc.lock:
        saved = svc.state.load_states()
    return [d for d in saved.values() if d.get("status") == "pending" and d.get("rule") in svc.rules]


def describe(svc: "AlertService", ep: dict[str, Any], now: float) -> dict[str, Any]:
    rule = svc.rules.get(ep["rule"])
    end = ep["resolved_at"] or now
    d = dict(ep)
    d.update(title=rule.title if rule else ep["rule"], unit=rule.unit if rule else "",
             metric=rule.metric if rule else None,
             panel=(svc.ctx.panel_for or {}).get(ep["rule"]),
             duration_s=round(end - ep["fired_at"], 3),
             time_to_ack_s=None if ep["acked_at"] is None else round(ep["acked_at"] - ep["fired_at"], 3),
             time_to_resolve_s=None if ep["resolved_at"] is None
             else round(ep["resolved_at"] - ep["fired_at"], 3),
             silenced_by=svc.state.active_silence(ep["rule"], ep["labels"], now))
    return d


def overview(svc: "AlertService", history_s: float = 86400.0, limit: int = 200) -> dict[str, Any]:
    now = svc.clock()
    with svc.lock:
        active = [svc.describe(e, now) for e in svc.state.episodes(status="firing")]
        recent = [svc.describe(e, now) for e in svc.state.episodes(
            status="resolved", since=now - history_s, limit=limit)]
        pending = [{"rule": d["rule"], "labels": d["labels"], "since": d["pending_since"],
                    "value": d.get("value"), "title": svc.rules[d["rule"]].title,
                    "unit": svc.rules[d["rule"]].unit,
                    "fires_at": (d["pending_since"] or now) + svc.rules[d["rule"]].for_s}
                   for d in pending_states(svc)]
        silences = svc.state.silences(since=now - history_s)
        for s in silences:
            s["active"] = s["ended_at"] is None and s["starts_at"] <= now < s["ends_at"]
        return {"now": now, "counts": svc.counts(), "active": active, "pending": pending,
                "recent": recent, "silences": silences,
                "channels": list(svc.outbox.status(svc.conn).values())}

