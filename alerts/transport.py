"""One HTTP POST to a notification receiver, and the typed error that says whether a retry helps.

``exchange`` returns the answer (status, headers, the body's first bytes) for the caller to
judge, or raises ``DeliveryError`` (retryable) when there was none: a timeout, a refused
connection, a TLS failure. ``judge`` turns an answer into the common verdict:

* 2xx is delivered; 5xx, 408, 425 and 429 mean "later" and are retried, after ``Retry-After``
  when the receiver gives one (seconds or an HTTP date); other 4xx (bad URL, revoked hook,
  rejected payload) and redirects are permanent.

Error texts name the receiver by a ``where`` the caller chose (a masked URL, or just the host
when the whole URL is a credential: Teams, Telegram), never by the URL itself: they are shown on
the alerts page and logged.
"""
from __future__ import annotations

import email.utils
import http.client
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

HTTP_TIMEOUT_S = 10.0               # to connect and for each read: the docs' read timeout
USER_AGENT = "dashboard-alerts/1"
MAX_RETRY_AFTER_S = 3600.0          # a receiver asking for more is retried after an hour anyway
READ_LIMIT = 8192                   # of an answer's body: enough for any vendor's error text


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after       # seconds the receiver asked us to wait, if it did


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status in (408, 425, 429)

    def text(self, limit: int = 160) -> str:
        """The body as one short line (for error texts)."""
        raw = self.body.decode("utf-8", "replace") or self.reason or ""
        return " ".join(raw.split())[:limit]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None          # a 3xx is the receiver's answer (a permanent failure), not followed


# The standard library's opener: proxies from the environment (HTTPS_PROXY, NO_PROXY), which a
# webhook to Slack from a closed network may need, and the system's CAs. Not ``requests``: it
# costs the web process ~10 MB of memory (issue 9) for one POST now and then.
_OPENER = urllib.request.build_opener(_NoRedirect)


def exchange(url: str, data: bytes, headers: Mapping[str, str], where: str) -> Answer:
    """POST ``data`` to ``url``; the answer, whatever its status. Raises (retryable) when none came."""
    req = urllib.request.Request(url, data=data, headers={"User-Agent": USER_AGENT, **headers},
                                 method="POST")
    try:
        with _OPENER.open(req, timeout=HTTP_TIMEOUT_S) as r:
            return Answer(r.status, r.reason or "", dict(r.headers.items()), r.read(READ_LIMIT))
    except urllib.error.HTTPError as e:           # any status but 2xx (and 1xx)
        with e:
            return Answer(e.code, str(e.reason or ""), dict(e.headers.items()) if e.headers else {},
                          e.read(READ_LIMIT))
    except (TimeoutError, socket.timeout):
        raise DeliveryError(f"{where}: no answer within {HTTP_TIMEOUT_S:g} s", False) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, (TimeoutError, socket.timeout)):
            raise DeliveryError(f"{where}: no answer within {HTTP_TIMEOUT_S:g} s", False) from None
        why = type(e.reason).__name__ if isinstance(e.reason, BaseException) else "URLError"
        raise DeliveryError(f"{where}: {why}", False) from None
    except (OSError, ValueError, http.client.HTTPException) as e:
        raise DeliveryError(f"{where}: {type(e).__name__}", False) from None


def capped_wait(seconds: object) -> float | None:
    """A wait a receiver asked for in its body (Telegram's ``parameters.retry_after``), held to
    what a ``Retry-After`` header may ask: 0 to ``MAX_RETRY_AFTER_S``; None when it is no number
    (a bool, a string, NaN)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds != seconds:
        return None
    return max(0.0, min(float(seconds), MAX_RETRY_AFTER_S))


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: delay-seconds or an HTTP date), capped; None if absent
    or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, min(when - (time.time() if now is None else now), MAX_RETRY_AFTER_S))


def judge(answer: Answer, where: str, detail: str | None = None) -> None:
    """Return on 2xx; otherwise raise the verdict, with ``detail`` (the vendor's own message,
    parsed by the caller) or the body's first line."""
    if answer.ok:
        return
    text = detail if detail is not None else answer.text()
    raise DeliveryError(f"{where}: HTTP {answer.status} {text}".rstrip(), not answer.retryable,
                        retry_after(answer.headers) if answer.retryable else None)
