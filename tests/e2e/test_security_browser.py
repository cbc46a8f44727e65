"""The whole stack, locked (issue 7): real gunicorn (eventlet), real MariaDB, Redis, SMTP and a
webhook receiver, headless Chromium, python-socketio over a real WebSocket.

One dashboard for the module, configured with a MySQL password, an SMTP password and a webhook
secret, a queue whose name is an HTML injection, and a queue rule that fires at once.
"""
from __future__ import annotations

import html
import re
import secrets
import threading

import pymysql
import pytest
import redis
import requests
import socketio

from dashboard.demo import services as devservices
from tests.support.auth_helpers import add_token, add_user, open_logged_in
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import mysql_connect, wait_until

HOSTILE = "<img src=x onerror=alert(1)>"
QUEUE = f"mail{HOSTILE}"
QUEUE_KEY = "sec:hostile"
MYSQL_PW = "My-Sql-" + secrets.token_hex(6)
SMTP_PW = "Smtp-" + secrets.token_hex(6)
HOOK_SECRET = "Hook-" + secrets.token_hex(6)
SECRETS = (MYSQL_PW, SMTP_PW, HOOK_SECRET)
ADMIN_PW = "admin password " + secrets.token_hex(4)
# Statements run on the monitored server are data too; this one sits in "running now" (an
# identifier, because the page shows statements with literals and comments taken out).
SLOW_SQL = f"SELECT SLEEP(30) AS `{HOSTILE}`"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A Redis of this module's own: the cache and queue collectors use it, and the shared
    one's since-boot hit/miss statistics (which tests/test_cache.py relies on) stay untouched."""
    server = devservices.start_redis(tmp_path_factory.mktemp("secure-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, mariadb, redis_server, smtp_server, webhook_receiver):
    data = tmp_path_factory.mktemp("secure") / "data"
    url = mariadb.create_monitor_user("secmon", MYSQL_PW,
                                      ["PROCESS", "BINLOG MONITOR", "SELECT ON performance_schema.*"])
    cfg = data.parent / "dashboard.toml"
    cfg.write_text(f'''
data_dir = "{data}"
interval_s = 0.5
[mysql]
url = "{url}"
[redis]
url = "{redis_server.url}"
[[queues]]
name = "{QUEUE}"
kind = "redis-list"
key = "{QUEUE_KEY}"
[rules.queue_pending]
warning = 1
critical = 100000
for_s = 0
[smtp]
host = "127.0.0.1"
port = {smtp_server.port}
user = "dashboard"
password = "{SMTP_PW}"
[[notify]]
kind = "webhook"
url = "{webhook_receiver.url}"
secret = "{HOOK_SECRET}"
[[notify]]
kind = "email"
to = ["oncall@example.test"]
''')
    add_user(data, "ops", "operator", password=ADMIN_PW)      # no first-admin password printed
    r = redis.Redis.from_url(redis_server.url)
    r.delete(QUEUE_KEY)
    server = DashboardServer(data, config=cfg)
    server.start()
    yield server
    server.stop()
    r.delete(QUEUE_KEY)


class SlowStatement:
    """SLOW_SQL running in a thread until ``stop()`` kills it on the server."""

    def __init__(self, mariadb) -> None:
        self.mariadb = mariadb
        self.conn = mysql_connect(mariadb.root_url)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute(SLOW_SQL)
        except pymysql.err.OperationalError as e:
            if e.args[0] != 1317:                  # "Query execution was interrupted": stop()
                raise

    def stop(self) -> None:
        with mysql_connect(self.mariadb.root_url) as admin, admin.cursor() as cur:
            cur.execute(f"KILL QUERY {self.conn.thread_id()}")
        self.thread.join(10)
        self.conn.close()


def test_logging_in_through_the_form_opens_the_live_page_and_plotly_draws_under_the_csp(stack):
    with chromium() as ctx:
        page = ctx.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text or "Refused to" in m.text else None)
        page.goto(stack.url + "/")
        assert page.url.startswith(stack.url + "/login")
        page.fill("input[name=name]", "ops")
        page.fill("input[name=password]", "not the password")
        page.click("button[type=submit]")
        assert "Invalid user name or password." in page.inner_text(".auth-box")
        page.fill("input[name=name]", "ops")
        page.fill("input[name=password]", ADMIN_PW)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-charts-drawn]", timeout=20000)
        assert page.url == stack.url + "/"
        # plotly drew real SVG traces, and live samples extend them over the WebSocket
        wait_until(lambda: page.evaluate(
            "() => document.querySelectorAll('#chart-host-cpu .scatterlayer .trace').length") > 0,
            timeout=15, message="plotly drew no trace")
        n0 = page.evaluate("() => document.getElementById('chart-host-cpu').data[0].x.length")
        wait_until(lambda: page.evaluate(
            "() => document.getElementById('chart-host-cpu').data[0].x.length") > n0, timeout=15)
        assert violations == []
        assert "ops · operator" in page.inner_text("header")
        page.click(".account button")                         # log out
        page.wait_for_url(re.compile(r".*/login$"))
        page.goto(stack.url + "/")
        assert page.url.startswith(stack.url + "/login")


