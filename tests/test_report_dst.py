"""Days of 23 and 25 hours: the summary's day is the local calendar day (Europe/Berlin)."""
from __future__ import annotations

from datetime import date

import pytest

from dashboard.config.load import from_dict
from dashboard.model import Sample
from dashboard.report.build import build_report
from dashboard.report.charts import figures
from dashboard.store import Store
from tests.support.report_data import day_bounds

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

BERLIN = "Europe/Berlin"


def fill(store: Store, start: float, end: float, peak_from: float = 0, step: float = 30.0) -> int:
    """Host and db samples every ``step`` s over [start, end); the pool at 70 % for the hour
    from ``peak_from``, 40 % otherwise."""
    batch, ts = [], start
    while ts < end:
        batch.append(Sample("host", ts, {"host.up": 1.0, "host.mem_percent": 50.0}))
        peak = peak_from <= ts < peak_from + 3600
        batch.append(Sample("db", ts, {"db.up": 1.0, "db.pool_utilization": 70.0 if peak else 40.0}))
        ts += step
    store.append(batch)
    return len(batch) // 2


@pytest.mark.parametrize("day,minutes,hours,late_clock", [
    ("2026-03-29", 1380, 23, "23:00"),      # clocks go forward at 02:00: one hour fewer
    ("2026-10-25", 1500, 25, "23:00"),      # clocks go back at 03:00: 02:xx happens twice
])
def test_a_dst_day_has_its_true_number_of_minutes_and_full_coverage(tmp_path, day, minutes, hours,
                                                                    late_clock):
    from zoneinfo import ZoneInfo
    store = Store(tmp_path)
    settings = from_dict({"data_dir": str(tmp_path), "timezone": BERLIN})
    d = date.fromisoformat(day)
    start, end = day_bounds(d, ZoneInfo(BERLIN))
    # the neighbours' data must not leak in: an hour before and after the day
    n = fill(store, start - 3600, end + 3600, peak_from=end - 3600)
    store.rollup(now=end + 7200)
    doc = build_report(store, settings, day, charts=True)
    assert doc["day"]["minutes"] == minutes and doc["day"]["hours"] == hours
    assert doc["coverage"] == {**doc["coverage"], "status": "complete", "minutes": minutes,
                               "of_minutes": minutes, "pct": 100.0}
    mem = next(a for a in doc["areas"] if a["key"] == "host_memory")["series"][0]
    assert mem["minutes"] == minutes and mem["samples"] == minutes * 2 and n == (minutes + 120) * 2
    pool = next(a for a in doc["areas"] if a["key"] == "pool")["series"][0]
    assert pool["peak"] == 70.0 and pool["peak_at_local"].startswith(late_clock)
    assert pool["peak_at"] == end - 3600
    # the chart's axis spans the real length of the day
    fig = figures(doc)["pool"]
    assert fig["layout"]["xaxis"]["range"] == [0, hours]
    ticks = dict(zip(fig["layout"]["xaxis"]["ticktext"], fig["layout"]["xaxis"]["tickvals"]))
    assert ticks["24:00"] == hours and ticks["00:00"] == 0
    assert ticks["06:00"] == (5 if hours == 23 else 7)      # local wall time, elapsed position


def test_half_a_dst_day_is_partial_and_says_how_much(tmp_path):
    from zoneinfo import ZoneInfo
    store = Store(tmp_path)
    settings = from_dict({"data_dir": str(tmp_path), "timezone": BERLIN})
    start, end = day_bounds(date(2026, 10, 25), ZoneInfo(BERLIN))
    fill(store, start, start + 750 * 60)
    store.rollup(now=end + 120)
    doc = build_report(store, settings, "2026-10-25")
    assert doc["coverage"]["status"] == "partial"
    assert doc["coverage"]["minutes"] == 750 and doc["coverage"]["pct"] == pytest.approx(50.0)
    mem = next(a for a in doc["areas"] if a["key"] == "host_memory")["series"][0]
    assert mem["coverage_pct"] == pytest.approx(50.0) and mem["avg"] == 50.0
