"""Logins, roles, tokens, sessions and CSRF through the Flask test client (issue 7)."""
from __future__ import annotations

import re
import time

import pytest

from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.runtime import Runtime
from tests.support.auth_helpers import add_user, backdate_sessions, logged_in_client

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

ACK = "/api/alerts/1/ack"
SILENCES = "/api/silences"


def full_app(tmp_path, **extra):
    """An app with every optional area configured, so conditionally registered routes exist.
    Nothing is started: the targets are never contacted."""
    raw = {"data_dir": str(tmp_path / "data"), "async_mode": "threading",
           "mysql": {"url": "mysql://monitor:pw-not-used@127.0.0.1:9/"},
           "redis": {"url": "redis://127.0.0.1:9/0"},
           "queues": [{"name": "emails", "kind": "redis-list", "key": "q:emails"}],
           "probes": [{"name": "home", "url": "http://127.0.0.1:9/health"}]}
    raw.update(extra)
    settings = from_dict(raw)
    return create_app(settings, Runtime(settings), async_mode="threading")


def concrete(rule) -> str:
    """A URL for a rule, with a plausible value for each variable part."""
    def value(name: str) -> str:
        conv = rule._converters.get(name)
        kind = type(conv).__name__.lower() if conv else ""
        return "1" if ("integer" in kind or "float" in kind) else "x"
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: value(m.group(1)), rule.rule)


def without_csrf(page: str) -> str:
    """A page with its CSRF token values blanked (they carry a timestamp)."""
    return re.sub(r'(name="csrf_token" value|name="csrf-token" content)="[^"]*"', r'\1=""', page)


def login_form(client):
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_every_route_answers_302_or_401_without_a_login_except_healthz(tmp_path):
    app = full_app(tmp_path)
    anon = app.test_client()
    checked = []
    for rule in app.url_map.iter_rules():
        url = concrete(rule)
        for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
            r = anon.open(url, method=method)
            checked.append((method, url, r.status_code))
            if rule.endpoint == "pages.healthz":
                assert r.status_code == 200
            elif rule.endpoint == "auth.login":
                # the login form itself; its POST without a CSRF token is refused
                assert r.status_code == (200 if method == "GET" else 400)
            elif url.startswith("/api/") or url == "/metrics":
                assert r.status_code == 401, (method, url, r.status_code)
                assert "error" in r.get_json()
            elif method != "GET":
                assert r.status_code == 401, (method, url, r.status_code)
            else:
                assert r.status_code in (302, 401), (method, url, r.status_code)
                if r.status_code == 302:
                    assert r.headers["Location"].startswith("/login?next=")
    assert len(checked) > 10, checked


def test_metrics_is_open_only_when_configured(tmp_path):
    closed = full_app(tmp_path / "a")
    opened = full_app(tmp_path / "b", metrics_public=True)
    if not any(r.rule == "/metrics" for r in closed.url_map.iter_rules()):
        pytest.fail("/metrics is not registered yet (issue 8)")
    assert closed.test_client().get("/metrics").status_code == 401
    assert opened.test_client().get("/metrics").status_code == 200


def test_an_unknown_path_looks_the_same_as_a_known_one_without_a_login(anon_client):
    assert anon_client.get("/no/such/page").status_code == 302
    assert anon_client.get("/api/no/such").status_code == 401


def test_a_viewer_gets_403_on_acknowledge_and_silence(app, viewer_client, operator_client):
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert "/api/alerts/<int:alert_id>/ack" in rules or any(
        r.endswith("/ack") and r.startswith("/api/alerts/") for r in rules), sorted(rules)
    assert SILENCES in rules or any(r.startswith(SILENCES) for r in rules), sorted(rules)
    silence = {"rule": "db_pool_utilization", "ends_at": time.time() + 600, "reason": "maintenance"}
    assert viewer_client.post(ACK, json={}).status_code == 403
    assert viewer_client.post(SILENCES, json=silence).status_code == 403
    assert viewer_client.delete(SILENCES + "/1").status_code == 403
    assert viewer_client.get(SILENCES).status_code == 200          # reading is fine
    # an operator passes the role check (the alert does not exist: 404, not 403)
    assert operator_client.post(ACK, json={}).status_code not in (401, 403)
    assert operator_client.post(SILENCES, json=silence).status_code not in (401, 403)


def test_admin_pages_need_the_admin_role(viewer_client, operator_client, client):
    for c in (viewer_client, operator_client):
        assert c.get("/admin").status_code == 403
        assert c.get("/admin/settings").status_code == 403
        assert c.post("/admin/tokens", data={"role": "admin"}).status_code == 403
    assert client.get("/admin").status_code == 200


