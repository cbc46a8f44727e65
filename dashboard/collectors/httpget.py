"""A small keep-alive HTTP GET for collectors that poll a URL every second (probes, PHP-FPM).

Built on the standard library's ``http.client``: one persistent connection per URL, reopened
when the server closed it. ``requests`` did the same job with a session, but preparing each
request (hooks, cookies, merged settings, adapters) cost more CPU than the round trip: in a
profile of every collector at 1 s, the two HTTP collectors' ``Session.get`` was ~22 % of the
collection CPU.

Semantics kept from the previous ``requests`` calls: a timeout applies to the connect and to
each read; redirects are followed only when asked (``follow``: PHP-FPM's status page, as requests
did; a probe's 3xx is its answer); ``user:password@`` in the URL is sent as HTTP Basic
authentication, never to another origin; https verifies the certificate against the system's CAs.
"""
from __future__ import annotations

import base64
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

USER_AGENT = "dashboard-probe/1"


class HttpError(Exception):
    """Why no HTTP answer came: ``kind`` is "timeout", "refused", "connect" or "protocol"."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind


@dataclass
class Answer:
    status: int
    body: bytes
    location: str | None = None


def _read(resp: http.client.HTTPResponse, max_body: int, deadline: float | None) -> bytes:
    if deadline is None:
        return resp.read(max_body)
    parts, got = [], 0
    while got < max_body and time.perf_counter() < deadline:
        chunk = resp.read(min(65536, max_body - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class HttpGetter:
    """GET one URL over a connection kept open between calls. Not for concurrent use."""

    def __init__(self, url: str, user_agent: str = USER_AGENT) -> None:
        self.url = url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host is needed")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port:
            host_header += f":{parts.port}"
        self._headers = {"Host": host_header, "User-Agent": user_agent, "Accept": "*/*",
                         "Connection": "keep-alive"}
        if parts.username is not None:
            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(cred).decode("ascii")
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        else:
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
        return self._conn

    def get(self, timeout: float, max_body: int = 1 << 20, deadline: float | None = None,
            follow: int = 0) -> Answer:
        """One GET; at most ``max_body`` bytes of the body are read (the rest is dropped), and
        reading stops at ``deadline`` (``time.perf_counter()``) with what has come so far.
        Up to ``follow`` redirects are followed (same origin: over this connection)."""
        answer = self._fetch(self._target, timeout, max_body, deadline)
        url = self.url
        for _ in range(follow):
            if answer.status not in (301, 302, 303, 307, 308) or not answer.location:
                break
            try:
                url = urljoin(url, answer.location)
                p = urlsplit(url)
                origin = (p.scheme == "https", p.hostname, p.port)
            except ValueError:
                raise HttpError("protocol", "a redirect to an invalid URL") from None
            if origin == (self._https, self._host, self._port):
                answer = self._fetch((p.path or "/") + (f"?{p.query}" if p.query else ""),
                                     timeout, max_body, deadline)
            else:                      # another origin: a connection of its own, no credentials
                try:
                    other = HttpGetter(urlunsplit((p.scheme, p.netloc.rpartition("@")[2],
                                                   p.path, p.query, "")))
                except ValueError:
                    raise HttpError("protocol", "a redirect to an invalid URL") from None
                try:
                    answer = other._fetch(other._target, timeout, max_body, deadline)
                finally:
                    other.close()
        return answer

    def _fetch(self, target: str, timeout: float, max_body: int,
               deadline: float | None) -> Answer:
        for attempt in (0, 1):
            reused = self._conn is not None and self._conn.sock is not None
            conn = self._connection(timeout)
            try:
                conn.request("GET", target, headers=self._headers)
                resp = conn.getresponse()
                body = _read(resp, max_body, deadline)
                if not resp.isclosed():
                    if resp.length is None and not resp.chunked:
                        self.close()                  # body ends with the connection: reopen
                    elif resp.read(1):                 # more than max_body: drop the connection
                        self.close()
                if resp.will_close:
                    self.close()
                return Answer(resp.status, body, resp.getheader("Location"))
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                self.close()
                if reused and attempt == 0:
                    continue      # the server closed the kept-alive connection: once more, new
                raise HttpError("protocol", "connection closed without an answer") from None
            except socket.timeout:
                self.close()
                raise HttpError("timeout") from None
            except ConnectionRefusedError:
                self.close()
                raise HttpError("refused") from None
            except ssl.SSLError as e:
                self.close()
                raise HttpError("connect", f"TLS: {e.reason or type(e).__name__}") from None
            except OSError as e:
                self.close()
                raise HttpError("connect", type(e).__name__) from None
            except http.client.HTTPException as e:
                self.close()
                raise HttpError("protocol", type(e).__name__) from None
        raise AssertionError("not reached")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
