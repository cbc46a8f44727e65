"""What the live page costs the browser while it idles on a wall screen (issue 19): renderer
main-thread busy %, long tasks and JS heap, at 1920x1080 (the top charts in view) and 1920x3800
(every chart in view), on a dashboard with the demo's platform and workload (MariaDB, Redis,
queues, the shop; ``bench.soakenv.soak_platform``), every collector at 1 s.

The store is pre-filled with 15 minutes of 1 s host samples (``bench.page.prefill``), so the host
charts hold a full window from the start; the other charts fill while the platform runs
(``--warmup`` seconds before the first reading, 120 by default; 900 for full windows).

Each reading: a fresh browser context at the viewport, logged in, the page loaded and every
chart drawn, the chip live, ``--settle`` seconds, then ``--seconds`` of idling measured through
the DevTools protocol:
- busy %: Performance.getMetrics TaskDuration delta / wall time (the issue's figure), with
  its ScriptDuration, LayoutDuration and RecalcStyleDuration parts; CPU %: the same from a
  second session in thread time (not stretched by the other processes on a shared machine);
- long tasks: a PerformanceObserver('longtask') installed by an init script (DevTools, not page
  script: the page's CSP does not apply), count and longest;
- JS heap after a forced GC (HeapProfiler.collectGarbage) at the end;
- what is shown: charts plotted, traces, points, and freshness: the page's newest sample time
  minus the newest point drawn in each host chart in view, the worst of five looks a second
  apart after the window (1 s freshness: about 1 s or less).

``--vs DIR``: the same readings with DIR's dashboard/static/*.js served instead of this
checkout's, and its *.css (the same server, data and platform; the page's HTML is this checkout's), the two
alternated within each round, and the ratio this/DIR printed per viewport. ``--profile``: a CPU
profile (CDP Profiler) of one extra window per variant at 1920x3800, self time by function, and
a DevTools trace of it: each task over 50 ms with the script entries and rendering steps in it.

    .venv/bin/python bench/page_cost.py [--vs OTHER_CHECKOUT] [--rounds 2] [--seconds 30] [--profile]
Debian's /usr/bin/chromium through playwright's executable_path; never `playwright install`.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.page import CHROMIUM, CHROMIUM_ARGS, create_viewer, log_in, prefill  # noqa: E402
from bench.soakenv import soak_platform  # noqa: E402

VIEWPORTS = {"1080p": (1920, 1080), "wall": (1920, 3800)}
TARGET_BUSY = {"1080p": 8.0, "wall": 15.0}
LONG_TASK_MS = 50.0

INIT_SCRIPT = """
(function () {
  var s = window.__pagecost = { longtasks: [] };
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) { s.longtasks.push(e.duration); });
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { s.error = String(e); }
})();
"""

SHOWN = """() => {
  const live = window.dashboardLive, charts = live ? live.charts() : {};
  let plotted = 0, traces = 0, points = 0, worst = 0, looked = 0;
  const newest = live ? live.state.lastSampleTs * 1000 : 0;
  for (const id in charts) {
    const c = charts[id], d = c.div;
    if (!d || !d.data) continue;
    plotted++;
    let last = -Infinity;
    for (const t of d.data) {
      traces++; points += t.x.length;
      for (let i = t.x.length - 1; i >= 0; i--) {
        if (t.y[i] !== null) { last = Math.max(last, +new Date(t.x[i])); break; }
      }
    }
    const r = d.getBoundingClientRect();
    if (c.panel.metrics[0].startsWith('host.') && r.bottom > 0 && r.top < innerHeight && last > 0) {
      worst = Math.max(worst, newest - last); looked++;
    }
  }
  return { plotted, traces, points, lagMs: worst, looked };
}"""


@dataclass
class Reading:
    variant: str
    viewport: str
    busy: float              # % of wall time
    cpu: float | None        # % of wall time, thread time
    script: float
    layout: float
    style: float
    longtasks: list[float]
    heap_mb: float
    plotted: int
    traces: int
    points: int
    lag_ms: float
    lag_looked: int


def route_static(ctx, static_dir: Path) -> None:
    """Serve ``static_dir``'s *.js and *.css for this context instead of the server's."""
    def handle(route) -> None:
        name = route.request.url.split("/static/", 1)[1].split("?", 1)[0]
        path = static_dir / name
        if "/" in name or not path.is_file():
            route.continue_()
            return
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        route.fulfill(status=200, body=path.read_bytes(),
                      headers={"Content-Type": f"{kind}; charset=utf-8", "Cache-Control": "no-store"})
    ctx.route("**/static/*.js*", handle)
    ctx.route("**/static/*.css*", handle)


def metrics(cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def one(browser, url: str, cookies: list[dict], variant: str, static_dir: Path | None, viewport: str,
        settle_s: float, seconds: float, profile: bool = False) -> Reading | list[tuple[float, str]]:
    w, h = VIEWPORTS[viewport]
    ctx = browser.new_context(viewport={"width": w, "height": h})
    try:
        ctx.add_cookies(cookies)
        ctx.add_init_script(INIT_SCRIPT)
        if static_dir is not None:
            route_static(ctx, static_dir)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        wall = ctx.new_cdp_session(page)
        wall.send("Performance.enable")
        thread = ctx.new_cdp_session(page)
        thread.send("Performance.enable", {"timeDomain": "threadTicks"})
        wall.send("HeapProfiler.enable")
        page.goto(url + "/", wait_until="load")
        page.wait_for_selector("body[data-charts-all-drawn]", state="attached", timeout=120_000)
        page.wait_for_selector("#status-chip[data-state=live]", timeout=60_000)
        page.wait_for_timeout(settle_s * 1000)
        page.evaluate("() => { window.__pagecost.longtasks = []; }")
        if profile:
            browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
            wall.send("Profiler.enable")
            wall.send("Profiler.setSamplingInterval", {"interval": 500})
            wall.send("Profiler.start")
        m0, t0 = metrics(wall), time.monotonic()
        c0 = metrics(thread)
        page.wait_for_timeout(seconds * 1000)
        m1, t1 = metrics(wall), time.monotonic()
        c1 = metrics(thread)
        if profile:
            times = self_times(wall.send("Profiler.stop")["profile"])
            raw = browser.stop_tracing()
            return (times + [(-1.0, line) for line in long_tasks_in(raw)]
                    + [(-2.0, line) for line in steps_in(raw, seconds)])
        longtasks = page.evaluate("() => window.__pagecost.longtasks")
        lags, shown = [], {}
        for _ in range(5):
            shown = page.evaluate(SHOWN)
            lags.append(shown["lagMs"])
            page.wait_for_timeout(1000)
        wall.send("HeapProfiler.collectGarbage")
        heap = metrics(wall)["JSHeapUsedSize"] / 2**20
        if errors:
            raise RuntimeError(f"{variant}: page error: {errors[0][:300]}")
        dt = t1 - t0

        def pct(key: str, a: dict, b: dict) -> float:
            return 100 * (b[key] - a[key]) / dt

        cpu = pct("TaskDuration", c0, c1) if "TaskDuration" in c1 else None
        return Reading(variant, viewport, pct("TaskDuration", m0, m1), cpu, pct("ScriptDuration", m0, m1),
                       pct("LayoutDuration", m0, m1), pct("RecalcStyleDuration", m0, m1), longtasks, heap,
                       shown["plotted"], shown["traces"], shown["points"], max(lags), shown["looked"])
    finally:
        ctx.close()


TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute", "blink", "cc"]


def long_tasks_in(raw: bytes) -> list[str]:
    """The renderer main thread's tasks over LONG_TASK_MS in a DevTools trace, each with what ran in
    it: the script entries (function and where) and the rendering steps, longest first."""
    import json
    events = json.loads(raw)["traceEvents"]
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"}
    spans = sorted((e for e in events if (e.get("pid"), e.get("tid")) in mains and e.get("ph") == "X"
                    and "dur" in e), key=lambda e: e["ts"])
    out = []
    for task in (e for e in spans if e["name"] == "RunTask" and e["dur"] > LONG_TASK_MS * 1000):
        end = task["ts"] + task["dur"]
        parts: dict[str, float] = {}
        for e in spans:
            if e["ts"] < task["ts"] or e["ts"] >= end or e is task:
                continue
            d = e.get("args", {}).get("data", {})
            if e["name"] in ("FunctionCall", "TimerFire", "FireAnimationFrame", "EventDispatch", "MinorGC",
                             "MajorGC", "UpdateLayoutTree", "Layout", "Paint", "Layerize", "Commit",
                             "ParseHTML", "EvaluateScript", "v8.compile"):
                what = e["name"]
                if e["name"] == "FunctionCall":
                    where = str(d.get("url", "")).rsplit("/", 1)[-1].split("?")[0]
                    what += f" {d.get('functionName') or '(anonymous)'} {where}:{d.get('lineNumber', 0) + 1}"
                elif e["name"] == "EventDispatch":
                    what += f" {d.get('type')}"
                parts[what] = parts.get(what, 0.0) + e["dur"] / 1000
        top = ", ".join(f"{k} {v:.0f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])[:6])
        out.append((task["dur"] / 1000, f"long task {task['dur'] / 1000:.0f} ms: {top}"))
    return [line for _, line in sorted(out, reverse=True)]


def steps_in(raw: bytes, seconds: float) -> list[str]:
    """The renderer main thread's time by trace event, self time (an event's own, less the events
    inside it), ms a second, the 15 largest: where the busy time goes, script and rendering alike
    (the CPU profile shows rendering only as "(program)")."""
    import json
    events = json.loads(raw)["traceEvents"]
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"}
    spans = sorted((e for e in events if (e.get("pid"), e.get("tid")) in mains and e.get("ph") == "X"
                    and "dur" in e), key=lambda e: (e["ts"], -e["dur"]))
    own: dict[str, float] = {}
    stack: list[dict] = []
    for e in spans:
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
            stack.pop()
        if stack:
            own[stack[-1]["name"]] = own.get(stack[-1]["name"], 0.0) - e["dur"]
        own[e["name"]] = own.get(e["name"], 0.0) + e["dur"]
        stack.append(e)
    total = sum(own.values())
    top = sorted(own.items(), key=lambda kv: -kv[1])[:15]
    return ([f"all {total / 1000 / seconds:6.1f} ms/s"]
            + [f"{v / 1000 / seconds:6.1f} ms/s  {k}" for k, v in top])


def self_times(profile: dict) -> list[tuple[float, str]]:
    """Self time per function (ms) from a CDP CPU profile."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    counts: dict[int, int] = {}
    for s in profile.get("samples", []):
        counts[s] = counts.get(s, 0) + 1
    deltas = profile.get("timeDeltas", [])
    per_sample_ms = (sum(deltas) / len(deltas) / 1000) if deltas else 0.5
    out: dict[str, float] = {}
    for nid, n in counts.items():
        f = nodes[nid]["callFrame"]
        where = f"{f['functionName'] or '(anonymous)'} {f['url'].rsplit('/', 1)[-1].split('?')[0]}"
        if f["url"]:
            where += f":{f['lineNumber'] + 1}:{f['columnNumber'] + 1}"
        out[where] = out.get(where, 0.0) + n * per_sample_ms
    return sorted(((ms, k) for k, ms in out.items()), reverse=True)


