"""The forward path off eventlet: `python -m dashboard serve` with async_mode gevent runs gunicorn's
gevent worker (wsgi_gevent.py), answers /healthz and pushes samples over a real WebSocket."""
from __future__ import annotations

import pytest
import requests
import socketio

from tests.support.auth_helpers import add_token
from tests.support.server import DashboardServer
from tests.support.util import wait_until


@pytest.fixture
def gevent_server(tmp_path):
    s = DashboardServer(tmp_path / "data", env={"DASHBOARD_ASYNC_MODE": "gevent"})
    s.start()
    yield s
    s.stop()


def test_under_gevent_healthz_is_ok_and_live_samples_arrive_over_websocket(gevent_server):
    server = gevent_server
    health = server.wait_healthy()
    assert health["collectors"]["host"]["status"] == "ok"
    log = server.log()
    assert "Using worker: gevent" in log
    assert "eventlet" not in log.lower()        # nothing on this path imports eventlet

    batches: list = []
    sio = socketio.Client(reconnection=False)
    sio.on("samples", lambda data: batches.append(data), namespace="/live")
    sio.connect(server.url, namespaces=["/live"], transports=["websocket"],
                auth={"token": add_token(server.data_dir, "viewer")}, wait_timeout=10)
    try:
        assert sio.transport() == "websocket"
        wait_until(lambda: len(batches) >= 3, timeout=10,
                   message=lambda: f"{len(batches)} batches in 10 s; log:\n{server.log()[-2000:]}")
        seqs = [s["seq"] for batch in batches for s in batch]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert any(s["source"] == "host" and "host.cpu_percent" in s["values"]
                   for batch in batches for s in batch)
    finally:
        sio.disconnect()
    # The page itself is served by the same worker.
    r = requests.get(server.url + "/", allow_redirects=False, timeout=5)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
