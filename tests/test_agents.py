"""Per-host agents: a real `python -m dashboard agent` process publishing through Redis."""
from __future__ import annotations

import pytest
import redis

from dashboard.app import create_app
from dashboard.config import from_dict
from tests.auth_helpers import logged_in_client
from tests.server import DashboardServer
from tests.util import wait_until


@pytest.fixture
def fleet(tmp_path, redis_server):
    redis.Redis.from_url(redis_server.url).flushall()
    settings = from_dict({"data_dir": str(tmp_path / "dash"), "async_mode": "threading",
                          "interval_s": 0.5, "message_queue": redis_server.url,
                          "rules": {"host_down": {"for_s": 1}},
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
