"""Notification channels: email (SMTP), webhook (signed JSON), Slack incoming webhooks, and the
on-call vendors of ``alerts/vendors.py`` (PagerDuty, Microsoft Teams, Telegram, ntfy).

Each notifier does two things: ``render(items, ...)`` builds the body once (stored in the outbox
so every retry sends the very same bytes, signature and idempotency key), and ``send(body, key)``
delivers it or raises ``DeliveryError``, whose ``permanent`` says whether a retry can help:

* HTTP 2xx is delivered; 5xx, timeouts and connection errors are retryable; other 4xx (bad URL,
  revoked hook, rejected payload) and redirects are permanent, except 408 and 429, which mean
  "later" and are retried (after ``Retry-After`` when given: ``alerts/transport.py``).
* SMTP 4xx replies and connection problems are retryable; 5xx replies, failed authentication and
  TLS failures are permanent.

Error texts never contain the hook URL (Slack-style URLs carry their secret in the path) nor any
password: they are shown on the alerts page.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Callable, Mapping, Protocol, Sequence

from alerts import messages, vendors
from alerts.transport import DeliveryError, exchange, judge
from dashboard.config.secrets import mask_url
from dashboard.config.settings import NotifySettings, SMTPSettings

__all__ = ["DeliveryError", "EmailNotifier", "NOTIFIERS", "Notifier", "SlackNotifier", "WebhookNotifier",
           "build", "signature"]

SIGNATURE_HEADER = "X-Dashboard-Signature"


class Notifier(Protocol):
    kind: str

    def render(self, items: Sequence[Mapping[str, Any]], key: str, channel: str, sent_at: float,
               digest: bool) -> dict[str, Any]: ...

    def send(self, body: Mapping[str, Any], key: str) -> None: ...


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``: what a receiver recomputes to verify."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, data: bytes, headers: dict[str, str]) -> None:
    where = mask_url(url)
    judge(exchange(url, data, headers, where), where)


@dataclass
class WebhookNotifier:
    settings: NotifySettings
    tz: str = "UTC"
    kind: str = "webhook"

    def render(self, items: Sequence[Mapping[str, Any]], key: str, channel: str, sent_at: float,
               digest: bool) -> dict[str, Any]:
        body = messages.webhook_body(items, key, channel, sent_at, digest, self.tz)
        return {"json": json.dumps(body, separators=(",", ":"), sort_keys=False)}

    def send(self, body: Mapping[str, Any], key: str) -> None:
        raw = body["json"].encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self.settings.secret:
            headers[SIGNATURE_HEADER] = signature(self.settings.secret, raw)
        _post(self.settings.url or "", raw, headers)


@dataclass
class SlackNotifier:
    settings: NotifySettings
    tz: str = "UTC"
    kind: str = "slack"

    def render(self, items: Sequence[Mapping[str, Any]], key: str, channel: str, sent_at: float,
               digest: bool) -> dict[str, Any]:
        return {"json": json.dumps(messages.slack_body(items, self.tz, digest))}

    def send(self, body: Mapping[str, Any], key: str) -> None:
        # Slack ignores the header; Slack-compatible receivers (Mattermost, relays) may use it.
        _post(self.settings.url or "", body["json"].encode(),
              {"Content-Type": "application/json", "Idempotency-Key": key})


@dataclass
class EmailNotifier:
    settings: NotifySettings
    smtp: SMTPSettings
    tz: str = "UTC"
    kind: str = "email"

    def render(self, items: Sequence[Mapping[str, Any]], key: str, channel: str, sent_at: float,
               digest: bool) -> dict[str, Any]:
        return {"subject": messages.subject(items, digest),
                "text": messages.render_text(items, self.tz, digest),
                "html": messages.render_html(items, self.tz, digest), "date": sent_at}

    def message(self, body: Mapping[str, Any], key: str) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = body["subject"]
        msg["From"] = self.smtp.sender
        msg["To"] = ", ".join(self.settings.to)
        msg["Date"] = formatdate(body["date"], localtime=False)
        # The idempotency key as Message-ID: mail systems drop a second copy with the same id.
        msg["Message-ID"] = f"<{key}@dashboard.alerts>"
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Dashboard-Idempotency-Key"] = key
        msg.set_content(body["text"])
        msg.add_alternative(body["html"], subtype="html")
        return msg

    def send(self, body: Mapping[str, Any], key: str) -> None:
        s = self.smtp
        where = f"smtp {s.host}:{s.port}"
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as conn:
                if s.starttls:
                    conn.starttls(context=ssl.create_default_context())
                if s.user:
                    conn.login(s.user, s.password or "")
                conn.send_message(self.message(body, key))
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(f"{where}: authentication failed ({e.smtp_code})", True) from None
        except smtplib.SMTPRecipientsRefused as e:
            codes = [c for c, _ in e.recipients.values()]
            raise DeliveryError(f"{where}: recipients refused {codes}",
                                all(c >= 500 for c in codes)) from None
        except smtplib.SMTPResponseException as e:
            text = (e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes)
                    else str(e.smtp_error))
            raise DeliveryError(f"{where}: {e.smtp_code} {text[:120]}", e.smtp_code >= 500) from None
        except smtplib.SMTPNotSupportedError as e:
            raise DeliveryError(f"{where}: {e}", True) from None
        except ssl.SSLError as e:
            raise DeliveryError(f"{where}: TLS failed ({e.reason})", True) from None
        except (OSError, smtplib.SMTPException) as e:
            raise DeliveryError(f"{where}: {type(e).__name__}: {e}", False) from None


# Every channel kind and how its notifier is made from its [[notify]] table (and [smtp]).
NOTIFIERS: dict[str, Callable[[NotifySettings, SMTPSettings, str], Notifier]] = {
    "webhook": lambda n, smtp, tz: WebhookNotifier(n, tz),
    "slack": lambda n, smtp, tz: SlackNotifier(n, tz),
    "email": EmailNotifier,
    "pagerduty": lambda n, smtp, tz: vendors.PagerDutyNotifier(n, tz),
    "teams": lambda n, smtp, tz: vendors.TeamsNotifier(n, tz),
    "telegram": lambda n, smtp, tz: vendors.TelegramNotifier(n, tz),
    "ntfy": lambda n, smtp, tz: vendors.NtfyNotifier(n, tz),
}


def build(settings: NotifySettings, smtp: SMTPSettings, tz: str) -> Notifier:
    """The notifier of one ``[[notify]]`` channel, by its kind."""
    return NOTIFIERS[settings.kind](settings, smtp, tz)
