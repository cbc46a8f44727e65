"""/api/history?view=live: only what the live page draws (issue 9: with 50 hosts reporting
through agents and 200 queues, the whole store's window was 2.7 MB gzipped and 10 s to build)."""
from __future__ import annotations

import time

import pytest

from dashboard.model import Sample


@pytest.fixture
def filled(app, viewer_client):
    rt = app.extensions["dashboard"]
    now = time.time()
    for t in (now - 20, now - 10):
        rt.publish([
            Sample("host", t, {"host.cpu_percent": 11.0, "host.up": 1.0}),
            Sample("agents", t, {"host.cpu_percent": 77.0, "host.up": 1.0}, {"host": "app1"}),
            Sample("agents", t, {"host.disk_percent": 50.0}, {"host": "app1", "mount": "/"}),
            Sample("agents", t, {"app.worker_utilization": 40.0}, {"host": "app1"}),
            Sample("queue", t, {"queue.pending": 5.0, "queue.enqueued_per_s": 2.0}, {"queue": "mail"}),
        ])
    return viewer_client


def keys(client, query: str) -> set[str]:
    r = client.get("/api/history?window_s=900" + query)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert all(len(s["t"]) == len(s["v"]) == 2 for s in body["series"].values())
    return set(body["series"])


def test_the_live_view_holds_this_hosts_metrics_and_what_the_panels_draw(filled):
    got = keys(filled, "&view=live")
    assert "host.cpu_percent" in got                      # this dashboard's own host
    assert 'queue.pending{queue="mail"}' in got
    assert 'app.worker_utilization{host="app1"}' in got   # drawn for every host
    assert not any('host="app1"' in k and k.startswith("host.") for k in got)
    assert 'queue.enqueued_per_s{queue="mail"}' not in got   # no panel draws it
    assert "host.up" not in got


def test_the_live_view_of_one_agents_host_holds_that_hosts_metrics_only(filled):
    got = keys(filled, "&view=live&host=app1")
    assert {'host.cpu_percent{host="app1"}', 'host.disk_percent{host="app1",mount="/"}'} <= got
    assert "host.cpu_percent" not in got
    assert 'queue.pending{queue="mail"}' in got


def test_without_a_view_history_still_holds_every_series(filled):
    got = keys(filled, "")
    assert {"host.cpu_percent", 'host.cpu_percent{host="app1"}', "host.up",
            'queue.enqueued_per_s{queue="mail"}'} <= got


@pytest.mark.parametrize("query, word", [("&view=all", "view"), ("&host=app1", "host")])
def test_a_bad_view_or_a_host_without_the_live_view_is_a_400(filled, query, word):
    r = filled.get("/api/history?window_s=900" + query)
    assert r.status_code == 400 and word in r.get_json()["error"]


def test_the_live_page_preloads_the_history_it_asks_for(filled):
    page = filled.get("/?host=app1").get_data(as_text=True)
    assert 'href="/api/history?window_s=900&amp;view=live&amp;host=app1"' in page