def test_logging_in_through_the_form_opens_the_page_asked_for(app, anon_client):
    add_user(app, "ann", "viewer", password="correct horse battery")
    token = login_form(anon_client)
    r = anon_client.post("/login", data={"name": "ann", "password": "correct horse battery",
                                         "csrf_token": token, "next": "/admin/settings"})
    assert r.status_code == 302 and r.headers["Location"] == "/admin/settings"
    assert anon_client.get("/").status_code == 200
    assert "ann · viewer" in anon_client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_to_another_site(app, anon_client, target):
    add_user(app, "ann", "viewer", password="correct horse battery")
    r = anon_client.post("/login", data={"name": "ann", "password": "correct horse battery",
                                         "csrf_token": login_form(anon_client), "next": target})
    assert r.headers["Location"] == "/"


# Raw characters go in form bodies and query strings as they are (the client encodes them);
# "%09" / "%0a" are sent literally too, so a target that is decoded twice cannot slip through.
OFFSITE = ["//evil.example/", "https://evil.example/", "/\\evil.example", "\\/evil.example",
           "/\t/evil.example", "/\n/evil.example", "\t//evil.example", "/%09/evil.example",
           "/%0a/evil.example", "/%0d%0aSet-Cookie:x=1", "javascript:alert(1)",
           "/ /evil.example", "///evil.example", "http:/evil.example"]


@pytest.mark.parametrize("target", OFFSITE)
def test_a_login_form_post_never_redirects_off_site_or_fails_on_a_crafted_next(
        app, anon_client, target):
    add_user(app, "ann", "viewer", password="correct horse battery")
    r = anon_client.post("/login", data={"name": "ann", "password": "correct horse battery",
                                         "csrf_token": login_form(anon_client), "next": target})
    assert r.status_code == 302 and r.headers["Location"] == "/"


@pytest.mark.parametrize("target", OFFSITE)
def test_an_already_logged_in_visit_to_login_never_redirects_off_site(client, target):
    r = client.get("/login", query_string={"next": target})
    assert r.status_code == 302 and r.headers["Location"] == "/"


@pytest.mark.parametrize("raw_query", ["next=/%09/evil.example", "next=/%0a/evil.example",
                                       "next=%2F%09%2Fevil.example", "next=/%5C/evil.example"])
def test_percent_encoded_control_characters_in_next_are_refused(client, raw_query):
    r = client.get("/login?" + raw_query)
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_a_local_next_with_a_query_is_kept(client):
    r = client.get("/login", query_string={"next": "/api/series?metric=host.cpu_percent&since=1"})
    assert r.headers["Location"] == "/api/series?metric=host.cpu_percent&since=1"


def test_unknown_user_and_wrong_password_get_the_same_answer_through_the_same_check(
        app, anon_client, monkeypatch):
    from dashboard.auth import accounts as accounts_mod
    add_user(app, "ann", "viewer", password="correct horse battery")
    checks = []
    real = accounts_mod.check_password_hash
    monkeypatch.setattr(accounts_mod, "check_password_hash",
                        lambda h, p: checks.append(h.split("$")[0]) or real(h, p))
    token = login_form(anon_client)
    a = anon_client.post("/login", data={"name": "ann", "password": "wrong one!", "csrf_token": token})
    b = anon_client.post("/login", data={"name": "nobody", "password": "wrong one!", "csrf_token": token})
    assert a.status_code == b.status_code == 401
    assert without_csrf(a.get_data(as_text=True)) == without_csrf(b.get_data(as_text=True))
    assert checks == ["scrypt:32768:8:1", "scrypt:32768:8:1"]      # one scrypt check each


def test_passwords_are_stored_as_scrypt_hashes_and_tokens_as_digests(app, client, make_token):
    add_user(app, "ann", "viewer", password="correct horse battery")
    text = make_token("viewer")
    store = app.extensions["dashboard"].store
    conn = store.connect()
    try:
        assert conn.execute("SELECT pw_hash FROM auth_users WHERE name='ann'").fetchone()[0] \
            .startswith("scrypt:")
        kept = repr([conn.execute(f"SELECT * FROM {t}").fetchall()
                     for t in ("auth_users", "auth_tokens")])
    finally:
        conn.close()
    assert "correct horse battery" not in kept and text not in kept
    if store.backend == "sqlite":
        raw = b"".join(p.read_bytes() for p in store.path.parent.glob("history.sqlite3*"))
        assert b"correct horse battery" not in raw and text.encode() not in raw


