"""A /live socket lives only as long as its login: revoked tokens, deleted, demoted or reset
users and logouts end it (at once in this process, within the re-check period otherwise), and
``resume`` is bounded (15 minutes / 5,000 samples, once a second). Over a real WebSocket:
tests/e2e/test_security_browser.py."""
from __future__ import annotations

import re
import time

import pytest

from dashboard.model import Sample
from dashboard.web import live
from tests.support.auth_helpers import accounts_for, add_user, logged_in_client
from tests.support.util import wait_until

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL


def sio(app):
    return app.extensions["dashboard.socketio"]


def token_socket(app, role: str = "viewer"):
    token, text = app.extensions["dashboard.accounts"].create_token(role, "screen")
    return token.id, sio(app).test_client(app, namespace="/live", auth={"token": text})


def session_socket(web):
    return sio(web.application).test_client(web.application, namespace="/live",
                                             flask_test_client=web)


def closed(client, timeout: float = 5.0) -> None:
    wait_until(lambda: not client.is_connected("/live"), timeout=timeout,
               message="the socket stayed open")


def form_login(app, name: str, password: str):
    web = app.test_client()
    page = web.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert web.post("/login", data={"name": name, "password": password,
                                    "csrf_token": csrf}).status_code == 302
    web.application = app
    return web


def test_revoking_a_token_on_the_admin_api_closes_its_socket_at_once(app, make_token):
    token_id, screen = token_socket(app)
    _, other = token_socket(app)
    assert screen.is_connected("/live")
    r = app.test_client().delete(f"/api/admin/tokens/{token_id}",
                                 headers={"Authorization": f"Bearer {make_token('admin')}"})
    assert r.status_code == 200
    closed(screen, timeout=2)
    assert other.is_connected("/live")                 # other logins are not touched


def test_a_token_revoked_by_another_process_is_closed_by_the_periodic_check(app):
    app.extensions["dashboard.live_logins"].recheck_s = 0.2
    token_id, screen = token_socket(app)
    data_dir = app.extensions["dashboard"].settings.data_dir
    with accounts_for(data_dir) as elsewhere:           # like `revoke-token` on the command line
        elsewhere.revoke_token(token_id)
    closed(screen)


def test_deleting_a_user_closes_their_socket(app, client):
    viewer = logged_in_client(app, "viewer")
    viewer.application = app
    screen = session_socket(viewer)
    assert screen.is_connected("/live")
    assert client.post(f"/admin/users/{viewer.user.id}/delete").status_code == 302
    closed(screen, timeout=2)


@pytest.mark.parametrize("change", ["role", "password"])
def test_a_role_change_or_password_reset_closes_that_users_sockets(app, client, change):
    op = logged_in_client(app, "operator")
    op.application = app
    screen = session_socket(op)
    bystander = logged_in_client(app, "viewer")
    bystander.application = app
    watching = session_socket(bystander)
    path = f"/admin/users/{op.user.id}/{change}"
    assert client.post(path, data={"role": "viewer"}).status_code in (200, 302)
    closed(screen, timeout=2)
    assert watching.is_connected("/live")


def test_logging_out_closes_that_logins_sockets_only(app):
    add_user(app, "ann", "viewer", password="correct horse battery")
    desk = form_login(app, "ann", "correct horse battery")
    wall = form_login(app, "ann", "correct horse battery")
    desk_socket, wall_socket = session_socket(desk), session_socket(wall)
    assert desk_socket.is_connected("/live") and wall_socket.is_connected("/live")
    page = desk.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    assert desk.post("/logout", headers={"X-CSRFToken": csrf}).status_code == 302
    closed(desk_socket, timeout=2)
    assert wall_socket.is_connected("/live")


def test_a_resume_after_the_login_lapsed_is_refused_and_closes_the_socket(app):
    token_id, screen = token_socket(app)
    with accounts_for(app.extensions["dashboard"].settings.data_dir) as elsewhere:
        elsewhere.revoke_token(token_id)                # no listener in that process
    ack = screen.emit("resume", {"after_seq": 0}, namespace="/live", callback=True)
    assert ack is None or "error" in ack
    assert not screen.is_connected("/live")


def fill(store, n: int, ts: float) -> None:
    store.append([Sample("host", ts, {"host.cpu_percent": float(i)}) for i in range(n)])


def test_a_resume_past_5000_samples_is_truncated(app):
    store = app.extensions["dashboard"].store
    fill(store, 1, time.time() - 60)
    cursor = store.last_seq()
    fill(store, live.MAX_RESUME_SAMPLES + 10, time.time() - 30)
    client = logged_in_client(app, "viewer")
    client.application = app
    ack = session_socket(client).emit("resume", {"after_seq": cursor}, namespace="/live",
                                      callback=True)
    assert ack["truncated"] is True and len(ack["samples"]) == live.MAX_RESUME_SAMPLES == 5000


def test_a_resume_from_before_the_last_15_minutes_is_truncated(app):
    store = app.extensions["dashboard"].store
    fill(store, 1, time.time() - 3600)
    cursor = store.last_seq()
    fill(store, 5, time.time() - 16 * 60)                # missed, but too old to replay
    fill(store, 5, time.time() - 60)
    client = logged_in_client(app, "viewer")
    client.application = app
    ack = session_socket(client).emit("resume", {"after_seq": cursor}, namespace="/live",
                                      callback=True)
    assert ack["truncated"] is True and len(ack["samples"]) == 5
    # a gap the window covers is replayed whole and not truncated
    recent = store.last_seq()
    fill(store, 3, time.time())
    again = session_socket(client)
    ack = again.emit("resume", {"after_seq": recent}, namespace="/live", callback=True)
    assert ack["truncated"] is False and len(ack["samples"]) == 3


def test_a_second_resume_within_a_second_gets_an_error(app):
    fill(app.extensions["dashboard"].store, 3, time.time())
    client = logged_in_client(app, "viewer")
    client.application = app
    screen = session_socket(client)
    first = screen.emit("resume", {"after_seq": 0}, namespace="/live", callback=True)
    second = screen.emit("resume", {"after_seq": 0}, namespace="/live", callback=True)
    assert "samples" in first and "error" in second and "resume" in second["error"]
    assert second["retry_after_s"] > 0          # the page retries instead of reloading history
    assert screen.is_connected("/live")
    # a cursor past SQLite's integers is a bad request, not a crash
    later = session_socket(client)
    assert "error" in later.emit("resume", {"after_seq": 10 ** 30}, namespace="/live",
                                 callback=True)


def test_the_recheck_task_ends_with_the_last_socket_and_starts_again(app):
    watch = app.extensions["dashboard.live_logins"]
    watch.recheck_s = 0.05
    _, screen = token_socket(app)
    wait_until(lambda: watch._watching, timeout=2)
    screen.disconnect(namespace="/live")
    wait_until(lambda: not watch._watching, timeout=5, message="the re-check task kept running")
    token_id, again = token_socket(app)
    assert watch._watching
    with accounts_for(app.extensions["dashboard"].settings.data_dir) as elsewhere:
        elsewhere.revoke_token(token_id)
    closed(again)
