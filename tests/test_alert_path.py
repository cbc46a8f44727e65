"""The whole path with a real MariaDB: the real MySQL collector -> runner -> store -> alert
engine -> outbox -> a real HTTP receiver and a real SMTP server. Clients open connections to
90 % of a small configured pool for longer than the hold: exactly one firing message per
channel; they close them: exactly one resolved."""
from __future__ import annotations

import math
import secrets

import pytest

from dashboard.config import load as config
from dashboard.runtime import Runtime
from tests.support.alert_helpers import (
    FAST,
    WEBHOOK_ALERT_KEYS,
    WEBHOOK_KEYS,
    install_alerting,
    verify_signature,
)
from tests.support.util import mysql_connect, wait_until

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

POOL = 20
HOLD_S = 2.0
INTERVAL_S = 0.5


@pytest.fixture
def runtime(tmp_path, mariadb, webhook_receiver, smtp_server):
    url = mariadb.create_monitor_user("alertmon", secrets.token_urlsafe(12),
                                      ["PROCESS", "BINLOG MONITOR", "SELECT ON performance_schema.*"])
    settings = config.from_dict({
        "data_dir": str(tmp_path / "data"), "interval_s": INTERVAL_S, "host_name": "db-host-1",
        "public_url": "http://127.0.0.1:8050",
        "mysql": {"url": url, "pool_capacity": POOL},
        "rules": {"db_pool_utilization": {"for_s": HOLD_S, "keep_firing_for_s": 0}},
        "smtp": {"port": smtp_server.port},
        "notify": [{"kind": "webhook", "url": webhook_receiver.url, "secret": "path-secret",
                    "name": "hook", "rules": ["db_pool_utilization"]},
                   {"kind": "email", "to": ["oncall@example.com"], "name": "mail",
                    "rules": ["db_pool_utilization"]}],
    })
    rt = Runtime(settings)
    install_alerting(rt, policy=FAST)
    rt.start()
    yield rt
    rt.stop()


def latest_db(rt: Runtime) -> dict | None:
    return next((dict(s.values) for s in rt.store.latest()
                 if s.source == "db" and "db.threads_connected" in s.values), None)


def outbox_idle(rt: Runtime) -> bool:
    return all(ch["waiting"] == 0 for ch in rt.alerting.overview()["channels"])


def test_db_pool_over_80_percent_pages_each_channel_once_and_says_resolved_once(
        runtime, mariadb, webhook_receiver, smtp_server):
    base = wait_until(lambda: latest_db(runtime), timeout=15, message="no db sample")
    opened = []
    try:
        # 90 % of the pool: one connection more or less (another test's) stays warning.
        for _ in range(math.ceil(0.9 * POOL) - int(base["db.threads_connected"])):
            opened.append(mysql_connect(mariadb.root_url))
        [fired] = webhook_receiver.wait_for(1, timeout=20)
        smtp_server.wait_for(1, timeout=10)
    finally:
        for c in opened:
            c.close()
    webhook_receiver.wait_for(2, timeout=20)
    smtp_server.wait_for(2, timeout=10)
    pool_quiet = lambda: not [s for s in runtime.alerting.engine.states.values()  # noqa: E731
                              if s.rule == "db_pool_utilization"]
    wait_until(lambda: outbox_idle(runtime) and pool_quiet(), timeout=10,
               message=lambda: repr(runtime.alerting.overview()["channels"]))

    hooks = [r.json() for r in webhook_receiver.requests]
    assert [a["event"] for b in hooks for a in b["alerts"]] == ["firing", "resolved"]
    body = hooks[0]
    assert set(body) == WEBHOOK_KEYS
    [alert] = body["alerts"]
    assert set(alert) == WEBHOOK_ALERT_KEYS
    assert alert["rule"] == "db_pool_utilization" and alert["severity"] == "warning"
    assert 80 < alert["value"] <= 95 and alert["threshold"] == 80
    assert alert["host"] == "db-host-1" and alert["labels"] == {}
    # only after the hold (less the engine's quarter-interval slack for sampling jitter)
    assert alert["at"] - alert["since"] >= HOLD_S - 0.25 * INTERVAL_S
    assert alert["links"]["panel"] == "http://127.0.0.1:8050/#panel-db-pool"
    assert verify_signature("path-secret", fired.body, fired.header("X-Dashboard-Signature"))
    resolved = hooks[1]["alerts"][0]
    assert resolved["id"] == alert["id"] and resolved["value"] <= 75

    subjects = [m.subject for m in smtp_server.messages]
    assert len(subjects) == 2
    assert subjects[0].startswith("[WARNING] DB connection pool utilisation")
    assert subjects[1].startswith("[RESOLVED] DB connection pool utilisation")
    assert "db-host-1" in smtp_server.messages[0].text


def test_a_collector_that_stops_sending_anything_is_paged_as_down_never_ok(tmp_path):
    """The missing-data job: the engine knows each collector's interval from the runner."""
    from dashboard.collectors.host import HostCollector
    settings = config.from_dict({"data_dir": str(tmp_path / "data"),
                                 "rules": {"host_down": {"for_s": 0, "keep_firing_for_s": 0}}})
    rt = Runtime(settings, [HostCollector(interval_s=0.5)])
    svc = install_alerting(rt, policy=FAST)
    try:
        t0 = 1_800_000_000.0
        svc.reload(now=t0)                                # as when the runtime starts
        assert svc.tick(t0 + 1.4) == []                   # under three intervals: fine
        [down] = svc.tick(t0 + 1.6)
        assert (down.rule, down.kind, down.severity) == ("host_down", "firing", "critical")
        assert svc.counts()["critical"] == 1
    finally:
        svc.close()
