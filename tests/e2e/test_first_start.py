"""The first `python -m dashboard serve` on an empty data dir creates one admin with a random
password kept in <data_dir>/admin_password (0600); a console that is not a terminal (here a
log file, under systemd the journal) gets only that path, never the password; a restart
creates and says nothing (issue 7)."""
from __future__ import annotations

import re
from pathlib import Path

import requests

from tests.support.server import DashboardServer

NOTICE = "dashboard: first admin created; password in "


def log_in(url: str, name: str, password: str) -> requests.Session:
    s = requests.Session()
    page = s.get(url + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(url + "/login", data={"name": name, "password": password, "csrf_token": token},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.status_code
    return s


def test_the_first_start_keeps_a_working_admin_password_in_a_file_and_logs_only_its_path(tmp_path):
    server = DashboardServer(tmp_path / "data")
    server.start()
    pw_file = (tmp_path / "data" / "admin_password").resolve()
    try:
        log = server.log()
        assert log.count(NOTICE) == 1
        assert Path(re.search(re.escape(NOTICE) + r"(\S+)", log).group(1)).resolve() == pw_file
        assert oct(pw_file.stat().st_mode & 0o777) == "0o600"
        password = pw_file.read_text().strip()
        assert len(password) >= 16 and password not in log
        session = log_in(server.url, "admin", password)
        assert session.get(server.url + "/admin", timeout=10).status_code == 200
        server.stop()
        server.start()                                # the same data dir: users exist
        assert server.log().count(NOTICE) == 1
        assert password not in server.log()
        log_in(server.url, "admin", password)
    finally:
        server.stop()