def show(r: Reading) -> str:
    cpu = f"{r.cpu:5.1f}" if r.cpu is not None else "  n/a"
    return (f"  {r.variant:>5} {r.viewport:>5}  busy {r.busy:5.1f} %  (script {r.script:5.1f}, layout "
            f"{r.layout:4.1f}, style {r.style:4.1f})  cpu {cpu} %  long tasks {len(r.longtasks)} "
            f"(max {max(r.longtasks, default=0):.0f} ms)  heap {r.heap_mb:5.1f} MB  charts {r.plotted}, "
            f"traces {r.traces}, points {r.points}  freshness: worst lag {r.lag_ms / 1000:.2f} s "
            f"over {r.lag_looked} host charts in view")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vs", type=Path, action="append", default=[],
                    help="another checkout to compare with (again for more: vs1, vs2 ...; ratios to vs1)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=120.0,
                    help="seconds the platform runs before the first reading (the non-host charts fill)")
    ap.add_argument("--viewports", default="1080p,wall")
    ap.add_argument("--profile", action="store_true", help="a CPU profile per variant at 1920x3800")
    args = ap.parse_args(argv)
    views = args.viewports.split(",")
    if not set(views) <= set(VIEWPORTS) or not 1 <= args.rounds <= 20 or not 5 <= args.seconds <= 600:
        ap.error(f"--viewports from {','.join(VIEWPORTS)}; --rounds 1..20; --seconds 5..600")
    variants: list[tuple[str, Path | None]] = [("this", None)]
    for n, other in enumerate(args.vs, 1):
        vs_static = other.resolve() / "dashboard" / "static"
        if not (vs_static / "live.js").is_file():
            ap.error(f"--vs: no dashboard/static/live.js under {other}")
        variants.append(("vs" if len(args.vs) == 1 else f"vs{n}", vs_static))
    harness.sigterm_as_exit()
    print(harness.machine_line())
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="dash-page-cost-"))
    state: dict = {}

    def before_start(data_dir: Path, env: dict[str, str]) -> None:
        state["ticks"] = prefill(data_dir, 15)
        state["creds"] = create_viewer(env)
        state["t0"] = time.monotonic()

    readings: list[Reading] = []
    try:
        with soak_platform(base, 1.0, 48.0, before_start=before_start) as env, sync_playwright() as pw:
            srv = env.server
            print(f"server: {srv.url}, every collector at 1 s, {state['ticks']} host ticks pre-filled; "
                  f"this: {harness.ROOT}; "
                  + "; ".join(f"{name}: {static.parent.parent}" for name, static in variants[1:] if static))
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                cookies = log_in(browser, srv.url, state["creds"])
                left = args.warmup - (time.monotonic() - state["t0"])
                if left > 0:
                    print(f"warm-up: {left:.0f} s more of the platform running", flush=True)
                    time.sleep(left)
                print(f"load average before the readings: {', '.join(f'{x:.2f}' for x in loadavg())}")
                psi0, tp = harness.cpu_pressure_s(), time.monotonic()
                for rnd in range(args.rounds):
                    order = variants if rnd % 2 == 0 else variants[::-1]
                    for view in views:
                        for name, static in order:
                            r = one(browser, srv.url, cookies, name, static, view, args.settle, args.seconds)
                            assert isinstance(r, Reading)
                            readings.append(r)
                            print(show(r), flush=True)
                psi1 = harness.cpu_pressure_s()
                if psi0 is not None and psi1 is not None:
                    print(f"machine CPU pressure (PSI some) during the readings: "
                          f"{100 * (psi1 - psi0) / (time.monotonic() - tp):.0f} %; load average "
                          f"{', '.join(f'{x:.2f}' for x in loadavg())}")
                if args.profile:
                    for name, static in variants:
                        prof = one(browser, srv.url, cookies, name, static, "wall", args.settle, args.seconds,
                                   profile=True)
                        assert isinstance(prof, list)
                        longs = [line for ms, line in prof if ms == -1.0]
                        steps = [line for ms, line in prof if ms == -2.0]
                        prof = [(ms, where) for ms, where in prof if ms >= 0]
                        total = sum(ms for ms, _ in prof)
                        print(f"\nCPU profile, {name}, wall, {args.seconds:g} s: {total:.0f} ms sampled; "
                              "self time by function:")
                        for ms, where in prof[:25]:
                            print(f"  {ms:8.1f} ms  {where}")
                        print(f"tasks over {LONG_TASK_MS:g} ms in that window (DevTools trace): {len(longs)}")
                        for line in longs[:12]:
                            print(f"  {line}")
                        print("main thread by trace event (self time):")
                        for line in steps:
                            print(f"  {line}")
            finally:
                browser.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    summary(readings, views, [name for name, _ in variants])
    return 0


