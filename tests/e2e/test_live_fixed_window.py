"""The link in a page (``/?from=EPOCH&to=EPOCH``, issue 18) opens the live page on that past
window in headless Chromium against a real gunicorn: its history only, the alert that fired in it
shaded, no live sample appended while they keep arriving, and a way back to live."""
from __future__ import annotations

import os
import time
from pathlib import Path

from dashboard.model import Sample
from dashboard.store import Store
from tests.support.alert_helpers import make_service
from tests.support.auth_helpers import browser_login
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import wait_until

CPU = """() => {
  const d = document.getElementById('chart-host-cpu');
  if (!d || !d.data || !d.data.length) return null;
  return {x: d.data[0].x.filter((x, i) => d.data[0].y[i] !== null),
          shapes: (d.layout.shapes || []).filter(s => s.type === 'rect'),
          range: d.layout.xaxis.range};
}"""
COUNT_SAMPLES = """() => { window.__got = 0;
  window.dashboardLive.socket.on('samples', () => { window.__got += 1; }); }"""


def seed(data_dir, start: float) -> tuple[float, float]:
    """Half an hour of CPU samples a second, two hours ago, busy for five minutes in the middle,
    and the host_cpu alert the real engine fired and resolved on them. Returns the breach's span."""
    store = Store(data_dir)
    busy = (start + 900, start + 1200)
    store.append_many([Sample("host", start + i, {"host.cpu_percent": 99.0 if busy[0] <= start + i
                                                  < busy[1] else 4.0})] for i in range(1800))
    store.close()
    svc, _ = make_service(data_dir, notify=[],
                          rules={"host_cpu": {"for_s": 0, "keep_firing_for_s": 0}})
    try:
        assert [t.kind for t in svc.process([Sample("host", busy[0], {"host.cpu_percent": 99.0})],
                                            now=busy[0])] == ["firing"]
        assert [t.kind for t in svc.process([Sample("host", busy[1], {"host.cpu_percent": 4.0})],
                                            now=busy[1])] == ["resolved"]
    finally:
        svc.close()
    return busy


def test_the_link_of_a_page_opens_a_fixed_window_with_the_alert_shaded_and_no_live_updates(tmp_path):
    start = float(int(time.time() - 7200))
    busy = seed(tmp_path / "data", start)
    frm, to = int(start), int(start + 1800)
    with DashboardServer(tmp_path / "data") as server, chromium() as ctx:
        page = ctx.new_page()
        browser_login(page, server)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server.url}/?from={frm}&to={to}")
        wait_until(lambda: page.get_attribute("body", "data-charts-drawn")
                   and page.get_attribute("body", "data-alerts-shaded"), timeout=30,
                   message=lambda: f"not drawn; browser said {errors}; log:\n{server.log()[-2000:]}")
        assert page.get_attribute("body", "data-alerts-shaded") == "1"
        assert page.get_attribute("#status-chip", "data-state") == "fixed"
        assert page.is_visible("#fixed-window") and page.is_hidden(".windows")
        assert page.get_attribute("#back-to-live", "href") == "/"

        cpu = wait_until(lambda: page.evaluate(CPU), timeout=10)
        assert cpu["range"] == [frm * 1000, to * 1000]
        [shade] = cpu["shapes"]
        assert (shade["x0"], shade["x1"]) == (busy[0] * 1000, busy[1] * 1000)
        # The stored window (merged into 2 s buckets: at most 1,500 points), nothing after it.
        assert frm * 1000 <= min(cpu["x"]) and to * 1000 - 5000 <= max(cpu["x"]) < to * 1000
        shots = os.environ.get("DASHBOARD_SCREENSHOT_DIR")
        if shots:
            page.screenshot(path=str(Path(shots) / "live-fixed-window.png"))

        # Live samples keep arriving on the socket (one a second); none is drawn.
        page.evaluate(COUNT_SAMPLES)
        wait_until(lambda: page.evaluate("window.__got") >= 3, timeout=20,
                   message="no live samples reached the page")
        after = page.evaluate(CPU)
        assert after["x"] == cpu["x"], "a live sample was appended to a fixed window"
        assert page.get_attribute("#status-chip", "data-state") == "fixed"

        page.click("#back-to-live")
        wait_until(lambda: page.get_attribute("#status-chip", "data-state") == "live", timeout=20)
        assert not page.is_visible("#fixed-window")
        assert errors == []
