"""What the on-call vendors' channels say: the same items as ``alerts/messages.py``, in each
vendor's documented shape (the words come from ``messages.headline`` and ``messages.sentence``).

* PagerDuty Events API v2: one event per item; ``dedup_key`` is the alert episode's id, so
  ``trigger``, ``acknowledge`` and ``resolve`` of one episode meet on one PagerDuty alert.
* Microsoft Teams (a Workflows webhook): a ``message`` with one Adaptive Card attachment; every
  value in TextRuns, which Teams never reads as Markdown.
* Telegram ``sendMessage`` with ``parse_mode`` HTML: every value escaped, only Telegram's tags.
* ntfy JSON publishing: title, message, priority from the severity, tags, the ack link as a
  ``view`` action button.

Credentials (routing key, bot token, chat, topic) are not in these bodies: they are stored in the
outbox, and the notifier adds them when it sends (``alerts/vendors.py``).
"""
from __future__ import annotations

import html
import json
from typing import Any, Mapping, Sequence

from alerts.messages import (
    context_facts,
    context_link,
    fmt_time,
    fmt_value,
    headline,
    iso,
    labels_text,
    sentence,
    subject,
)

PD_SUMMARY_MAX = 1024             # payload.summary, PagerDuty's documented limit
TEAMS_MAX_ITEMS = 20
TEAMS_MAX_BYTES = 27_000          # Teams refuses messages over ~28 KB
TELEGRAM_MAX = 4096               # characters of a message's text, after entity parsing
NTFY_MAX_BYTES = 4000             # ntfy turns a message over 4,096 bytes into an attachment
ITEM_TEXT_MAX = 600               # of any one value (an error text, labels) in a chat message

# Items of these events go to PagerDuty: a "repeat" would only duplicate the open alert there
# (PagerDuty escalates by its own policies), so it is left out.
PD_ACTIONS = {"firing": "trigger", "escalated": "trigger", "deescalated": "trigger",
              "acknowledged": "acknowledge", "resolved": "resolve"}


def _state(item: Mapping[str, Any]) -> str:
    return "resolved" if item["event"] == "resolved" else str(item["severity"])


def _clip(text: str, limit: int = ITEM_TEXT_MAX) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- PagerDuty ------------------------------------------------------------------------------------

def pagerduty_events(items: Sequence[Mapping[str, Any]], tz: str) -> list[dict[str, Any]]:
    """The Events API v2 events for ``items`` (without ``routing_key``), in order."""
    out: list[dict[str, Any]] = []
    for it in items:
        action = PD_ACTIONS.get(it["event"])
        if action is None:
            continue
        event: dict[str, Any] = {"event_action": action, "dedup_key": it["alert_id"]}
        if action == "trigger":
            details = {"summary": sentence(it, tz), "event": it["event"], "rule": it["rule"],
                       "metric": it["metric"], "labels": dict(it["labels"]),
                       "value": fmt_value(it["value"], it["unit"]),
                       "threshold": fmt_value(it["threshold"], it["unit"]),
                       "since": iso(it["since"])}
            if it.get("error"):
                details["error"] = it["error"]
            facts = context_facts(it.get("context"))
            if facts:                       # what changed around it (docs/alerts.md, "context")
                details["what_changed"] = [_clip(f) for f in facts]
            event["payload"] = {
                "summary": _clip(headline(it), PD_SUMMARY_MAX), "source": it["host"],
                "severity": "critical" if it["severity"] == "critical" else "warning",
                "timestamp": iso(it["at"]), "component": it["metric"], "class": it["rule"],
                "custom_details": details}
            if it["labels"]:
                event["payload"]["group"] = _clip(labels_text(it["labels"]), 255)
            event["client"] = "dashboard"
            event["client_url"] = it["links"]["alert"]
            links = [{"href": it["links"]["panel"], "text": "Open the panel"},
                     {"href": it["links"]["alert"], "text": "The alert on the dashboard"}]
            if it["links"].get("ack"):
                links.append({"href": it["links"]["ack"], "text": "Acknowledge on the dashboard"})
            moment = context_link(it.get("context"))
            if moment:
                links.append({"href": moment, "text": "The live page at that moment"})
            event["links"] = links
        out.append(event)
    return out


