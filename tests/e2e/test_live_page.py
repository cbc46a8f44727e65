"""The live page in headless Chromium against a real gunicorn: draws, goes live over WebSocket,
survives a server restart with no gap longer than the downtime."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from dashboard.model import Sample
from dashboard.store import Store
from tests.support.auth_helpers import browser_login
from tests.support.browser import chromium
from tests.support.server import DashboardServer
from tests.support.util import wait_until

CPU_POINTS = """() => {
  const d = document.getElementById('chart-host-cpu');
  if (!d || !d.data || !d.data.length) return [];
  return d.data[0].x.map((x, i) => [x, d.data[0].y[i]]);
}"""


@pytest.fixture
def server(tmp_path):
    s = DashboardServer(tmp_path / "data")
    s.start()
    yield s
    s.stop()


def open_live_page(ctx, server):
    page = ctx.new_page()
    browser_login(page, server)
    errors: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    wait_until(lambda: page.get_attribute("body", "data-charts-drawn"), timeout=20,
               message=lambda: f"charts not drawn; browser said: {errors}; server log:\n"
                               f"{server.log()[-2000:]}")
    return page


def chip(page):
    return page.get_attribute("#status-chip", "data-state")


def real_points(page):
    return [(x, y) for x, y in page.evaluate(CPU_POINTS) if y is not None]


def test_the_cpu_chart_gains_points_every_second_over_websocket(server):
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")
        assert page.get_attribute("body", "data-transport") == "websocket"
        # The first chart in view is drawn (and painted) before the others, never after them.
        first = int(page.get_attribute("body", "data-first-chart-drawn"))
        assert first <= int(page.get_attribute("body", "data-charts-drawn"))
        before = len(real_points(page))
        wait_until(lambda: len(real_points(page)) >= before + 3, timeout=5,
                   message=lambda: f"{len(real_points(page)) - before} new points in 5 s")
        shots = os.environ.get("DASHBOARD_SCREENSHOT_DIR")
        if shots:
            wait_until(lambda: len(real_points(page)) >= 20, timeout=40)
            page.screenshot(path=str(Path(shots) / "live.png"), full_page=True)


def test_after_a_server_restart_the_page_reconnects_by_itself_without_a_long_gap(server):
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live" and len(real_points(page)) >= 3, timeout=20)

        down_at = time.time()
        server.stop()
        wait_until(lambda: chip(page) == "reconnecting", timeout=20,
                   message=lambda: f"chip: {chip(page)}")
        server.start()
        downtime = time.time() - down_at

        n = len(real_points(page))
        wait_until(lambda: chip(page) == "live" and len(real_points(page)) >= n + 3, timeout=30,
                   message=lambda: f"chip {chip(page)}, points {len(real_points(page))} (was {n})")
        xs = [x / 1000 for x, _ in real_points(page)]
        assert xs == sorted(xs), "points out of order after the resume"
        gaps = [b - a for a, b in zip(xs, xs[1:])]
        # One sampling interval of slack on each side of the downtime.
        assert max(gaps) <= downtime + 2.0, (max(gaps), downtime)


def test_a_crash_outage_is_drawn_as_a_gap_not_bridged_by_a_line(server):
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live" and len(real_points(page)) >= 3, timeout=20)
        last_before = real_points(page)[-1][0] / 1000
        server.kill()                         # a crash: no graceful shutdown, nothing collects
        killed_at = time.time()
        # The outage lasts five sampling intervals (the test's input, not a wait for the machine).
        wait_until(lambda: chip(page) == "reconnecting" and time.time() - killed_at >= 5,
                   timeout=30, interval=0.2)
        server.start()
        wait_until(lambda: chip(page) == "live" and real_points(page)[-1][0] / 1000 > killed_at + 5,
                   timeout=30)
        points = page.evaluate(CPU_POINTS)
        breaks = [x / 1000 for x, y in points if y is None]
        assert any(last_before <= b <= killed_at + 5 for b in breaks), (breaks, last_before)


SPIKE_CPU = 97.0
AT_MINUTE = """(x) => {
  const d = document.getElementById('chart-host-cpu');
  if (!d || !d.data) return null;
  const band = d.data.find(t => t.fill === 'toself');
  if (!band) return null;
  // The band's top and bottom edges at that minute, and the line's point there.
  const edges = band.x.map((bx, i) => bx === x ? band.y[i] : null).filter(y => y !== null);
  return {band: edges, line: d.data[0].y[d.data[0].x.indexOf(x)]};
}"""


def test_a_spike_shorter_than_a_minute_stays_in_view_on_the_24_h_chart(tmp_path):
    """The 24 h window draws one-minute means; each minute's min..max is a band around them,
    so a 10 s spike is still on the chart (issue 15)."""
    now = time.time()
    store = Store(tmp_path / "data")
    start = (now - 3 * 3600) // 60 * 60
    for i in range(6 * 170):                             # ~3 h at 10 s, rolled up below
        store.append([Sample("host", start + 10 * i,
                             {"host.cpu_percent": SPIKE_CPU if i == 6 * 60 else 1.0})])
    store.rollup(now)
    store.close()
    minute_x = (start + 3600 + 30) * 1000                # drawn at the spike's minute's middle
    with DashboardServer(tmp_path / "data") as server, chromium() as ctx:
        page = open_live_page(ctx, server)
        page.click('[data-window="86400"]')
        drawn = wait_until(lambda: page.evaluate(AT_MINUTE, minute_x), timeout=20,
                           message="no min..max band on the CPU chart of the 24 h window")
        assert sorted(drawn["band"]) == [1.0, SPIKE_CPU]
        assert drawn["line"] == round((SPIKE_CPU + 5 * 1.0) / 6, 4)


# The newest point a chart holds, its axes' ranges as drawn (ms), and its extremes.
IN_AXES = """(id) => {
  const d = document.getElementById(id);
  if (!d || !d.data || !d._fullLayout) return null;
  let last = -Infinity, top = -Infinity;
  for (const t of d.data) {
    for (let i = 0; i < t.x.length; i++) {
      if (t.y[i] === null) continue;
      last = Math.max(last, +new Date(t.x[i])); top = Math.max(top, t.y[i]);
    }
  }
  const xa = d._fullLayout.xaxis, ya = d._fullLayout.yaxis;
  return {last: last, top: top, x1: xa.r2l(xa.range[1]), y1: ya.range[1],
          newest: window.dashboardLive.state.lastSampleTs * 1000,
          inView: d.getBoundingClientRect().top < innerHeight,
          below: d.getBoundingClientRect().top - innerHeight};
}"""


X_LEAD_MAX_MS = 0.05 * 900 * 1000 + 1      # live.js X_LEAD of the 15-minute window

BELOW = """(id) => {
  const d = document.getElementById(id);
  return d ? d.getBoundingClientRect().top - innerHeight : null;
}"""


def test_a_chart_below_the_fold_is_up_to_date_and_within_its_axes_when_scrolled_into_view(server):
    """Charts out of view are not redrawn (issue 19): scrolled into view, a chart shows the newest
    second within a second, its x axis holds that point (ending at most the axis' lead past it,
    5 % of the 15 minutes) and its y axis holds every point."""
    with chromium(viewport=(800, 600)) as ctx:       # one column: the host charts one below another
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")
        below = "chart-host-io"                        # the last host chart: plotted at its 2nd sample
        # Out of view a chart may not be drawn at all yet (on a fresh server it has no history to
        # start from): only where it sits is waited for.
        wait_until(lambda: page.evaluate(BELOW, below) is not None, timeout=15)
        # Well below the fold (live.js once drew charts within 200 px of the view as if in it).
        assert page.evaluate(BELOW, below) > 300, page.evaluate(BELOW, below)
        page.wait_for_timeout(4000)           # seconds of samples the hidden chart has not drawn
        page.evaluate("id => document.getElementById(id).scrollIntoView()", below)

        def current() -> dict | None:
            a = page.evaluate(IN_AXES, below)
            # Drawn at most once a second: the newest sample may wait that long (sample times are
            # on a 1 s grid), never the 4 s it was out of view. The x axis holds the newest point
            # drawn and no point is above the y axis (a move's axes follow in the next frame).
            ok = (a and a["inView"] and a["newest"] - a["last"] <= 2000
                  and 0 <= a["x1"] - a["last"] <= X_LEAD_MAX_MS and a["top"] <= a["y1"])
            return a if ok else None
        wait_until(current, timeout=5, message=lambda: f"{below}: {page.evaluate(IN_AXES, below)}")
        for _ in range(3):                    # and it keeps moving, points and axes together
            last = page.evaluate(IN_AXES, below)["last"]
            wait_until(lambda last=last: (a := current()) and a["last"] > last, timeout=5,
                       message=lambda: f"{below}: {page.evaluate(IN_AXES, below)}")


def test_a_panel_below_the_fold_shows_its_newest_value_as_it_comes_into_view(server):
    """A panel out of view holds its value instead of writing it every second (each write
    restyled, laid out and repainted the page around it, issue 19); scrolled to, it shows the
    newest value at once."""
    with chromium(viewport=(800, 600)) as ctx:       # one column: the host panels one below another
        page = open_live_page(ctx, server)
        below = "host-io"
        top = page.evaluate("id => document.getElementById('panel-' + id).getBoundingClientRect().top", below)
        assert top > 900, top
        first = page.evaluate("window.dashboardLive.state.lastSeq")
        wait_until(lambda: page.evaluate("window.dashboardLive.state.lastSeq") >= first + 3, timeout=15)
        assert page.text_content(f"#value-{below}") == ""      # samples for it came, none written
        page.evaluate("id => document.getElementById('panel-' + id).scrollIntoView()", below)
        wait_until(lambda: page.text_content(f"#value-{below}") != "", timeout=5,
                   message="the value was not written as the panel came into view")


def test_a_chart_x_axis_moves_in_steps_and_always_holds_the_newest_point(server):
    """The x axis is not moved every second (issue 19): the newest points fill the room at its end
    while it stays put, and once a point reaches that end the axis moves on (the 5-minute window:
    a lead of 7.5-15 s). Every point drawn is within the axis throughout."""
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")
        page.click(".windows button[data-window='300']")
        chart = "chart-host-cpu"
        # The 5-minute window's charts are drawn (their history answer reset the ready flag).
        wait_until(lambda: page.evaluate("() => { const s = window.dashboardLive.state; "
                                         "return s.windowS === 300 && s.ready; }"), timeout=15)
        looks: list[dict] = []

        def look() -> dict | None:
            a = page.evaluate(IN_AXES, chart)
            if a and a["last"] > 0:
                if a["last"] > a["x1"]:
                    # Caught between a move's points (appended to the arrays in place) and its
                    # axes (applied by Plotly when its previous drawing is done): never past
                    # the move itself. A point past the axis' end stays a failure.
                    a = wait_until(lambda: (b := page.evaluate(IN_AXES, chart)) and b["last"] <= b["x1"]
                                   and b, timeout=3, message=lambda: f"a point past the axis' end: {a}")
                if not looks or looks[-1]["last"] != a["last"]:
                    looks.append(a)
            return a
        # Points that came while the axis stayed where it was, then an axis that moved on.
        def stayed() -> bool:
            look()
            return any(b["x1"] == a["x1"] and b["last"] >= a["last"] + 2000
                       for a, b in zip(looks, looks[2:]))
        wait_until(stayed, timeout=20,
                   message=lambda: f"{chart}: the axis moved with every point: {looks[-4:]}")
        before = looks[-1]
        wait_until(lambda: (a := look()) and a["x1"] > before["x1"], timeout=25,
                   message=lambda: f"{chart}: the axis never moved on: {looks[-4:]}")
        moved = looks[-1]
        assert moved["x1"] - moved["last"] <= 0.05 * 300 * 1000 + 1, moved   # a lead past the newest


# Samples of the CPU chart's series every 30 s for three hours past its newest point, handed to
# the page's own "samples" handler (a slow source: 360 points, well under the chart's point cap).
SLOW_SAMPLES = """() => {
  const live = window.dashboardLive, d = document.getElementById('chart-host-cpu');
  let last = -Infinity;
  for (const t of d.data) for (const x of t.x) last = Math.max(last, +new Date(x));
  const batch = [];
  for (let k = 1; k <= 360; k++) {
    batch.push({seq: live.state.lastSeq + k, ts: (last + k * 30000) / 1000, source: 'host',
                labels: {}, values: {'host.cpu_percent': 10 + (k % 7)}});
  }
  live.socket.listeners('samples').forEach(f => f(batch));
  return (last + 360 * 30000);
}"""


def test_a_slow_series_is_drawn_over_the_window_not_over_its_point_count(server):
    """Points are kept by time, not by count: a series sampled every 30 s for three hours is drawn
    over the 15-minute window (a tenth more, as the 1 s charts show, and the lead), not over the
    8 hours that the 1 s chart's 1,000 points would hold, and its newest point is in view."""
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")
        wait_until(lambda: (a := page.evaluate(IN_AXES, "chart-host-cpu")) and a["last"] > 0, timeout=15)
        newest = page.evaluate(SLOW_SAMPLES)
        span = """(id) => { const xa = document.getElementById(id)._fullLayout.xaxis;
                            return [xa.r2l(xa.range[0]), xa.r2l(xa.range[1])]; }"""

        def drawn() -> list | None:
            # The points and then the move's axes (applied once Plotly's previous drawing is done).
            a = page.evaluate(IN_AXES, "chart-host-cpu")
            r = page.evaluate(span, "chart-host-cpu") if a and a["last"] == newest else None
            return r if r and r[1] >= newest else None
        x0, x1 = wait_until(drawn, timeout=10,
                            message=lambda: f"not drawn: {page.evaluate(IN_AXES, 'chart-host-cpu')}")
        assert x0 <= newest <= x1
        assert x1 - x0 <= (1.1 + 0.05) * 900 * 1000 + 1, (x1 - x0) / 60000


