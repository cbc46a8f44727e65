"""Each agent host has its own Redis user that may only append to its own stream (issue 13.2).

The Redis here requires a password of its default user (the dashboard's own, "admin", URL) and
keeps its users in an ACL file, like a production message queue should.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import redis

from dashboard.app import create_app
from dashboard.config.load import from_dict
from tests.support.auth_helpers import logged_in_client
from tests.support.server import ROOT, DashboardServer
from tests.support.util import wait_until

ADMIN_PASSWORD = "admin-pw-for-the-acl-test"


def run_cli(tmp_path, mq_url, *args):
    env = {"PATH": "/usr/bin:/bin", "DASHBOARD_DATA_DIR": str(tmp_path / "cli"),
           "DASHBOARD_MESSAGE_QUEUE": mq_url}
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def secure(server):
    """The default user needs a password from now on; returns the admin URL."""
    redis.Redis.from_url(server.url).acl_setuser("default", enabled=True, passwords=[f"+{ADMIN_PASSWORD}"])
    return f"redis://default:{ADMIN_PASSWORD}@127.0.0.1:{server.port}/0"


@pytest.fixture
def acl_redis(tmp_path, make_redis):
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("")
    server = make_redis(extra_args=["--aclfile", str(aclfile)])
    return server, secure(server), aclfile


@pytest.fixture
def agent_url(acl_redis, tmp_path):
    _, admin_url, _ = acl_redis
    done = run_cli(tmp_path, admin_url, "agent-credentials", "app2")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    assert ADMIN_PASSWORD not in done.stdout + done.stderr
    yield url
    admin = redis.Redis.from_url(admin_url)
    admin.acl_deluser("dashboard-agent-app2")
    admin.close()


def test_agent_credentials_allow_appending_to_the_own_stream_and_nothing_else(acl_redis, agent_url):
    server, admin_url, aclfile = acl_redis
    from dashboard.process.agent import retire, stream_key
    parts = urlsplit(agent_url)
    assert (parts.username, parts.hostname, parts.port, parts.path) == \
        ("dashboard-agent-app2", "127.0.0.1", server.port, "/0")
    saved = aclfile.read_text()           # ACL SAVE ran: the user survives a restart
    assert "user dashboard-agent-app2 " in saved and parts.password not in saved
    agent = redis.Redis.from_url(agent_url)
    admin = redis.Redis.from_url(admin_url)
    try:
        agent.xadd(stream_key("app2"), {"host": "app2", "retire": "1"})
        retire(agent, "app2")                 # a host may take itself out of service
        assert admin.xlen(stream_key("app2")) == 2
        refused = [
            lambda: agent.set("dashboard:collector-leader", "x", px=999999999),
            lambda: agent.xadd(stream_key("app3"), {"host": "app3", "retire": "1"}),
            lambda: retire(agent, "app3"),
            lambda: agent.xtrim(stream_key("app2"), maxlen=0),
            lambda: agent.delete(stream_key("app2")),
            lambda: agent.publish("flask-socketio", b"x"),
            lambda: agent.get("dashboard:collector-status"),
            lambda: agent.xread({stream_key("app3"): "0-0"}),
        ]
        for attempt in refused:
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
        assert admin.xlen(stream_key("app2")) == 2 and admin.get("dashboard:collector-leader") is None
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port).ping()
    finally:
        agent.close()
        admin.close()


def test_check_with_an_agent_url_lists_each_refusal_and_flags_an_open_default_user(
        acl_redis, agent_url, tmp_path):
    _, admin_url, _ = acl_redis
    done = run_cli(tmp_path, agent_url, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for what in ("XADD dashboard:agent:app2", "SET dashboard:collector-leader",
                 "XADD dashboard:agent:", "XTRIM", "DEL", "PUBLISH flask-socketio",
                 "GET dashboard:collector-status", "without a password"):
        assert what in out, out
    assert "PROBLEM" not in out and urlsplit(agent_url).password not in out
    redis.Redis.from_url(admin_url).acl_setuser("default", enabled=True, nopass=True)  # open door
    done = run_cli(tmp_path, agent_url, "check")
    assert done.returncode != 0 and "PROBLEM" in done.stdout, done.stdout


def test_without_an_acl_file_the_rule_to_persist_is_printed_without_the_password(make_redis, tmp_path):
    server = make_redis()
    admin_url = secure(server)
    done = run_cli(tmp_path, admin_url, "agent-credentials", "web-1.example")
    try:
        assert done.returncode == 0, done.stderr
        password = urlsplit(done.stdout.strip().splitlines()[-1]).password
        [line] = [x for x in done.stderr.splitlines()
                  if x.startswith("user dashboard-agent-web-1.example on ")]
        assert "#" + hashlib.sha256(password.encode()).hexdigest() in line.split()
        assert "%W~dashboard:agent:web-1.example" in line.split() and "+xadd" in line.split()
        assert password not in done.stderr and ADMIN_PASSWORD not in done.stdout + done.stderr
    finally:
        redis.Redis.from_url(admin_url).acl_deluser("dashboard-agent-web-1.example")


def test_agent_credentials_refuse_a_host_name_that_is_not_one(acl_redis, tmp_path):
    _, admin_url, _ = acl_redis
    done = run_cli(tmp_path, admin_url, "agent-credentials", "a*")
    assert done.returncode == 2 and "host name" in done.stderr
    assert [u for u in redis.Redis.from_url(admin_url).acl_users() if "agent" in u] == []


def test_an_agent_with_its_own_user_is_ingested_and_cannot_speak_for_another_host(
        acl_redis, agent_url, tmp_path):
    _, admin_url, _ = acl_redis
    from dashboard.process.agent import stream_key
    settings = from_dict({"data_dir": str(tmp_path / "dash"), "async_mode": "threading",
                          "interval_s": 0.5, "message_queue": admin_url,
                          "auth": {"api_rate_limit": "100000 per minute"}})
    app = create_app(settings, async_mode="threading")
    rt = app.extensions["dashboard"]
    rt.start()
    agent = DashboardServer(tmp_path / "agent", command="agent", args=("--host-name", "app2"),
                            env={"DASHBOARD_MESSAGE_QUEUE": agent_url, "DASHBOARD_INTERVAL_S": "0.5"})
    client = logged_in_client(app)
    try:
        agent.start(wait=False)
        def hosts():
            return {r["host"]: r for r in client.get("/api/fleet").get_json()["hosts"]}
        wait_until(lambda: (r := hosts().get("app2")) and r["cpu"] is not None and r["up"],
                   timeout=20, message=lambda: f"{hosts()}; agent log: {agent.log()[-1500:]}")
        assert urlsplit(agent_url).password not in agent.log()
        # Its own stream, another host's name: refused, counted, not shown.
        r = redis.Redis.from_url(agent_url)
        r.xadd(stream_key("app2"), {"host": "app3", "retire": "1"})
        r.close()
        wait_until(lambda: any(s.values.get("agents.malformed", 0) >= 1 for s in rt.store.latest()
                               if s.source == "agents" and not s.labels), timeout=15)
        assert "app3" not in hosts() and hosts()["app2"]["up"]
        other = run_cli(tmp_path, agent_url, "agent", "--host-name", "app3", "--retire")
        assert other.returncode != 0 and "not allowed" in other.stderr, other.stderr
        assert urlsplit(agent_url).password not in other.stdout + other.stderr
    finally:
        agent.kill()
        rt.stop()