# --- Microsoft Teams --------------------------------------------------------------------------------

_TEAMS_STYLE = {"critical": ("attention", "Attention"), "warning": ("warning", "Warning"),
                "resolved": ("good", "Good")}


def _runs(*parts: tuple[str, bool], color: str | None = None) -> dict[str, Any]:
    """A RichTextBlock of TextRuns: unlike TextBlock and FactSet, a TextRun is never read as
    Markdown, so a label like ``[x](https://evil)`` from a monitored system stays plain text
    (backslash escapes render differently on Teams' desktop and phone apps)."""
    inlines = []
    for text, bold in parts:
        run: dict[str, Any] = {"type": "TextRun", "text": text}
        if bold:
            run["weight"] = "Bolder"
        if color:
            run["color"] = color
        inlines.append(run)
    return {"type": "RichTextBlock", "inlines": inlines}


def _teams_item(it: Mapping[str, Any], tz: str) -> dict[str, Any]:
    style, color = _TEAMS_STYLE[_state(it)]
    facts = [("Rule", it["rule"]), ("Metric", it["metric"]), ("Host", it["host"])]
    if it["labels"]:
        facts.append(("Labels", _clip(labels_text(it["labels"]))))
    facts.append(("Since", fmt_time(it["since"], tz)))
    actions = [{"type": "Action.OpenUrl", "title": "Open the panel", "url": it["links"]["panel"]}]
    if it["links"].get("ack"):
        actions.append({"type": "Action.OpenUrl", "title": "Acknowledge", "url": it["links"]["ack"]})
    moment = context_link(it.get("context"))
    if moment:
        actions.append({"type": "Action.OpenUrl", "title": "That moment", "url": moment})
    changed = [_runs((_clip(line), False)) for line in context_facts(it.get("context"))]
    return {"type": "Container", "style": style, "items": [
        _runs((_clip(headline(it)), True), color=color),
        _runs((_clip(sentence(it, tz)), False)),
        *[_runs((f"{name}: ", True), (str(value), False)) for name, value in facts],
        *changed,
        {"type": "ActionSet", "actions": actions}]}


def teams_message(items: Sequence[Mapping[str, Any]], tz: str, digest: bool) -> dict[str, Any]:
    """A Workflows webhook body: a ``message`` carrying one Adaptive Card (version 1.4)."""
    head: list[dict[str, Any]] = []
    if digest or len(items) > 1:
        head.append(_runs((subject(items, digest), True)))
    if digest:
        head.append({"type": "TextBlock", "isSubtle": True, "wrap": True, "text":
                     "This channel reached its hourly message budget; alert changes are grouped."})
    blocks = [_teams_item(it, tz) for it in items[:TEAMS_MAX_ITEMS]]
    while True:
        body = head + blocks
        left = len(items) - len(blocks)
        if left:
            body = body + [{"type": "TextBlock", "isSubtle": True, "wrap": True,
                            "text": f"…and {left} more on the alerts page"}]
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard", "version": "1.4", "msteams": {"width": "Full"},
                "body": body}
        message = {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
             "content": card}]}
        if len(blocks) <= 1 or len(json.dumps(message).encode()) <= TEAMS_MAX_BYTES:
            return message
        blocks.pop()


# --- Telegram --------------------------------------------------------------------------------------

_TELEGRAM_MARK = {"critical": "\U0001F534", "warning": "\U0001F7E0", "resolved": "\u2705"}


def _tg(text: str, limit: int = ITEM_TEXT_MAX) -> str:
    """Text for Telegram's HTML mode: ``<``, ``>`` and ``&`` are the characters it parses."""
    return html.escape(_clip(text, limit), quote=False)


def _tg_href(url: str) -> str:
    return html.escape(url, quote=True)


def _tg_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


# A page's first item always goes, its values cut shorter until it fits (escaping can make a
# value five times longer: a queue named with 700 "&" alone is over the limit).
_TG_ITEM_LIMITS = (ITEM_TEXT_MAX, 200, 80, 40)


