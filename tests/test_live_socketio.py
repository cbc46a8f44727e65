"""Scheduler -> store -> Socket.IO, through Flask-SocketIO's test client."""
from __future__ import annotations

import pytest

from dashboard.app import create_app
from dashboard.collectors.host import HostCollector
from dashboard.config.load import from_dict
from dashboard.runtime import Runtime
from tests.support.auth_helpers import live_socket_client
from tests.support.util import wait_until


@pytest.fixture
def live_app(tmp_path):
    settings = from_dict({"data_dir": str(tmp_path), "async_mode": "threading"})
    rt = Runtime(settings, [HostCollector(interval_s=0.2)])
    app = create_app(settings, rt, async_mode="threading")
    yield app
    rt.stop()


def socket_client(app):
    return live_socket_client(app)


def received_samples(client):
    out = []
    for ev in client.get_received("/live"):
        if ev["name"] == "samples":
            out.extend(ev["args"][0])
    return out


def test_each_stored_tick_is_pushed_to_connected_browsers(live_app):
    client = socket_client(live_app)
    live_app.extensions["dashboard"].start()
    got = []
    wait_until(lambda: got.extend(received_samples(client)) or len(got) >= 3, timeout=15)
    assert all({"seq", "ts", "source", "values", "labels"} <= s.keys() for s in got)
    assert any("host.cpu_percent" in s["values"] for s in got)
    seqs = [s["seq"] for s in got]
    assert seqs == sorted(seqs)          # in sequence order, as the client's resume relies on


def test_resume_replays_exactly_what_a_disconnected_client_missed(live_app):
    rt = live_app.extensions["dashboard"]
    client = socket_client(live_app)
    rt.start()
    got = []
    wait_until(lambda: got.extend(received_samples(client)) or got, timeout=15)
    last = max(s["seq"] for s in got)
    client.disconnect(namespace="/live")
    wait_until(lambda: rt.store.last_seq() >= last + 5, timeout=15)   # missed while away
    again = socket_client(live_app)
    ack = again.emit("resume", {"after_seq": last}, namespace="/live", callback=True)
    replayed = [s["seq"] for s in ack["samples"]]
    stored = [s.seq for s in rt.store.after(last)]
    assert replayed[: len(stored)] == stored[: len(replayed)]
    assert replayed[0] == last + 1 and len(replayed) >= 5
    assert ack["last_seq"] == replayed[-1]


@pytest.mark.parametrize("payload", [None, {}, {"after_seq": "1"}, {"after_seq": -1}, {"after_seq": True}])
def test_a_malformed_resume_gets_an_error_answer_not_a_crash(live_app, payload):
    client = socket_client(live_app)
    ack = client.emit("resume", payload, namespace="/live", callback=True)
    assert "error" in ack
    assert client.is_connected("/live")
