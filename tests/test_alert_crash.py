"""kill -9 of a real alerting process (tests/support/alert_child.py): anything undelivered goes out once
after the restart and nothing goes out twice; the one window left (receiver answered, mark not
yet committed) resends with the same Idempotency-Key, which is what receivers dedupe on."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.alert_helpers import delivered
from tests.support.alert_process import AlertChild
from tests.support.util import wait_until

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

ROOT = Path(__file__).resolve().parent.parent


def Child(data_dir: Path, url: str, value: float) -> AlertChild:
    return AlertChild(data_dir, url, str(value))


@pytest.fixture
def children():
    made: list[Child] = []
    yield lambda *a: made.append(Child(*a)) or made[-1]
    for c in made:
        c.kill()


def test_kill_9_between_firing_and_delivery_delivers_exactly_once_after_restart(
        tmp_path, webhook_receiver, children):
    data = tmp_path / "data"
    webhook_receiver.default_status = 503             # the firing stays undelivered...
    first = children(data, webhook_receiver.url, 90)
    first.wait_line("ready")
    webhook_receiver.wait_for(1, timeout=10)
    first.kill()                                       # ...when the process dies
    assert delivered(webhook_receiver.requests) == []
    webhook_receiver.default_status = 200
    second = children(data, webhook_receiver.url, 90)  # still over the level after the restart
    second.wait_line("idle")
    ok = delivered(webhook_receiver.requests)
    assert len(ok) == 1 and [a["event"] for a in ok[0].json()["alerts"]] == ["firing"]
    second.kill()                                      # killed again after the delivery
    seen = len(webhook_receiver.requests)
    third = children(data, webhook_receiver.url, 90)
    third.wait_line("ready")
    third.wait_line("idle")
    assert len(webhook_receiver.requests) == seen      # nothing goes out twice
    assert len({r.header("Idempotency-Key") for r in webhook_receiver.requests}) == 1


class HangingReceiver:
    """Records a request, then holds the answer until released: the process can be killed after
    the receiver has the message and before the sender learns it was delivered."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.release = threading.Event()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec.requests.append((self.headers.get("Idempotency-Key", ""), body))
                rec.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_crash_after_the_receiver_got_it_resends_with_the_same_idempotency_key(tmp_path, children):
    data = tmp_path / "data"
    receiver = HangingReceiver()
    try:
        first = children(data, receiver.url, 90)
        wait_until(lambda: receiver.requests, timeout=15)
        first.kill()                                   # the receiver has it; we never heard back
        receiver.release.set()
        second = children(data, receiver.url, 90)
        second.wait_line("idle")
        assert len(receiver.requests) == 2
        (key1, body1), (key2, body2) = receiver.requests
        assert key1 == key2 and body1 == body2         # a receiver drops the copy by its key
    finally:
        receiver.stop()