def _telegram_item(it: Mapping[str, Any], tz: str, limit: int = ITEM_TEXT_MAX) -> str:
    def tg(text: str) -> str:
        return _tg(text, limit)

    links = f'<a href="{_tg_href(it["links"]["panel"])}">Open the panel</a>'
    if it["links"].get("ack"):
        links += f' · <a href="{_tg_href(it["links"]["ack"])}">Acknowledge</a>'
    where = f"<code>{tg(it['rule'])}</code> on <code>{tg(it['metric'])}</code>, host {tg(it['host'])}"
    if it["labels"]:
        where += f", {tg(labels_text(it['labels']))}"
    moment = context_link(it.get("context"))
    if moment:
        links += f' · <a href="{_tg_href(moment)}">That moment</a>'
    changed = "".join(f"{tg(line)}\n" for line in context_facts(it.get("context")))
    return (f"{_TELEGRAM_MARK[_state(it)]} <b>{tg(headline(it))}</b>\n{tg(sentence(it, tz))}\n"
            f"{where}\n{changed}{links}")


def telegram_text(items: Sequence[Mapping[str, Any]], tz: str, digest: bool) -> str:
    """``sendMessage`` text in HTML mode, at most 4,096 characters however many items."""
    parts = []
    if digest or len(items) > 1:
        parts.append(f"<b>{_tg(subject(items, digest))}</b>")
    shown = 0
    for it in items:
        more = f"\n\n…and {len(items) - shown - 1} more on the alerts page" if len(items) > 1 else ""
        for limit in _TG_ITEM_LIMITS if not shown else _TG_ITEM_LIMITS[:1]:
            block = _telegram_item(it, tz, limit)
            if _tg_len("\n\n".join(parts + [block]) + more) <= TELEGRAM_MAX:
                break
        else:
            break
        parts.append(block)
        shown += 1
    if shown < len(items):
        parts.append(f"…and {len(items) - shown} more on the alerts page")
    return "\n\n".join(parts)


# --- ntfy --------------------------------------------------------------------------------------------

NTFY_PRIORITY = {"critical": 5, "warning": 4, "resolved": 3}       # urgent, high, default
NTFY_TAG = {"critical": "rotating_light", "warning": "warning", "resolved": "white_check_mark"}


def ntfy_message(items: Sequence[Mapping[str, Any]], tz: str, digest: bool) -> dict[str, Any]:
    """A JSON publish body (without ``topic``): plain text, priority, tags and buttons."""
    states = [_state(it) for it in items]
    top = max(states, key=lambda s: NTFY_PRIORITY[s])
    lines: list[str] = []
    shown = 0
    for it in items:
        block = [_clip(sentence(it, tz)), f"Rule {it['rule']}, host {it['host']}"
                 + (f", {_clip(labels_text(it['labels']))}" if it["labels"] else "")]
        block += [_clip(line) for line in context_facts(it.get("context"))]
        text = "\n".join(lines + ([headline(it)] if len(items) > 1 else []) + block)
        if shown and len(text.encode()) > NTFY_MAX_BYTES - 80:
            break
        lines += ([headline(it)] if len(items) > 1 else []) + block + [""]
        shown += 1
    if shown < len(items):
        lines.append(f"…and {len(items) - shown} more on the alerts page")
    first = items[0]
    actions = []
    ack = next((it["links"]["ack"] for it in items if it["links"].get("ack")), None)
    if ack:
        actions.append({"action": "view", "label": "Acknowledge", "url": ack, "clear": True})
    actions.append({"action": "view", "label": "Open the panel", "url": first["links"]["panel"]})
    moment = context_link(first.get("context"))
    if moment:                      # ntfy allows three actions
        actions.append({"action": "view", "label": "That moment", "url": moment})
    rules = list(dict.fromkeys(str(it["rule"]) for it in items))[:4]
    message = "\n".join(lines).strip().encode()[:NTFY_MAX_BYTES].decode(errors="ignore")
    return {"title": _clip(subject(items, digest), 250), "message": message,
            "priority": NTFY_PRIORITY[top], "tags": [NTFY_TAG[top]] + rules,
            "click": first["links"]["alert"],
            "actions": actions}
