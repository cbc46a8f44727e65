"""/api/latest, /api/series, /api/history and /healthz."""
from __future__ import annotations

import time

import pytest

from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.demo.services import free_port
from dashboard.model import Sample
from dashboard.runtime import Runtime
from dashboard.web.history import points
from tests.support.auth_helpers import logged_in_client, token_client
from tests.support.util import wait_until


@pytest.fixture
def api(tmp_path):
    settings = from_dict({"data_dir": str(tmp_path), "async_mode": "threading"})
    rt = Runtime(settings, [])
    app = create_app(settings, rt, async_mode="threading")
    client = logged_in_client(app)
    client.runtime = rt
    return client


def fill(rt, start, seconds, step=1.0):
    t = start
    while t < start + seconds:
        rt.publish([Sample("host", t, {"host.cpu_percent": (t - start) % 100}),
                    Sample("host", t, {"host.disk_percent": 50.0}, {"mount": "/"})])
        t += step


@pytest.mark.parametrize("query, word", [
    ("", "metric"),
    ("metric=host.cpu_percent", "since"),
    ("metric=host.cpu_percent&since=yesterday", "since"),
    ("metric=host.cpu_percent&since=nan", "since"),
    ("metric=host.cpu_percent&since=100&until=50", "until"),
    ("metric=host.cpu_percent&since=0", "400 days"),
    ("metric=host.cpu_percent&since=A_MINUTE_AGO&step=5m", "step"),    # a stable test id (xdist)
    ("metric=no.such_metric&since=1", "unknown metric"),
])
def test_a_bad_series_parameter_gets_a_4xx_json_error(api, query, word):
    fill(api.runtime, time.time() - 10, 5)
    query = query.replace("A_MINUTE_AGO", str(int(time.time()) - 60))
    r = api.get(f"/api/series?{query}")
    assert 400 <= r.status_code < 500
    assert word in r.get_json()["error"]


def test_series_returns_raw_points_per_label_set(api):
    now = time.time()
    fill(api.runtime, now - 30, 30)
    r = api.get(f"/api/series?metric=host.disk_percent&since={now - 60}&mount=/")
    assert r.status_code == 200
    series = r.get_json()["series"]
    assert list(series) == ['host.disk_percent{mount="/"}']
    assert len(series['host.disk_percent{mount="/"}']) == 30


def test_long_windows_come_from_one_minute_rollups(api):
    now = time.time()
    start = (now - 3 * 3600) // 60 * 60
    fill(api.runtime, start, 600, step=10)
    api.runtime.store.rollup(now=now)
    r = api.get(f"/api/series?metric=host.cpu_percent&since={start}&until={now}")
    body = r.get_json()
    assert body["step"] == "1m"
    rows = body["series"]["host.cpu_percent"]
    assert len(rows) == 10 and rows[0]["n"] == 6 and rows[0]["min"] == 0 and rows[0]["max"] == 50
    h = api.get("/api/history?window_s=21600").get_json()
    assert h["resolution"] == "1m" and len(points(h["series"]["host.cpu_percent"])["t"]) == 10


def test_history_gives_the_page_every_series_of_the_window_in_columns(api):
    now = time.time()
    fill(api.runtime, now - 1200, 1200)
    h = api.get("/api/history?window_s=900").get_json()
    assert h["resolution"] == "raw"
    cpu = h["series"]["host.cpu_percent"]
    assert 899 <= len(cpu["t"]) <= 901 and len(cpu["t"]) == len(cpu["v"])
    assert h["series"]['host.disk_percent{mount="/"}']["labels"] == {"mount": "/"}
    assert h["last_seq"] == api.runtime.store.last_seq()
    assert api.get("/api/history?window_s=abc").status_code == 400
    assert api.get("/api/history?window_s=1e9").status_code == 400


def test_history_is_sent_gzipped(api):
    fill(api.runtime, time.time() - 300, 300)
    r = api.get("/api/history?window_s=900", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"


def test_latest_has_the_newest_sample_of_each_series(api):
    now = time.time()
    fill(api.runtime, now - 5, 5)
    body = api.get("/api/latest").get_json()
    by_key = {(s["source"], tuple(s["labels"].items())): s for s in body["samples"]}
    assert by_key[("host", ())]["values"]["host.cpu_percent"] == 4.0


def test_healthz_shows_anonymous_callers_status_and_age_and_logged_in_ones_the_errors(tmp_path):
    # A MySQL server that is not there: its error names the user, the host and the port.
    port = free_port()
    settings = from_dict({"data_dir": str(tmp_path), "async_mode": "threading",
                          "mysql": {"url": f"mysql://monitor:pw@127.0.0.1:{port}/"}})
    from dashboard.collectors.host import HostCollector
    from dashboard.collectors.registry import build
    db = next(c for c in build(settings) if c.source == "db")
    rt = Runtime(settings, [HostCollector(interval_s=0.2), db])
    app = create_app(settings, rt, async_mode="threading")
    try:
        rt.runner.start()
        wait_until(lambda: all(st["status"] != "starting" for st in rt.runner.status().values()),
                   timeout=20, message=lambda: f"collector status: {rt.runner.status()}")
        anon = app.test_client().get("/healthz")
        assert anon.status_code == 200
        body = anon.get_json()
        assert body["status"] == "starting"
        assert body["collectors"]["host"]["status"] == "ok"
        assert body["collectors"]["db"]["status"] == "error"
        assert {k for c in body["collectors"].values() for k in c} == {"status", "age_s"}
        assert str(port) not in anon.get_data(as_text=True)
        assert "monitor@" not in anon.get_data(as_text=True)
        for client in (token_client(app, "viewer"), logged_in_client(app, "viewer")):
            seen = client.get("/healthz").get_json()["collectors"]
            assert str(port) in seen["db"]["error"], seen
            assert seen["host"]["error"] is None and seen["host"]["last_sample_ts"]
        bad_token = app.test_client().get("/healthz", headers={"Authorization": "Bearer dsh_x"})
        assert "error" not in bad_token.get_json()["collectors"]["db"]
    finally:
        rt.runner.stop()
