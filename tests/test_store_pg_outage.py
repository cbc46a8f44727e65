"""PostgreSQL stopped mid-run (the tests' private cluster): the store is down, and that is loud, not
fatal, as a full disk is (issue 16, item 2): alerting goes on from memory, ``store_down`` pages
once and resolves once, /healthz says degraded, and what was judged meanwhile is recorded once
the server is back."""
from __future__ import annotations

import time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from dashboard import alerting
from dashboard.app import create_app
from dashboard.collectors.probes import DayCounts
from dashboard.config import load as config
from dashboard.runtime import Runtime
from tests.support.alert_helpers import FAST, Clock, drain, pool
from tests.support.auth_helpers import logged_in_client
from tests.support.pg import PgCluster


def sender_steps(svc, clock: Clock, channel: str = "hook", steps: int = 10) -> None:
    """What the channel's sender thread does, step by step with the clock moved over its waits:
    a step the store fails is retried later, as the thread does."""
    conn = svc.outbox._connect()
    try:
        for _ in range(steps):
            try:
                delay = svc.outbox.step(conn, channel)
            except Exception as e:      # noqa: BLE001 - as AlertSender._run
                svc.outbox.failed_step(channel, e)
                delay = 5.0
            if delay is None:
                return
            clock.advance(delay)
    finally:
        conn.close()


def store_down_events(receiver) -> list[str]:
    return [a["event"] for r in receiver.requests for a in r.json()["alerts"]
            if a["rule"] == "store_down"]


def test_a_stopped_postgresql_pages_store_down_once_keeps_alerting_and_records_it_afterwards(
        tmp_path, pg_url: str, pg_cluster: PgCluster, webhook_receiver) -> None:
    settings = config.from_dict({
        "data_dir": str(tmp_path / "data"), "store_url": pg_url, "async_mode": "threading",
        "notify": [{"kind": "webhook", "name": "hook", "url": webhook_receiver.url}],
        "rules": {"db_pool_utilization": {"for_s": 0, "keep_firing_for_s": 0},
                  "store_down": {"for_s": 2}}})
    rt = Runtime(settings, [])
    app = create_app(settings, rt, async_mode="threading")
    clock = Clock()
    svc = alerting.build(settings, rt.store, {}, policy=FAST, clock=clock,
                         ack_link=lambda alert_id, channel: "http://x/ack")
    svc.store_status = rt.store_status
    web = app.test_client()
    ann = logged_in_client(app, "viewer")
    try:
        [fired] = svc.process([pool(99.0, clock.now)], clock.now)
        drain(svc, clock)
        assert web.get("/healthz").get_json()["store"]["status"] == "ok"

        pg_cluster.stop()
        for _ in range(4):                          # ticks through the outage: none raises
            clock.advance(1)
            svc.tick(clock.now)
        health = web.get("/healthz").get_json()
        assert health["store"] == {"status": "error", "age_s": health["store"]["age_s"]}
        assert urlsplit(pg_url).password not in repr(health)
        assert "PostgreSQL" in rt.store_status()["error"]       # said to a login, not here
        # A logged-in browser: its login cannot be checked; a 503 that says so, not a 500.
        r = ann.get("/api/alerts")
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 5
        assert "the store is unavailable" in r.get_json()["error"]
        assert ann.get("/healthz").status_code == 200             # the monitor still gets its answer
        assert urlsplit(pg_url).password not in rt.store_status()["error"]
        [resolved] = svc.process([pool(10.0, clock.now)], clock.now)   # judged from memory
        sender_steps(svc, clock)                    # sent directly: the store cannot queue it
        assert store_down_events(webhook_receiver) == ["firing"]
        kinds = [a["event"] for r in webhook_receiver.requests for a in r.json()["alerts"]
                 if a["rule"] == "db_pool_utilization"]
        assert kinds == ["firing", "resolved"]

        pg_cluster.start()
        for _ in range(4):
            clock.advance(1)
            svc.tick(clock.now)
        drain(svc, clock)
        assert store_down_events(webhook_receiver) == ["firing", "resolved"]
        assert web.get("/healthz").get_json()["store"]["status"] == "ok"
        # What was judged during the outage is on record now, once.
        assert [e["kind"] for e in svc.state.events(fired.alert_id)] == ["firing", "resolved"]
        assert svc.state.episode(fired.alert_id)["status"] == "resolved"
        kinds = [a["event"] for r in webhook_receiver.requests for a in r.json()["alerts"]
                 if a["rule"] == "db_pool_utilization"]
        assert kinds == ["firing", "resolved"]                # nothing sent twice
    finally:
        svc.close()
        rt.store.close()


def test_probe_availability_is_counted_through_an_outage_and_kept_when_the_server_returns(
        tmp_path, pg_url: str, pg_cluster: PgCluster) -> None:
    now = time.time()
    pg_cluster.stop()                                   # down already when the collector is made
    days = DayCounts(tmp_path, ZoneInfo("UTC"), flush_every_s=0, store_url=pg_url)
    assert days.add("home", now, True) == 100.0
    assert days.add("home", now, False) == 50.0         # counted, kept in memory
    pg_cluster.start()
    assert days.add("home", now, True) == pytest.approx(200 / 3)      # written now, all three
    pg_cluster.stop()
    assert days.add("home", now, True) == 75.0
    pg_cluster.start()
    days.close()                                        # the last one written on close
    again = DayCounts(tmp_path, ZoneInfo("UTC"), store_url=pg_url)
    assert again.add("home", now, True) == 80.0          # a restart goes on from 3 of 4
    again.close()
