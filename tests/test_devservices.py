"""The service fixtures are real and behave: these tests guard the test infrastructure."""

from __future__ import annotations

import os
import secrets
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage

import pymysql
import pytest
import redis

from dashboard.demo import services as devservices
from tests.support.util import mysql_connect, wait_until

MONITOR_GRANTS = ["PROCESS", "BINLOG MONITOR", "SELECT ON performance_schema.*"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still "exists"; it is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


# --- MariaDB ------------------------------------------------------------------------------------


def test_mariadb_answers_and_has_performance_schema(mariadb):
    with mysql_connect(mariadb.root_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@performance_schema, @@port, @@bind_address")
        version, perf_schema, port, bind = cur.fetchone()
    assert "MariaDB" in version
    assert perf_schema == 1
    assert port == mariadb.port
    assert bind == "127.0.0.1"


def test_monitor_user_has_exactly_the_given_grants(mariadb):
    password = "p@ss:w/rd'" + secrets.token_hex(4)  # needs quoting in SQL and in the URL
    url = mariadb.create_monitor_user("monitor_t", password, MONITOR_GRANTS)
    assert url == mariadb.url_for("monitor_t", password)
    assert url.startswith("mysql://monitor_t:") and url.endswith(f"@127.0.0.1:{mariadb.port}/")

    with mysql_connect(url) as conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        grants = " | ".join(row[0] for row in cur.fetchall())
        assert "PROCESS" in grants and "BINLOG MONITOR" in grants
        assert "SELECT ON `performance_schema`.*" in grants
        assert "ALL PRIVILEGES" not in grants

        with mysql_connect(mariadb.root_url) as other:  # PROCESS: sees other users' threads
            other.ping()
            cur.execute("SHOW FULL PROCESSLIST")
            users = {row[1] for row in cur.fetchall()}
        assert {"monitor_t", "root"} <= users
        cur.execute("SELECT COUNT(*) FROM performance_schema.threads")
        assert cur.fetchone()[0] > 0
        cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        assert int(cur.fetchone()[1]) >= 1
        cur.execute("SHOW MASTER STATUS")  # needs BINLOG MONITOR (empty: no binlog here)

        with pytest.raises(pymysql.err.OperationalError) as denied:
            cur.execute("CREATE DATABASE should_not_exist")
        assert denied.value.args[0] == 1044  # access denied for user to database
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("SELECT * FROM mysql.user")

    # re-creating the user replaces its grants instead of adding to them
    url2 = mariadb.create_monitor_user("monitor_t", password, ["PROCESS"])
    with mysql_connect(url2) as conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        grants = " | ".join(row[0] for row in cur.fetchall())
    assert "performance_schema" not in grants and "BINLOG MONITOR" not in grants


def test_mariadb_stop_and_start_keeps_port_data_and_users(mariadb):
    with mysql_connect(mariadb.root_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS restart_check")
        cur.execute("CREATE TABLE IF NOT EXISTS restart_check.t (v INT)")
        cur.execute("INSERT INTO restart_check.t VALUES (42)")
    monitor_url = mariadb.create_monitor_user("monitor_r", "secret", MONITOR_GRANTS)
    port, old_pid = mariadb.port, mariadb.pid

    mariadb.stop()
    assert not mariadb.running
    assert not _pid_alive(old_pid)
    with pytest.raises(pymysql.err.OperationalError) as refused:
        mysql_connect(mariadb.root_url, connect_timeout=2)
    assert refused.value.args[0] == 2003  # can't connect: server down, as a collector sees it

    mariadb.start()
    assert mariadb.running and mariadb.port == port and mariadb.pid != old_pid
    with mysql_connect(monitor_url) as conn, conn.cursor() as cur:
        cur.execute("SHOW PROCESSLIST")
    with mysql_connect(mariadb.root_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT SUM(v) FROM restart_check.t")
        assert cur.fetchone()[0] >= 42
        cur.execute("SELECT @@performance_schema")
        assert cur.fetchone()[0] == 1


def test_mariadb_survives_kill_and_the_next_test_gets_it_back(mariadb):
    mariadb.kill()  # a crash; deliberately not restarted here
    assert not mariadb.running


def test_session_fixture_was_revived_after_a_kill(mariadb):
    assert mariadb.running
    with mysql_connect(mariadb.root_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_private_mariadb_without_performance_schema(make_mariadb):
    db = make_mariadb(performance_schema=False, extra_args=["--max-connections=20"])
    assert db.query("SELECT @@performance_schema, @@max_connections") == [["0", "20"]]


def test_mariadb_start_failure_reports_error_log(tmp_path):
    with pytest.raises(devservices.DevServiceError) as failed:
        devservices.start_mariadb(tmp_path / "bad", extra_args=["--no-such-option-here"])
    assert "no-such-option-here" in str(failed.value)


# --- Redis and memcached ---------------------------------------------------------------------


def test_redis_ping_set_get_and_restart(redis_server):
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    assert client.ping()
    client.set("devservices:check", "hello")
    assert client.get("devservices:check") == b"hello"
    assert client.config_get("save") == {"save": ""}

    redis_server.stop()
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(redis_server.url, socket_timeout=2).ping()
    redis_server.start()
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    assert client.ping()
    assert client.get("devservices:check") is None  # no persistence, by design


def test_memcached_set_get(memcached_server):
    from pymemcache.client.base import Client

    client = Client(memcached_server.address, connect_timeout=5, timeout=5)
    client.set("k", b"v")
    assert client.get("k") == b"v"
    assert int(client.stats()[b"curr_connections"]) >= 1
    client.close()


def test_stop_leaves_no_process_and_is_idempotent(make_redis):
    server = make_redis()
    pid = server.pid
    assert _pid_alive(pid)
    server.stop()
    assert not _pid_alive(pid)
    server.stop()  # twice is fine
    server.kill()


# --- SMTP and webhook receivers ----------------------------------------------------------------


def test_smtp_server_receives_mail(smtp_server):
    msg = EmailMessage()
    msg["From"] = "dashboard@example.test"
    msg["To"] = "oncall@example.test"
    msg["Subject"] = "[CRITICAL] db_pool_utilization 97%"
    msg.set_content("Pool at 97% for 60 s.")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.login("dashboard", "anything")
        smtp.send_message(msg)

    (received,) = smtp_server.wait_for(1, timeout=10)
    assert received.mail_from == "dashboard@example.test"
    assert received.rcpt_tos == ["oncall@example.test"]
    assert received.subject == "[CRITICAL] db_pool_utilization 97%"
    assert "Pool at 97%" in received.text
    assert received.auth_login == "dashboard"


def test_smtp_server_can_reject_then_accept(smtp_server):
    assert smtp_server.messages == []  # emptied between tests
    smtp_server.reject_next(1)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as rejected:
            smtp.sendmail("a@example.test", ["b@example.test"], b"Subject: 1\r\n\r\nx\r\n")
        assert rejected.value.smtp_code == 451
        smtp.sendmail("a@example.test", ["b@example.test"], b"Subject: 2\r\n\r\nx\r\n")
    assert [m.subject for m in smtp_server.wait_for(1)] == ["2"]


def _post(url: str, body: bytes) -> int:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_webhook_receiver_answers_programmed_statuses_in_order(webhook_receiver):
    webhook_receiver.respond_with([503, 503, 200])
    url = webhook_receiver.url_for("/hooks/oncall")
    statuses = [_post(url, b'{"n": %d}' % i) for i in range(4)]
    assert statuses == [503, 503, 200, 200]  # then the default

    requests = webhook_receiver.wait_for(4, timeout=10)
    assert [r.status for r in requests] == [503, 503, 200, 200]
    assert [r.json()["n"] for r in requests] == [0, 1, 2, 3]
    assert {r.method for r in requests} == {"POST"}
    assert {r.path for r in requests} == {"/hooks/oncall"}
    assert requests[0].header("content-type") == "application/json"


def test_webhook_receiver_is_emptied_between_tests(webhook_receiver):
    assert webhook_receiver.requests == []
    webhook_receiver.respond_with([(429, "slow down", {"Retry-After": "1"})])
    req = urllib.request.Request(webhook_receiver.url, method="GET")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 429 and err.value.headers["Retry-After"] == "1"
    assert err.value.read() == b"slow down"


def test_wait_until_polls_and_fails_with_message():
    calls = []
    assert wait_until(lambda: calls.append(1) or len(calls) >= 3, timeout=5, interval=0.01)
    with pytest.raises(AssertionError, match="never true"):
        wait_until(lambda: False, timeout=0.1, interval=0.01, message="never true")
