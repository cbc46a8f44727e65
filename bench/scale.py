"""Large installations (issue 9): 50 hosts reporting through agents, 200 queues, 10,000 digests.

Private Redis (the agents' stream, Socket.IO's message queue and 200 redis-list queues) and
MariaDB (performance_schema on, 10,000 distinct statement digests) from dashboard.devservices.
The agents are lightweight publishers in this process: each second one pipelined XADD per host
of the message ``python -m dashboard agent`` sends (dashboard.agent.message), carrying this
machine's real host readings with each host's values moved a little. The collector side is the
real AgentsCollector, QueueCollector and MySQLCollector.

  1. tick CPU (in this process, threading mode, the app built so the alert engine and every sink
     run): CPU of one collection + publish (store, alert engine, Socket.IO relay) at 10/25/50
     hosts and 50/100/200 queues, and the cost per host and per queue: linear if those agree;
  2. the store's write per tick: Store.append of one whole tick of the full installation
     (local host, 50 agents' hosts, 200 queues, db, cache), wall and CPU, p50/p95/max;
  3. page open: the real server (gunicorn) with the full installation running and ``history``
     minutes of its ticks pre-filled; headless Chromium (Debian's), logged in through the form,
     cold loads: time to the first drawn chart, to the charts in view (body[data-charts-drawn],
     the page open), to all charts (body[data-charts-all-drawn]: those below the fold are drawn
     after, one per frame), the /api/history answer's size and time.

    .venv/bin/python bench/scale.py [--hosts 50] [--queues 200] [--digests 10000]
                                    [--history-min 15] [--runs 3] [--ticks 40] [--parts 1,2,3]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

GRANTS = ["PROCESS", "BINLOG MONITOR", "SLAVE MONITOR", "SELECT ON performance_schema.*"]
TARGET_PAGE_S = 1.5
TARGET_WRITE_MS = 2.0


# --- the installation ----------------------------------------------------------------------------

class Agents:
    """``n`` agents publishing host readings to the stream, each second, from one thread."""

    def __init__(self, redis_url: str, n: int, seed: int = 11) -> None:
        import redis

        from dashboard.collectors.host import HostCollector
        self.client = redis.Redis.from_url(redis_url)
        self.n = n
        hc = HostCollector()
        hc.collect()
        time.sleep(0.2)
        self.readings = hc.collect()
        self.rnd = random.Random(seed)
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def host_readings(self, i: int):
        from dashboard.model import Reading
        out = []
        for r in self.readings:
            values = {k: round(max(0.0, v * (0.5 + (i % 10) / 10) + self.rnd.gauss(0, 1)), 3)
                      for k, v in r.values.items()}
            out.append(Reading(values, dict(r.labels)))
        return out

    def publish(self, ts: float | None = None) -> None:
        from dashboard.process.agent import STREAM_MAXLEN, message, stream_key
        ts = time.time() if ts is None else ts
        pipe = self.client.pipeline(transaction=False)
        for i in range(self.n):
            host = f"app{i + 1:02d}"
            pipe.xadd(stream_key(host), message(host, 1.0, ts, "host", self.host_readings(i)),
                      maxlen=STREAM_MAXLEN, approximate=True)
        pipe.execute()

    def start(self) -> None:
        def run() -> None:
            while not self.stop_event.wait(1.0 - time.time() % 1.0):
                self.publish()
        self.thread = threading.Thread(target=run, daemon=True, name="bench-agents")
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(5)
        self.client.close()


def fill_queues(redis_url: str, n: int) -> list[dict]:
    import redis
    r = redis.Redis.from_url(redis_url)
    now = time.time()
    pipe = r.pipeline(transaction=False)
    queues = []
    for i in range(n):
        key = f"queue:q{i:03d}"
        item = json.dumps({"created_at": now - i, "job": "task"})
        pipe.rpush(key, *([item] * (1 + i % 40)))
        queues.append({"name": f"q{i:03d}", "kind": "redis-list", "key": key,
                       "age_field": "created_at"})
    pipe.execute()
    r.close()
    return queues


def fill_digests(db, n: int) -> int:
    conn = _root(db)
    with conn.cursor() as cur:
        for i in range(n):
            cur.execute(f"SELECT {i} AS d{i}")
        cur.execute("SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest")
        got = int(cur.fetchone()[0])
    conn.close()
    return got


def _root(db):
    import pymysql
    return pymysql.connect(host="127.0.0.1", port=db.port, user="root", password=db.root_password,
                           autocommit=True, connect_timeout=5)


# --- 1. tick CPU ---------------------------------------------------------------------------------

def tick_cpu(runner, collector, ticks: int, before=None) -> float:
    """Mean process CPU (ms) of one round of ``collector`` (the tick loop's, waited for):
    collection thread + publish."""
    for _ in range(3):                                   # warm: connections, first rates
        if before:
            before()
        runner.collect_round([collector], collector.timeout_s)
    total = 0.0
    for _ in range(ticks):
        if before:
            before()                                     # the agents publish: not timed
        t0 = time.process_time()
        runner.collect_round([collector], collector.timeout_s)
        total += time.process_time() - t0
    return 1000 * total / ticks


def bench_ticks(tmp: Path, redis_url: str, mysql_url: str, queues: list[dict], args) -> list:
    import redis

    from dashboard.app import create_app
    from dashboard.collectors.agents.collector import AgentsCollector
    from dashboard.collectors.queues.collector import QueueCollector
    from dashboard.config import load as config
    from dashboard.runtime import Runtime

    made: list = []

    def runner_for(collector):
        """A runtime around one collector, the app built on it (alert engine, relay, sinks)."""
        settings = config.from_dict({"data_dir": str(tmp / f"ticks{len(made)}"),
                                     "async_mode": "threading", "redis": {"url": redis_url},
                                     "mysql": {"url": mysql_url}})
        rt = Runtime(settings, [collector])
        create_app(settings, rt, async_mode="threading")
        made.append(rt)
        return rt.runner

    print(f"\n1. tick CPU (collection + store + alert engine + relay), {args.ticks} ticks per level")
    rows = []
    for h in sorted({max(1, round(args.hosts * f)) for f in (0.2, 0.5, 1.0)}):
        agents = Agents(redis_url, h)
        client = redis.Redis.from_url(redis_url)
        c = AgentsCollector(client)
        ms = tick_cpu(runner_for(c), c, args.ticks, before=agents.publish)
        rows.append(("hosts", h, ms))
        print(f"   {h:4d} hosts through agents: {ms:7.2f} ms CPU per tick = {ms / h:.3f} ms per host")
        agents.stop()
        client.close()
    for q in sorted({max(1, round(args.queues * f)) for f in (0.25, 0.5, 1.0)}):
        qs = config.from_dict({"redis": {"url": redis_url}, "queues": queues[:q]}).queues
        c = QueueCollector(qs, redis_url)
        ms = tick_cpu(runner_for(c), c, args.ticks)
        rows.append(("queues", q, ms))
        print(f"   {q:4d} redis-list queues:     {ms:7.2f} ms CPU per tick = {ms / q:.3f} ms per queue")
        c.close()
    for kind in ("hosts", "queues"):
        pts = [(n, ms) for k, n, ms in rows if k == kind]
        (n0, m0), (n1, m1) = pts[0], pts[-1]
        slope = (m1 - m0) / (n1 - n0) if n1 > n0 else float("nan")
        print(f"   {kind}: marginal cost {slope:.3f} ms per unit between {n0} and {n1}; "
              f"cost at {n1} / cost at {n0} = {m1 / m0:.2f} for {n1 / n0:.1f}x the units")
    for rt in made:
        rt.store.close()
    return rows


def bench_db_tick(mysql_url: str, tmp: Path, digests: int) -> None:
    from dashboard.collectors.mysql.collector import MySQLCollector
    from dashboard.config import load as config
    from dashboard.store import Store
    c = MySQLCollector(config.parse_mysql({"url": mysql_url}))
    store = Store(tmp / "db-tick")
    c.jobs(store)
    c.collect()
    t0 = time.process_time()
    c.reader.run()
    first = 1000 * (time.process_time() - t0)
    status = []
    for _ in range(20):
        t0 = time.process_time()
        c.collect()
        status.append(1000 * (time.process_time() - t0))
    t0 = time.process_time()
    c.reader.run()
    again = 1000 * (time.process_time() - t0)
    print(f"   db at {digests} digests: status tick {sum(status) / len(status):.2f} ms CPU; "
          f"top-statements read (every 15 s) {again:.1f} ms CPU (first read with texts {first:.0f} ms)")
    c.close()
    store.close()



# --- 2. the store's write per tick --------------------------------------------------------------

def full_tick(redis_url: str, mysql_url: str, queues: list[dict], hosts: int) -> list:
    """One tick of the whole installation, as the runner would publish it (real collectors)."""
    import redis

    from dashboard.collectors import registry
    from dashboard.collectors.agents.collector import AgentsCollector
    from dashboard.config import load as config
    from dashboard.scheduler import CollectorRunner
    settings = config.from_dict({"data_dir": tempfile.mkdtemp(prefix="scale-"),
                                 "redis": {"url": redis_url}, "mysql": {"url": mysql_url},
                                 "queues": queues})
    collectors = registry.build(settings)
    client = redis.Redis.from_url(redis_url)
    collectors.append(AgentsCollector(client))
    agents = Agents(redis_url, hosts)
    out: list = []
    runner = CollectorRunner(collectors, out.extend)
    for _ in range(2):                                   # the second has rates and all hosts
        out.clear()
        agents.publish()
        for c in collectors:
            runner.collect_round([c], c.timeout_s)
        time.sleep(0.3)
    agents.stop()
    for c in collectors:
        c.close()
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    return list(out)


def bench_store(tmp: Path, tick: list, n: int = 300) -> tuple[float, float]:
    from dashboard.model import Sample
    from dashboard.store import Store
    store = Store(tmp / "store-bench")
    values = sum(len(s.values) for s in tick)
    wall, cpu = [], []
    t = time.time() - n
    for i in range(n):
        batch = [Sample(s.source, t + i, dict(s.values), dict(s.labels), s.error) for s in tick]
        w0, c0 = time.perf_counter(), time.process_time()
        store.append(batch)
        wall.append(1000 * (time.perf_counter() - w0))
        cpu.append(1000 * (time.process_time() - c0))
    store.close()
    p = harness.percentile
    print(f"\n2. the store's write per tick: {len(tick)} samples, {values} values per tick, {n} ticks")
    print(f"   Store.append wall p50 {p(wall, 50):.2f} ms, p95 {p(wall, 95):.2f} ms, "
          f"max {max(wall):.2f} ms; CPU p50 {p(cpu, 50):.2f} ms "
          f"(target <= {TARGET_WRITE_MS:g} ms: "
          f"{'met' if p(wall, 50) <= TARGET_WRITE_MS else 'MISSED'} at p50, "
          f"{'met' if p(wall, 95) <= TARGET_WRITE_MS else 'missed'} at p95)")
    return p(wall, 50), p(wall, 95)


# --- 3. page open --------------------------------------------------------------------------------

def prefill(data_dir: Path, tick: list, minutes: float) -> int:
    from dashboard.model import Sample
    from dashboard.store import Store
    rnd = random.Random(3)
    store = Store(data_dir)
    n = int(minutes * 60)
    start = time.time() - n
    try:
        for i in range(n):
            batch = []
            for s in tick:
                ts = start + i
                values = {k: (v if k.endswith(".up") else round(max(0.0, v + rnd.gauss(0, 1)), 3))
                          for k, v in s.values.items()}
                batch.append(Sample(s.source, ts, values, dict(s.labels), s.error))
            store.append(batch)
    finally:
        store.close()
    return n


FIRST_CHART_JS = """
(() => {
  const mark = () => { if (!window.__firstChart && document.querySelector('.js-plotly-plot'))
                         window.__firstChart = performance.now(); };
  new MutationObserver(mark).observe(document, {childList: true, subtree: true});
})();
"""


def bench_page(tmp: Path, env: dict, tick: list, args, redis_url: str) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from bench import page as pagebench
    state: dict = {}

    def before_start(data_dir: Path, env_: dict) -> None:
        t0 = time.perf_counter()
        state["ticks"] = prefill(data_dir, tick, args.history_min)
        state["prefill_s"] = time.perf_counter() - t0
        state["creds"] = pagebench.create_viewer(env_)

    agents = Agents(redis_url, args.hosts)
    agents.start()
    loads: list[dict] = []
    try:
        srv = harness.DashboardServer(data_dir=tmp / "page-data", env=env,
                                      before_start=before_start, ready_timeout_s=240)
        with srv, sync_playwright() as pw:
            print(f"\n3. page open: {srv.url}; {state['ticks']} ticks of the full installation "
                  f"pre-filled ({args.history_min:g} min, {state['prefill_s']:.0f} s); "
                  f"{args.hosts} agents publishing")
            browser = pw.chromium.launch(executable_path=pagebench.CHROMIUM, headless=True,
                                         args=pagebench.CHROMIUM_ARGS)
            try:
                cookies = pagebench.log_in(browser, srv.url, state["creds"])
                for i in range(args.runs):
                    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
                    try:
                        ctx.add_cookies(cookies)
                        ctx.add_init_script(FIRST_CHART_JS)
                        page = ctx.new_page()
                        wire = pagebench.WireCounter(page, ctx)
                        r = pagebench.measure_load(page, wire, srv.url)
                        first = page.evaluate("() => window.__firstChart || null")
                        # Charts below the fold are drawn after those in view, one a frame.
                        page.wait_for_selector("body[data-charts-all-drawn]", state="attached",
                                               timeout=30_000)
                        every = page.evaluate("() => Number(document.body.dataset.chartsAllDrawn)"
                                              " - performance.timeOrigin")
                        plotted = page.evaluate(
                            "() => document.querySelectorAll('.js-plotly-plot').length")
                        loads.append({"first": first, "view": r.first_chart_ms, "all": every,
                                      "hist_ms": r.history_ms, "hist_kb": r.history_bytes / 1000,
                                      "charts": r.plotted, "cpu": r.main_cpu_ms})
                        first_s = f"{first:.0f} ms" if first else "n/a"
                        hist_ms = f"{r.history_ms:.0f} ms" if r.history_ms is not None else "n/a"
                        cpu_s = f"{r.main_cpu_ms:.0f} ms" if r.main_cpu_ms is not None else "n/a"
                        # Where the time goes: the answer's arrival, then parse + Plotly.
                        split = (f" (DOMContentLoaded {r.dcl_ms:.0f} ms, history arrived at "
                                 f"{r.history_end_ms:.0f} ms)" if r.history_end_ms else "")
                        print(f"   cold load {i + 1}: first chart {first_s}, charts "
                              f"in view {r.first_chart_ms:.0f} ms, all {plotted} charts {every:.0f} ms "
                              f"after navigation start{split}; /api/history "
                              f"{r.history_bytes / 1000:.0f} kB on the wire in {hist_ms}; "
                              f"renderer main-thread CPU {cpu_s}")
                    finally:
                        ctx.close()
            finally:
                browser.close()
    finally:
        agents.stop()
    def median(k: str) -> float:
        xs = sorted(x[k] for x in loads if x[k])
        return xs[len(xs) // 2] / 1000 if xs else float("nan")
    med = median("view")
    print(f"   page open: first chart median {median('first'):.3f} s, charts in view (the page "
          f"open) median {med:.3f} s (target <= {TARGET_PAGE_S:g} s: "
          f"{'met' if med <= TARGET_PAGE_S else 'MISSED'}), all charts median "
          f"{median('all'):.3f} s over {len(loads)} cold loads")
    return loads


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--queues", type=int, default=200)
    ap.add_argument("--digests", type=int, default=10_000)
    ap.add_argument("--history-min", type=float, default=15.0,
                    help="minutes of the installation's ticks pre-filled for the page (default 15)")
    ap.add_argument("--runs", type=int, default=3, help="cold page loads (default 3)")
    ap.add_argument("--ticks", type=int, default=40, help="ticks measured per level (default 40)")
    ap.add_argument("--parts", default="1,2,3",
                    help="which measurements: 1 tick CPU, 2 store write, 3 page open (default all)")
    args = ap.parse_args(argv)
    if not (1 <= args.hosts <= 500 and 1 <= args.queues <= 2000 and 0 <= args.digests <= 50_000
            and 0 <= args.history_min <= 120 and 1 <= args.runs <= 10 and 5 <= args.ticks <= 1000):
        ap.error("--hosts 1..500, --queues 1..2000, --digests 0..50000, --history-min 0..120, "
                 "--runs 1..10, --ticks 5..1000")
    harness.sigterm_as_exit()
    print(harness.machine_line())
    from dashboard.demo import services as devservices
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="dash-scale-"))
        stack.callback(lambda: shutil.rmtree(tmp, ignore_errors=True))
        rs = devservices.start_redis(tmp / "redis")
        stack.callback(rs.stop)
        db = devservices.start_mariadb(tmp / "mariadb", performance_schema=True, extra_args=[
            f"--performance-schema-digests-size={args.digests + 2000}"])
        stack.callback(db.stop)
        mysql_url = db.create_monitor_user("scalemon", secrets.token_hex(10), GRANTS)
        t0 = time.perf_counter()
        n_digests = fill_digests(db, args.digests)
        queues = fill_queues(rs.url, args.queues)
        print(f"installation: {args.hosts} agents, {len(queues)} redis-list queues, {n_digests} "
              f"digests in performance_schema (set-up {time.perf_counter() - t0:.0f} s)")
        parts = {p.strip() for p in args.parts.split(",")}
        if "1" in parts:
            bench_ticks(tmp, rs.url, mysql_url, queues, args)
            bench_db_tick(mysql_url, tmp, n_digests)
        tick = full_tick(rs.url, mysql_url, queues, args.hosts) if parts & {"2", "3"} else []
        if "2" in parts:
            bench_store(tmp, tick)
        if "3" in parts:
            cfg = tmp / "scale.toml"
            cfg.write_text("".join("[[queues]]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                            for k, v in q.items()) + "\n"
                                   for q in queues))
            env = {"DASHBOARD_CONFIG": str(cfg), "DASHBOARD_MYSQL_URL": mysql_url,
                   "DASHBOARD_REDIS_URL": rs.url, "DASHBOARD_MESSAGE_QUEUE": rs.url}
            bench_page(tmp, env, tick, args, rs.url)
        print(f"\n{harness.machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
