"""Authenticated clients for tests (issue 7). See /work/notes/auth-fixtures.md.

* ``add_user(app, "ann", "operator", password=None)`` -> (User, password or None). Without a
  password the user cannot log in through the form (no scrypt cost); clients below log in by
  session instead.
* ``add_token(app, "viewer")`` -> the token text for ``Authorization: Bearer``.
* ``logged_in_client(app, role="admin")`` -> a Flask test client with a session cookie for a
  fresh user of that role, which adds the CSRF header to POST/PUT/PATCH/DELETE itself (as the
  page's JS does), so tests of state-changing routes work as from the page.
* ``token_client(app, role)`` -> a test client sending ``Authorization: Bearer`` on every call.
* ``live_socket_client(app, role="admin")`` -> Flask-SocketIO test client on /live, logged in.
* ``backdate_sessions(app, user, idle_s=..., age_s=...)`` makes that user's sessions look unused
  for ``idle_s`` more seconds and ``age_s`` older (their records in the store).
* ``session_cookie(data_dir, user_name)`` -> the value of the ``dashboard_session`` cookie for a
  real server's data dir (gunicorn in e2e tests); ``browser_login(page, server)`` puts it in a
  Playwright browser context.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from pathlib import Path
from typing import Iterator

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from dashboard.auth import signing
from dashboard.auth.accounts import Accounts, User
from dashboard.auth.guard import LOGIN_KEY
from dashboard.store import Store

SESSION_COOKIE = "dashboard_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_names = itertools.count(1)


@contextlib.contextmanager
def accounts_for(target) -> Iterator[Accounts]:
    """Accounts of a Flask app, or of a data dir (a real server's, the same store)."""
    if isinstance(target, Flask):
        yield target.extensions["dashboard.accounts"]
        return
    # The store a server of that data dir opens (on PostgreSQL under the store_backend fixture)
    Path(target).mkdir(parents=True, exist_ok=True)
    store = Store(target)
    acc = Accounts(store.connect)
    try:
        yield acc
    finally:
        acc.close()
        store.close()


def add_user(target, name: str | None = None, role: str = "admin",
             password: str | None = None) -> tuple[User, str | None]:
    """A user in an app or data dir; without ``password`` it can only log in by cookie."""
    name = name or f"{role}{next(_names)}"
    with accounts_for(target) as acc:
        if password is None:
            return acc.create_user(name, role, pw_hash="!"), None
        return acc.create_user(name, role, password), password


def add_token(target, role: str = "admin", name: str = "") -> str:
    with accounts_for(target) as acc:
        return acc.create_token(role, name, created_by="test")[1]


def _csrf_pair(secret_key: bytes) -> tuple[str, str]:
    """(raw value kept in the session, signed value sent in the header) as Flask-WTF makes them."""
    raw = hashlib.sha1(os.urandom(64)).hexdigest()
    signed = URLSafeTimedSerializer(secret_key, salt="wtf-csrf-token").dumps(raw)
    return raw, signed


def session_data(acc: Accounts, user: User, csrf_raw: str | None = None) -> dict:
    """The cookie session of a new login of ``user`` (its record made in ``acc``'s store)."""
    data = {"_user_id": f"{user.id}.{user.session_tag}", "_fresh": True, "_permanent": True,
            LOGIN_KEY: acc.start_session(user.id)}
    if csrf_raw:
        data["csrf_token"] = csrf_raw
    return data


class CsrfClient(FlaskClient):
    """A test client that sends ``X-CSRFToken`` on state-changing requests, like the page."""
    csrf_token: str | None = None

    def open(self, *args, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        if method in UNSAFE and self.csrf_token:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token)
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)


def logged_in_client(app: Flask, role: str = "admin", name: str | None = None) -> CsrfClient:
    user, _ = add_user(app, name, role)
    client = CsrfClient(app, app.response_class, use_cookies=True)
    raw, signed = _csrf_pair(app.secret_key)
    with client.session_transaction() as sess:
        sess.update(session_data(app.extensions["dashboard.accounts"], user, raw))
    client.csrf_token = signed
    client.user = user
    return client


def backdate_sessions(app: Flask, user: User, idle_s: float = 0, age_s: float = 0) -> None:
    conn = app.extensions["dashboard"].store.connect()
    try:
        conn.execute("UPDATE auth_sessions SET last_seen = last_seen - ?, created = created - ? "
                     "WHERE user_id = ?", (idle_s, age_s, user.id))
    finally:
        conn.close()


def token_client(app: Flask, role: str = "admin") -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, role)}"
    return client


def live_socket_client(app: Flask, role: str = "admin", namespace: str = "/live"):
    socketio = app.extensions["dashboard.socketio"]
    return socketio.test_client(app, namespace=namespace,
                                flask_test_client=logged_in_client(app, role))


def session_cookie(data_dir, user_name: str | None = None, role: str = "admin") -> str:
    """A valid session cookie for the server whose data dir is ``data_dir``."""
    with accounts_for(data_dir) as acc:
        user = acc.user_by_name(user_name) if user_name else None
        if user is None:
            user, _ = add_user(data_dir, user_name, role)
        data = session_data(acc, user)
    app = Flask("cookie-maker")
    app.secret_key = signing.secret_key(data_dir)
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.dumps(data)


def browser_login(page, server, role: str = "admin") -> None:
    """Log a Playwright page in to a ``tests.server.DashboardServer`` (cookie, no form)."""
    page.context.add_cookies([{"name": SESSION_COOKIE, "url": server.url + "/",
                               "value": session_cookie(server.data_dir, role=role),
                               "httpOnly": True, "sameSite": "Lax"}])


def open_logged_in(ctx, server, path="/"):
    """A new page of ``ctx``, logged in, at ``path``; the dialogs, console lines and CSP
    violations it raises are recorded in the returned dict (``events["dialogs"]``...)."""
    page = ctx.new_page()
    events = {"dialogs": [], "console": [], "csp": []}
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.on("console", lambda m: events["console"].append(f"{m.type}: {m.text}"))
    # Injected by the browser driver before any page script (not subject to the page's CSP).
    page.add_init_script("""document.addEventListener('securitypolicyviolation',
        e => (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI))""")
    browser_login(page, server)
    page.goto(server.url + path)
    return page, events