def test_a_filling_chart_leaves_little_empty_axis_beside_its_line(server):
    """While a chart fills (a fresh server: a few seconds of points in a 15-minute window), the room
    past its newest point follows what is drawn (a twentieth of it, at least 5 s), not the window's
    share (up to 45 s of empty axis beside a line of seconds)."""
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")
        chart = "chart-host-cpu"
        first = """(id) => { const d = document.getElementById(id); let lo = Infinity;
                             for (const t of d.data) if (t.x.length) lo = Math.min(lo, +new Date(t.x[0]));
                             return lo; }"""

        def stepped() -> dict | None:
            a = page.evaluate(IN_AXES, chart)
            # A step taken: the axis ends seconds past the newest point (a lone first point's
            # autorange ends a millisecond past it).
            return a if a and a["last"] > 0 and a["x1"] - a["last"] >= 1500 else None
        a = wait_until(stepped, timeout=20, message=lambda: f"{chart}: {page.evaluate(IN_AXES, chart)}")
        drawn = a["last"] - page.evaluate(first, chart)
        assert drawn < 60_000, drawn
        assert a["x1"] - a["last"] <= max(5000, 0.05 * drawn) + 1, (a, drawn)


# What a chart shows of its first trace: every vertex drawn in its plot area in the trace's colour
# (pixels, as in the SVG), the newest point placed by the chart's own axes, and the data points
# placed the same way. A vertex that is no data point (a stray), a data point in the plot area
# that no drawn segment passes within a pixel of (missing; Plotly leaves out a point that close
# to the line through its neighbours), or a newest point not drawn, is a chart that shows
# something else than its data. byPlotly: Plotly's own line reaches the newest point.
DRAWN = """(id) => {
  const d = document.getElementById(id);
  const plot = d && d.querySelector('.cartesianlayer .overplot > .xy');
  const own = plot && plot.querySelector('.scatterlayer .js-line');
  if (!own || !d.data || !d.data[0].x.length || !d._fullLayout) return null;
  const xa = d._fullLayout.xaxis, ya = d._fullLayout.yaxis, t = d.data[0];
  const inside = v => v[0] >= 0 && v[0] <= xa._length && v[1] >= 0 && v[1] <= ya._length;
  const colour = getComputedStyle(own).stroke, points = [];
  let newest = null, newestX = null;
  for (let i = 0; i < t.x.length; i++) {
    if (t.y[i] === null) continue;
    newest = [xa.c2p(t.x[i]), ya.c2p(t.y[i])];
    newestX = t.x[i];
    points.push(newest);
  }
  const vertices = [], segments = [];
  let plotlyEnd = -Infinity;
  for (const p of plot.querySelectorAll('path')) {
    if (getComputedStyle(p).stroke !== colour) continue;
    for (const sub of (p.getAttribute('d') || '').split('M')) {
      const vs = [...sub.matchAll(/(-?[0-9.]+),(-?[0-9.]+)/g)].map(m => [+m[1], +m[2]]);
      vs.forEach((v, k) => {
        if (p.classList.contains('js-line')) plotlyEnd = Math.max(plotlyEnd, v[0]);
        if (inside(v)) vertices.push(v);
        segments.push([vs[k ? k - 1 : 0], v]);
      });
    }
  }
  const near = (q, [a, b]) => {
    const dx = b[0] - a[0], dy = b[1] - a[1], n = dx * dx + dy * dy;
    const k = n ? Math.max(0, Math.min(1, ((q[0] - a[0]) * dx + (q[1] - a[1]) * dy) / n)) : 0;
    return Math.hypot(a[0] + k * dx - q[0], a[1] + k * dy - q[1]) < 1;
  };
  const known = new Set(points.map(v => v.join()));
  return {newest: newest, newestX: newestX, drawn: vertices.some(v => v.join() === newest.join()),
          strays: vertices.filter(v => !known.has(v.join())),
          missing: points.filter(q => inside(q) && !segments.some(s => near(q, s))),
          byPlotly: plotlyEnd >= newest[0] - 0.01, width: xa._length};
}"""


