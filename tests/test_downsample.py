"""Long windows are answered in at most ``MAX_POINTS`` points per series, each bucket keeping its
mean, minimum and maximum (issue 15): raw samples merged in Python, one-minute rollups merged in
SQLite (``Store.rollup_buckets``), and both through ``/api/history`` and ``/api/series``."""
from __future__ import annotations

import random
import time

import pytest

from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.model import Sample
from dashboard.runtime import Runtime
from dashboard.store import Store
from dashboard.web.downsample import MAX_POINTS, bucket_width, merge
from dashboard.web.history import points
from tests.support.auth_helpers import logged_in_client


@pytest.mark.parametrize("base", [1, 60])
def test_no_window_up_to_seven_days_is_cut_into_more_buckets_than_the_cap(base):
    for window in [10, 900, 1499, 1500, 3600, 21600, 86400, 90000, 7 * 86400, 400 * 86400]:
        width = bucket_width(window, base)
        assert width % base == 0
        # A window that does not start on a bucket's edge touches one bucket more.
        assert window // width + 1 <= MAX_POINTS, (window, width)


def test_merging_keeps_each_buckets_min_mean_and_max_and_never_exceeds_the_cap():
    rnd = random.Random(15)
    t = sorted(rnd.uniform(0, 3600) for _ in range(20_000))
    v = [rnd.uniform(0, 100) for _ in t]
    v[7_777] = 5_000.0                                   # one spike
    s = {"t": list(t), "v": list(v)}
    width = bucket_width(3600, 1)
    merge(s, 0.0, width)
    assert len(s["t"]) <= MAX_POINTS
    expected: dict[int, list[float]] = {}
    for ti, vi in zip(t, v):
        expected.setdefault(int(ti // width), []).append(vi)
    assert len(s["t"]) == len(expected)
    for (b, vals), mid, mean, lo, hi in zip(sorted(expected.items()), s["t"], s["v"], s["min"],
                                            s["max"]):
        assert mid == (b + 0.5) * width
        assert (lo, hi) == (min(vals), max(vals))
        assert mean == pytest.approx(sum(vals) / len(vals))
    assert max(s["max"]) == 5_000.0


def test_the_store_merges_rollups_into_buckets_with_their_min_and_max(tmp_path):
    store = Store(tmp_path)
    now = time.time() // 60 * 60
    start = now - 6 * 3600
    values = {}
    for i in range(6 * 360):                             # 6 h at 10 s
        ts = start + 10 * i
        values[ts] = 1000.0 if i == 1234 else float(i % 50)
        store.append([Sample("host", ts, {"host.cpu_percent": values[ts]})])
    store.rollup(now + 60)
    rows = store.rollup_buckets(start, now, 600, "host.cpu_percent")
    assert len(rows) == 36
    for metric, labels, b, n, total, lo, hi, last in rows:
        inside = [v for ts, v in values.items() if b <= ts < b + 600]
        assert (metric, labels, n, lo, hi) == ("host.cpu_percent", "", len(inside), min(inside),
                                              max(inside))
        assert total == pytest.approx(sum(inside)) and b <= last < b + 600
    assert max(r[6] for r in rows) == 1000.0
    store.close()


@pytest.fixture
def client(tmp_path):
    settings = from_dict({"data_dir": str(tmp_path), "async_mode": "threading"})
    app = create_app(settings, Runtime(settings, []), async_mode="threading")
    c = logged_in_client(app, "viewer")
    c.runtime = app.extensions["dashboard"]
    return c


def test_an_hour_of_one_second_samples_is_merged_and_keeps_its_spike(client):
    now = time.time()
    ticks = [Sample("host", now - 3600 + i, {"host.cpu_percent": 99.0 if i == 1800 else 1.0})
             for i in range(3600)]
    for s in ticks:
        client.runtime.publish([s])
    body = client.get("/api/history?window_s=3600").get_json()
    cpu = body["series"]["host.cpu_percent"]
    assert body["resolution"] == "raw" and body["bucket_s"] == 3
    assert len(cpu["t"]) <= MAX_POINTS and max(cpu["max"]) == 99.0 and max(cpu["v"]) < 99.0
    # Fifteen minutes are under the cap: raw points, as before. The window ends when the
    # request is read, which on a busy machine can be seconds after the last sample: count
    # the samples still inside it then.
    short = client.get("/api/history?window_s=900").get_json()["series"]["host.cpu_percent"]
    inside = sum(1 for s in ticks if s.ts >= time.time() - 900)
    assert "max" not in short and len(short["t"]) >= inside >= 890


def test_a_long_series_span_is_merged_into_at_most_the_cap(client):
    store = client.runtime.store
    now = time.time() // 60 * 60
    for i in range(3 * 24 * 60):                         # 3 days, one sample a minute
        store.append([Sample("host", now - 3 * 86400 + 60 * i, {"host.cpu_percent": float(i % 7)})])
    store.rollup(now + 60)
    body = client.get(f"/api/series?metric=host.cpu_percent&since={now - 3 * 86400}"
                      f"&until={now}").get_json()
    rows = body["series"]["host.cpu_percent"]
    assert body["step"] == "1m" and body["bucket_s"] == 180 and len(rows) <= MAX_POINTS
    assert {r["min"] for r in rows} >= {0.0} and {r["max"] for r in rows} >= {6.0}
    assert sum(r["n"] for r in rows) == 3 * 24 * 60


def test_a_week_is_drawn_from_whole_hours_in_time_order_never_ahead_of_now(client):
    """Windows of days come from each hour's summary; the hour still being rolled up is drawn
    at the middle of what it holds, before the raw samples that follow it, never in the future."""
    store = client.runtime.store
    now = time.time()
    start = int(now // 3600) * 3600 - 6 * 3600
    for t in range(start, int(now) - 30, 60):             # six hours and some, one a minute
        store.append([Sample("host", t, {"host.cpu_percent": 50.0 if t % 3600 else 90.0})])
    # The rollup job two minutes into an hour (it runs a minute at a time): that hour's block
    # holds two minutes, raw samples follow it.
    cut = int(now // 3600) * 3600 + 120
    store.rollup(cut if cut < now - 60 else cut - 3600)
    body = client.get("/api/history?window_s=604800").get_json()
    cpu = points(body["series"]["host.cpu_percent"])
    assert body["bucket_s"] == 3600 and len(cpu["t"]) <= MAX_POINTS
    assert cpu["t"] == sorted(cpu["t"]) and max(cpu["t"]) <= now
    assert max(cpu["max"]) == 90.0                          # each hour's top of the hour kept


def test_a_day_of_minutes_comes_on_a_grid_and_a_gap_stays_a_gap(client):
    """The 24 h window's one-minute points carry no time each (the times were a third of the
    answer): ``t0`` and ``dt`` place them, a minute without samples is null, and a reader gets
    the very minutes that hold samples, each at its middle, with their mean, min and max."""
    store = client.runtime.store
    now = time.time() // 60 * 60
    start = now - 5 * 3600
    minutes = [m for m in range(int(start), int(now) - 600, 60)
               if not start + 3600 <= m < start + 4200]             # ten minutes down
    for m in minutes:
        store.append([Sample("host", m + 5, {"host.cpu_percent": 10.0})])
        store.append([Sample("host", m + 35, {"host.cpu_percent": 30.5})])
    store.rollup(now + 60)
    body = client.get("/api/history?window_s=86400").get_json()
    cpu = body["series"]["host.cpu_percent"]
    assert (cpu["dt"], cpu["t"], cpu["v"].count(None)) == (60, [], 10)
    got = points(cpu)
    assert got["t"] == [m + 30 for m in minutes]
    assert (set(got["v"]), set(got["min"]), set(got["max"])) == ({20.25}, {10.0}, {30.5})