def test_a_page_post_without_the_csrf_token_is_refused_with_400(app, client):
    bare = app.test_client()                       # same session cookie, no CSRF header
    with client.session_transaction() as s:
        cookie = dict(s)
    with bare.session_transaction() as s:
        s.update(cookie)
    r = bare.post("/admin/tokens", data={"role": "viewer", "name": "x"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert bare.post(ACK, json={}).status_code == 400
    assert client.post("/admin/tokens", data={"role": "viewer", "name": "x"}).status_code == 200


def test_a_token_needs_no_csrf_token_and_keeps_to_its_role(app, make_token):
    c = app.test_client()
    viewer = {"Authorization": f"Bearer {make_token('viewer')}"}
    admin = {"Authorization": f"Bearer {make_token('admin')}"}
    assert c.get("/api/latest", headers=viewer).status_code == 200
    assert c.post(ACK, headers=viewer, json={}).status_code == 403
    r = c.post("/api/admin/tokens", headers=admin, json={"role": "viewer", "name": "ci"})
    assert r.status_code == 201 and r.get_json()["token"].startswith("dsh_")
    assert "Set-Cookie" not in r.headers                # a token never turns into a session


def test_a_revoked_token_gets_401(app, client):
    page = client.post("/admin/tokens", data={"role": "viewer", "name": "grafana"})
    text = re.search(r'id="one-time-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    headers = {"Authorization": f"Bearer {text}"}
    api = app.test_client()
    assert api.get("/api/latest", headers=headers).status_code == 200
    token_id = re.search(r'<tr data-token="(\d+)">\s*<td class="num">\d+</td><td>grafana<',
                         page.get_data(as_text=True)).group(1)
    assert client.post(f"/admin/tokens/{token_id}/revoke").status_code == 302
    r = api.get("/api/latest", headers=headers)
    assert r.status_code == 401 and r.get_json()["error"] == "invalid or revoked token"
    assert "revoked" in client.get("/admin").get_data(as_text=True)


def test_healthz_answers_200_whatever_authorization_header_a_monitor_sends(app, anon_client):
    acc = app.extensions["dashboard.accounts"]
    token, text = acc.create_token("viewer", "old-probe")
    acc.revoke_token(token.id)
    for header in (f"Bearer {text}", "Bearer dsh_made_up", "Bearer ", "Bearer \u00e9t\u00e9",
                   "Basic dXNlcjpwdw=="):
        r = anon_client.get("/healthz", headers={"Authorization": header})
        assert r.status_code == 200 and "collectors" in r.get_json(), header
    # the login page too: a stale token in a browser extension must not lock people out
    assert anon_client.get("/login", headers={"Authorization": "Bearer junk"}).status_code == 200
    # everywhere else a bad token is still refused
    assert anon_client.get("/api/latest", headers={"Authorization": "Bearer junk"}).status_code == 401


def test_a_bad_token_on_the_login_form_post_does_not_skip_the_csrf_check(app, anon_client):
    add_user(app, "ann", "viewer", password="correct horse battery")
    r = anon_client.post("/login", data={"name": "ann", "password": "correct horse battery"},
                         headers={"Authorization": "Bearer junk"})
    assert r.status_code == 400


def test_a_token_is_shown_once_only(client):
    page = client.post("/admin/tokens", data={"role": "viewer", "name": "once"}).get_data(as_text=True)
    text = re.search(r'id="one-time-secret">([^<]+)<', page).group(1)
    assert text not in client.get("/admin").get_data(as_text=True)


def test_a_session_idle_longer_than_the_limit_must_log_in_again(app):
    c = logged_in_client(app, "viewer")
    assert c.get("/").status_code == 200
    idle_s = app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
    assert idle_s == 12 * 3600
    backdate_sessions(app, c.user, idle_s=idle_s + 5)
    assert c.get("/").status_code == 302
    assert c.get("/api/latest").status_code == 401


def test_a_password_reset_ends_the_sessions_of_that_user(app, client):
    ann = logged_in_client(app, "viewer", name="ann")
    assert ann.get("/").status_code == 200
    page = client.post(f"/admin/users/{ann.user.id}/password").get_data(as_text=True)
    assert "shown <strong>once</strong>" in page
    assert ann.get("/").status_code == 302


def test_the_last_admin_cannot_be_demoted_or_deleted(app, client):
    me = client.user
    r = client.post(f"/admin/users/{me.id}/role", data={"role": "viewer"})
    assert r.status_code == 400 and "last admin" in r.get_data(as_text=True)
    assert client.post(f"/admin/users/{me.id}/delete").status_code == 400


def test_logout_ends_the_session(client):
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_cookies_are_httponly_lax_and_secure_behind_tls(tmp_path):
    for url, secure in (("http://127.0.0.1:8050", False), ("https://dash.example", True)):
        settings = from_dict({"data_dir": str(tmp_path / str(secure)), "public_url": url})
        app = create_app(settings, Runtime(settings, []), async_mode="threading")
        cookie = app.test_client().get("/login").headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure


def test_every_answer_carries_the_security_headers(client, anon_client):
    for r in (client.get("/"), client.get("/api/latest"), anon_client.get("/login"),
              anon_client.get("/healthz"), anon_client.get("/api/latest")):
        csp = r.headers["Content-Security-Policy"]
        assert ("script-src 'self';" in csp
                and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0])
        assert "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_pages_have_no_inline_script(client, app):
    for path in ("/", "/admin", "/admin/settings"):
        html = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\son[a-z]+\s*=", html), path


def test_the_secret_key_is_made_once_with_mode_0600(app, tmp_path):
    key_file = tmp_path / "data" / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    before = key_file.read_bytes()
    settings = from_dict({"data_dir": str(tmp_path / "data")})
    again = create_app(settings, Runtime(settings, []), async_mode="threading")
    assert again.secret_key == before == key_file.read_bytes()
