"""What a notification says: one *item* per alert transition, rendered for each channel kind.

An item (a plain dict, stored in the outbox) carries everything a message needs, so rendering
never reads live state: what crossed which level, the value, since when, the host and labels,
and links to the panel and to acknowledge. ``render_*`` turn one or more items (several when
storm control groups them, many in a digest) into the body a channel sends.

A firing (or escalated) item also carries ``context`` (dashboard/alert_context.py): what changed
around the alert. ``context_facts`` / ``context_text`` say it in plain text for every channel;
its texts come from the monitored system, so each renderer escapes them for its own markup.

The webhook body (schema ``dashboard.alert/v1``) is documented in docs/alerts.md.
"""
from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

SCHEMA = "dashboard.alert/v1"
VERBS = {"firing": "FIRING", "escalated": "ESCALATED", "deescalated": "DE-ESCALATED",
         "repeat": "STILL FIRING", "resolved": "RESOLVED"}


def fmt_value(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "no value"
    if unit == "s":
        return fmt_duration(v)
    digits = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2
    text = f"{v:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if unit == "%":
        return f"{text} %"
    return f"{text} {unit}".strip() if unit and not unit.startswith("/") else f"{text}{unit}"


def fmt_duration(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 and s < 600 else f"{s // 60} min"
    h, m = divmod(s // 60, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    return f"{h // 24} d {h % 24} h"


def fmt_time(ts: float, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def headline(item: Mapping[str, Any]) -> str:
    """One line: ``[CRITICAL] FIRING DB connection pool utilisation 96 % on web-1 (pool=main)``."""
    lab = labels_text(item["labels"])
    where = f" on {item['host']}" + (f" ({lab})" if lab else "")
    sev = "RESOLVED" if item["event"] == "resolved" else item["severity"].upper()
    verb = "" if item["event"] in ("firing", "resolved") else f" {VERBS[item['event']]}"
    value = "" if is_down(item) else " " + fmt_value(item["value"], item["unit"])
    return f"[{sev}]{verb} {item['title']}{value}{where}"


def is_down(item: Mapping[str, Any]) -> bool:
    """``<source>_down``: the value is only up/down, so messages say it in words."""
    return str(item["rule"]).endswith("_down")


def sentence(item: Mapping[str, Any], tz: str) -> str:
    """What happened, in words an on-call person acts on."""
    v = fmt_value(item["value"], item["unit"])
    lvl = fmt_value(item["threshold"], item["unit"])
    side = item["direction"]
    since = fmt_time(item["since"], tz)
    dur = fmt_duration(item["at"] - item["since"])
    ev = item["event"]
    if is_down(item):
        if ev == "resolved":
            return f"{item['title']}: reached again; it was down for {dur} since {since}."
        again = " Not acknowledged yet." if ev == "repeat" else ""
        why = f" Last error: {item['error']}." if item.get("error") else ""
        return (f"{item['title']}: down (or no sample for three intervals) since {since} "
                f"({dur}).{why}{again}")
    if item["rule"] == "notify_channel_failing":        # its value is how long it has failed
        ch = (item.get("labels") or {}).get("channel", "?")
        if ev == "resolved":
            return f"Notification channel {ch} delivers again."
        why = f" Last error: {item['error']}." if item.get("error") else ""
        again = " Not acknowledged yet." if ev == "repeat" else ""
        return (f"Notification channel {ch} has delivered nothing for "
                f"{fmt_duration(item['value'])}: messages sent to it are not arriving.{why}{again}")
    if ev == "resolved":
        return (f"{item['title']} is back to {v} (clear level {lvl}); resolved after {dur}, "
                f"was {item['severity']} since {since}.")
    if ev == "escalated":
        return (f"{item['title']} escalated from warning to critical: {v} is {side} the critical "
                f"level {lvl}; breaching since {since} ({dur}).")
    if ev == "deescalated":
        return (f"{item['title']} fell back from critical to warning: {v} is {side} the warning "
                f"level {lvl}; breaching since {since} ({dur}).")
    ack = " Not acknowledged yet." if ev == "repeat" else ""
    return (f"{item['title']} crossed the {item['severity']} level: {v} is {side} {lvl}, "
            f"since {since} ({dur}).{ack}")


def context_facts(ctx: Mapping[str, Any] | None) -> list[str]:
    """What changed around a firing alert, one fact a line, plain text (no link): the heaviest
    growing statements, the cache hit rate then and an hour before, the queue, the host."""
    if not ctx:
        return []
    lines = []
    st = ctx.get("statements")
    if st and st.get("rows"):
        lines.append(f"Statements whose time grew most (last {fmt_duration(st['recent_s'])} against "
                     f"the {fmt_duration(st['base_s'])} before, time per minute):")
        for n, r in enumerate(st["rows"], 1):
            was = ("new" if r["before_ms_per_min"] is None or r["before_ms_per_min"] == 0
                   else f"was {fmt_value(r['before_ms_per_min'], 'ms')}")
            schema = f" [{r['schema']}]" if r.get("schema") else ""
            lines.append(f"  {n}. {fmt_value(r['ms_per_min'], 'ms')}/min ({was}), {r['calls']} calls: "
                         f"{' '.join(str(r['text']).split()) or r['id']}{schema}")
    elif st is not None:
        lines.append("Statements: none grew in the last minutes.")
    cache = ctx.get("cache_hit_rate")
    if cache:
        before = cache.get("hour_before")
        lines.append(f"Cache hit rate: {fmt_value(cache['now'], '%')} now, "
                     + (f"{fmt_value(before, '%')} an hour before" if before is not None
                        else "no sample an hour before"))
    q = ctx.get("queue")
    if q:
        rate = ""
        if q.get("dequeued_per_s") is not None:
            rate = f", {fmt_value(q['dequeued_per_s'], 'jobs/s')} processed"
        if q.get("net_dequeue_per_s") is not None:
            net = q["net_dequeue_per_s"]
            rate += (f", depth falling by {fmt_value(net, 'jobs/s')}" if net > 0 else
                     f", depth rising by {fmt_value(-net, 'jobs/s')}" if net < 0 else ", depth steady")
        lines.append(f"Queue {q['name']}: {fmt_value(q.get('pending'), 'jobs')} pending{rate}")
    host = ctx.get("host")
    if host:
        lines.append(f"Host: CPU {fmt_value(host.get('cpu_percent'), '%')}, "
                     f"load {fmt_value(host.get('load1'), '')}")
    return lines


def context_link(ctx: Mapping[str, Any] | None) -> str | None:
    """The live page fixed on the alert's moment (``/?from=EPOCH&to=EPOCH``)."""
    win = (ctx or {}).get("window")
    return win["url"] if win else None


def context_text(ctx: Mapping[str, Any] | None, indent: str = "") -> str:
    """The whole context as plain text, the link last: for any channel's renderer."""
    lines = context_facts(ctx)
    link = context_link(ctx)
    if link:
        lines.append(f"Live page at that moment: {link}")
    return "\n".join(indent + line for line in lines)


def subject(items: Sequence[Mapping[str, Any]], digest: bool) -> str:
    if len(items) == 1:
        return headline(items[0])
    crit = sum(1 for i in items if i["severity"] == "critical" and i["event"] != "resolved")
    res = sum(1 for i in items if i["event"] == "resolved")
    kind = "Digest" if digest else "Alerts"
    return (f"[{kind}] {len(items)} alert changes on {items[0]['host']}: {crit} critical, "
            f"{res} resolved")


def render_text(items: Sequence[Mapping[str, Any]], tz: str, digest: bool) -> str:
    lines = []
    if digest:
        lines += ["More than the hourly message budget of this channel was reached; alert "
                  "changes are grouped into this digest.", ""]
    for it in items:
        lines.append(headline(it))
        lines.append("  " + sentence(it, tz))
        lines.append(f"  Rule {it['rule']} on {it['metric']}; host {it['host']}"
                     + (f"; {labels_text(it['labels'])}" if it["labels"] else ""))
        lines.append(f"  Panel: {it['links']['panel']}")
        if it["links"].get("ack"):
            lines.append(f"  Acknowledge: {it['links']['ack']}")
        if it.get("context"):
            lines.append("  What changed around it:")
            lines.append(context_text(it["context"], "    "))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_html(items: Sequence[Mapping[str, Any]], tz: str, digest: bool) -> str:
    e = html.escape
    colors = {"critical": "#c62828", "warning": "#b26a00", "resolved": "#2e7d32"}
    parts = ["<html><body style=\"font-family:sans-serif\">"]
    if digest:
        parts.append("<p><em>This channel reached its hourly message budget; alert changes are "
                     "grouped into this digest.</em></p>")
    for it in items:
        color = colors["resolved" if it["event"] == "resolved" else it["severity"]]
        links = f'<a href="{e(it["links"]["panel"])}">Open the panel</a>'
        if it["links"].get("ack"):
            links += f' &middot; <a href="{e(it["links"]["ack"])}">Acknowledge</a>'
        parts.append(
            f'<div style="border-left:4px solid {color};padding:4px 10px;margin:10px 0">'
            f'<p style="margin:0;font-weight:bold;color:{color}">{e(headline(it))}</p>'
            f"<p style=\"margin:4px 0\">{e(sentence(it, tz))}</p>"
            f"<p style=\"margin:4px 0;color:#555\">Rule <code>{e(it['rule'])}</code> on "
            f"<code>{e(it['metric'])}</code>, host {e(it['host'])}"
            + (f", {e(labels_text(it['labels']))}" if it["labels"] else "")
            + f"</p><p style=\"margin:4px 0\">{links}</p>{_context_html(it.get('context'))}</div>")
    parts.append("</body></html>")
    return "".join(parts)


def _context_html(ctx: Mapping[str, Any] | None) -> str:
    facts, link = context_facts(ctx), context_link(ctx)
    if not facts and not link:
        return ""
    e = html.escape
    out = ['<div style="margin:6px 0;color:#333"><p style="margin:4px 0"><b>What changed around '
           'it</b></p><ul style="margin:2px 0;padding-left:18px">']
    for line in facts:
        out.append(f'<li style="white-space:pre-wrap">{e(line.strip())}</li>')
    out.append("</ul>")
    if link:
        out.append(f'<p style="margin:4px 0"><a href="{e(link)}">Open the live page at that '
                   "moment</a></p>")
    out.append("</div>")
    return "".join(out)


def webhook_body(items: Sequence[Mapping[str, Any]], idempotency_key: str, channel: str,
                 sent_at: float, digest: bool, tz: str) -> dict[str, Any]:
    """The documented webhook JSON (``dashboard.alert/v1``)."""
    alerts = []
    for it in items:
        alerts.append({
            "id": it["alert_id"], "idempotency_key": it["idempotency_key"], "event": it["event"],
            "rule": it["rule"], "title": it["title"], "metric": it["metric"],
            "labels": dict(it["labels"]), "host": it["host"], "severity": it["severity"],
            "previous_severity": it.get("previous"), "value": _num(it["value"]),
            "unit": it["unit"], "threshold": it["threshold"], "direction": it["direction"],
            "since": it["since"], "since_iso": iso(it["since"]), "at": it["at"],
            "at_iso": iso(it["at"]), "duration_s": round(it["at"] - it["since"], 3),
            "acknowledged": bool(it.get("acknowledged")), "error": it.get("error"),
            "summary": sentence(it, tz),
            "links": dict(it["links"]),
            "context": it.get("context"),
        })
    return {"schema": SCHEMA, "idempotency_key": idempotency_key, "channel": channel,
            "sent_at": sent_at, "digest": digest, "title": subject(items, digest),
            "alerts": alerts}


def slack_body(items: Sequence[Mapping[str, Any]], tz: str, digest: bool) -> dict[str, Any]:
    """A Slack incoming-webhook payload: ``text`` (fallback, notifications) plus blocks."""
    def esc(s: str) -> str:   # Slack mrkdwn control characters
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    blocks: list[dict[str, Any]] = []
    if digest or len(items) > 1:
        blocks.append({"type": "header", "text": {"type": "plain_text",
                                                   "text": subject(items, digest)[:150]}})
    for it in items[:40]:           # Slack allows 50 blocks per message
        links = f"<{it['links']['panel']}|panel>"
        if it["links"].get("ack"):
            links += f" · <{it['links']['ack']}|acknowledge>"
        why = _cut_escaped("".join(f"\n{line}" for line in context_facts(it.get("context"))), esc,
                           SLACK_CONTEXT_MAX)
        moment = context_link(it.get("context"))
        if moment:
            links += f" · <{esc(moment)}|live page at that moment>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text":
                       f"*{esc(headline(it))}*\n{esc(sentence(it, tz))}{why}\n{links}"}})
    if len(items) > 40:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                       "text": f"…and {len(items) - 40} more on the alerts page"}]})
    return {"text": esc(subject(items, digest)), "blocks": blocks}


# The context's share of a Slack section (3,000 characters in all), counted after escaping.
SLACK_CONTEXT_MAX = 2000


def _cut_escaped(text: str, esc: Callable[[str], str], limit: int) -> str:
    """``esc(text)`` cut to ``limit`` characters between escaped characters, never inside an
    entity (``&amp;`` cut to ``&am`` would show as garbage); ``…`` says it was cut."""
    out = esc(text)
    if len(out) <= limit:
        return out
    parts, n = [], 0
    for ch in text:
        e = esc(ch)
        if n + len(e) > limit - 1:
            break
        parts.append(e)
        n += len(e)
    return "".join(parts) + "…"


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
