"""The server side of the live page's fixed window (``/?from=EPOCH&to=EPOCH``, the link in a
page): the page is told the window, history ends at ``until``, the alerts of the window are
listed, and nonsense is a 400 naming what is wrong. The browser side: tests/e2e/."""
from __future__ import annotations

import json
import re
import time

import pytest

from dashboard.model import Sample


def page_config(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="page-config">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


def test_the_page_is_told_its_fixed_window_and_offers_the_way_back_to_live(client):
    r = client.get("/?from=1700000000&to=1700003600&queue=emails")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert page_config(html)["fixed"] == {"from": 1700000000, "to": 1700003600}
    assert 'id="fixed-window"' in html and 'href="/?queue=emails"' in html
    assert page_config(client.get("/").get_data(as_text=True))["fixed"] is None


@pytest.mark.parametrize("query", ["from=abc&to=1700003600", "from=1700000000", "to=1700000000",
                                   "from=1700003600&to=1700000000", "from=1700000000&to=1700000005",
                                   "from=1700000000&to=1800000000"])
def test_a_window_that_makes_no_sense_is_a_400(client, query):
    assert client.get(f"/?{query}").status_code == 400


def test_the_link_opens_after_a_login_on_the_same_window(anon_client):
    r = anon_client.get("/?from=1700000000&to=1700003600")
    assert r.status_code in (302, 303)
    assert "next=/?from%3D1700000000%26to%3D1700003600" in r.headers["Location"]


def test_history_with_until_ends_there(app, client):
    now = time.time()
    store = app.extensions["dashboard"].store
    for ago in (500, 300, 100):
        store.append([Sample("host", now - ago, {"host.cpu_percent": float(ago)})])
    fixed = client.get(f"/api/history?window_s=600&view=live&until={now - 200}").get_json()
    assert fixed["series"]["host.cpu_percent"]["v"] == [500.0, 300.0]
    live = client.get("/api/history?window_s=600&view=live").get_json()
    assert live["series"]["host.cpu_percent"]["v"] == [500.0, 300.0, 100.0]
    r = client.get("/api/history?window_s=600&until=soon")
    assert r.status_code == 400 and "until" in r.get_json()["error"]


def test_the_alerts_of_a_window_are_those_whose_span_meets_it(app, client):
    svc = app.extensions["dashboard.alerting"]
    t0 = time.time() - 7200
    svc.process([Sample("db", t0, {"db.pool_utilization": 99.0})], t0)
    [fired] = svc.process([Sample("db", t0 + 61, {"db.pool_utilization": 99.0})], t0 + 61)
    assert fired.kind == "firing"
    got = client.get(f"/api/alerts/window?from={int(t0) - 600}&to={int(t0) + 30}").get_json()
    [a] = got["alerts"]
    assert (a["id"], a["rule"], a["started_at"], a["resolved_at"]) == (fired.alert_id,
                                                                       "db_pool_utilization", t0, None)
    assert a["panel"] == "db-pool"
    assert client.get(f"/api/alerts/window?from={int(t0) - 900}&to={int(t0) - 600}"
                      ).get_json()["alerts"] == []
    r = client.get("/api/alerts/window?from=10&to=5")
    assert r.status_code == 400 and r.is_json


def test_the_link_of_a_page_after_a_week_of_firing_opens_the_page(app, client):
    """A disk warning can fire for weeks before it escalates; the escalation's page carries the
    live page on that moment, which the page must open (a fixed window is at most 7 days)."""
    from urllib.parse import urlsplit

    from dashboard.alert_context import AlertContext
    svc = app.extensions["dashboard.alerting"]
    at = time.time()
    window = AlertContext("http://127.0.0.1:8050").build(
        svc.rules["host_disk"], {"mount": "/"}, at - 9 * 86400, at)["window"]
    assert window["from"] < at - 3600 and window["to"] > at
    link = urlsplit(window["url"])
    r = client.get(f"{link.path}?{link.query}")
    assert r.status_code == 200
    assert page_config(r.get_data(as_text=True))["fixed"] == {"from": window["from"],
                                                              "to": window["to"]}
