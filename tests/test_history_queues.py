"""/api/history?view=live at many queues (issue 9): the queue panels' history holds the busiest
queues only (or those named by queue=NAME), and the SQLite pre-filter that skips the other
queues' and other hosts' rows never drops a row the live view keeps."""
from __future__ import annotations

import time

import pytest

from dashboard.model import Sample
from dashboard.web.history import QUEUE_LIMIT, add_rows, live_rows, live_view

N_QUEUES = 15          # q01 holds 1 job ... q15 holds 15


def tick(t: float, queues: int = N_QUEUES) -> list[Sample]:
    out = [Sample("host", t, {"host.cpu_percent": 11.0}),
           Sample("agents", t, {"host.cpu_percent": 70.0}, {"host": "app1"}),
           Sample("agents", t, {"host.disk_percent": 50.0}, {"host": "app1", "mount": "/"}),
           Sample("agents", t, {"app.worker_utilization": 40.0}, {"host": "app1"}),
           Sample("agents", t, {"agents.hosts": 1.0}),
           Sample("queue", t, {"queue.up": 1.0})]
    for i in range(1, queues + 1):
        out.append(Sample("queue", t, {"queue.pending": float(i), "queue.oldest_pending_age_s": 3.0},
                          {"queue": f"q{i:02d}"}))
        out.append(Sample("queue", t, {"queue.pending_by_priority": float(i)},
                          {"queue": f"q{i:02d}", "priority": "0"}))
    return out


@pytest.fixture
def rt(app):
    return app.extensions["dashboard"]


def fill(rt, queues: int = N_QUEUES) -> None:
    now = time.time()
    for t in (now - 20, now - 10):
        rt.publish(tick(t, queues))


def history(client, query: str) -> dict:
    r = client.get("/api/history?window_s=900&view=live" + query)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def drawn_queues(body: dict) -> set[str]:
    return {s["labels"]["queue"] for s in body["series"].values() if "queue" in s["labels"]}


def test_the_live_history_holds_the_10_busiest_of_15_queues_and_says_how_many_there_are(
        rt, viewer_client):
    fill(rt)
    body = history(viewer_client, "")
    busiest = [f"q{i:02d}" for i in range(15, 5, -1)]
    assert body["queues"] == {"shown": busiest, "total": 15, "limit": QUEUE_LIMIT, "pinned": False}
    assert drawn_queues(body) == set(busiest)
    assert len(body["series"]['queue.pending{queue="q15"}']["t"]) == 2
    assert "host.cpu_percent" in body["series"]                      # the rest is unchanged
    assert 'app.worker_utilization{host="app1"}' in body["series"]


def test_queues_named_in_the_request_are_drawn_instead_of_the_busiest(rt, viewer_client):
    fill(rt)
    body = history(viewer_client, "&queue=q02&queue=q01")
    assert body["queues"]["shown"] == ["q02", "q01"] and body["queues"]["pinned"] is True
    assert drawn_queues(body) == {"q01", "q02"}


def test_with_no_more_queues_than_the_limit_every_queue_is_drawn(rt, viewer_client):
    fill(rt, queues=4)
    body = history(viewer_client, "")
    assert body["queues"]["total"] == 4
    assert drawn_queues(body) == {"q01", "q02", "q03", "q04"}


def test_a_queue_that_cannot_be_read_is_drawn_first_so_its_reason_is_in_view(rt, viewer_client):
    # An unreadable queue has no queue.pending: ranked by depth it would count as empty and,
    # past 10 queues, never be drawn, and the page would lose its reason (e.g. the index to add).
    fill(rt)
    rt.publish([Sample("queue", time.time() - 5, {"queue.up": 0.0}, {"queue": "broken"},
                       error="the statement time limit stopped the query; add index (status)")])
    body = history(viewer_client, "")
    assert body["queues"]["shown"] == ["broken"] + [f"q{i:02d}" for i in range(15, 6, -1)]
    assert body["queues"]["total"] == 16


def test_a_long_window_ranks_queues_on_recent_samples_not_on_a_queue_removed_days_ago(
        rt, viewer_client, monkeypatch):
    two_days_ago = time.time() - 2 * 86400
    rt.publish([Sample("queue", two_days_ago, {"queue.pending": 1000.0}, {"queue": "gone"})])
    rt.store.rollup()                 # the old tick is rolled up, as it would be by then
    fill(rt)
    full_reads: list[float] = []
    rows_between = rt.store.rows_between
    monkeypatch.setattr(rt.store, "rows_between",
                        lambda since, *a: full_reads.append(since) or rows_between(since, *a))
    r = viewer_client.get("/api/history?window_s=604800&view=live")
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["resolution"] == "1m"
    assert body["queues"]["shown"] == [f"q{i:02d}" for i in range(15, 5, -1)]
    assert body["queues"]["total"] == 15
    assert "gone" not in drawn_queues(body)
    assert full_reads == []           # the drawn queues' rows were picked in SQLite


@pytest.mark.parametrize("query", ["&queue=", "&queue=" + "x" * 201,
                                   "".join(f"&queue=q{i}" for i in range(51))])
def test_a_bad_queue_name_is_a_400(rt, viewer_client, query):
    r = viewer_client.get("/api/history?window_s=900&view=live" + query)
    assert r.status_code == 400 and "queue" in r.get_json()["error"]


def test_a_queue_filter_without_the_live_view_is_a_400(viewer_client):
    r = viewer_client.get("/api/history?window_s=900&queue=q01")
    assert r.status_code == 400 and "queue" in r.get_json()["error"]


@pytest.mark.parametrize("host, queues", [(None, ["q03", "q15"]), ("app1", ["q03"]),
                                          (None, None), (None, ["no-such-queue"])])
def test_the_sqlite_prefilter_keeps_every_row_the_live_view_keeps(rt, host, queues):
    fill(rt)
    view = live_view(host, queues)
    since = time.time() - 900
    rows = rt.store.rows_between(since)
    fewer = live_rows(rt.store, since, view, {f"q{i:02d}" for i in range(1, 16)})
    assert len(fewer) < len(rows)                  # filtered in SQLite, not the fallback
    every, filtered = {}, {}
    add_rows(every, rows, float, view)
    add_rows(filtered, fewer, float, view)
    assert filtered == every and every
