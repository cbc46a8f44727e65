"""Sessions live on the server (issue 13): the signed cookie carries a random session id, the
store keeps its hash with the user, when it was made and last used. Logout ends that session;
a role change, a password reset or deleting the user ends all of theirs; ``[auth]
session_max_h`` ends any session that old, however busy. Live sockets follow their session."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time

import pytest
import requests
from flask import Flask

from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.config.settings import ConfigError
from dashboard.runtime import Runtime
from tests.support.auth_helpers import SESSION_COOKIE, add_user, logged_in_client
from tests.support.server import DashboardServer
from tests.support.util import wait_until

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

PW = "correct horse battery"


def make_app(tmp_path, data="data", store_url=None, **auth):
    settings = from_dict({"data_dir": str(tmp_path / data), "async_mode": "threading",
                          "auth": {"api_rate_limit": "100000 per minute", **auth},
                          **({"store_url": store_url} if store_url else {})})
    return create_app(settings, Runtime(settings, []), async_mode="threading")


def form_login(app, name: str, password: str = PW):
    """A test client logged in through the form, as a browser does; ``.csrf`` for POSTs."""
    web = app.test_client()
    page = web.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert web.post("/login", data={"name": name, "password": password,
                                    "csrf_token": csrf}).status_code == 302
    web.csrf = re.search(r'name="csrf-token" content="([^"]+)"',
                         web.get("/").get_data(as_text=True)).group(1)
    web.application = app
    return web


def cookie(web) -> str:
    return web.get_cookie(SESSION_COOKIE).value


def bearer_of(app, value: str):
    """A fresh client (another browser, an attacker) presenting the cookie ``value``."""
    other = app.test_client()
    other.set_cookie(SESSION_COOKIE, value)
    return other


def sessions_in(app) -> int:
    conn = app.extensions["dashboard"].store.connect()
    try:
        return conn.execute("SELECT count(*) FROM auth_sessions").fetchone()[0]
    finally:
        conn.close()


# --- the reproduction: a real gunicorn, a copied cookie --------------------------------------

def test_a_cookie_copied_before_logout_is_refused_after_it(tmp_path):
    data = tmp_path / "data"
    add_user(data, "ann", "viewer", password=PW)
    with DashboardServer(data) as server:
        browser = requests.Session()
        page = browser.get(server.url + "/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = browser.post(server.url + "/login", data={"name": "ann", "password": PW,
                                                      "csrf_token": csrf},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 302
        copied = browser.cookies.get(SESSION_COOKIE)
        thief = {SESSION_COOKIE: copied}
        assert requests.get(server.url + "/api/latest", cookies=thief, timeout=10).status_code == 200
        page = browser.get(server.url + "/", timeout=10).text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        assert browser.post(server.url + "/logout", headers={"X-CSRFToken": csrf},
                            allow_redirects=False, timeout=10).status_code == 302
        assert requests.get(server.url + "/api/latest", cookies=thief,
                            timeout=10).status_code == 401
        r = requests.get(server.url + "/", cookies=thief, allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login")


# --- absolute lifetime -----------------------------------------------------------------------

def test_a_session_ends_after_session_max_h_however_busy_it_is(tmp_path):
    app = make_app(tmp_path, session_max_h=0.001)             # 3.6 s
    add_user(app, "ann", "viewer", password=PW)
    started = time.monotonic()
    web = form_login(app, "ann")
    assert web.get("/api/latest").status_code == 200
    # used all the time (never idle), and still refused once it is 3.6 s old
    wait_until(lambda: web.get("/api/latest").status_code == 401, timeout=30, interval=0.2,
               message="the session outlived session_max_h")
    assert time.monotonic() - started >= 3.6 - 0.5
    assert form_login(app, "ann").get("/api/latest").status_code == 200   # a new login works


def test_expired_sessions_are_pruned_from_the_store(tmp_path):
    app = make_app(tmp_path, session_max_h=0.001)
    add_user(app, "ann", "viewer", password=PW)
    form_login(app, "ann")                                    # never used again
    busy = form_login(app, "ann")
    assert sessions_in(app) == 2
    wait_until(lambda: busy.get("/api/latest").status_code == 401, timeout=30, interval=0.2)
    form_login(app, "ann")
    assert sessions_in(app) == 1


def test_session_max_h_must_be_a_positive_number():
    assert from_dict({}).auth.session_max_h == 168
    assert from_dict({"auth": {"session_max_h": 0.001}}).auth.session_max_h == 0.001
    for bad in (0, -1, "soon", True, [1]):
        with pytest.raises(ConfigError) as e:
            from_dict({"auth": {"session_max_h": bad}})
        assert str(e.value).startswith("auth.session_max_h: ")


def test_the_cli_stops_with_status_2_naming_session_max_h(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[auth]\nsession_max_h = 0\n")
    r = subprocess.run([sys.executable, "-m", "dashboard", "--config", str(p), "check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[0].startswith("configuration error: auth.session_max_h: ")


# --- what ends a session ---------------------------------------------------------------------

@pytest.mark.parametrize("change", ["role", "password", "delete"])
def test_a_role_change_password_reset_or_deletion_ends_every_session_of_that_user(
        tmp_path, change):
    app = make_app(tmp_path)
    add_user(app, "ann", "operator", password=PW)
    add_user(app, "bob", "viewer", password=PW)
    desk, wall, bob = form_login(app, "ann"), form_login(app, "ann"), form_login(app, "bob")
    ann_id = app.extensions["dashboard.accounts"].user_by_name("ann").id
    admin = logged_in_client(app, "admin")
    path = {"delete": f"/admin/users/{ann_id}/delete"}.get(change, f"/admin/users/{ann_id}/{change}")
    assert admin.post(path, data={"role": "viewer"}).status_code in (200, 302)
    assert desk.get("/api/latest").status_code == 401
    assert wall.get("/api/latest").status_code == 401
    assert bob.get("/api/latest").status_code == 200


def test_logout_ends_only_that_session(tmp_path):
    app = make_app(tmp_path)
    add_user(app, "ann", "viewer", password=PW)
    desk, wall = form_login(app, "ann"), form_login(app, "ann")
    copied = cookie(desk)
    assert desk.post("/logout", headers={"X-CSRFToken": desk.csrf}).status_code == 302
    assert bearer_of(app, copied).get("/api/latest").status_code == 401
    assert wall.get("/api/latest").status_code == 200


# --- cookies that were never issued ----------------------------------------------------------

def signed(secret: bytes, data: dict) -> str:
    maker = Flask("cookie-maker")
    maker.secret_key = secret
    return maker.session_interface.get_signing_serializer(maker).dumps(data)


def test_a_cookie_from_another_instance_or_not_issued_here_is_refused(tmp_path, other_store_url):
    here, there = make_app(tmp_path, "here"), make_app(tmp_path, "there", other_store_url)
    for app in (here, there):
        add_user(app, "ann", "admin", password=PW)           # the same id and name in both
    theirs = cookie(form_login(there, "ann"))
    assert bearer_of(there, theirs).get("/api/latest").status_code == 200
    assert bearer_of(here, theirs).get("/api/latest").status_code == 401      # other secret
    # Signed with this instance's own key (a leaked key, or a cookie of the old format) but
    # naming no session this store issued: still refused.
    ann = here.extensions["dashboard.accounts"].user_by_name("ann")
    forged = {"_user_id": f"{ann.id}.{ann.session_tag}", "_fresh": True, "_permanent": True,
              "seen": int(time.time()), "login": "made-up-session-id"}
    assert bearer_of(here, signed(here.secret_key, forged)).get("/api/latest").status_code == 401
    del forged["login"]
    assert bearer_of(here, signed(here.secret_key, forged)).get("/api/latest").status_code == 401
    # a session id of the other instance, signed with this one's key
    there_data = there.session_interface.get_signing_serializer(there).loads(theirs)
    moved = signed(here.secret_key, there_data)
    assert bearer_of(here, moved).get("/api/latest").status_code == 401


def test_the_store_keeps_only_a_hash_of_the_session_id(tmp_path):
    app = make_app(tmp_path)
    add_user(app, "ann", "viewer", password=PW)
    web = form_login(app, "ann")
    data = app.session_interface.get_signing_serializer(app).loads(cookie(web))
    sid = data["login"]
    assert len(sid) >= 40                                     # 256 random bits, URL-safe
    assert sessions_in(app) == 1
    store = app.extensions["dashboard"].store
    if store.backend == "sqlite":
        db = store.path
        raw = b"".join(p.read_bytes() for p in db.parent.glob("history.sqlite3*"))
        assert sid.encode() not in raw
    conn = store.connect()
    try:
        kept = repr(conn.execute("SELECT * FROM auth_sessions").fetchall())
    finally:
        conn.close()
    assert sid not in kept and hashlib.sha256(sid.encode()).hexdigest() in kept


# --- live sockets follow their session -------------------------------------------------------

def socket_of(web):
    app = web.application
    return app.extensions["dashboard.socketio"].test_client(app, namespace="/live",
                                                            flask_test_client=web)


def test_a_socket_is_closed_when_its_session_is_logged_out_on_another_instance(tmp_path):
    app = make_app(tmp_path)
    app.extensions["dashboard.live_logins"].recheck_s = 0.2
    other = make_app(tmp_path)                # a second web instance on the same store
    add_user(app, "ann", "viewer", password=PW)
    desk, wall = form_login(app, "ann"), form_login(app, "ann")
    desk_socket, wall_socket = socket_of(desk), socket_of(wall)
    assert desk_socket.is_connected("/live") and wall_socket.is_connected("/live")
    elsewhere = bearer_of(other, cookie(desk))
    assert elsewhere.post("/logout", headers={"X-CSRFToken": desk.csrf}).status_code == 302
    wait_until(lambda: not desk_socket.is_connected("/live"), timeout=10,
               message="the socket of the logged-out session stayed open")
    assert wall_socket.is_connected("/live")


def test_a_socket_is_closed_when_its_session_passes_session_max_h(tmp_path):
    app = make_app(tmp_path, session_max_h=0.001)
    app.extensions["dashboard.live_logins"].recheck_s = 0.2
    add_user(app, "ann", "viewer", password=PW)
    screen = socket_of(form_login(app, "ann"))
    assert screen.is_connected("/live")
    wait_until(lambda: not screen.is_connected("/live"), timeout=30,
               message="the socket outlived its session")
