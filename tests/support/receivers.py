"""In-process SMTP and HTTP receivers for notifier tests (real sockets on 127.0.0.1).

Both record what they receive, can be told to fail on purpose (fault injection), and offer
``wait_for(count, timeout)``, which blocks on a condition variable -- no sleeps.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dashboard.demo.services import free_port


class _Recorder:
    """A thread-safe list of received items with a blocking ``wait_for``."""

    what = "items"

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._cond = threading.Condition(threading.RLock())

    def _record(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def _snapshot(self) -> list[Any]:
        with self._cond:
            return list(self._items)

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Any]:
        """Block until at least ``count`` items arrived; return all of them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._items) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} {self.what} within {timeout:g} s, got "
                        f"{len(self._items)}: {self._items!r}"
                    )
                self._cond.wait(left)
            return list(self._items)

    def _clear_items(self) -> None:
        with self._cond:
            self._items.clear()


# ---------------------------------------------------------------------------------------------
# SMTP


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    auth_login: str | None = None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        """The plain-text body (or the HTML one if there is no text part)."""
        msg = self.message
        part = msg.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


class SmtpSink(_Recorder):
    """A real SMTP server (aiosmtpd) that keeps every message.

    Accepts any AUTH PLAIN/LOGIN credentials without TLS (recorded in ``auth_login``).
    ``reject_next(n, reply)`` makes the next ``n`` DATA commands fail with ``reply``.
    """

    what = "messages"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__()
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.host = host
        self.port = port or free_port()
        self._rejections: deque[str] = deque()
        sink = self

        def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
            login = getattr(auth_data, "login", None)
            session.dashboard_login = login.decode() if isinstance(login, bytes) else login
            return AuthResult(success=True)

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
                with sink._cond:
                    if sink._rejections:
                        return sink._rejections.popleft()
                data = envelope.original_content or envelope.content
                if isinstance(data, str):
                    data = data.encode()
                sink._record(
                    ReceivedMail(
                        mail_from=envelope.mail_from,
                        rcpt_tos=list(envelope.rcpt_tos),
                        data=data,
                        auth_login=getattr(session, "dashboard_login", None),
                    )
                )
                return "250 Message accepted for delivery"

        self._controller = Controller(
            Handler(),
            hostname=host,
            port=self.port,
            authenticator=authenticator,
            auth_require_tls=False,
            decode_data=False,
            ready_timeout=10.0,
        )

    @property
    def messages(self) -> list[ReceivedMail]:
        return self._snapshot()

    def reject_next(self, count: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        with self._cond:
            self._rejections.extend([reply] * count)

    def clear(self) -> None:
        with self._cond:
            self._items.clear()
            self._rejections.clear()

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


# ---------------------------------------------------------------------------------------------
# HTTP webhook


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what we answered
    received_at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body.decode() or "null")

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default


Response = int | tuple[int, bytes | str] | tuple[int, bytes | str, dict[str, str]]


class WebhookReceiver(_Recorder):
    """A real HTTP server (stdlib ``ThreadingHTTPServer``) recording every request.

    ``respond_with([503, 503, 200])`` programs the next answers, in order; each entry is a
    status, ``(status, body)`` or ``(status, body, headers)`` (e.g. ``(429, "", {"Retry-After":
    "1"})``). When the programme is used up, it answers ``default_status`` (200) with ``ok``.
    """

    what = "requests"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self._programme: deque[Response] = deque()
        self.default_status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                # Take the next programmed answer and record the request in one step (the n-th
                # request recorded got the n-th answer), and before answering: once a client
                # has its answer, its request is visible in .requests.
                with receiver._cond:  # an RLock: _record may take it again
                    req = ReceivedRequest(method=self.command, path=self.path,
                                          headers=dict(self.headers.items()), body=body)
                    programmed = receiver._programme.popleft() if receiver._programme else None
                    status, payload, extra = receiver._answer(req, programmed)
                    req.status = status
                    receiver._record(req)
                receiver._before_answer()
                self.send_response(status)
                for key, value in extra.items():
                    if key.lower() not in ("content-type", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Type", extra.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    def _answer(self, req: ReceivedRequest, programmed: Response | None) -> tuple[int, bytes, dict[str, str]]:
        """What to answer ``req`` (called under the lock): the programmed answer, or the default."""
        return _normalise(programmed if programmed is not None else self.default_status)

    def _before_answer(self) -> None:
        """Called after the request is recorded, before it is answered (outside the lock)."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def url_for(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        return self._snapshot()

    def respond_with(self, responses: Iterable[Response]) -> None:
        with self._cond:
            self._programme.extend(responses)

    def clear(self) -> None:
        with self._cond:
            self._items.clear()
            self._programme.clear()
            self.default_status = 200

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="webhook-receiver", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)


def _normalise(answer: Response) -> tuple[int, bytes, dict[str, str]]:
    if isinstance(answer, int):
        return answer, b"ok" if 200 <= answer < 300 else b"error", {}
    status, body, *rest = answer
    headers = rest[0] if rest else {}
    return status, body.encode() if isinstance(body, str) else body, dict(headers)
