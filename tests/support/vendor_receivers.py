"""Local stand-ins for the on-call vendors' HTTP APIs (real sockets on 127.0.0.1), built on
``WebhookReceiver``.

Each one checks every request against the vendor's documented request shape (required fields,
types, lengths, headers, the credential) and answers as the vendor documents: its success body,
or, for a request that breaks the documented shape, the vendor's own error body (kept in
``.problems``, so a test asserts it stays empty). ``respond_with([...])`` takes, besides plain
answers, the names of the vendor's documented failures: ``"rate_limited"`` (429),
``"server_error"`` (5xx) and ``"rejected"`` (a permanent 4xx with the vendor's message), and
``"accepted"``: the vendor's own success, as when nothing is programmed (to program a failure
after some successes).
``hold()`` records the next requests but holds their answers until ``release()``: a test can kill
the sender after the vendor has the message and before it hears back.
"""
from __future__ import annotations

import html
import json
import re
import threading
import time
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.receivers import ReceivedRequest, Response, WebhookReceiver, _normalise

Answer = tuple[int, bytes, dict[str, str]]
JSON = {"Content-Type": "application/json"}


def _json(status: int, doc: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, json.dumps(doc).encode(), {**JSON, **(headers or {})}


class VendorReceiver(WebhookReceiver):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._hold = threading.Event()
        self._hold.set()

    # what a subclass gives
    def check(self, req: ReceivedRequest, doc: Any) -> list[str]:
        raise NotImplementedError

    def success(self, req: ReceivedRequest, doc: Any) -> Answer:
        raise NotImplementedError

    def invalid(self, req: ReceivedRequest, problems: list[str]) -> Answer:
        raise NotImplementedError

    def failure(self, name: str, req: ReceivedRequest) -> Answer:
        raise NotImplementedError

    def _answer(self, req: ReceivedRequest, programmed: Response | None) -> Answer:
        try:
            doc = json.loads(req.body.decode())
        except ValueError:
            doc = None
        problems = self.check(req, doc)
        if problems:
            self.problems.extend(problems)
            return self.invalid(req, problems)
        if programmed is None or programmed == "accepted":
            return self.success(req, doc)
        if isinstance(programmed, str):
            return self.failure(programmed, req)
        return _normalise(programmed)

    def hold(self) -> None:
        self._hold.clear()

    def release(self) -> None:
        self._hold.set()

    def _before_answer(self) -> None:
        self._hold.wait(30)

    def stop(self) -> None:
        self.release()
        super().stop()

    def documents(self) -> list[Any]:
        """The JSON bodies of the requests answered 2xx."""
        return [r.json() for r in self.requests if 200 <= r.status < 300]


def _json_request(req: ReceivedRequest, doc: Any) -> list[str]:
    out = []
    if req.method != "POST":
        out.append(f"method {req.method}, expected POST")
    if not (req.header("Content-Type") or "").startswith("application/json"):
        out.append(f"Content-Type {req.header('Content-Type')!r}, expected application/json")
    if not isinstance(doc, dict):
        out.append("the body is not a JSON object")
    return out


# --- PagerDuty Events API v2 -----------------------------------------------------------------------

PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}
PD_TOP = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client",
          "client_url"}
PD_PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class",
              "custom_details"}