def test_a_hostile_queue_name_and_statement_are_shown_as_text_and_nothing_runs(
        stack, mariadb, redis_server, webhook_receiver, smtp_server):
    redis.Redis.from_url(redis_server.url).rpush(QUEUE_KEY, "job1", "job2", "job3")
    slow = SlowStatement(mariadb)
    with chromium() as ctx:
        page, events = open_logged_in(ctx, stack)
        page.wait_for_selector("body[data-charts-drawn]", timeout=20000)
        # the statement running now, from the processlist, as text (drawn while the area is in view)
        page.locator("#db-extras").scroll_into_view_if_needed()
        wait_until(lambda: HOSTILE in page.inner_text("#db-now-table"), timeout=20,
                   message=lambda: "statement not listed: " + page.inner_text("#db-now"))
        # the queue name, in the chart legend (plotly SVG text) and in the alert bar
        wait_until(lambda: HOSTILE in page.evaluate("() => document.body.textContent"), timeout=20)
        # ... and as the chart's trace name (legend, hover), escaped: plotly reads <a href>,
        # <span style>... in trace names as markup
        names = ("() => Array.from(document.querySelectorAll('.chart')).flatMap("
                 "d => (d.data || []).map(t => t.name)).join('|')")
        wait_until(lambda: html.escape(HOSTILE, quote=False) in page.evaluate(names), timeout=20,
                   message=lambda: "trace names: " + page.evaluate(names))
        wait_until(lambda: QUEUE in page.inner_text("#alert-bar"), timeout=20,
                   message=lambda: "alert bar: " + page.inner_text("#alert-bar"))
        alerts, alert_events = open_logged_in(ctx, stack, "/alerts")
        wait_until(lambda: QUEUE in alerts.inner_text("main"), timeout=20)
        for p, ev in ((page, events), (alerts, alert_events)):
            assert p.evaluate("() => document.querySelectorAll('img').length") == 0
            assert p.evaluate("() => window.__csp || []") == []
            assert ev["dialogs"] == [], ev
            assert not [m for m in ev["console"] if "Content Security Policy" in m], ev["console"]
    slow.stop()
    # notifications carry the name as data and no secret
    hooks = webhook_receiver.wait_for(1, timeout=30)
    mails = smtp_server.wait_for(1, timeout=30)
    body = hooks[0].body.decode()
    alert = hooks[0].json()["alerts"][0]
    assert alert["labels"] == {"queue": QUEUE}
    mail_html = next((p.get_content() for p in mails[0].message.walk()
                      if p.get_content_type() == "text/html"), "")
    assert HOSTILE not in mail_html and html.escape(HOSTILE) in mail_html
    for text in [body, str(hooks[0].headers), mails[0].data.decode(errors="replace")]:
        for s in SECRETS:
            assert s not in text
    assert mails[0].auth_login == "dashboard"
    # the signed acknowledge link works once, without a login, and only with the page's form
    link = alert["links"]["ack"]
    assert link.startswith(stack.url + "/alerts/ack/")
    anon = requests.Session()
    confirm = anon.get(link, timeout=10)
    assert confirm.status_code == 200 and html.escape(QUEUE) in confirm.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', confirm.text).group(1)
    assert anon.post(link, data={}, timeout=10).status_code == 400            # no CSRF token
    done = anon.post(link, data={"csrf_token": csrf, "comment": "on it"}, timeout=10)
    assert done.status_code == 200 and "Acknowledged by link" in done.text
    again = anon.post(link, data={"csrf_token": csrf}, timeout=10)
    assert again.status_code == 401 and "already been used" in again.text
    assert anon.get(link[:-3] + "abc", timeout=10).status_code == 401         # edited link