def shown_right(a: dict | None) -> dict | None:
    return a if a and a["drawn"] and not a["strays"] and not a["missing"] else None


def test_each_second_the_line_drawn_holds_the_newest_point_and_only_data_points(server):
    """Between its axis moves a chart's newest seconds are drawn outside Plotly (issue 19: a move
    through Plotly paid the whole figure's defaults); what the user sees is still the data:
    every second the line reaches the newest point, every vertex of the line in the plot area is
    a data point where the chart's axes put it and every data point there is on the line, the
    newest seconds drawn beside Plotly's line included."""
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")
        chart, newest, beside = "chart-host-cpu", 0, set()
        for _ in range(8):
            # A later second each time, drawn at most once a second; a move's axes follow its
            # points in the next frame.
            a = wait_until(lambda newest=newest: (a := shown_right(page.evaluate(DRAWN, chart)))
                           and a["newestX"] > newest and a, timeout=5,
                           message=lambda: f"{chart}: {page.evaluate(DRAWN, chart)}")
            newest = a["newestX"]
            if not a["byPlotly"]:
                beside.add(newest)
        # Seconds drawn beside Plotly's line were seen (not only Plotly's moves).
        assert len(beside) >= 2, beside


# The page's samples handler taken off the socket (samples that come meanwhile are dropped), and
# put back. Not a disconnect: a reconnect may reload the history and draw every chart anew.
PAUSE = """() => { const s = window.dashboardLive.socket;
  window.heldHandlers = s.listeners('samples'); s.off('samples'); }"""