class PagerDutyReceiver(VendorReceiver):
    """``POST /v2/enqueue``; keeps PagerDuty's view: one alert per ``dedup_key``, its status, and
    how many triggers were merged into it."""

    def __init__(self, routing_key: str) -> None:
        super().__init__()
        self.routing_key = routing_key
        self.alerts: dict[str, dict[str, Any]] = {}

    @property
    def endpoint(self) -> str:
        return self.url_for("/v2/enqueue")

    def check(self, req: ReceivedRequest, doc: Any) -> list[str]:
        out = _json_request(req, doc)
        if urlsplit(req.path).path != "/v2/enqueue":
            out.append(f"path {req.path}, expected /v2/enqueue")
        if out:
            return out
        out += [f"unknown field '{k}'" for k in doc if k not in PD_TOP]
        if doc.get("routing_key") != self.routing_key:
            out.append("Length of 'routing_key' is incorrect (should be 32 characters)"
                       if len(str(doc.get("routing_key"))) != 32 else "'routing_key' is not known")
        action = doc.get("event_action")
        if action not in PD_ACTIONS:
            out.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
        dedup = doc.get("dedup_key")
        if action in ("acknowledge", "resolve") and dedup is None:
            out.append("'dedup_key' is required for acknowledge and resolve events")
        if dedup is not None and not (isinstance(dedup, str) and 0 < len(dedup) <= 255):
            out.append("'dedup_key' must be a string of at most 255 characters")
        if action == "trigger":
            p = doc.get("payload")
            if not isinstance(p, dict):
                return out + ["'payload' is missing or not an object"]
            out += [f"unknown payload field '{k}'" for k in p if k not in PD_PAYLOAD]
            if not (isinstance(p.get("summary"), str) and 0 < len(p["summary"]) <= 1024):
                out.append("'payload.summary' is missing or longer than 1024 characters")
            if not (isinstance(p.get("source"), str) and p["source"]):
                out.append("'payload.source' is missing")
            if p.get("severity") not in PD_SEVERITIES:
                out.append("'payload.severity' is invalid (must be critical, error, warning or info)")
            if "timestamp" in p:
                try:
                    datetime.fromisoformat(str(p["timestamp"]).replace("Z", "+00:00"))
                except ValueError:
                    out.append("'payload.timestamp' is not ISO 8601")
            if "custom_details" in p and not isinstance(p["custom_details"], dict):
                out.append("'payload.custom_details' must be an object")
            for link in doc.get("links", []):
                if not (isinstance(link, dict) and isinstance(link.get("href"), str)):
                    out.append("'links' entries need an 'href'")
        return out

    def success(self, req: ReceivedRequest, doc: Any) -> Answer:
        key = doc.get("dedup_key") or f"auto-{len(self.alerts)}"
        alert = self.alerts.get(key)
        if doc["event_action"] == "trigger":
            if alert is None or alert["status"] == "resolved":
                alert = self.alerts[key] = {"status": "triggered", "triggers": 0}
            alert["triggers"] += 1
        elif alert is not None and alert["status"] != "resolved":
            alert["status"] = "acknowledged" if doc["event_action"] == "acknowledge" else "resolved"
        return _json(202, {"status": "success", "message": "Event processed", "dedup_key": key})

    def invalid(self, req: ReceivedRequest, problems: list[str]) -> Answer:
        return _json(400, {"status": "invalid event", "message": "Event object is invalid",
                           "errors": problems})

    def failure(self, name: str, req: ReceivedRequest) -> Answer:
        if name == "rate_limited":
            return _json(429, {"status": "throttle event",
                               "message": "Requests for this service are arriving too quickly"})
        if name == "server_error":
            return 502, b"Bad Gateway", {}
        return _json(400, {"status": "invalid event", "message": "Event object is invalid",
                           "errors": ["'routing_key' does not belong to an enabled integration"]})


# --- Microsoft Teams (a Workflows webhook) ---------------------------------------------------------

TEAMS_MAX_BYTES = 28 * 1024


def _card_elements(elements: Any, out: list[str], where: str) -> None:
    if not isinstance(elements, list):
        out.append(f"{where} is not a list")
        return
    for i, el in enumerate(elements):
        if not (isinstance(el, dict) and isinstance(el.get("type"), str)):
            out.append(f"{where}[{i}] has no type")
            continue
        t = el["type"]
        if t in ("TextBlock", "FactSet") and "](" in json.dumps(el):
            out.append(f"{where}[{i}]: Markdown link syntax in a {t}, which Teams renders as a link")
        if t == "TextBlock" and not isinstance(el.get("text"), str):
            out.append(f"{where}[{i}]: a TextBlock needs text")
        elif t == "RichTextBlock" and not all(
                isinstance(r, dict) and r.get("type") == "TextRun" and isinstance(r.get("text"), str)
                for r in el.get("inlines", [None])):
            out.append(f"{where}[{i}]: a RichTextBlock needs TextRun inlines with text")
        elif t == "FactSet" and not all(isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                                        for f in el.get("facts", [None])):
            out.append(f"{where}[{i}]: a FactSet needs facts of title and value")
        elif t == "Container":
            _card_elements(el.get("items"), out, f"{where}[{i}].items")
        elif t == "ActionSet":
            for a in el.get("actions", []):
                if a.get("type") == "Action.OpenUrl" and not str(a.get("url", "")).startswith("http"):
                    out.append(f"{where}[{i}]: Action.OpenUrl needs an http(s) url")
        elif t not in ("TextBlock", "RichTextBlock", "FactSet", "Container", "ActionSet",
                       "ColumnSet", "Image"):
            out.append(f"{where}[{i}]: unknown element type {t}")