def test_socketio_over_a_real_websocket_needs_a_login_and_the_right_origin(stack):
    def connect(**kw) -> socketio.Client:
        c = socketio.Client(reconnection=False)
        c.connect(stack.url, namespaces=["/live"], transports=["websocket"], wait_timeout=10, **kw)
        return c

    with pytest.raises(socketio.exceptions.ConnectionError):
        connect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(auth={"token": "dsh_not_a_real_token"})
    token = add_token(stack.data_dir, "viewer")
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(auth={"token": token}, headers={"Origin": "http://evil.example"})
    got: list = []
    c = connect(auth={"token": token})
    c.on("samples", lambda batch: got.extend(batch), namespace="/live")
    wait_until(lambda: got, timeout=10, message="no samples over the WebSocket")
    # messages above 64 KiB close the connection (clients only send small control messages)
    c.emit("resume", {"after_seq": 0, "pad": "x" * (100 * 1024)}, namespace="/live")
    wait_until(lambda: not c.connected, timeout=10, message="a 100 KiB message was accepted")
    c.disconnect()
    small = connect(headers={"Authorization": f"Bearer {token}"})
    answer = small.call("resume", {"after_seq": 10**12}, namespace="/live", timeout=10)
    assert answer["samples"] == []
    small.disconnect()


def test_revoking_a_token_closes_its_websocket_on_the_real_server(stack):
    admin = {"Authorization": f"Bearer {add_token(stack.data_dir, 'admin')}"}
    made = requests.post(stack.url + "/api/admin/tokens", json={"role": "viewer", "name": "wall"},
                         headers=admin, timeout=10).json()
    closed = threading.Event()
    c = socketio.Client(reconnection=False)
    c.on("disconnect", lambda *reason: closed.set(), namespace="/live")
    c.connect(stack.url, namespaces=["/live"], transports=["websocket"], wait_timeout=10,
              auth={"token": made["token"]})
    try:
        assert c.connected and not closed.is_set()
        r = requests.delete(f"{stack.url}/api/admin/tokens/{made['id']}", headers=admin, timeout=10)
        assert r.status_code == 200
        assert closed.wait(5), "the revoked token's socket stayed open"
    finally:
        c.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):      # and it cannot come back
        socketio.Client(reconnection=False).connect(
            stack.url, namespaces=["/live"], transports=["websocket"], wait_timeout=10,
            auth={"token": made["token"]})


def test_no_configured_secret_appears_in_the_server_log_or_any_page(stack):
    admin_token = add_token(stack.data_dir, "admin")
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {admin_token}"
    pages = {}
    for path in ("/", "/alerts", "/admin", "/admin/settings", "/healthz", "/api/latest",
                 "/api/alerts", "/api/silences", "/api/db/statements", "/api/history?window_s=60",
                 "/metrics", "/login"):
        r = s.get(stack.url + path, timeout=10)
        assert r.status_code in (200, 404), (path, r.status_code)
        pages[path] = r.text
    assert "***" in html.unescape(pages["/admin/settings"])
    log = stack.log()
    assert "Booting worker" in log or "Listening at" in log, log[-2000:]
    for where, text in [("server log", log), *pages.items()]:
        for secret in SECRETS + (ADMIN_PW,):
            assert secret not in text, f"a configured secret leaked into {where}"
    assert admin_token not in log
