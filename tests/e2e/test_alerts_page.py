"""Alerts in headless Chromium against a real gunicorn: the live page's alert bar updates over
Socket.IO (critical stands out), the memory chart shades the breach, and an operator
acknowledges from the /alerts page (fetch with the CSRF header, under the strict CSP)."""
from __future__ import annotations

import pytest

from tests.support.auth_helpers import browser_login
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import wait_until

BAR = """() => { const b = document.getElementById('alert-bar');
  return b && !b.hidden ? {critical: b.dataset.critical, warning: b.dataset.warning,
                           cls: b.className, text: b.textContent} : null; }"""
SHADES = """() => { const d = document.getElementById('chart-host-mem');
  return d && d.layout ? (d.layout.shapes || []).filter(s => s.type === 'rect').length : -1; }"""


@pytest.fixture
def server(tmp_path, webhook_receiver):
    config = tmp_path / "dashboard.toml"
    # Memory above 1 % is "warning" at once (a breach to shade); the probe's target answers
    # what the test tells it to, so app_down can fire while the page is open.
    config.write_text(f"""
[[probes]]
name = "shop"
url = "{webhook_receiver.url}health"
interval_s = 1
timeout_s = 2
[rules.host_memory]
warning = 1
critical = 99.9
clear = 0.5
for_s = 0
[rules.app_down]
for_s = 0
keep_firing_for_s = 0
""")
    s = DashboardServer(tmp_path / "data", config=config)
    s.start()
    yield s
    s.stop()


def test_the_alert_bar_goes_critical_live_and_an_operator_acknowledges_from_the_alerts_page(
        server, webhook_receiver):
    with chromium() as ctx:
        page = ctx.new_page()
        browser_login(page, server)
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error"
                and errors.append(f"{m.text} {m.location}"))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        bar = wait_until(lambda: (b := page.evaluate(BAR)) and b["warning"] == "1" and b,
                         timeout=30, message=lambda: f"bar: {page.evaluate(BAR)}; {errors}")
        assert "Memory in use" in bar["text"] and "has-warning" in bar["cls"]
        wait_until(lambda: page.evaluate(SHADES) >= 1, timeout=20,
                   message=lambda: f"no breach shading on the memory chart: {errors}")

        webhook_receiver.default_status = 503          # the probed site goes down
        bar = wait_until(lambda: (b := page.evaluate(BAR)) and b["critical"] == "1" and b,
                         timeout=20, message=lambda: f"bar: {page.evaluate(BAR)}")
        assert "has-critical" in bar["cls"]
        assert page.evaluate("document.querySelector('.count-critical').classList.contains('on')")

        page.goto(server.url + "/alerts")
        row = page.locator("#active tr.sev-critical")
        row.locator("input[name=comment]").fill("restarting php-fpm")
        row.locator("button[type=submit]").click()
        wait_until(lambda: "restarting php-fpm" in page.locator("#active").inner_text(), timeout=10,
                   message=lambda: f"not acknowledged: {errors}")

        webhook_receiver.default_status = 200          # back up: resolved, the bar follows
        page.goto(server.url + "/")
        wait_until(lambda: (b := page.evaluate(BAR)) and b["critical"] == "0", timeout=20,
                   message=lambda: f"bar: {page.evaluate(BAR)}")
        assert errors == []


def test_an_alert_that_resolves_while_the_page_still_waits_for_its_alerts_leaves_the_bar_clear(
        server, webhook_receiver):
    """The page asks for the active alerts as it loads, again when its socket connects and again
    after each alert event. When the first answer is slow and the alert resolves meanwhile, that
    answer is out of date by the time it arrives: the page must ask again, not take the old
    answer for the later question (the bar stayed "1 critical" for a resolved alert until the
    next alert anywhere)."""
    webhook_receiver.default_status = 503              # the probed site is down: app_down fires
    with chromium() as ctx:
        api = ctx.request
        browser_login(ctx.new_page(), server)

        def critical() -> int:
            r = api.get(server.url + "/api/alerts")
            return sum(a["severity"] == "critical" for a in r.json()["active"])

        wait_until(lambda: critical() == 1, timeout=30, message="app_down never fired")
        page = ctx.new_page()
        held: list = []
        later: list = []
        page.route(lambda url: "/api/alerts" in url,
                   lambda route: (later if held else held).append(route) or (held[0] is route
                                                                            or route.continue_()))
        page.goto(server.url + "/")
        # (page.evaluate lets Playwright run the route handler meanwhile)
        wait_until(lambda: page.evaluate("1") and held, timeout=20,
                   message="the page never asked for its alerts")
        stale = held[0].fetch()                        # the answer as it is now: 1 critical
        wait_until(lambda: page.get_attribute("#status-chip", "data-state") == "live", timeout=20)
        webhook_receiver.default_status = 200          # back up: app_down resolves
        # The resolve's event reaches the bar; its follow-up question (300 ms later) finds the
        # first one still unanswered.
        wait_until(lambda: (b := page.evaluate(BAR)) and b["critical"] == "0", timeout=30,
                   message=lambda: f"bar: {page.evaluate(BAR)}")
        page.evaluate("new Promise(function (r) { setTimeout(r, 300); })")
        assert not later
        held[0].fulfill(response=stale)                # the slow first answer arrives at last
        wait_until(lambda: page.evaluate("1") and later and page.evaluate(BAR)["critical"] == "0",
                   timeout=20, message=lambda: f"asked again: {len(later)}; bar: {page.evaluate(BAR)}")
