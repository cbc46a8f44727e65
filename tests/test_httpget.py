"""The HTTP GET the probe and PHP-FPM collectors poll with, against a real HTTP server."""
from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboard.collectors.httpget import HttpError, HttpGetter


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"           # keep-alive, as real web servers answer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append((self.path, self.client_address[1], self.headers.get("Authorization")))
        if self.path == "/hang":
            time.sleep(2)
        if self.path == "/moved":
            self._send(302, b"", {"Location": "/ok"})
        elif self.path == "/elsewhere":
            self._send(301, b"", {"Location": srv.redirect_to})
        elif self.path == "/big":
            self._send(200, b"x" * 300_000)
        elif self.path == "/close":
            self._send(200, b"bye", {"Connection": "close"})
            self.close_connection = True
        else:
            self._send(200, b"fine")

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True      # the client stopped reading at its limit


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.requests = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv, path: str, auth: str = "") -> str:
    return f"http://{auth}127.0.0.1:{srv.server_address[1]}{path}"


def test_successive_gets_reuse_one_connection(server):
    g = HttpGetter(_url(server, "/ok?json"))
    answers = [g.get(2.0) for _ in range(3)]
    g.close()
    assert [(a.status, a.body) for a in answers] == [(200, b"fine")] * 3
    assert [p for p, _, _ in server.requests] == ["/ok?json"] * 3
    assert len({port for _, port, _ in server.requests}) == 1     # one TCP connection


def test_a_connection_the_server_closed_is_reopened_without_an_error(server):
    g = HttpGetter(_url(server, "/close"))
    assert g.get(2.0).body == b"bye"
    assert g.get(2.0).body == b"bye"
    g.close()
    assert len({port for _, port, _ in server.requests}) == 2


def test_a_redirect_is_the_answer_not_followed_and_credentials_go_as_basic_auth(server):
    g = HttpGetter(_url(server, "/moved", auth="mon:s%40cret@"))
    assert g.get(2.0).status == 302
    g.close()
    assert [p for p, _, _ in server.requests] == ["/moved"]
    assert server.requests[0][2] == "Basic " + base64.b64encode(b"mon:s@cret").decode()


def test_the_body_read_stops_at_the_limit_and_the_next_get_still_works(server):
    g = HttpGetter(_url(server, "/big"))
    assert len(g.get(2.0, max_body=1000).body) == 1000
    assert len(g.get(2.0).body) == 300_000
    g.close()


def test_no_answer_in_time_and_a_closed_port_are_told_apart(server):
    with pytest.raises(HttpError) as hang:
        HttpGetter(_url(server, "/hang")).get(0.3)
    assert hang.value.kind == "timeout"
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(HttpError) as refused:
        HttpGetter(f"http://127.0.0.1:{port}/ok").get(1.0)
    assert refused.value.kind == "refused"


def test_redirects_are_followed_when_asked_on_the_same_connection(server):
    g = HttpGetter(_url(server, "/moved"))
    answer = g.get(2.0, follow=3)
    g.close()
    assert (answer.status, answer.body) == (200, b"fine")
    assert [p for p, _, _ in server.requests] == ["/moved", "/ok"]
    assert len({port for _, port, _ in server.requests}) == 1


def test_credentials_never_follow_a_redirect_to_another_origin(server):
    other = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    other.daemon_threads, other.requests = True, []
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        server.redirect_to = _url(other, "/ok")
        g = HttpGetter(_url(server, "/elsewhere", auth="mon:pw@"))
        assert g.get(2.0, follow=3).body == b"fine"
        g.close()
    finally:
        other.shutdown()
        other.server_close()
    assert server.requests[0][2] is not None                 # sent to the origin it was for
    assert [(p, a) for p, _, a in other.requests] == [("/ok", None)]