GO_ON = """() => { const s = window.dashboardLive.socket;
  (window.heldHandlers || []).forEach(f => s.on('samples', f)); window.heldHandlers = null; }"""


def pause_with_tails(page, chart):
    """No more samples, with the newest seconds drawn beside Plotly's line. A second's draw may
    still be due after the pause (at its x axis' step it goes through Plotly: then again)."""
    for _ in range(10):
        page.evaluate(GO_ON)
        wait_until(lambda: (a := page.evaluate(DRAWN, chart)) and not a["byPlotly"], timeout=15,
                   message=lambda: f"{chart}: {page.evaluate(DRAWN, chart)}")
        page.evaluate(PAUSE)
        wait_until(lambda: not page.evaluate("id => window.dashboardLive.charts()[id].queued",
                                             chart[len("chart-"):]), timeout=5)
        if not page.evaluate(DRAWN, chart)["byPlotly"]:
            return
    raise AssertionError("every pause fell on an axis move")


def test_hovering_a_chart_shows_its_newest_point(server):
    """Plotly's hover reads the points Plotly last computed: the seconds drawn beside its line
    are handed to it as the pointer enters the chart, so the hover at the line's end is the
    newest point, not the one of Plotly's last move."""
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")
        chart = "chart-host-cpu"
        pause_with_tails(page, chart)
        page.evaluate("""id => document.getElementById(id).on('plotly_hover',
                        e => { window.hovered = e.points.map(p => [p.curveNumber, p.pointNumber]); })""",
                      chart)
        box = page.locator(f"#{chart} .nsewdrag").bounding_box()
        last = page.evaluate("""id => { const t = document.getElementById(id).data[0];
                                let i = t.y.length - 1; while (t.y[i] === null) i--;
                                return [i, t.y[i].toFixed(2)]; }""", chart)
        end = box["x"] + page.evaluate(DRAWN, chart)["newest"][0]
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        moves = iter(range(1000))

        # At the line's end (Plotly takes one hover in 50 ms, and tells only of a hover that
        # differs from the one before: the pointer moves on until it is told of the newest).
        def hover():
            page.mouse.move(end + next(moves) % 2, box["y"] + box["height"] / 2)
            return page.evaluate("window.hovered") == [[0, last[0]]]
        wait_until(hover, timeout=5, interval=0.2, message=lambda: f"hovered: "
                   f"{page.evaluate('window.hovered')}, the newest point: {last}")
        assert last[1] in page.text_content(f"#{chart} .hoverlayer")


