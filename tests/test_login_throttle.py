"""Failed logins per account (issue 13), beside the per-address limit of tests/test_auth_limits.py.

After ``[auth] login_account_failures`` (5) failed attempts for one name, every further attempt
for that name waits (429 with Retry-After, 5 s doubling up to 15 min) from any address, except
from an address that logged in to that account before, where the right password still works:
an attacker can slow the admin's logins down but cannot lock them out. IPv6 addresses count per
/64 (one host usually has a whole /64), IPv4 addresses one by one.
"""
from __future__ import annotations

import re
import sqlite3

import pytest
import requests

from dashboard.auth.throttle import client_key
from dashboard.demo.services import free_port
from tests.support.auth_helpers import add_user
from tests.support.server import DashboardServer
from tests.test_auth import without_csrf
from tests.test_auth_limits import attempt, make_app

PW = "correct horse battery"
A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"


def test_ipv6_addresses_count_per_64_and_ipv4_addresses_one_by_one():
    assert client_key("2001:db8:1:2::a") == client_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert client_key("2001:db8:1:2::a") != client_key("2001:db8:1:3::a")
    assert client_key("2001:DB8:1:2:0:0:0:A") == client_key("2001:db8:1:2::b")
    assert client_key("10.0.0.1") != client_key("10.0.0.2")
    assert client_key("::ffff:10.0.0.1") == client_key("10.0.0.1")      # IPv4 on a v6 socket
    assert client_key("fe80::1%eth0") == client_key("fe80::2")            # zone dropped
    assert client_key(None) == client_key("") != client_key("10.0.0.1")
    assert client_key("not an address") == "not an address"


def throttled(r) -> int:
    """Retry-After of a 429 that says so on the login page, else 0."""
    if r.status_code != 429:
        return 0
    assert "Too many failed logins" in r.get_data(as_text=True)
    return int(r.headers["Retry-After"])


def test_wrong_passwords_slow_down_every_new_address_but_not_one_that_logged_in_before(tmp_path):
    app = make_app(tmp_path)
    add_user(app, "root", "admin", password=PW)
    c = app.test_client()
    assert attempt(app.test_client(), "root", PW, ip=C).status_code == 302   # C: known
    for _ in range(6):                                                 # 5 free, the 6th counts
        assert attempt(c, "root", "wrong password", ip=A).status_code == 401
    again, elsewhere = attempt(c, "root", "wrong password", ip=A), attempt(c, "root", PW, ip=B)
    assert 0 < throttled(again) <= 5 and 0 < throttled(elsewhere) <= 5
    assert attempt(app.test_client(), "root", PW, ip=C).status_code == 302   # admin gets in
    # the same /64 as a known IPv6 address is known too
    v6 = "2001:db8:1:2::10"
    add_user(app, "ann", "viewer", password=PW)
    assert attempt(app.test_client(), "ann", PW, ip=v6).status_code == 302
    for _ in range(6):
        assert attempt(c, "ann", "wrong password", ip="10.0.0.4").status_code == 401
    assert throttled(attempt(c, "ann", PW, ip="2001:db8:1:3::10"))
    assert attempt(app.test_client(), "ann", PW, ip="2001:db8:1:2::ffff").status_code == 302


def test_a_name_that_does_not_exist_is_throttled_the_same_way(tmp_path):
    app = make_app(tmp_path)
    add_user(app, "root", "admin", password=PW)
    c = app.test_client()
    answers = {}
    for name, ip in (("root", A), ("nobody", B)):
        for _ in range(6):
            assert attempt(c, name, "wrong password", ip=ip).status_code == 401
        answers[name] = attempt(c, name, "wrong password", ip=ip)
        assert throttled(answers[name])
    assert without_csrf(answers["root"].get_data(as_text=True)) == \
        without_csrf(answers["nobody"].get_data(as_text=True))


def test_the_wait_doubles_with_each_further_failure_up_to_15_minutes(app):
    throttle = app.extensions["dashboard.login_throttle"]
    waits = [throttle.failed("root") for _ in range(16)]
    assert waits == [0] * 5 + [5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]
    assert 890 <= throttle.wait_s("root", A) <= 900
    assert throttle.wait_s("someone else", A) == 0


def test_known_addresses_are_kept_as_keyed_hashes_at_most_20_per_user(app):
    throttle = app.extensions["dashboard.login_throttle"]
    user, _ = add_user(app, "root", "admin")
    for i in range(25):
        throttle.succeeded(user.id, f"10.1.0.{i}")
    db = app.extensions["dashboard"].store.path
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM auth_known_addresses").fetchone()[0] == 20
    finally:
        conn.close()
    raw = b"".join(p.read_bytes() for p in db.parent.glob("history.sqlite3*"))
    assert b"10.1.0.24" not in raw
    for _ in range(6):
        throttle.failed("root")
    assert throttle.wait_s("root", "10.1.0.24") == 0            # the newest are known
    assert throttle.wait_s("root", "10.1.0.0") > 0               # the oldest were forgotten


def test_web_instances_share_the_count_through_the_message_queue(tmp_path, make_redis):
    mq = make_redis().url
    one, two = make_app(tmp_path, message_queue=mq), make_app(tmp_path, message_queue=mq)
    add_user(one, "root", "admin", password=PW)
    for _ in range(6):
        assert attempt(one.test_client(), "root", "wrong password", ip=A).status_code == 401
    assert throttled(attempt(two.test_client(), "root", PW, ip=B))


@pytest.fixture
def ipv6_server(tmp_path):
    """gunicorn on [::1] behind a (pretend) proxy: X-Forwarded-For is believed."""
    port = free_port()
    server = DashboardServer(tmp_path / "data", port=port,
                             env={"DASHBOARD_BIND": f"[::1]:{port}",
                                  "DASHBOARD_TRUSTED_PROXIES": "1"})
    server.url = f"http://[::1]:{port}"
    with server:
        yield server


def form_post(server, name: str, client_ip: str) -> int:
    s = requests.Session()
    fwd = {"X-Forwarded-For": client_ip}
    page = s.get(server.url + "/login", headers=fwd, timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return s.post(server.url + "/login", headers=fwd, allow_redirects=False, timeout=10,
                  data={"name": name, "password": "wrong", "csrf_token": csrf}).status_code


def test_ipv6_clients_in_the_same_64_share_the_per_address_limit_end_to_end(ipv6_server):
    # a new name each time: only the per-address limit (10 per 5 minutes) is in play
    for i in range(10):
        assert form_post(ipv6_server, f"nobody{i}", "2001:db8:1:2::a") == 401
    assert form_post(ipv6_server, "nobody-b", "2001:db8:1:2::b") == 429
    assert form_post(ipv6_server, "nobody-c", "2001:db8:1:3::a") == 401
