"""The daily summary over HTTP (page, JSON, CSV) and from the command line."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from dashboard.__main__ import main
from tests.support.report_data import day_bounds, write_day

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

DAY = date(2026, 11, 2)


@pytest.fixture
def filled(app):
    store = app.extensions["dashboard"].store
    write_day(store, DAY, ZoneInfo("UTC"), step=60.0)
    store.rollup(now=day_bounds(DAY, ZoneInfo("UTC"))[1] + 120)
    return app


def test_the_json_summary_has_verdicts_and_figures_but_no_chart_points(filled, client):
    r = client.get(f"/api/reports/daily?date={DAY}")
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = r.get_json()
    assert doc["schema"] == "dashboard.daily_report/v1" and doc["date"] == DAY.isoformat()
    assert doc["coverage"]["status"] == "complete"
    verdicts = {c["id"]: c["verdict"] for c in doc["checklist"]}
    assert verdicts["queue_pending"] == "missed" and verdicts["checkout_success"] == "met"
    assert all("chart" not in s for a in doc["areas"] for s in a["series"])


@pytest.mark.parametrize("path", ["/api/reports/daily", "/reports/daily"])
def test_the_csv_has_a_row_per_check_and_per_series(filled, client, path):
    r = client.get(f"{path}?date={DAY}&format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert f"daily-summary-{DAY}.csv" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    checks = [row for row in rows if row["section"] == "checklist"]
    areas = [row for row in rows if row["section"] == "area"]
    assert len(checks) == 14 and {c["verdict"] for c in checks} <= {"met", "missed", "no data"}
    pool = next(row for row in areas if row["series"] == "db.pool_utilization")
    assert float(pool["max"]) == 97.0 and pool["peak_at"] == "14:00"
    assert all(row["date"] == DAY.isoformat() for row in rows)


@pytest.mark.parametrize("path", ["/api/reports/daily", "/reports/daily"])
@pytest.mark.parametrize("bad", ["2026-13-01", "yesterdayish", "2026-02-30", "9999-01-01", "26-1-1",
                                 "0001-01-01", "0000-01-01", "1969-12-31", "1970-01-01",
                                 "\u0662\u0660\u0662\u0666-01-01"])
def test_a_bad_date_is_a_400_with_a_json_error(client, path, bad):
    r = client.get(f"{path}?date={bad}")
    assert r.status_code == 400
    assert r.get_json()["error"].startswith("date: ")


def test_the_earliest_day_with_a_summary_is_1970_01_02(client):
    r = client.get("/api/reports/daily?date=1970-01-02")
    assert r.status_code == 200 and r.get_json()["date"] == "1970-01-02"
    page = client.get("/reports/daily?date=1970-01-02").get_data(as_text=True)
    assert 'rel="prev"' not in page                 # no link to a day that would be refused


def test_an_unknown_format_is_a_400(client):
    r = client.get("/api/reports/daily?format=xlsx")
    assert r.status_code == 400 and "format" in r.get_json()["error"]


def test_the_page_puts_figures_in_json_blocks_and_runs_no_inline_script(filled, viewer_client):
    r = viewer_client.get(f"/reports/daily?date={DAY}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'type="application/json"' in tag or "src=" in tag, tag
    blocks = re.findall(r'<script type="application/json" class="figure" data-chart="([^"]+)">(.*?)</script>',
                        html, re.S)
    assert len(blocks) == 15                      # every area has data this day
    fig = json.loads(blocks[0][1])
    assert fig["data"] and fig["layout"]["xaxis"]["range"] == [0, 24]
    assert "/vendor/plotly-basic.min.js" in html and "/static/report.js" in html
    assert 'data-verdict="missed"' in html and "Daily summary" in html     # nav link
    assert html.count('class="report-area"') == 15


def test_monitored_text_is_escaped_on_the_page(app, client):
    from dashboard.collectors.mysql.statements import Inc, StatementBook
    from dashboard.store.statements import StatementsRepo
    store = app.extensions["dashboard"].store
    start, _ = day_bounds(DAY, ZoneInfo("UTC"))
    book = StatementBook(1000, ZoneInfo("UTC"), StatementsRepo(store.connect))
    book.add(start + 60, {"k": Inc(1, 5.0, 5.0)}, [("k", "s", "SELECT '</script><b>x</b>'")])
    html = client.get(f"/reports/daily?date={DAY}").get_data(as_text=True)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_the_page_of_a_day_without_data_says_so(client):
    r = client.get("/reports/daily?date=2026-01-05")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "No data was recorded for this day." in html
    assert 'class="figure"' not in html


def test_the_command_prints_the_summary_and_refuses_a_bad_date_in_one_line(filled, capsys, monkeypatch):
    data_dir = str(filled.extensions["dashboard"].settings.data_dir)
    monkeypatch.setenv("DASHBOARD_DATA_DIR", data_dir)
    monkeypatch.delenv("DASHBOARD_CONFIG", raising=False)
    assert main(["report", "--date", DAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "MISSED   Queue pending below 50 jobs" in out and "peak 97 % at 14:00" in out
    assert main(["report", "--date", DAY.isoformat(), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["date"] == DAY.isoformat()
    assert main(["report", "--date", DAY.isoformat(), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("date,section,area")
    assert main(["report", "--date", "2026-02-31"]) == 2
    err = capsys.readouterr().err
    assert err == "report: date: '2026-02-31' is not a calendar date\n"


def test_plotly_is_imported_only_when_a_page_is_built():
    import subprocess
    import sys
    code = ("import sys, tempfile\n"
            "from dashboard.app import create_app\nfrom dashboard.config.load import from_dict\n"
            "from dashboard.runtime import Runtime\n"
            "s = from_dict({'data_dir': tempfile.mkdtemp(), 'async_mode': 'threading'})\n"
            "create_app(s, Runtime(s, []), async_mode='threading')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'plotly'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