def test_a_resized_window_keeps_every_point_on_the_chart(server):
    """A resize redraws a chart on its new size from the points Plotly last computed: the newest
    seconds drawn beside its line are drawn again on the new size, none lost."""
    with chromium() as ctx:
        page = open_live_page(ctx, server)
        wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")
        chart = "chart-host-cpu"
        pause_with_tails(page, chart)
        before = wait_until(lambda: shown_right(page.evaluate(DRAWN, chart)), timeout=5,
                            message=lambda: f"{chart}: {page.evaluate(DRAWN, chart)}")
        page.set_viewport_size({"width": 1200, "height": 1000})
        wait_until(lambda: page.evaluate(DRAWN, chart)["width"] != before["width"], timeout=5)
        after = wait_until(lambda: shown_right(page.evaluate(DRAWN, chart)), timeout=5,
                           message=lambda: f"{chart}: {page.evaluate(DRAWN, chart)}")
        assert after["newestX"] == before["newestX"]


def test_the_live_page_leaves_no_error_in_the_browser_console(server):
    """An operator who opens DevTools on the wall screen sees no red line: no failed request
    (the browser's own icon request included: a 404 there looked like a broken page) and no
    script error, once the page is live and has taken a few seconds of samples."""
    with chromium() as ctx:
        page = ctx.new_page()
        browser_login(page, server)
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and errors.append(f"{m.text} {m.location}"))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        wait_until(lambda: chip(page) == "live", timeout=20, message=lambda: f"chip: {chip(page)}")
        before = len(real_points(page))
        wait_until(lambda: len(real_points(page)) >= before + 2, timeout=10)
        assert errors == []


