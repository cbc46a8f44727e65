"""Running it for real: the MySQL grants script, the systemd units, the app behind a proxy."""
from __future__ import annotations

import configparser
import os
import secrets
import subprocess
from pathlib import Path

import pymysql
import pytest

from dashboard.config.load import from_dict, parse_mysql
from dashboard.config.load import load as load_config
from tests.support.util import mysql_connect, wait_until

ROOT = Path(__file__).resolve().parent.parent
GRANTS = ROOT / "deploy" / "mysql-grants.sql"
UNITS = ROOT / "deploy" / "systemd"


# --- deploy/mysql-grants.sql against the real MariaDB ------------------------------------------

def _refused(conn, sql: str) -> int:
    """The MySQL error code a statement fails with (the test fails if it succeeds)."""
    with conn.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute(sql)
    return e.value.args[0]


@pytest.fixture
def monitor(mariadb):
    """The grants script applied as written, for a fresh account name and password."""
    user, password = "dash_mon_" + secrets.token_hex(3), "pw-" + secrets.token_urlsafe(12)
    script = GRANTS.read_text()
    assert script.count("'monitor'@'127.0.0.1'") >= 6 and "CHANGE-ME-PASSWORD" in script
    script = script.replace("'monitor'@", f"'{user}'@").replace("CHANGE-ME-PASSWORD", password)
    mariadb.sql(script)
    mariadb.sql(script)             # running it again is safe
    mariadb.sql("CREATE DATABASE IF NOT EXISTS shop_grants_t; CREATE TABLE IF NOT EXISTS "
                "shop_grants_t.orders (id INT PRIMARY KEY, total INT)")
    yield user, password, mariadb.url_for(user, password)
    mariadb.sql(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def test_the_grants_script_lets_the_monitor_read_status_processes_and_digests(mariadb, monitor):
    user, _, url = monitor
    with mysql_connect(mariadb.root_url) as app_session, mysql_connect(url) as mon:
        with app_session.cursor() as cur:      # someone else's session, and a statement to digest
            cur.execute("SELECT COUNT(*) FROM mysql.db WHERE Db = 'grants_probe'")
            cur.execute("SELECT CONNECTION_ID()")
            app_id = cur.fetchone()[0]
        with mon.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            assert int(cur.fetchone()[1]) >= 2
            cur.execute("SHOW FULL PROCESSLIST")
            assert app_id in [row[0] for row in cur.fetchall()]     # PROCESS: everyone's sessions
            cur.execute("SELECT DIGEST_TEXT, COUNT_STAR FROM performance_schema."
                        "events_statements_summary_by_digest WHERE DIGEST_TEXT LIKE '%grants_probe%'"
                        " OR DIGEST_TEXT LIKE '%`mysql` . `db`%'")
            assert cur.fetchall(), "the application's statement digest is not readable"
            cur.execute("SELECT NAME, ENABLED FROM performance_schema.setup_consumers")
            assert cur.fetchall()
            cur.execute("SHOW SLAVE STATUS")             # SLAVE MONITOR: no error 1227
            cur.execute("SHOW BINLOG STATUS")            # BINLOG MONITOR / REPLICATION CLIENT
            cur.execute("SELECT COUNT(*) FROM mysql.slow_log")
            cur.execute("SHOW GRANTS")
            grants = " ".join(r[0] for r in cur.fetchall())
    assert "SLAVE MONITOR" in grants and "BINLOG MONITOR" in grants and "PROCESS" in grants


def test_the_grants_script_gives_no_way_to_write_kill_or_reconfigure(mariadb, monitor):
    _, _, url = monitor
    with mysql_connect(mariadb.root_url) as app_session, mysql_connect(url) as mon:
        with app_session.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            app_id = cur.fetchone()[0]
        assert _refused(mon, "INSERT INTO shop_grants_t.orders VALUES (1, 10)") == 1142
        assert _refused(mon, "SELECT * FROM shop_grants_t.orders") == 1142   # no application data
        assert _refused(mon, "CREATE DATABASE grants_nope") == 1044
        assert _refused(mon, "UPDATE performance_schema.setup_consumers SET ENABLED = 'NO'") == 1142
        assert _refused(mon, "TRUNCATE TABLE performance_schema.events_statements_summary_by_digest") == 1142
        assert _refused(mon, "DELETE FROM mysql.slow_log") == 1142
        assert _refused(mon, "SET GLOBAL long_query_time = 5") == 1227
        assert _refused(mon, f"KILL {app_id}") == 1095
        assert _refused(mon, "CREATE USER 'x'@'%'") == 1227


def test_the_monitor_account_can_never_hold_more_than_five_connections(monitor):
    _, _, url = monitor
    conns = [mysql_connect(url) for _ in range(5)]
    try:
        with pytest.raises(pymysql.MySQLError) as e:
            mysql_connect(url)
        assert e.value.args[0] == 1226          # max_user_connections
    finally:
        for c in conns:
            c.close()


def test_the_db_collector_with_the_scripted_account_reports_every_grant_ok(monitor):
    from dashboard.collectors.mysql.collector import MySQLCollector

    _, password, url = monitor
    collector = MySQLCollector(parse_mysql({"url": url}), interval_s=1.0)
    try:
        def pool_read():
            values = {}
            for r in collector.collect():
                values.update(r.values)
            return values if "db.pool_utilization" in values else None
        wait_until(pool_read, timeout=10)
        notes = collector.check_notes()
    finally:
        collector.close()
    text = "\n".join(notes)
    assert "MISSING" not in text, text
    assert text.count("grant ok") >= 3, text
    assert "top statements from: performance_schema" in text, text
    assert password not in text


# --- deploy/systemd ------------------------------------------------------------------------------

def _unit(name: str) -> configparser.ConfigParser:
    p = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    p.optionxform = str               # type: ignore[assignment]  (keys are case-sensitive)
    p.read(UNITS / name)
    return p


@pytest.mark.parametrize("name,command", [
    ("dashboard-web@.service", "serve --web-only --bind 127.0.0.1:%i"),
    ("dashboard-collector.service", "collect"),
    ("dashboard-agent.service", "agent"),
])
def test_each_systemd_unit_runs_its_command_hardened(name, command):
    svc = _unit(name)["Service"]
    assert svc["ExecStart"].endswith(f"python -m dashboard {command}")
    assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["PrivateTmp"] == "yes" and svc["CapabilityBoundingSet"] == ""
    assert svc.get("DynamicUser") == "yes" or svc.get("User") == "dashboard"
    if "StateDirectory" in svc:          # whoever keeps data writes there and nowhere else
        assert svc["ReadWritePaths"] == "/var/lib/" + svc["StateDirectory"]


def test_web_and_collector_units_share_the_data_dir_and_user():
    web, col = _unit("dashboard-web@.service")["Service"], _unit("dashboard-collector.service")["Service"]
    for key in ("User", "StateDirectory", "ReadWritePaths", "WorkingDirectory"):
        assert web[key] == col[key], key
    text = (UNITS / "dashboard-web@.service").read_text()
    assert "DASHBOARD_DATA_DIR=/var/lib/dashboard" in text
    assert "DASHBOARD_DATA_DIR=/var/lib/dashboard" in (UNITS / "dashboard-collector.service").read_text()


@pytest.mark.parametrize("name", ["dashboard-web@8051.service", "dashboard-collector.service",
                                  "dashboard-agent.service", "dashboard.target"])
def test_systemd_accepts_each_unit(tmp_path, name):
    """``systemd-analyze verify`` with the install path pointed at this checkout."""
    for f in UNITS.iterdir():
        (tmp_path / f.name).write_text(f.read_text().replace("/opt/dashboard", str(ROOT)))
    (ROOT / ".venv" / "bin" / "python").resolve(strict=True)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # Units it pulls in by name (redis-server.service, ...) may be missing on a test machine.
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "not found" not in line.lower()]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