def loadavg() -> tuple[float, float, float]:
    import os
    return os.getloadavg()


def summary(readings: list[Reading], views: list[str], names: list[str]) -> None:
    """Medians per variant and viewport; each other variant's ratio to the first compared one
    (this/vs with one --vs; this/vs1, vs2/vs1 ... with more)."""
    print("\nmedians over the rounds:")
    for view in views:
        med = {}
        for name in names:
            rs = [r for r in readings if r.variant == name and r.viewport == view]
            if not rs:
                continue
            med[name] = {k: statistics.median(getattr(r, k) for r in rs)
                         for k in ("busy", "script", "layout", "heap_mb", "lag_ms", "points")}
            cpus = [r.cpu for r in rs if r.cpu is not None]
            med[name]["cpu"] = statistics.median(cpus) if cpus else float("nan")
            longest = max((max(r.longtasks, default=0) for r in rs), default=0)
            n_long = sum(len(r.longtasks) for r in rs)
            target = TARGET_BUSY[view]
            m = med[name]
            print(f"  {name:>5} {view:>5}: busy {m['busy']:.1f} % (target <= {target:g} %: "
                  f"{'met' if m['busy'] <= target else 'MISSED'}), cpu {m['cpu']:.1f} %, script "
                  f"{m['script']:.1f} %, layout {m['layout']:.1f} %, heap {m['heap_mb']:.1f} MB, "
                  f"points {m['points']:.0f}, freshness lag {m['lag_ms'] / 1000:.2f} s; long tasks "
                  f"{n_long}, longest {longest:.0f} ms (target none over {LONG_TASK_MS:g} ms: "
                  f"{'met' if longest <= LONG_TASK_MS else 'MISSED'})")
        base = names[1] if len(names) > 1 else None
        for name in names:
            if base is None or name == base or name not in med or base not in med:
                continue
            ratios = {k: (f"{med[name][k] / med[base][k]:.2f}" if med[base][k] else "n/a")
                      for k in ("busy", "cpu", "script", "heap_mb", "points")}
            print(f"  ratio {name}/{base} {view}: busy {ratios['busy']}, cpu {ratios['cpu']}, script "
                  f"{ratios['script']}, heap {ratios['heap_mb']}, points {ratios['points']}")


if __name__ == "__main__":
    sys.exit(main())