def test_a_chart_y_axis_grows_when_a_value_rises_above_it(tmp_path):
    """The y axis is not recomputed every second (issue 19) but it still holds every point: StatsD
    packets at a few a second, then a burst a hundred times as high, and the chart's y axis rises
    over the burst's points as soon as they are drawn, and keeps holding them while it moves."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        udp.close()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cfg = tmp_path / "dashboard.toml"
        cfg.write_text(f'[statsd]\nbind = "127.0.0.1:{port}"\n')
        chart = "chart-app-statsd"

        def send(n: int) -> None:
            for _ in range(n):
                udp.sendto(b"shop.signup:1|c", ("127.0.0.1", port))

        with DashboardServer(tmp_path / "data", config=cfg) as server, \
                chromium(viewport=(1920, 3800)) as ctx:      # every chart in view
            page = open_live_page(ctx, server)
            wait_until(lambda: chip(page) == "live", timeout=15, message=lambda: f"chip: {chip(page)}")

            def low() -> dict | None:
                send(3)
                time.sleep(0.3)
                a = page.evaluate(IN_AXES, chart)
                return a if a and a["top"] > 0 and a["newest"] - a["last"] <= 2000 else None
            before = wait_until(low, timeout=20, message=lambda: f"{chart}: {page.evaluate(IN_AXES, chart)}")
            send(3000)                          # ~300/s averaged over the collector's window

            def risen() -> dict | None:
                send(3)
                time.sleep(0.3)
                a = page.evaluate(IN_AXES, chart)
                return a if a and a["top"] > 20 * before["y1"] and a["top"] <= a["y1"] else None
            wait_until(risen, timeout=15, message=lambda: f"{chart}: before {before}, now "
                                                          f"{page.evaluate(IN_AXES, chart)}")
            for _ in range(3):                  # and the points stay within it as the chart moves
                last = page.evaluate(IN_AXES, chart)["last"]
                wait_until(lambda last=last: (a := risen()) and a["last"] > last, timeout=5,
                           message=lambda: f"{chart}: {page.evaluate(IN_AXES, chart)}")
    finally:
        udp.close()
