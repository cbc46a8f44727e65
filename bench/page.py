"""The live page in headless Chromium with 15 minutes of history: bytes on the wire and time from
navigation start to the first drawn chart.

The data dir's store is pre-filled with 15 minutes of 1 s host samples of the host collector's
own shape (its label sets and metric names, values random-walked) through Store.append before
the server starts. Each run is a cold load in a fresh browser context (empty cache), logged in
through the login form when the app has logins; a warm reload in the same context follows.

Bytes: the sum of CDP Network.loadingFinished encodedDataLength over every HTTP response (as
on the wire, gzipped where served so, headers included); WebSocket frames are counted apart.
First chart: the page sets body[data-first-chart-drawn] = Date.now() when the first chart of
the history is drawn (it is painted at the end of that task, before the next chart is drawn),
and body[data-charts-drawn] when every chart in view is; minus performance.timeOrigin (the
navigation start). Both are printed; the target applies to the first.

    .venv/bin/python bench/page.py [--runs 3] [--history-min 15]
Debian's /usr/bin/chromium through playwright's executable_path; never `playwright install`.
"""
from __future__ import annotations

import argparse
import random
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TARGET_FIRST_CHART_S = 1.0
TARGET_PAGE_KB = 600


# --- history ---------------------------------------------------------------------------------

def prefill(data_dir: Path, minutes: float, interval_s: float = 1.0, seed: int = 7) -> int:
    """Store ``minutes`` of host ticks ending now, shaped like the live host collector's."""
    from dashboard.collectors.host import HostCollector
    from dashboard.model import Sample
    from dashboard.store import Store

    rnd = random.Random(seed)
    readings = HostCollector(interval_s=interval_s).collect()
    time.sleep(0.2)
    readings = HostCollector(interval_s=interval_s).collect() or readings
    walk = {(i, k): float(v) for i, r in enumerate(readings) for k, v in r.values.items()}
    store = Store(data_dir)
    ticks = int(minutes * 60 / interval_s)
    start = time.time() - ticks * interval_s
    try:
        for n in range(ticks):
            ts = start + n * interval_s
            tick = []
            for i, r in enumerate(readings):
                values = {}
                for k in r.values:
                    v = walk[(i, k)]
                    # A bounded random walk: percentages stay in 0..100, rates and loads >= 0.
                    v = max(0.0, v + rnd.gauss(0, 2.0 if k.endswith("percent") else max(v, 1) * 0.1))
                    if k.endswith("percent"):
                        v = min(v, 100.0)
                    walk[(i, k)] = v
                    values[k] = round(v, 3)
                if not r.labels:
                    values["host.up"] = 1.0       # the runner adds it to the unlabelled sample
                tick.append(Sample("host", ts, values, dict(r.labels)))
            store.append(tick)
    finally:
        store.close()
    return ticks


# --- login -------------------------------------------------------------------------------------

def create_viewer(env: dict[str, str]) -> tuple[str, str] | None:
    """A viewer account through the CLI; None when this version has no logins."""
    name, password = "benchviewer", secrets.token_urlsafe(16)
    proc = subprocess.run([harness.PY, "-m", "dashboard", "create-user", name, "--role", "viewer",
                           "--password-stdin"], cwd=harness.ROOT, env=env, input=password + "\n",
                          capture_output=True, text=True, timeout=60)
    return (name, password) if proc.returncode == 0 else None


def log_in(browser, url: str, creds: tuple[str, str] | None) -> list[dict]:
    """Log in through the form in a throw-away context; return its cookies for cold contexts."""
    if creds is None:
        return []
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(url + "/login")
        page.fill("input[name=name]", creds[0])
        page.fill("input[name=password]", creds[1])
        with page.expect_navigation():
            page.click("button[type=submit], input[type=submit]")
        if "/login" in page.url:
            raise RuntimeError("login through the form failed")
        return ctx.cookies()
    finally:
        ctx.close()


# --- one page load -----------------------------------------------------------------------------

