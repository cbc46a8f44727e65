"""The first `python -m dashboard serve` on an empty data dir creates one admin with a random
password kept in <data_dir>/admin_password (0600); a console that is not a terminal (here a
log file, under systemd the journal) gets only that path, never the password; a restart
creates and says nothing (issue 7). Whatever the umask, the data dir is the owner's only."""
from __future__ import annotations

import os
import re
from pathlib import Path

import requests

from tests.support.server import DashboardServer
from tests.support.util import wait_until

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


def test_started_under_umask_022_the_data_dir_is_0700_and_every_file_in_it_0600(tmp_path):
    data = tmp_path / "data"
    old = os.umask(0o022)            # a shell's usual umask (systemd's units set 0077 themselves)
    try:
        server = DashboardServer(data)     # makes the dir (0755) and its log file (0644) first
        server.start()
    finally:
        os.umask(old)
    try:
        password = (data / "admin_password").read_text().strip()
        log_in(server.url, "admin", password)          # a session written to the store
        wait_until(lambda: (data / "history.sqlite3-wal").exists(), timeout=10)
        modes = {str(p.relative_to(data)): oct(p.stat().st_mode & 0o777)
                 for p in data.rglob("*")}
        assert oct(data.stat().st_mode & 0o777) == "0o700"
        assert {"history.sqlite3", "history.sqlite3-wal", "history.sqlite3-shm", "secret_key",
                "admin_password"} <= modes.keys()
        assert {p: m for p, m in modes.items() if m != "0o600"} == {}
    finally:
        server.stop()
