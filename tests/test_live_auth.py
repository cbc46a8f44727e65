"""Socket.IO /live refuses a connection without a valid session cookie or token (issue 7).
Over a real WebSocket (gunicorn): tests/e2e/test_security_browser.py."""
from __future__ import annotations

import time

from dashboard.model import Sample
from tests.auth_helpers import add_token, backdate_sessions, logged_in_client


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
