"""Socket.IO /live refuses a connection without a valid session cookie or token (issue 7).
Over a real WebSocket (gunicorn): tests/e2e/test_security_browser.py."""
from __future__ import annotations

import json
import threading
import time

from dashboard.model import Sample
from dashboard.web import live_logins
from tests.support.auth_helpers import add_token, backdate_sessions, logged_in_client
from tests.support.util import wait_until


def sio(app):
    return app.extensions["dashboard.socketio"]


def test_a_connection_without_cookie_or_token_is_refused(app):
    client = sio(app).test_client(app, namespace="/live")
    assert not client.is_connected("/live")


def test_a_connection_with_a_bad_or_revoked_token_is_refused(app):
    acc = app.extensions["dashboard.accounts"]
    token, text = acc.create_token("viewer", "screen")
    acc.revoke_token(token.id)
    for auth in ({"token": text}, {"token": "dsh_made_up"}, {"token": 42}, "junk"):
        assert not sio(app).test_client(app, namespace="/live", auth=auth).is_connected("/live")
    assert not sio(app).test_client(app, namespace="/live", headers={
        "Authorization": f"Bearer {text}"}).is_connected("/live")


def test_a_viewer_session_or_token_connects_and_receives_samples(app):
    by_cookie = sio(app).test_client(app, namespace="/live",
                                     flask_test_client=logged_in_client(app, "viewer"))
    by_token = sio(app).test_client(app, namespace="/live", auth={"token": add_token(app, "viewer")})
    by_header = sio(app).test_client(app, namespace="/live", headers={
        "Authorization": f"Bearer {add_token(app, 'viewer')}"})
    app.extensions["dashboard"].publish([Sample("host", time.time(), {"host.cpu_percent": 5.0})])
    for c in (by_cookie, by_token, by_header):
        assert c.is_connected("/live")
        names = [e["name"] for e in c.get_received("/live")]
        assert "samples" in names


def test_an_idle_expired_session_cannot_open_a_socket(app):
    web = logged_in_client(app, "viewer")
    backdate_sessions(app, web.user, idle_s=13 * 3600)
    assert not sio(app).test_client(app, namespace="/live", flask_test_client=web).is_connected("/live")


def test_the_default_namespace_is_locked_too(app):
    assert not sio(app).test_client(app, namespace="/").is_connected("/")
    assert sio(app).test_client(app, namespace="/", auth={"token": add_token(app, "viewer")}) \
        .is_connected("/")


def test_any_other_namespace_is_refused_even_with_a_login(app):
    token = add_token(app, "viewer")
    assert not sio(app).test_client(app, namespace="/other", auth={"token": token}) \
        .is_connected("/other")


def test_a_socket_whose_login_is_still_being_checked_gets_no_samples(app, monkeypatch):
    checking, answer = threading.Event(), threading.Event()

    def slow_refusal(auth):            # fault injection: the accounts file is slow to answer,
        checking.set()                 # then the login is refused (None)
        answer.wait(10)

    monkeypatch.setattr(live_logins, "from_handshake", slow_refusal)
    made: list = []
    connecting = threading.Thread(target=lambda: made.append(
        sio(app).test_client(app, namespace="/live", auth={"token": "dsh_made_up"})))
    connecting.start()
    try:
        assert checking.wait(10)
        app.extensions["dashboard"].publish([Sample("host", time.time(), {"host.cpu_percent": 1.0})])
    finally:
        answer.set()
        connecting.join(10)
    assert not made[0].is_connected("/live")
    assert [e["name"] for e in made[0].queue] == []      # nothing while pending, nor after


def test_the_collect_process_addresses_its_events_to_logged_in_sockets_only(tmp_path, redis_server):
    """``python -m dashboard collect`` emits through the Redis message queue: what it publishes
    there is what every web instance sends on, so the room must be in the message itself."""
    import redis

    from dashboard.app import create_app
    from dashboard.config.load import from_dict
    from dashboard.runtime import Runtime
    from dashboard.web import live

    settings = from_dict({"data_dir": str(tmp_path), "message_queue": redis_server.url})
    runtime = Runtime(settings, [])
    create_app(settings, runtime, role="collector", async_mode="threading")
    listener = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(live.CHANNEL)
    try:
        wait_until(lambda: listener.get_message(timeout=0.1) is None and
                   listener.subscribed, timeout=5)
        runtime.publish([Sample("host", time.time(), {"host.cpu_percent": 1.0})])
        message = wait_until(lambda: listener.get_message(timeout=0.5), timeout=10,
                             message="nothing reached the message queue")
    finally:
        listener.close()
    sent = json.loads(message["data"])
    assert (sent["event"], sent["namespace"], sent["room"]) == ("samples", "/live", live.LOGGED_IN)