@dataclass
class Load:
    first_chart_ms: float
    dcl_ms: float
    load_ms: float
    http_bytes: int
    ws_bytes: int
    requests: int
    by_url: dict[str, int] = field(default_factory=dict)
    history_ms: float | None = None
    history_bytes: int = 0
    history_end_ms: float | None = None      # navigation start -> history answer received
    plotted: int = 0                         # Plotly charts on the page when drawn
    main_cpu_ms: float | None = None         # renderer main-thread CPU until the charts were drawn
    in_view_ms: float | None = None          # navigation start -> every chart in view drawn


class WireCounter:
    """Sums encodedDataLength per finished request through a CDP session."""

    def __init__(self, page, context) -> None:
        self.cdp = context.new_cdp_session(page)
        self.urls: dict[str, str] = {}
        self.bytes: dict[str, int] = {}
        self.ws = 0
        self.cdp.on("Network.requestWillBeSent",
                    lambda e: self.urls.__setitem__(e["requestId"], e["request"]["url"]))
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.webSocketFrameReceived", self._ws)
        self.cdp.on("Network.webSocketFrameSent", self._ws)
        self.cdp.send("Network.enable")
        self.cdp.send("Performance.enable", {"timeDomain": "threadTicks"})

    def main_thread_cpu_ms(self) -> float | None:
        """CPU time of the renderer's main thread so far: unlike wall time, not stretched by
        other processes' load on a shared machine."""
        metrics = {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}
        return metrics["ThreadTime"] * 1000 if "ThreadTime" in metrics else None

    def _finished(self, e: dict) -> None:
        self.bytes[e["requestId"]] = int(e.get("encodedDataLength") or 0)

    def _ws(self, e: dict) -> None:
        self.ws += len(e.get("response", {}).get("payloadData", "").encode())

    def by_url(self, base: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for rid, n in self.bytes.items():
            u = self.urls.get(rid, rid).replace(base, "").split("?")[0] or "/"
            out[u] = out.get(u, 0) + n
        return out


def measure_load(page, wire: WireCounter, url: str, reload: bool = False) -> Load:
    wire.bytes.clear()
    wire.ws = 0
    if reload:
        page.reload(wait_until="load")
    else:
        page.goto(url + "/", wait_until="load")
    # A CSS selector, not a JS predicate: the page's CSP forbids string evaluation.
    page.wait_for_selector("body[data-charts-drawn]", state="attached", timeout=30_000)
    main_cpu = wire.main_thread_cpu_ms()
    # Let every request of the load finish (the history answer, the socket's handshake).
    page.wait_for_timeout(1000)
    t = page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const hist = performance.getEntriesByType('resource')
            .filter(r => r.name.includes('/api/history')).pop();
        return {drawn: Number(document.body.dataset.firstChartDrawn) - performance.timeOrigin,
                inview: Number(document.body.dataset.chartsDrawn) - performance.timeOrigin,
                dcl: nav ? nav.domContentLoadedEventEnd : -1, load: nav ? nav.loadEventEnd : -1,
                hist: hist ? hist.responseEnd - hist.startTime : null,
                histEnd: hist ? hist.responseEnd : null,
                plotted: document.querySelectorAll('.js-plotly-plot').length};
    }""")
    if "/login" in page.url:
        raise RuntimeError("the page asked for a login")
    by_url = wire.by_url(url)
    return Load(t["drawn"], t["dcl"], t["load"], sum(by_url.values()), wire.ws, len(wire.bytes),
                by_url, t["hist"], by_url.get("/api/history", 0), t["histEnd"], t["plotted"], main_cpu,
                t["inview"])


def report(label: str, r: Load) -> None:
    hist = f"{r.history_ms:.0f} ms" if r.history_ms is not None else "n/a"
    draw = (f"history arrived at {r.history_end_ms:.0f} ms; all {r.plotted} charts in view drawn at "
            f"{r.in_view_ms:.0f} ms" if r.history_end_ms and r.in_view_ms else "")
    print(f"  {label}: first chart {r.first_chart_ms:.0f} ms after navigation start "
          f"(DOMContentLoaded {r.dcl_ms:.0f} ms, load {r.load_ms:.0f} ms, /api/history {hist}; "
          f"{draw}); {r.http_bytes / 1000:.1f} kB over HTTP in {r.requests} responses "
          f"+ {r.ws_bytes / 1000:.1f} kB WebSocket frames")
    if r.main_cpu_ms is not None:
        print(f"      renderer main-thread CPU until drawn: {r.main_cpu_ms:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="cold loads (default 3)")
    ap.add_argument("--history-min", type=float, default=15.0,
                    help="minutes of 1 s history pre-filled (default 15)")
    args = ap.parse_args(argv)
    if not 1 <= args.runs <= 20 or not 0 <= args.history_min <= 48 * 60:
        ap.error("--runs 1..20, --history-min 0..2880")
    harness.sigterm_as_exit()
    print(harness.machine_line())
    from playwright.sync_api import sync_playwright

    state: dict = {}

    def before_start(data_dir: Path, env: dict[str, str]) -> None:
        t = time.perf_counter()
        state["ticks"] = prefill(data_dir, args.history_min)
        state["prefill_s"] = time.perf_counter() - t
        state["creds"] = create_viewer(env)

    with harness.DashboardServer(before_start=before_start) as srv, sync_playwright() as pw:
        print(f"server: {srv.url}; history: {state['ticks']} host ticks pre-filled "
              f"({args.history_min:g} min) in {state['prefill_s']:.1f} s; login: "
              f"{'viewer through the login form' if state['creds'] else 'none (no logins)'}")
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            cookies = log_in(browser, srv.url, state["creds"])
            psi0, t_start = harness.cpu_pressure_s(), time.monotonic()
            cold: list[Load] = []
            for i in range(args.runs):
                ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
                try:
                    if cookies:
                        ctx.add_cookies(cookies)
                    page = ctx.new_page()
                    wire = WireCounter(page, ctx)
                    r = measure_load(page, wire, srv.url)
                    cold.append(r)
                    report(f"cold load {i + 1}", r)
                    if i == 0:
                        for u, n in sorted(r.by_url.items(), key=lambda x: -x[1]):
                            print(f"      {n / 1000:8.1f} kB  {u}")
                    if i == args.runs - 1:
                        report("warm reload (same context, cache kept)",
                               measure_load(page, wire, srv.url, reload=True))
                finally:
                    ctx.close()
        finally:
            browser.close()
    if psi0 is not None and (psi1 := harness.cpu_pressure_s()) is not None:
        print(f"machine CPU pressure (PSI some) during the loads: "
              f"{100 * (psi1 - psi0) / (time.monotonic() - t_start):.0f} % "
              "(others' load on this machine stretches every figure above)")
    first = sorted(r.first_chart_ms for r in cold)
    med_first = first[len(first) // 2]
    in_view = sorted(r.in_view_ms for r in cold if r.in_view_ms is not None)
    cpu = sorted(r.main_cpu_ms for r in cold if r.main_cpu_ms is not None)
    if cpu:
        print(f"renderer main-thread CPU until the charts were drawn: median {cpu[len(cpu) // 2]:.0f} ms "
              "(a floor for the wall time on an idle machine)")
    med_kb = sorted(r.http_bytes for r in cold)[len(cold) // 2] / 1000
    if in_view:
        print(f"every chart in view drawn: median {in_view[len(in_view) // 2] / 1000:.3f} s "
              f"(min {in_view[0] / 1000:.3f}, max {in_view[-1] / 1000:.3f})")
    print(f"\nfirst chart drawn: median {med_first / 1000:.3f} s over {len(cold)} cold loads "
          f"(min {first[0] / 1000:.3f}, max {first[-1] / 1000:.3f}); target <= "
          f"{TARGET_FIRST_CHART_S:g} s: {'met' if med_first / 1000 <= TARGET_FIRST_CHART_S else 'MISSED'}")
    print(f"page weight (cold, on the wire): {med_kb:.1f} kB; target <= {TARGET_PAGE_KB} kB: "
          f"{'met' if med_kb <= TARGET_PAGE_KB else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