# --- behind a proxy -----------------------------------------------------------------------------

def _api_app(tmp_path, trusted: int):
    from dashboard.app import create_app
    from dashboard.runtime import Runtime
    from tests.support.auth_helpers import add_token

    settings = from_dict({"data_dir": str(tmp_path / "data"), "async_mode": "threading",
                          "trusted_proxies": trusted, "auth": {"api_rate_limit": "3 per minute"}})
    app = create_app(settings, Runtime(settings, []), async_mode="threading")
    return app, {"Authorization": f"Bearer {add_token(app, 'viewer')}"}


def _codes(client, headers, forwarded_for: str, n: int) -> list[int]:
    return [client.get("/api/latest", headers={**headers, "X-Forwarded-For": forwarded_for},
                       environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code for _ in range(n)]


def test_behind_a_trusted_proxy_rate_limits_count_each_client_not_the_proxy(tmp_path):
    app, headers = _api_app(tmp_path, trusted=1)
    c = app.test_client()
    assert _codes(c, headers, "203.0.113.7", 4) == [200, 200, 200, 429]
    assert _codes(c, headers, "198.51.100.9", 1) == [200]     # another client is not punished


def test_without_trusted_proxies_a_forged_forwarded_for_does_not_dodge_the_limit(tmp_path):
    app, headers = _api_app(tmp_path, trusted=0)
    c = app.test_client()
    assert _codes(c, headers, "203.0.113.7", 3) == [200, 200, 200]
    assert _codes(c, headers, "198.51.100.9", 1) == [429]


def test_each_web_instance_gets_its_own_gunicorn_control_socket():
    # gunicorn >= 25.1 opens $HOME/.gunicorn/gunicorn.ctl by default: one path for every instance.
    svc = (UNITS / "dashboard-web@.service").read_text()
    assert "RuntimeDirectory=dashboard-web-%i\n" in svc
    assert "GUNICORN_CMD_ARGS=--control-socket=/run/dashboard-web-%i/gunicorn.ctl\n" in svc


@pytest.mark.parametrize("name,func", [("dashboard-web@.service", "cmd_serve"),
                                       ("dashboard-collector.service", "cmd_collect"),
                                       ("dashboard-agent.service", "cmd_agent")])
def test_each_unit_command_line_is_one_the_dashboard_accepts(monkeypatch, name, func):
    from dashboard import __main__ as cli

    argv = _unit(name)["Service"]["ExecStart"].split(" -m dashboard ", 1)[1].replace("%i", "8051")
    seen = []
    monkeypatch.setattr(cli, func, lambda args: seen.append(args) or 0)
    assert cli.main(argv.split()) == 0          # argparse exits 2 on an unknown option
    assert len(seen) == 1


# --- deploy/two-machines -------------------------------------------------------------------------

TWO = ROOT / "deploy" / "two-machines"
DROP_INS = {"dashboard-collector.service": TWO / "systemd" / "dashboard-collector.service.d",
            "dashboard-web@.service": TWO / "systemd" / "dashboard-web@.service.d"}


def test_the_two_machine_layout_has_a_drop_in_for_each_unit_a_machine_runs():
    assert sorted(p.name for p in (TWO / "systemd").iterdir()) == sorted(d.name for d in DROP_INS.values())
    for unit, folder in DROP_INS.items():
        assert [p.name for p in folder.iterdir()] == ["two-machines.conf"], unit
        assert (UNITS / unit).exists()


@pytest.mark.parametrize("name,unit", [("dashboard-web@8051.service", "dashboard-web@.service"),
                                       ("dashboard-collector.service", "dashboard-collector.service")])
def test_systemd_accepts_each_two_machine_unit_with_its_drop_in(tmp_path, name, unit):
    """The unit and its drop-in folder side by side, as in /etc/systemd/system: verify reads
    both (an unknown key or a bad value in the drop-in is reported)."""
    for f in UNITS.iterdir():
        (tmp_path / f.name).write_text(f.read_text().replace("/opt/dashboard", str(ROOT)))
    folder = tmp_path / DROP_INS[unit].name
    folder.mkdir()
    (folder / "two-machines.conf").write_text((DROP_INS[unit] / "two-machines.conf").read_text())
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "not found" not in line.lower()]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def _drop_in(unit: str) -> configparser.ConfigParser:
    p = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    p.optionxform = str               # type: ignore[assignment]
    p.read(DROP_INS[unit] / "two-machines.conf")
    return p


