"""Fan-out (issue 9): a tick is serialised once, however many browsers watch.

The page's cost per tick must not grow with the number of viewers in the expensive part (JSON
encoding of the tick's samples); only the per-socket write does. python-socketio builds one
packet for a broadcast without acknowledgement and engine.io caches its encoding, so the
samples are JSON-encoded once per tick. This test counts the encoder's calls with several
logged-in Socket.IO clients connected, through Flask-SocketIO's test client. That client
replaces the final per-client send with a function that decodes and re-encodes the packet for
each client (its own check); encodings made inside it are not the server's and are not counted.
"""
from __future__ import annotations

import json

import pytest

from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.model import Sample
from dashboard.runtime import Runtime
from dashboard.web.live import JsonPacket, PacketJson
from tests.support.auth_helpers import live_socket_client


class CountingJson:
    """Stands in for the json of the server's Socket.IO packets (``live.PacketJson``); counts
    what it encodes."""

    def __init__(self) -> None:
        self.encoded: list[str] = []
        self.paused = 0

    def dumps(self, obj, **kwargs) -> str:
        text = PacketJson.dumps(obj, **kwargs)
        if not self.paused:
            self.encoded.append(text)
        return text

    def loads(self, text, **kwargs):
        return json.loads(text, **kwargs)


@pytest.fixture
def quiet_app(tmp_path):
    # No collectors: the test publishes ticks itself, so nothing else is emitted meanwhile.
    settings = from_dict({"data_dir": str(tmp_path), "async_mode": "threading"})
    rt = Runtime(settings, [])
    return create_app(settings, rt, async_mode="threading")


def tick(ts: float) -> list[Sample]:
    return [Sample("host", ts, {"host.cpu_percent": 12.5, "host.up": 1.0}, {}),
            Sample("host", ts, {"host.disk_percent": 40.0}, {"mount": "/"})]


def samples_seqs(client) -> list[int]:
    return [s["seq"] for ev in client.get_received("/live") if ev["name"] == "samples"
            for s in ev["args"][0]]


def test_a_tick_is_json_encoded_once_however_many_browsers_watch(quiet_app, monkeypatch):
    rt = quiet_app.extensions["dashboard"]
    clients = [live_socket_client(quiet_app, "viewer") for _ in range(8)]
    for c in clients:
        c.get_received("/live")                 # drop anything sent on connect
    counter = CountingJson()
    monkeypatch.setattr(JsonPacket, "json", counter)
    server = quiet_app.extensions["dashboard.socketio"].server
    deliver = server._send_eio_packet            # the test client's per-client send
    delivered = []

    def delivering(eio_sid, eio_pkt):
        delivered.append(eio_pkt)
        counter.paused += 1
        try:
            return deliver(eio_sid, eio_pkt)
        finally:
            counter.paused -= 1
    monkeypatch.setattr(server, "_send_eio_packet", delivering)

    stored = rt.publish(tick(1_700_000_000.0))
    stored += rt.publish(tick(1_700_000_001.0))

    with_samples = [t for t in counter.encoded if '"samples"' in t]
    assert len(with_samples) == 2                # one per tick, not one per browser
    # Every browser is handed the same engine.io packet of a tick (its wire form is cached).
    assert len(delivered) == 16 and len({id(p) for p in delivered}) == 2
    expected = [s.seq for s in stored]
    for c in clients:                            # ... and every browser got both ticks
        assert samples_seqs(c) == expected



def test_packet_json_reads_as_the_stdlib_encoding_and_leaves_it_the_odd_values():
    """Issue 19: packets go out through orjson; a browser parses the same values as from the
    stdlib's text, and what orjson would write differently is still the stdlib's."""
    from collections import OrderedDict
    from enum import IntEnum

    tick_wire = [s.to_wire() for s in tick(1_700_000_000.123456)] + [
        {"seq": 3, "ts": 1e16, "source": "queue", "values": {"queue.pending": 1e-7, "x": -0.0},
         "labels": {"queue": "é\u2028</script>"}, "error": "a \"quoted\" \\ error"}]
    data = ["samples", tick_wire]
    assert json.loads(PacketJson.dumps(data, separators=(",", ":"))) == data

    class Level(IntEnum):
        HIGH = 2

    odd = [{1: "int key"}, OrderedDict(a=1), 2 ** 70, Level.HIGH]
    for value in odd:
        assert PacketJson.dumps(value, separators=(",", ":")) == json.dumps(value, separators=(",", ":"))
    assert PacketJson.loads('["a",{"b":1}]') == ["a", {"b": 1}]
