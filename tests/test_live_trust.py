"""What a client cannot do to the server's view of who is connected, on a real server (gunicorn,
eventlet, python-socketio and raw Engine.IO over loopback), issue 13:

* a client event named ``disconnect`` or ``connect`` does not reach the lifecycle handlers (it
  switched off the socket's revocation, or swapped in another login);
* an Engine.IO connection that logs in to no namespace within the login window is closed.

The server's waits are shortened through its environment (``DASHBOARD_LIVE_RECHECK_S``,
``DASHBOARD_LIVE_LOGIN_S``)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
import requests
import socketio
import websocket

from tests.support.auth_helpers import accounts_for
from tests.support.server import ROOT, DashboardServer
from tests.support.util import wait_until

RECHECK_S = 0.5
LOGIN_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = DashboardServer(tmp_path_factory.mktemp("live-trust") / "data", env={
        "DASHBOARD_INTERVAL_S": "0.5", "DASHBOARD_LIVE_RECHECK_S": str(RECHECK_S),
        "DASHBOARD_LIVE_LOGIN_S": str(LOGIN_S)})
    s.start()
    try:
        yield s
    finally:
        s.stop()


class Screen:
    """A python-socketio client on /live that records when each ``samples`` batch arrived."""

    def __init__(self, server: DashboardServer, token: str) -> None:
        self.arrivals: list[float] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("samples", lambda batch: self.arrivals.append(time.monotonic()),
                       namespace="/live")
        self.client.connect(server.url, namespaces=["/live"], transports=["websocket"],
                            wait_timeout=10, auth={"token": token})

    def receiving(self) -> bool:
        seen = len(self.arrivals)
        wait_until(lambda: len(self.arrivals) > seen, timeout=10, message="no samples arrive")
        return True

    def round_trip(self) -> None:
        """The server has handled what this client sent before: an event no handler knows is
        acknowledged empty. (Not ``resume``: it checks the login, which would end the attack.)"""
        self.client.call("no-such-event", namespace="/live", timeout=10)


def token(server: DashboardServer, role: str = "viewer") -> tuple[int, str]:
    with accounts_for(server.data_dir) as acc:
        made, text = acc.create_token(role, "wall", created_by="test")
    return made.id, text


def revoke_on_the_command_line(server: DashboardServer, token_id: int) -> None:
    subprocess.run([sys.executable, "-m", "dashboard", "revoke-token", str(token_id)],
                   cwd=ROOT, env=server.env(), check=True, timeout=60, capture_output=True)


@pytest.fixture
def screens(server):
    made: list[Screen] = []

    def make(text: str) -> Screen:
        made.append(Screen(server, text))
        return made[-1]
    yield make
    for s in made:
        s.client.disconnect()


def assert_cut(screen: Screen, what: str) -> None:
    wait_until(lambda: not screen.client.connected, timeout=10 + RECHECK_S,
               message=lambda: f"{what}: still connected, {len(screen.arrivals)} batches so far")


def test_a_client_sent_disconnect_event_does_not_switch_off_revocation(server, screens):
    token_id, text = token(server)
    honest, attacker = screens(text), screens(text)
    attacker.client.emit("disconnect", namespace="/live")
    attacker.round_trip()
    assert honest.receiving() and attacker.receiving()
    revoke_on_the_command_line(server, token_id)
    assert_cut(honest, "the honest socket")
    assert_cut(attacker, "the socket that sent a 'disconnect' event")


def test_a_client_sent_connect_event_cannot_swap_in_another_login(server, screens):
    short_id, short_lived = token(server)
    _, other = token(server)
    attacker = screens(short_lived)
    # As the server's own connect would pass it: (environ, auth).
    attacker.client.emit("connect", ("environ", {"token": other}), namespace="/live")
    attacker.round_trip()
    revoke_on_the_command_line(server, short_id)
    assert_cut(attacker, "the socket that sent a 'connect' event with another token")


def websocket_lives(server: DashboardServer,
                    then: Callable[[websocket.WebSocket], None] = lambda ws: None) -> float:
    """Open a raw Engine.IO WebSocket, do ``then`` (nothing: no login), answer pings: seconds
    until the server closes it."""
    opened = time.monotonic()
    ws = websocket.create_connection(
        server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", timeout=30)
    try:
        assert ws.recv().startswith("0{")                # Engine.IO OPEN: connected, no login
        then(ws)
        while True:
            try:
                data = ws.recv()
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                break
            if data == "2":
                ws.send("3")
            elif data in ("", "1"):                      # Engine.IO CLOSE, or the close frame
                break
    finally:
        ws.close()
    return time.monotonic() - opened


def polling_lives(server: DashboardServer) -> float:
    """The same over HTTP long-polling."""
    url = server.url + "/socket.io/?EIO=4&transport=polling"
    opened = time.monotonic()
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.text.startswith("0{")
    url += "&sid=" + json.loads(r.text[1:])["sid"]
    while True:
        try:
            r = requests.get(url, timeout=40)
        except requests.ConnectionError:                 # the server stopped (test failed)
            return float("inf")
        packets = r.text.split("\x1e") if r.status_code == 200 else ["1"]
        if "1" in packets:
            return time.monotonic() - opened
        if "2" in packets:
            requests.post(url, data="3", timeout=10)


@pytest.mark.parametrize("lives", [websocket_lives, polling_lives], ids=["websocket", "polling"])
def test_an_engineio_connection_without_a_login_is_closed_after_the_login_window(
        server, screens, lives):
    _, text = token(server)
    logged_in = screens(text)
    lived: list[float] = []
    worker = threading.Thread(target=lambda: lived.append(lives(server)), daemon=True)
    worker.start()
    wait_until(lambda: lived, timeout=LOGIN_S + 8,
               message="an Engine.IO connection without a login stayed open")
    assert lived[0] >= LOGIN_S * 0.9                     # not before the window ended
    assert logged_in.client.connected and logged_in.receiving()   # past its window: kept


def test_an_engineio_connection_whose_login_ended_is_closed_too(server):
    """Revocation ends the namespace; the connection under it must not stay to try again."""
    token_id, text = token(server)

    def log_in_then_get_revoked(ws: websocket.WebSocket) -> None:
        ws.send("40/live," + json.dumps({"token": text}))
        wait_until(lambda: ws.recv().startswith("40/live,"), timeout=10)   # connected
        revoke_on_the_command_line(server, token_id)

    lived: list[float] = []
    worker = threading.Thread(target=lambda: lived.append(
        websocket_lives(server, log_in_then_get_revoked)), daemon=True)
    worker.start()
    wait_until(lambda: lived, timeout=RECHECK_S + 2 * LOGIN_S + 8,
               message="the connection of a revoked socket stayed open")