class TeamsReceiver(VendorReceiver):
    """A Workflows "When a Teams webhook request is received" trigger: the signed URL, a
    ``message`` with Adaptive Card attachments; 202 Accepted."""

    PATH = "/workflows/0f3c/triggers/manual/paths/invoke"

    def __init__(self, sig: str) -> None:
        super().__init__()
        self.sig = sig

    @property
    def endpoint(self) -> str:
        return self.url_for(f"{self.PATH}?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.sig}")

    def check(self, req: ReceivedRequest, doc: Any) -> list[str]:
        out = _json_request(req, doc)
        parts = urlsplit(req.path)
        if parts.path != self.PATH or parse_qs(parts.query).get("sig") != [self.sig]:
            out.append("the signature of the URL does not match")
        if len(req.body) > TEAMS_MAX_BYTES:
            out.append(f"the message is {len(req.body)} bytes, over Teams' 28 KB")
        if out:
            return out
        if doc.get("type") != "message":
            out.append("'type' must be 'message'")
        atts = doc.get("attachments")
        if not (isinstance(atts, list) and atts):
            return out + ["'attachments' must be a non-empty list"]
        for a in atts:
            if a.get("contentType") != "application/vnd.microsoft.card.adaptive":
                out.append(f"contentType {a.get('contentType')!r}")
            card = a.get("content")
            if not (isinstance(card, dict) and card.get("type") == "AdaptiveCard"
                    and isinstance(card.get("version"), str)):
                out.append("'content' must be an AdaptiveCard with a version")
                continue
            _card_elements(card.get("body"), out, "body")
        return out

    def success(self, req: ReceivedRequest, doc: Any) -> Answer:
        return 202, b"", {}

    def invalid(self, req: ReceivedRequest, problems: list[str]) -> Answer:
        if any("signature" in p for p in problems):
            return _json(401, {"error": {"code": "DirectApiAuthorizationRequired",
                                         "message": "The request must be authenticated."}})
        return _json(400, {"error": {"code": "InvalidRequestContent", "message": "; ".join(problems)}})

    def failure(self, name: str, req: ReceivedRequest) -> Answer:
        if name == "rate_limited":
            return _json(429, {"error": {"code": "WorkflowTriggerIsThrottled",
                                         "message": "The workflow trigger is throttled."}},
                         {"Retry-After": "7"})
        if name == "server_error":
            return _json(503, {"error": {"code": "ServiceUnavailable", "message": "Try later."}})
        return _json(404, {"error": {"code": "WorkflowNotFound",
                                     "message": "The workflow was not found or was turned off."}})


# --- Telegram Bot API ------------------------------------------------------------------------------

TG_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
           "tg-emoji", "code", "pre", "blockquote"}
_TG_TAG = re.compile(r"</?(" + "|".join(sorted(TG_TAGS, key=len, reverse=True)) + r")(\s[^<>]*)?>")
_TG_ENTITY = re.compile(r"&(?!(lt|gt|amp|quot);|#[0-9]+;|#x[0-9a-fA-F]+;)")


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TG_TAGS:
            self.errors.append(f'Unsupported start tag "{tag}"')
        if tag == "a" and not dict(attrs).get("href"):
            self.errors.append("a link without href")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f'Unmatched end tag "{tag}"')


def telegram_html_problems(text: str) -> list[str]:
    """What Telegram's HTML parse mode refuses in ``text`` ("can't parse entities: ...")."""
    out = []
    bare = _TG_TAG.sub("", text)
    if "<" in bare or ">" in bare:
        out.append("Unsupported start tag or a bare < or > in the text")
    if _TG_ENTITY.search(text):
        out.append("Unsupported entity or a bare & in the text")
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    out += checker.errors + [f'Unclosed start tag "{t}"' for t in checker.stack]
    return [f"Bad Request: can't parse entities: {p}" for p in out]


def telegram_length(text: str) -> int:
    """Characters of the message after entity parsing, in UTF-16 code units."""
    return len(html.unescape(_TG_TAG.sub("", text)).encode("utf-16-le")) // 2


