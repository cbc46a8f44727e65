"""The first `python -m dashboard serve` on an empty data dir creates one admin with a random
password shown once on the console; a restart shows nothing (issue 7)."""
from __future__ import annotations

import re

import requests

from tests.server import DashboardServer

BANNER = "dashboard: first start: created the user 'admin'"


def log_in(url: str, name: str, password: str) -> requests.Session:
    s = requests.Session()
    page = s.get(url + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(url + "/login", data={"name": name, "password": password, "csrf_token": token},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.status_code
    return s


def test_the_first_start_prints_a_working_admin_password_once_and_never_again(tmp_path):
    server = DashboardServer(tmp_path / "data")
    server.start()
    try:
        log = server.log()
        assert log.count(BANNER) == 1
        password = re.search(re.escape(BANNER) + r".*?\n\n    (\S+)\n", log, re.S).group(1)
        assert len(password) >= 16
        session = log_in(server.url, "admin", password)
        assert session.get(server.url + "/admin", timeout=10).status_code == 200
        server.stop()
        server.start()                                # the same data dir: users exist
        assert server.log().count(BANNER) == 1
        assert server.log().count(password) == 1
        log_in(server.url, "admin", password)
    finally:
        server.stop()
