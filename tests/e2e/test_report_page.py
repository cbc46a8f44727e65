"""The daily summary page in headless Chromium against a real gunicorn: every area's chart is
drawn by the page's plotly.js under the CSP, the print view puts one area per page, a queue
name that is markup is drawn as text, and a bad date is a 400."""
from __future__ import annotations

import html
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from dashboard.model import Sample
from dashboard.store import Store
from tests.support.auth_helpers import add_token, browser_login, open_logged_in
from tests.support.browser import chromium
from tests.support.report_data import day_bounds, write_day
from tests.support.server import DashboardServer
from tests.support.util import wait_until

BERLIN = ZoneInfo("Europe/Berlin")
# A monitored system names its queue; plotly reads <a href> in trace names as a link.
PHISH = '<a href="https://evil.example">Session expired</a>'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("report-e2e") / "data"
    day = datetime.fromtimestamp(time.time(), BERLIN).date() - timedelta(days=3)
    store = Store(data)
    write_day(store, day, BERLIN, step=60.0)
    start, _ = day_bounds(day, BERLIN)
    store.append([Sample("queue", start + h * 3600, {"queue.pending": 1.0}, {"queue": PHISH})
                  for h in range(24)])
    store.rollup(now=day_bounds(day, BERLIN)[1] + 120)
    store.close()
    s = DashboardServer(data, env={"DASHBOARD_TIMEZONE": "Europe/Berlin"})
    s.start()
    s.day = day.isoformat()
    yield s
    s.stop()


def test_the_page_draws_every_area_chart_under_the_csp_and_prints_one_area_per_page(server):
    with chromium() as ctx:
        page = ctx.new_page()
        problems: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning")
                and not m.text.startswith("Failed to load resource") and problems.append(m.text))
        # every resource the page asks for exists (the browser's own favicon probe aside)
        page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
                and problems.append(f"{r.status} {r.url}"))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.add_init_script("""document.addEventListener('securitypolicyviolation',
            e => (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI))""")
        browser_login(page, server)
        page.goto(f"{server.url}/reports/daily?date={server.day}")
        wait_until(lambda: page.get_attribute("body", "data-charts-drawn"), timeout=30,
                   message=lambda: f"charts not drawn; browser said: {problems}; server log:\n"
                                   f"{server.log()[-2000:]}")
        assert page.get_attribute("body", "data-charts-drawn") == "15"
        # plotly drew an SVG with the day's line in every area's chart
        drawn = page.evaluate("""() => [...document.querySelectorAll('.report-chart')]
            .filter(el => el.querySelector('svg.main-svg') && el.data && el.data.length).length""")
        assert drawn == 15
        assert page.evaluate("() => window.__csp || []") == [] and problems == []
        verdicts = page.eval_on_selector_all("table.verdicts tbody tr",
                                             "rows => rows.map(r => r.dataset.verdict)")
        assert len(verdicts) == 14 and verdicts.count("missed") == 6
        assert page.text_content("#coverage").startswith("Complete")
        page.emulate_media(media="print")
        breaks = page.eval_on_selector_all(
            ".report-area", "els => els.map(e => getComputedStyle(e).breakBefore)")
        assert breaks == ["page"] * 15
        assert page.eval_on_selector("header nav", "e => getComputedStyle(e).display") == "none"


def test_a_queue_name_that_is_markup_is_drawn_as_text_and_links_nowhere(server):
    with chromium() as ctx:
        page, events = open_logged_in(ctx, server, f"/reports/daily?date={server.day}")
        wait_until(lambda: page.get_attribute("body", "data-charts-drawn"), timeout=30,
                   message=lambda: server.log()[-2000:])
        legend = page.evaluate("() => document.querySelector('#chart-queue_pending .legend')"
                               ".textContent")
        assert PHISH in legend                  # the name as the queue wrote it, literally
        names = page.evaluate("() => document.getElementById('chart-queue_pending').data"
                              ".map(t => t.name).join('|')")
        assert html.escape(PHISH, quote=False) in names
        links = page.evaluate("""() => [...document.querySelectorAll('a')].map(a =>
            a.getAttribute('href') || a.getAttribute('xlink:href') || '')""")
        assert not [h for h in links if "evil.example" in h], links
        assert page.url == f"{server.url}/reports/daily?date={server.day}"
        assert events["dialogs"] == [] and page.evaluate("() => window.__csp || []") == []


def test_a_bad_date_is_a_400_from_the_real_server(server):
    token = add_token(server.data_dir, "viewer")
    for path in ("/reports/daily", "/api/reports/daily"):
        r = requests.get(f"{server.url}{path}?date=2026-02-30",
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 400 and r.json() == {"error": "date: '2026-02-30' is not a calendar date"}