@pytest.mark.parametrize("unit,argv", [
    ("dashboard-collector.service", ["collect"]),
    ("dashboard-web@.service", ["serve", "--web-only", "--bind", "127.0.0.1:0"]),
])
def test_a_machine_that_starts_while_postgresql_is_away_keeps_restarting(tmp_path, unit, argv):
    """The process exits with a status systemd restarts (not the 2 of a bad configuration), and
    the drop-in lifts the start limit that would otherwise leave the unit failed."""
    from dashboard.demo.services import free_port

    env = {**os.environ, "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
           "DASHBOARD_STORE_URL": f"postgresql://dashboard:s3cret-pg-pw@127.0.0.1:{free_port()}/dashboard",
           "DASHBOARD_MESSAGE_QUEUE": f"redis://127.0.0.1:{free_port()}/1"}
    env.pop("DASHBOARD_CONFIG", None)
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "dashboard", *argv],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    base = _unit(unit)["Service"]
    assert result.returncode not in (0, int(base["RestartPreventExitStatus"])), result.stderr
    assert base["Restart"] in ("always", "on-failure")
    assert "s3cret-pg-pw" not in result.stdout + result.stderr
    assert _drop_in(unit)["Unit"]["StartLimitIntervalSec"] == "0"


def test_the_two_machine_configuration_loads_and_names_the_shared_services():
    s = load_config(TWO / "dashboard.toml", env={})
    assert s.store_url and s.store_url.startswith("postgresql://")
    assert s.message_queue and s.message_queue.startswith("redis://")
    assert s.host_name == "dashboard" and s.trusted_proxies == 1
    assert s.data_dir == from_dict({}).data_dir       # each machine's own (the units set it)
