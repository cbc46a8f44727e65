"""A ``[rules.host_cpu]`` override is what the live page draws, in Chromium: the dashed levels of
the CPU chart move with the rule the alert fires at."""
from __future__ import annotations

from tests.support.auth_helpers import open_logged_in
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import wait_until

CPU_LEVELS = """() => {
  const d = document.getElementById('chart-host-cpu');
  if (!d || !d.layout) return null;
  return {lines: (d.layout.shapes || []).map(s => s.y0),
          labels: (d.layout.annotations || []).map(a => a.text)};
}"""


def test_the_cpu_chart_draws_the_overridden_levels(tmp_path):
    cfg = tmp_path / "dashboard.toml"
    cfg.write_text("[rules.host_cpu]\nwarning = 50\ncritical = 80\n")
    server = DashboardServer(tmp_path / "data", config=cfg).start()
    try:
        with chromium() as ctx:
            page, events = open_logged_in(ctx, server)
            levels = wait_until(lambda: page.evaluate(CPU_LEVELS), timeout=20,
                                message=lambda: f"CPU chart not drawn: {events['console']}")
    finally:
        server.stop()
    assert sorted(levels["lines"]) == [50, 80]
    assert sorted(levels["labels"]) == ["critical 80 %", "warning 50 %"]