class TelegramReceiver(VendorReceiver):
    """``POST /bot<token>/sendMessage`` with a JSON body."""

    def __init__(self, token: str, chat_id: str) -> None:
        super().__init__()
        self.token, self.chat_id = token, chat_id
        self._message_id = 0

    def check(self, req: ReceivedRequest, doc: Any) -> list[str]:
        if urlsplit(req.path).path != f"/bot{self.token}/sendMessage":
            return ["Unauthorized"]
        out = _json_request(req, doc)
        if out:
            return ["Bad Request: " + "; ".join(out)]
        if str(doc.get("chat_id")) != self.chat_id:
            return ["Bad Request: chat not found"]
        text = doc.get("text")
        if not isinstance(text, str) or not text.strip():
            return ["Bad Request: message text is empty"]
        if doc.get("parse_mode") != "HTML":
            out.append(f"Bad Request: parse_mode {doc.get('parse_mode')!r}, expected HTML")
        out += telegram_html_problems(text)
        if telegram_length(text) > 4096:
            out.append("Bad Request: message is too long")
        return out

    def success(self, req: ReceivedRequest, doc: Any) -> Answer:
        self._message_id += 1
        return _json(200, {"ok": True, "result": {
            "message_id": self._message_id, "date": int(time.time()),
            "chat": {"id": int(self.chat_id), "type": "supergroup", "title": "On-call"},
            "text": html.unescape(_TG_TAG.sub("", doc["text"]))}})

    def invalid(self, req: ReceivedRequest, problems: list[str]) -> Answer:
        code = 401 if problems == ["Unauthorized"] else 400
        return _json(code, {"ok": False, "error_code": code, "description": problems[0]})

    def failure(self, name: str, req: ReceivedRequest) -> Answer:
        if name == "rate_limited":
            return _json(429, {"ok": False, "error_code": 429,
                               "description": "Too Many Requests: retry after 7",
                               "parameters": {"retry_after": 7}})
        if name == "server_error":
            return _json(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
        return _json(403, {"ok": False, "error_code": 403,
                           "description": "Forbidden: bot was kicked from the supergroup chat"})


# --- ntfy -----------------------------------------------------------------------------------------

NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
NTFY_FIELDS = {"topic", "message", "title", "tags", "priority", "actions", "click", "attach",
               "markdown", "icon", "filename", "delay", "email", "call"}


class NtfyReceiver(VendorReceiver):
    """JSON publishing: ``POST /`` (the server's root) with the topic in the body."""

    def __init__(self, topic: str, token: str | None = None) -> None:
        super().__init__()
        self.topic, self.token = topic, token

    @property
    def endpoint(self) -> str:
        return self.url_for(self.topic)

    def check(self, req: ReceivedRequest, doc: Any) -> list[str]:
        if self.token and req.header("Authorization") != f"Bearer {self.token}":
            return ["forbidden"]
        out = _json_request(req, doc)
        if urlsplit(req.path).path != "/":
            out.append("JSON messages are published to the root URL")
        if out:
            return out
        out += [f"unknown field {k}" for k in doc if k not in NTFY_FIELDS]
        topic = doc.get("topic")
        if not (isinstance(topic, str) and NTFY_TOPIC.fullmatch(topic)) or topic != self.topic:
            out.append("invalid topic")
        for k in ("message", "title", "click"):
            if k in doc and not isinstance(doc[k], str):
                out.append(f"{k} must be a string")
        if len(str(doc.get("message", "")).encode()) > 4096:
            out.append("message over 4096 bytes (would become an attachment)")
        if "priority" in doc and doc["priority"] not in (1, 2, 3, 4, 5):
            out.append("invalid priority")
        if not all(isinstance(t, str) for t in doc.get("tags", [])):
            out.append("tags must be strings")
        actions = doc.get("actions", [])
        if not isinstance(actions, list) or len(actions) > 3:
            out.append("at most 3 actions")
        for a in actions if isinstance(actions, list) else []:
            if a.get("action") not in ("view", "http", "broadcast", "copy") or not a.get("label"):
                out.append("an action needs action and label")
            if a.get("action") in ("view", "http") and not str(a.get("url", "")).startswith("http"):
                out.append("a view action needs a url")
        return out

    def success(self, req: ReceivedRequest, doc: Any) -> Answer:
        now = int(time.time())
        return _json(200, {"id": f"m{len(self.requests)}", "time": now, "expires": now + 43200,
                           "event": "message", **doc})

    def invalid(self, req: ReceivedRequest, problems: list[str]) -> Answer:
        if problems == ["forbidden"]:
            return _json(403, {"code": 40301, "http": 403, "error": "forbidden",
                               "link": "https://ntfy.sh/docs/publish/#authentication"})
        return _json(400, {"code": 40024, "http": 400,
                           "error": "invalid request: " + "; ".join(problems)})

    def failure(self, name: str, req: ReceivedRequest) -> Answer:
        if name == "rate_limited":
            return _json(429, {"code": 42901, "http": 429, "error": "limit reached: too many requests",
                               "link": "https://ntfy.sh/docs/publish/#limitations"})
        if name == "server_error":
            return _json(500, {"code": 50001, "http": 500, "error": "internal server error"})
        return _json(403, {"code": 40301, "http": 403, "error": "forbidden",
                           "link": "https://ntfy.sh/docs/publish/#authentication"})
