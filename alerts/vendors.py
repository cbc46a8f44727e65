"""The on-call vendors' channels: PagerDuty (Events API v2), Microsoft Teams (a Workflows
webhook), Telegram (Bot API ``sendMessage``) and ntfy (JSON publishing).

Each renders its body with ``alerts/vendor_messages.py`` (stored in the outbox without any
credential) and sends it with the credential added, judging the vendor's answer as its docs say:

* 2xx is delivered (PagerDuty answers 202, Teams' Workflows 202, Telegram 200 with
  ``{"ok": true}``, ntfy 200 with the message as JSON);
* 429 and 5xx are retried, after ``Retry-After`` (Telegram: ``parameters.retry_after``) when the
  vendor gives it, else with the outbox's backoff; PagerDuty gives no time with its 429, and its
  limit (about 120 events a minute per integration key, counted over the last 60 s) is met again
  by retries 2, 4 and 8 s apart: its docs suggest 30 s apart, which is what it gets;
* any other 4xx is permanent: the vendor's own message (PagerDuty's ``message`` and ``errors``,
  Teams' ``error.message``, Telegram's ``description``, ntfy's ``error``) is shown on the alerts
  page, shortened, with every credential of the channel masked.

At-least-once: a crash after the vendor's 2xx and before the outbox's record sends the same body
again once. PagerDuty merges the copy into the open alert by its ``dedup_key`` (the episode's id;
a retry in the same process goes on from the event that failed, not from the first);
Teams, Telegram and ntfy have no idempotency key and show the copy (the ``Idempotency-Key``
header is sent anyway, for a relay that dedupes).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

from alerts import vendor_messages as bodies
from alerts.transport import Answer, DeliveryError, capped_wait, exchange, judge, retry_after
from dashboard.config.redact import scrub
from dashboard.config.secrets import mask_url
from dashboard.config.settings import NotifySettings

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PD_RATE_LIMIT_WAIT_S = 30.0       # after a 429: PagerDuty's documented spacing of retries
TELEGRAM_URL = "https://api.telegram.org"
DETAIL_MAX = 200


def _json(answer: Answer) -> Any:
    try:
        return json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _detail(text: str, secrets: Sequence[str]) -> str:
    """The vendor's message as one short line, without the channel's credentials."""
    return (scrub(" ".join(text.split()), [s for s in secrets if s]) or "")[:DETAIL_MAX]


def _headers(key: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Idempotency-Key": key}


@dataclass
class PagerDutyNotifier:
    settings: NotifySettings
    tz: str = "UTC"
    kind: str = "pagerduty"
    # (message key, events accepted) of the message that failed part-way: one channel's sender
    # tries its messages one at a time, in order.
    _progress: tuple[str, int] | None = field(default=None, repr=False)

    def render(self, items: Sequence[Mapping[str, Any]], key: str, channel: str, sent_at: float,
               digest: bool) -> dict[str, Any]:
        return {"events": bodies.pagerduty_events(items, self.tz)}

    def send(self, body: Mapping[str, Any], key: str) -> None:
        url = self.settings.url or PAGERDUTY_URL
        where = f"pagerduty {mask_url(url)}"
        # One request per event, in order (trigger before its acknowledge and resolve). A retry
        # goes on from the event that failed: the ones before it were accepted, and a trigger
        # sent again after its resolve would open a new alert there (left open if the retry
        # stops before the resolve). After a restart (nothing remembered) the message goes again
        # from its first event: the documented repeat.
        events = body["events"]
        done = self._progress[1] if self._progress and self._progress[0] == key else 0
        self._progress = None
        for n, event in enumerate(events[done:], done):
            raw = json.dumps({"routing_key": self.settings.routing_key, **event}).encode()
            try:
                answer = exchange(url, raw, _headers(key), where)
                detail = None
                doc = _json(answer)
                if isinstance(doc, dict) and not answer.ok:
                    errors = doc.get("errors") if isinstance(doc.get("errors"), list) else []
                    text = str(doc.get("message") or doc.get("status") or "")
                    if errors:
                        text += ": " + "; ".join(str(e) for e in errors)
                    detail = _detail(text, [self.settings.routing_key or ""])
                try:
                    judge(answer, where, detail)
                except DeliveryError as e:
                    if answer.status == 429 and e.retry_after is None:
                        # PagerDuty's limit counts the last 60 s and its docs suggest retries 30 s
                        # apart: the 2/4/8 s backoff would spend every retry inside the full window.
                        raise DeliveryError(str(e), False, PD_RATE_LIMIT_WAIT_S) from None
                    raise
            except DeliveryError:
                self._progress = (key, n)        # the events before ``n`` are in
                raise


@dataclass
class TeamsNotifier:
    settings: NotifySettings
    tz: str = "UTC"
    kind: str = "teams"

    def render(self, items: Sequence[Mapping[str, Any]], key: str, channel: str, sent_at: float,
               digest: bool) -> dict[str, Any]:
        return {"json": json.dumps(bodies.teams_message(items, self.tz, digest))}

    def send(self, body: Mapping[str, Any], key: str) -> None:
        url = self.settings.url or ""
        where = f"teams {mask_url(url, whole=True)}"       # the signed URL is the credential
        answer = exchange(url, body["json"].encode(), _headers(key), where)
        doc = _json(answer)
        detail = None
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict) and not answer.ok:
            err = doc["error"]
            detail = _detail(f"{err.get('code') or ''}: {err.get('message') or ''}".strip(": "),
                             _url_secrets(url))
        elif not answer.ok:
            detail = _detail(answer.text(), _url_secrets(url))
        judge(answer, where, detail)


@dataclass
class TelegramNotifier:
    settings: NotifySettings
    tz: str = "UTC"
    kind: str = "telegram"

    def render(self, items: Sequence[Mapping[str, Any]], key: str, channel: str, sent_at: float,
               digest: bool) -> dict[str, Any]:
        return {"text": bodies.telegram_text(items, self.tz, digest)}

    def send(self, body: Mapping[str, Any], key: str) -> None:
        base = (self.settings.url or TELEGRAM_URL).rstrip("/")
        token = self.settings.bot_token or ""
        # The token is part of the path: errors name the API's host only.
        where = f"telegram {mask_url(base + '/')}bot***"
        payload = {"chat_id": self.settings.chat_id, "text": body["text"], "parse_mode": "HTML",
                   "link_preview_options": {"is_disabled": True}}
        answer = exchange(f"{base}/bot{token}/sendMessage", json.dumps(payload).encode(),
                          _headers(key), where)
        doc = _json(answer)
        if isinstance(doc, dict) and doc.get("ok") is True and answer.ok:
            return
        if not isinstance(doc, dict):
            judge(answer, where, _detail(answer.text(), [token]))
            raise DeliveryError(f"{where}: HTTP {answer.status}: not a Bot API answer", True)
        code: int = doc["error_code"] if isinstance(doc.get("error_code"), int) else answer.status
        params: dict[str, Any] = doc["parameters"] if isinstance(doc.get("parameters"), dict) else {}
        text = _detail(str(doc.get("description") or ""), [token])
        if isinstance(params.get("migrate_to_chat_id"), int):
            text += f" (the group's chat_id is now {params['migrate_to_chat_id']})"
        # Flood control can ask for hours: held to the hour a Retry-After header may ask for.
        wait = capped_wait(params.get("retry_after"))
        later = code == 429 or code >= 500 or answer.status == 429 or answer.status >= 500
        raise DeliveryError(
            f"{where}: HTTP {answer.status} {text}".rstrip(), not later,
            (wait if wait is not None else retry_after(answer.headers)) if later else None)


@dataclass
class NtfyNotifier:
    settings: NotifySettings
    tz: str = "UTC"
    kind: str = "ntfy"

    def render(self, items: Sequence[Mapping[str, Any]], key: str, channel: str, sent_at: float,
               digest: bool) -> dict[str, Any]:
        return {"json": json.dumps(bodies.ntfy_message(items, self.tz, digest))}

    def send(self, body: Mapping[str, Any], key: str) -> None:
        url = self.settings.url or ""
        where = f"ntfy {mask_url(url, whole=True)}"       # the topic's name is its password
        root, topic, basic = _ntfy_root(url)
        payload = {"topic": topic, **json.loads(body["json"])}
        headers = _headers(key)
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        elif basic:
            headers["Authorization"] = f"Basic {basic}"
        answer = exchange(root, json.dumps(payload).encode(), headers, where)
        doc = _json(answer)
        detail = None
        if not answer.ok:
            secrets = [self.settings.token or "", topic, *_url_secrets(url)]
            if isinstance(doc, dict) and doc.get("error"):
                code = f" ({doc['code']})" if isinstance(doc.get("code"), int) else ""
                detail = _detail(f"{doc['error']}{code}", secrets)
            else:
                detail = _detail(answer.text(), secrets)
        judge(answer, where, detail)


def _ntfy_root(url: str) -> tuple[str, str, str | None]:
    """``https://u:p@host/base/TOPIC`` -> (``https://host/base/``, ``TOPIC``, basic credentials):
    ntfy takes JSON messages at its root URL, the topic in the body."""
    p = urlsplit(url)
    path = p.path.rstrip("/")
    base, _, topic = path.rpartition("/")
    netloc = p.hostname or ""
    if p.port:
        netloc += f":{p.port}"
    basic = None
    if p.username is not None:
        basic = base64.b64encode(f"{unquote(p.username)}:{unquote(p.password or '')}".encode()).decode()
    return urlunsplit((p.scheme, netloc, base + "/", "", "")), topic, basic


def _url_secrets(url: str) -> list[str]:
    p = urlsplit(url)
    return [x for x in (p.path, p.query, unquote(p.password or "")) if len(x) > 1]
