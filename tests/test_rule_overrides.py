"""One source for every level: a ``[rules.NAME]`` override moves the alert, the page's line, the
fleet's ranking and the daily summary's level together (the page in Chromium:
tests/e2e/test_rule_override_page.py)."""
from __future__ import annotations

import json
import re
import time

import pytest

from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.model import Sample
from tests.support.auth_helpers import logged_in_client

OVERRIDES = {"db_pool_utilization": {"warning": 70},
             "host_cpu": {"warning": 50, "critical": 80}}


def app_with(tmp_path, rules):
    settings = from_dict({"data_dir": str(tmp_path / "dash"), "async_mode": "threading",
                          "rules": rules})
    return create_app(settings, async_mode="threading")


def page_lines(client, panel_id):
    """The reference lines of one panel, as the live page is served them (its JSON config)."""
    html = client.get("/").get_data(as_text=True)
    m = re.search(r'<script type="application/json" id="page-config">(.*?)</script>', html, re.S)
    table = json.loads(m.group(1))["panels"]
    return {(ln["label"], ln["value"], ln["severity"])
            for p in table if p["id"] == panel_id for ln in p["lines"]}


def test_the_page_draws_the_overridden_levels_not_the_defaults(tmp_path):
    client = logged_in_client(app_with(tmp_path, OVERRIDES))
    assert page_lines(client, "db-pool") == {("warning 70 %", 70, "warning"),
                                            ("critical 95 %", 95, "critical")}
    assert page_lines(client, "host-cpu") == {("warning 50 %", 50, "warning"),
                                             ("critical 80 %", 80, "critical")}


def test_defaults_and_goals_are_drawn_as_before(tmp_path):
    client = logged_in_client(app_with(tmp_path, {}))
    assert page_lines(client, "host-cpu") == {("warning 80 %", 80, "warning"),
                                             ("critical 95 %", 95, "critical")}
    # A goal is not a rule level: it stays, and a rule level on the same value is not drawn twice.
    assert page_lines(client, "cache-hit") == {("goal 80 %", 80, "target"),
                                              ("warning 75 %", 75, "warning"),
                                              ("critical 60 %", 60, "critical")}
    assert page_lines(client, "app-availability") == {("target 99.9 %", 99.9, "target"),
                                                      ("critical 99 %", 99, "critical")}
    assert ("critical 30 min", 1800, "critical") in page_lines(client, "queue-age")
    assert ("critical 1 s", 1000, "critical") in page_lines(client, "app-response")


def test_a_disabled_rule_draws_no_level(tmp_path):
    client = logged_in_client(app_with(tmp_path, {"host_cpu": {"enabled": False}}))
    assert page_lines(client, "host-cpu") == set()


def fleet_order(tmp_path, rules):
    app = app_with(tmp_path, rules)
    rt = app.extensions["dashboard"]
    now = time.time()
    # busy-cpu: 78 % CPU; full-mem: 85 % memory. Against the defaults (95 / 95) memory is the
    # closer to critical; with host_cpu critical at 80, CPU is.
    rt.store.append([
        Sample("agents", now, {"host.up": 1.0, "host.cpu_percent": 78.0, "host.mem_percent": 10.0},
               {"host": "busy-cpu"}),
        Sample("agents", now, {"host.up": 1.0, "host.cpu_percent": 5.0, "host.mem_percent": 85.0},
               {"host": "full-mem"}),
    ])
    rows = logged_in_client(app).get("/api/fleet").get_json()["hosts"]
    return [r["host"] for r in rows if r["host"] in ("busy-cpu", "full-mem")], rows


def test_the_fleet_ranks_against_the_overridden_critical_level(tmp_path):
    order, _ = fleet_order(tmp_path / "a", {})
    assert order == ["full-mem", "busy-cpu"]
    order, rows = fleet_order(tmp_path / "b", OVERRIDES)
    assert order == ["busy-cpu", "full-mem"]
    assert next(r for r in rows if r["host"] == "busy-cpu")["pressure"] == pytest.approx(78 / 80)


def test_the_daily_summary_reports_the_overridden_level(tmp_path):
    client = logged_in_client(app_with(tmp_path, OVERRIDES))
    doc = client.get("/api/reports/daily?date=today").get_json()
    pool = next(a for a in doc["areas"] if a["rule"] == "db_pool_utilization")
    cpu = next(a for a in doc["areas"] if a["rule"] == "host_cpu")
    assert pool["levels"]["warning"] == 70
    assert (cpu["levels"]["warning"], cpu["levels"]["critical"]) == (50, 80)


def test_each_configured_server_gets_a_replication_panel_with_the_effective_lag_levels(tmp_path):
    """Issue 17: [[mysql]] servers, one replication panel each, its series picked by label."""
    settings = from_dict({
        "data_dir": str(tmp_path / "dash"), "async_mode": "threading",
        "mysql": [{"name": "primary", "url": "mysql://m:p@127.0.0.1:1/"},
                  {"name": "replica1", "url": "mysql://m:p@127.0.0.1:2/"}],
        "rules": {"db_replica_lag": {"warning": 20}}})
    client = logged_in_client(create_app(settings, async_mode="threading"))
    html = client.get("/").get_data(as_text=True)
    table = json.loads(re.search(r'id="page-config">(.*?)</script>', html, re.S).group(1))["panels"]
    replica = {p["id"]: p for p in table if p["id"].startswith("db-replica")}
    assert {i: p["match"] for i, p in replica.items()} == {
        "db-replica-primary": {"server": "primary"}, "db-replica-replica1": {"server": "replica1"}}
    assert replica["db-replica-replica1"]["title"] == "Replication: replica1"
    assert page_lines(client, "db-replica-replica1") == {("warning 20 s", 20, "warning"),
                                                         ("critical 5 min", 300, "critical")}
    # A primary never has replication figures: its panel says why it is empty, not "no data yet".
    assert "not a replica" in replica["db-replica-primary"]["empty"]
    assert all(p["empty"] == "no data yet" for p in table if not p["id"].startswith("db-replica"))
