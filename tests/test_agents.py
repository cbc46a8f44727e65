"""Per-host agents: a real `python -m dashboard agent` process publishing through Redis."""
from __future__ import annotations

import json
import logging
import math
import time

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
    r.xadd(stream_of("app2"), {"host": "app2", "ts": "1", "interval_s": "1", "readings": '{"x": 1}'})
    r.xadd(stream_of("app2"), {"host": "<img src=x>", "ts": "1", "interval_s": "1", "readings": "[]"})
    r.xadd(stream_of("app2"), {"nonsense": "1"})
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


def stream_of(host):
    return f"dashboard:agent:{host}"


def entry(host, readings, ts=None, interval_s="0.5"):
    return {"host": host, "interval_s": interval_s, "source": "host",
            "ts": repr(time.time()) if ts is None else ts,
            "readings": readings if isinstance(readings, str) else json.dumps(readings)}


def agents_counts(rt):
    return next((s.values for s in rt.store.latest() if s.source == "agents" and not s.labels), {})


def fresh_app2_after(rt, seq):
    return [s for s in rt.store.latest() if s.labels == {"host": "app2"} and s.seq > seq
            and "host.cpu_percent" in s.values]


def test_hostile_entries_are_refused_counted_and_the_agent_is_still_ingested(fleet, redis_server, caplog):
    client, agent, rt = fleet
    wait_until(lambda: (r := host_row(client, "app2")) and r["cpu"] is not None, timeout=20)
    r = redis.Redis.from_url(redis_server.url)
    cpu = [{"values": {"host.cpu_percent": 5.0}, "labels": {}}]
    hostile = [
        entry("app2", '[{"values": {"host.cpu_percent": 1%s}, "labels": {}}]' % ("0" * 400)),
        entry("app2", cpu, ts="1" + "0" * 400),
        entry("app2", cpu, ts="inf"), entry("app2", cpu, ts="nan"), entry("app2", cpu, ts="1e18"),
        entry("app2", cpu, interval_s="nan"), entry("app2", cpu, interval_s="1e18"),
        entry("app2", [{"values": {"constructor": 1.0}, "labels": {}}]),
        entry("app2", [{"values": {"host.disk_percent": 1.0}, "labels": {"<script>": "x"}}]),
        entry("app2", [{"values": {"host.disk_percent": 1.0}, "labels": {"mount": "/" * 5000}}]),
        entry("app2", [{"values": {"host.cpu_percent": 1.0}, "labels": {}}] * 1000),
    ]
    with caplog.at_level(logging.WARNING, logger="dashboard.collectors.agents"):
        for fields in hostile:
            r.xadd(stream_of("app2"), fields)
        after = max(s.seq for s in rt.store.latest())
        wait_until(lambda: agents_counts(rt).get("agents.malformed", 0) >= len(hostile)
                   and fresh_app2_after(rt, after), timeout=15,
                   message=lambda: f"{agents_counts(rt)}; agent log: {agent.log()[-800:]}")
    assert agents_counts(rt)["agents.malformed"] == len(hostile)
    now = time.time()
    for s in rt.store.between(0):
        assert math.isfinite(s.ts) and s.ts < now + 300
        assert "constructor" not in s.values and "<script>" not in s.labels
        assert len(s.labels.get("mount", "")) <= 256
    assert "dashboard_agents_malformed " in client.get("/metrics").get_data(as_text=True)
    refused = [rec.getMessage() for rec in caplog.records if "refused" in rec.getMessage()]
    assert len(refused) == 1 and "<script>" not in refused[0], refused  # once a minute, no echo


def test_a_silent_host_goes_down_whatever_times_its_stream_claims(fleet, redis_server):
    client, agent, rt = fleet
    wait_until(lambda: (r := host_row(client, "app2")) and r["up"], timeout=20)
    agent.stop()
    r = redis.Redis.from_url(redis_server.url)
    cpu = [{"values": {"host.cpu_percent": 5.0}, "labels": {}}]
    for ts in ("1e18", "inf", "nan"):
        r.xadd(stream_of("app2"), entry("app2", cpu, ts=ts))

    def host_down():
        active = client.get("/api/alerts").get_json()["active"]
        return [a for a in active if a["rule"] == "host_down" and a["labels"] == {"host": "app2"}]
    wait_until(host_down, timeout=20, message=lambda: f"{client.get('/api/fleet').get_json()}")


def test_an_agent_flooding_label_sets_is_capped(fleet, redis_server):
    client, _, rt = fleet
    from dashboard.collectors.agents.collector import MAX_SERIES_PER_HOST
    wait_until(lambda: (r := host_row(client, "app2")) and r["cpu"] is not None, timeout=20)
    r = redis.Redis.from_url(redis_server.url)
    for batch in range(10):
        r.xadd(stream_of("app2"), entry("app2", [
            {"values": {"host.disk_percent": 1.0}, "labels": {"mount": f"/m{batch}-{i}"}}
            for i in range(50)]))
    wait_until(lambda: agents_counts(rt).get("agents.series_dropped", 0) > 0, timeout=15,
               message=lambda: str(agents_counts(rt)))
    app2_series = {tuple(sorted(s.labels.items())) for s in rt.store.between(0)
                   if s.labels.get("host") == "app2"}
    assert len(app2_series) <= MAX_SERIES_PER_HOST


def test_a_new_leader_reads_every_hosts_stream_on_from_where_the_previous_one_stopped(redis_server):
    from dashboard.collectors.agents.collector import AgentsCollector
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    cpu = lambda x: [{"values": {"host.cpu_percent": x}, "labels": {}}]  # noqa: E731
    for host in ("app1", "app2"):
        r.xadd(stream_of(host), entry(host, cpu(1.0)))     # before any collector: not read
    r.xadd("dashboard:agent:not a host", {"host": "x"})

    def cpus(collector):
        return sorted((x.labels["host"], x.values["host.cpu_percent"]) for x in collector.collect()
                      if "host.cpu_percent" in x.values)
    first = AgentsCollector(r)
    assert cpus(first) == []
    r.xadd(stream_of("app1"), entry("app1", cpu(2.0)))
    r.xadd(stream_of("app2"), entry("app2", cpu(3.0)))
    assert cpus(first) == [("app1", 2.0), ("app2", 3.0)]
    assert first.streams.ignored == 1
    # The leader dies; entries keep coming; the next one starts from the stored positions.
    r.xadd(stream_of("app2"), entry("app2", cpu(4.0)))
    assert cpus(AgentsCollector(r)) == [("app2", 4.0)]
