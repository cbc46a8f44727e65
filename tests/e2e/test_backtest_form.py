"""The alerts page's backtest form in headless Chromium against a real gunicorn (issue 18, item 4):
a viewer picks a rule, changes its hold, and reads how often it would have paged over the
stored history ("these settings over the last day: N pages, M of them flaps"), under the strict
CSP; a bad value shows the API's message instead."""
from __future__ import annotations

import re
import time

import pytest

from alerts import backtest
from alerts.rules import build_rules
from dashboard.config.load import from_dict
from dashboard.model import Sample
from dashboard.store import Store
from dashboard.store.history_reads import HistoryReads
from tests.support.auth_helpers import browser_login
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import wait_until
from tests.test_backtest import flapping

HOST = {"host": "web-<b>9</b>"}       # an agent's label, rendered as text, never as markup


@pytest.fixture
def server(tmp_path):
    data = tmp_path / "data"
    store = Store(data)
    try:
        # An agent host's CPU, flapping, two to one hour ago (the server's own host CPU is
        # unlabelled: the row of this label set is the test's alone).
        for ts, v in flapping(time.time() - 2 * 3600, ticks=360):
            store.append([Sample("agents", ts, {"host.cpu_percent": v}, HOST)])
    finally:
        store.close()
    s = DashboardServer(data)
    s.start()
    yield s
    s.stop()


def expected(data_dir, for_s: float) -> dict:
    """What the backtest counts for the agent's label set, with a hold of ``for_s``."""
    settings = from_dict({"data_dir": str(data_dir),
                          "rules": {"host_cpu": {"for_s": for_s, "keep_firing_for_s": 60}}})
    rules = build_rules(settings)
    until = time.time()
    with HistoryReads(Store(data_dir).connect()) as reads:
        doc = backtest.backtest(reads, {"host_cpu": rules["host_cpu"]},
                                backtest.source_intervals(settings), until - 86400, until)
    return next(r for r in doc["rules"] if r["labels"] == HOST)


def test_a_viewer_reads_how_often_a_rule_would_have_paged_with_other_settings(server):
    want = expected(server.data_dir, 60)
    assert want["fired"] >= 3 and want["flaps"] >= 1
    with chromium() as ctx:
        page = ctx.new_page()
        browser_login(page, server, role="viewer")
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error"
                and errors.append(f"{m.text} {m.location}"))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/alerts")
        form = page.locator("#backtest-form")
        form.locator("select[name=rule]").select_option("host_cpu")
        # The form starts from the effective settings.
        assert form.locator("input[name=for_s]").input_value() == "300"
        assert form.locator("input[name=warning]").input_value() == "80"
        form.locator("input[name=for_s]").fill("60")
        form.locator("input[name=keep_firing_for_s]").fill("60")
        form.locator("select[name=since]").select_option("1d")
        form.locator("button[type=submit]").click()
        summary = page.locator("#backtest-summary")
        wait_until(lambda: summary.is_visible() and "pages" in summary.inner_text(), timeout=30,
                   message=lambda: f"no result: {errors} {page.locator('#backtest-error').inner_text()}")
        text = summary.inner_text()
        m = re.match(r"These settings over the last day: (\d+) pages?, (\d+) of them flaps", text)
        assert m, text
        assert int(m.group(1)) >= want["fired"] and int(m.group(2)) >= want["flaps"]
        row = page.locator("#backtest-rows tr", has_text="host=web-<b>9</b>")
        cells = row.locator("td").all_inner_texts()
        assert cells[1:5] == [str(want["fired"]), str(want["resolved"]), str(want["escalated"]),
                              str(want["flaps"])]
        assert page.locator("#backtest-rows b").count() == 0          # a label is text
        assert errors == []

        form.locator("input[name=warning]").fill("99")                 # past critical (95)
        form.locator("button[type=submit]").click()
        err = page.locator("#backtest-error")
        wait_until(lambda: err.is_visible() and "warning" in err.inner_text(), timeout=20)
        assert "critical" in err.inner_text()
        # Chromium logs the 400 itself; nothing else went wrong.
        assert all("status of 400" in e for e in errors), errors
