"""Per-host agents: a real `python -m dashboard agent` process publishing through Redis."""
from __future__ import annotations

import pytest
import redis

from dashboard.app import create_app
from dashboard.config.load import from_dict
from tests.support.auth_helpers import logged_in_client
from tests.support.server import DashboardServer
from tests.support.util import wait_until


@pytest.fixture
def fleet(tmp_path, redis_server):
    redis.Redis.from_url(redis_server.url).flushall()
    settings = from_dict({"data_dir": str(tmp_path / "dash"), "async_mode": "threading",
                          "interval_s": 0.5, "message_queue": redis_server.url,
                          "rules": {"host_down": {"for_s": 1, "keep_firing_for_s": 2}},
                          "auth": {"api_rate_limit": "100000 per minute"}})
    app = create_app(settings, async_mode="threading")
    rt = app.extensions["dashboard"]
    rt.start()
    agent = DashboardServer(tmp_path / "agent", command="agent", args=("--host-name", "app2"),
                            env={"DASHBOARD_MESSAGE_QUEUE": redis_server.url,
                                 "DASHBOARD_INTERVAL_S": "0.5"})
    agent.start(wait=False)
    yield logged_in_client(app), agent, rt
    agent.kill()
    rt.stop()


def host_row(client, name):
    rows = client.get("/api/fleet").get_json()["hosts"]
    return next((r for r in rows if r["host"] == name), None)


def test_an_agent_reporting_as_a_second_host_appears_in_the_fleet_view(fleet):
    client, agent, rt = fleet
    row = wait_until(lambda: (r := host_row(client, "app2")) and r["cpu"] is not None and r,
                     timeout=20, message=lambda: f"fleet: {client.get('/api/fleet').get_json()}\n"
                                                 f"agent log: {agent.log()[-1500:]}")
    assert row["up"] is True and row["agent"] is True
    assert 0 <= row["mem"] <= 100 and row["disk"] is not None
    local = host_row(client, rt.settings.host_name)
    assert local is not None and local["agent"] is False
    page = client.get("/fleet").get_data(as_text=True)
    assert "app2" in page
    # Its charts: the agent's own series, labelled with its name.
    assert any(s.labels.get("host") == "app2" and "host.cpu_percent" in s.values
               for s in rt.store.latest())


def test_an_agent_that_stops_reporting_raises_host_down_for_that_host(fleet):
    client, agent, rt = fleet
    wait_until(lambda: (r := host_row(client, "app2")) and r["up"], timeout=20)
    agent.stop()
    wait_until(lambda: host_row(client, "app2")["up"] is False, timeout=15)
    rows = client.get("/api/fleet").get_json()["hosts"]
    assert rows[0]["host"] == "app2"                  # down hosts first

    def host_down():
        active = client.get("/api/alerts").get_json()["active"]
        return [a for a in active if a["rule"] == "host_down" and a["labels"] == {"host": "app2"}]
    wait_until(host_down, timeout=15, message=lambda: str(client.get("/api/alerts").get_json()))


def test_a_malformed_stream_entry_is_skipped_and_agents_keep_reporting(fleet, redis_server):
    client, agent, rt = fleet
    wait_until(lambda: (r := host_row(client, "app2")) and r["cpu"] is not None, timeout=20)
    r = redis.Redis.from_url(redis_server.url)
    r.xadd("dashboard:agents", {"host": "app2", "ts": "1", "interval_s": "1", "readings": '{"x": 1}'})
    r.xadd("dashboard:agents", {"host": "<img src=x>", "ts": "1", "interval_s": "1", "readings": "[]"})
    r.xadd("dashboard:agents", {"nonsense": "1"})
    after = max(s.seq for s in rt.store.latest())

    def malformed_counted_and_app2_fresh():
        latest = rt.store.latest()
        counts = [s.values.get("agents.malformed") for s in latest if s.source == "agents" and not s.labels]
        fresh = [s for s in latest if s.labels == {"host": "app2"} and s.seq > after
                 and "host.cpu_percent" in s.values]
        return counts and counts[0] >= 3 and fresh
    wait_until(malformed_counted_and_app2_fresh, timeout=15)
    assert all(r["host"] != "<img src=x>" for r in client.get("/api/fleet").get_json()["hosts"])


def test_a_retired_host_resolves_its_host_down_and_leaves_the_fleet(fleet, tmp_path, redis_server):
    client, agent, rt = fleet
    wait_until(lambda: (r := host_row(client, "app2")) and r["up"], timeout=20)
    agent.stop()
    wait_until(lambda: [a for a in client.get("/api/alerts").get_json()["active"]
                        if a["rule"] == "host_down"], timeout=20)
    retire = DashboardServer(tmp_path / "retire", command="agent", args=("--host-name", "app2", "--retire"),
                             env={"DASHBOARD_MESSAGE_QUEUE": redis_server.url})
    retire.start(wait=False)
    assert retire.proc.wait(30) == 0, retire.log()
    wait_until(lambda: not [a for a in client.get("/api/alerts").get_json()["active"]
                            if a["rule"] == "host_down"], timeout=20,
               message=lambda: str(client.get("/api/alerts").get_json()["active"]))
    assert host_row(client, "app2") is None
