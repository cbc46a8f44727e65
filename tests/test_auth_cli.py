"""`python -m dashboard create-user / create-token / revoke-token` and the first admin (issue 7)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.runtime import Runtime
from tests.support.auth_helpers import accounts_for

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

ROOT = Path(__file__).resolve().parent.parent


def run(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DASHBOARD_DATA_DIR": str(data_dir)}
    env.pop("DASHBOARD_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, env=env,
                          input=stdin if stdin is not None else "", capture_output=True,
                          text=True, timeout=60)


def app_on(data_dir: Path):
    settings = from_dict({"data_dir": str(data_dir), "async_mode": "threading"})
    return create_app(settings, Runtime(settings, []), async_mode="threading")


def test_create_token_prints_a_working_token_once_and_revoke_token_stops_it(tmp_path):
    out = run(tmp_path, "create-token", "--role", "viewer", "--name", "grafana")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert re.fullmatch(r"dsh_[A-Za-z0-9_-]{40,}", token)
    assert "shown once" in out.stderr and token not in out.stderr
    app = app_on(tmp_path)
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/latest", headers=headers).status_code == 200
    assert app.test_client().post("/api/silences", headers=headers, json={}).status_code == 403
    assert run(tmp_path, "revoke-token", "1").returncode == 0
    assert app.test_client().get("/api/latest", headers=headers).status_code == 401


def test_create_user_reads_the_password_from_stdin_and_refuses_duplicates(tmp_path):
    out = run(tmp_path, "create-user", "ann", "--role", "operator", "--password-stdin",
              stdin="a long enough password\n")
    assert out.returncode == 0 and out.stdout == "", out.stderr
    with accounts_for(tmp_path) as acc:
        user = acc.authenticate("ann", "a long enough password")
    assert user is not None and user.role == "operator"
    again = run(tmp_path, "create-user", "ann", "--role", "viewer", "--password-stdin", stdin="x" * 12)
    assert again.returncode == 2 and "exists already" in again.stderr
    short = run(tmp_path, "create-user", "bob", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    bad = run(tmp_path, "create-user", "bob", "--role", "root", "--password-stdin", stdin="x" * 12)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_create_user_without_a_terminal_generates_and_prints_a_password(tmp_path):
    out = run(tmp_path, "create-user", "carol", "--role", "viewer")
    assert out.returncode == 0
    with accounts_for(tmp_path) as acc:
        assert acc.authenticate("carol", out.stdout.strip()) is not None


def first_admin_code(data_dir: Path) -> str:
    # The settings from the environment, as `serve` reads them (DASHBOARD_STORE_URL included).
    return ("import os; from dashboard.config.load import load;"
            "from dashboard.auth.cli import first_admin;"
            f"first_admin(load(env={{**os.environ, 'DASHBOARD_CONFIG': '',"
            f" 'DASHBOARD_DATA_DIR': {str(data_dir)!r}}}))")


def test_the_first_start_creates_exactly_one_admin_and_keeps_its_password_in_a_0600_file(tmp_path):
    # stderr is a pipe here, as under systemd (journald) or a log file: the password is never
    # printed there, only where it is kept.
    code = first_admin_code(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    shown = [err for _, err in outputs if "first admin created" in err]
    assert len(shown) == 1, outputs
    pw_file = tmp_path / "admin_password"
    assert shown[0].strip() == f"dashboard: first admin created; password in {pw_file}"
    assert oct(pw_file.stat().st_mode & 0o777) == "0o600"
    password = pw_file.read_text().strip()
    assert len(password) >= 16 and not any(password in out + err for out, err in outputs)
    with accounts_for(tmp_path) as acc:
        assert [(u.name, u.role) for u in acc.users()] == [("admin", "admin")]
        assert acc.authenticate("admin", password) is not None
    later = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert later.stderr == "" and later.stdout == ""


def test_on_a_terminal_the_first_admin_password_is_shown_once_as_well(tmp_path):
    import pty
    main_fd, term = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", first_admin_code(tmp_path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=term, stdin=subprocess.DEVNULL)
    os.close(term)
    chunks = []
    while True:                          # until the child closes its end of the terminal
        try:
            data = os.read(main_fd, 4096)
        except OSError:                  # EIO: the other end is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(main_fd)
    assert proc.wait(timeout=60) == 0
    shown = b"".join(chunks).decode().replace("\r\n", "\n")
    password = (tmp_path / "admin_password").read_text().strip()
    assert shown.count(password) == 1 and "first start: created the user 'admin'" in shown
    assert str(tmp_path / "admin_password") in shown
