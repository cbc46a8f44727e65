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
