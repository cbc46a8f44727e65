"""What the dashboard costs the host it watches: the whole process tree (gunicorn master + worker
and any child) as % of one core and RSS, with one Socket.IO client connected on /live.

Measured in the same run, for scale: the floor, a bare Python loop that only samples the same
targets each interval (bench/floor.py). With ``--with-mysql`` / ``--with-redis`` private MariaDB /
Redis instances are started (dashboard.devservices) and both the dashboard (DASHBOARD_MYSQL_URL /
DASHBOARD_REDIS_URL) and the floor sample them; their own servers' cost is printed apart and not
counted. Further subjects (Netdata, Glances, ...) plug in as more ``Subject``s.

``--all`` (issue 9): every collector against private MariaDB and Redis at 1 s -- host, db status
and digests, cache, 10 queues of five kinds, an HTTP probe, PHP-FPM status, a StatsD stream, the
alert engine with its default rules -- with a local workload so values move (bench/workload.py).
Then, in the same run and one after another on the same MariaDB, Redis and workload, the
comparison tools (bench/rivals.py): Netdata from Debian sampling host, MySQL and Redis each
second, and Glances from PyPI (host only) with its web API polled each second. Printed: a table
of CPU % of one core, RSS (sum over the tree) and PSS (shared pages counted once) and the
ratio of each to the dashboard.

    .venv/bin/python bench/overhead.py                      # 60 s after a 10 s warm-up
    .venv/bin/python bench/overhead.py --seconds 120 --with-mysql --with-redis
    .venv/bin/python bench/overhead.py --all --seconds 120 --warmup 30
    .venv/bin/python bench/overhead.py --all --vs ../other-checkout --rounds 2   # this checkout : DIR

``--vs DIR`` (issue 19): another checkout's dashboard (DIR, e.g. the commit before a change in a
``git worktree``) is run alternately with this one's -- A B B A ... for ``--rounds`` -- on the same
MariaDB, Redis and workload, each phase with a fresh data dir, its warm-up and its own floor run
beside it; printed: each phase, the means per checkout and the ratio this/DIR (the figure that
counts on a shared machine). No rivals in this mode.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

# (CPU % of one core, RSS MB, where the budget comes from)
TARGETS = {"host": (0.3, 90.0, "issue 2: host collector at 1 s, one client"),
           "all": (0.5, 75.0, "issue 9: every collector against MariaDB and Redis at 1 s")}
MYSQL_GRANTS = ["PROCESS", "BINLOG MONITOR", "SLAVE MONITOR", "SELECT ON performance_schema.*"]


@dataclass
class Subject:
    """One thing whose process tree is measured. ``counted`` False: shown, not ours."""

    name: str
    tree: harness.ProcessTree
    counted: bool = True
    samples: list[harness.TreeSample] = field(default_factory=list)
    pss: list[int] = field(default_factory=list)
    note: str = ""

    def rss_mean(self) -> float:
        rss = self.rss_sums()
        return sum(rss) / len(rss)

    def pss_mean(self) -> float | None:
        return sum(self.pss) / len(self.pss) if self.pss else None

    def cpu_pct(self) -> float:
        return harness.cpu_percent_between(self.samples[0], self.samples[-1])

    def block_cpu(self, every: int) -> list[float]:
        """CPU % over consecutive blocks of ``every`` samples (cpu_times tick is 10 ms)."""
        s = self.samples
        return [harness.cpu_percent_between(s[i], s[i + every])
                for i in range(0, len(s) - every, every)]

    def rss_sums(self) -> list[int]:
        return [sum(x.rss.values()) for x in self.samples]

    def rss_by_process(self) -> dict[str, tuple[float, int]]:
        """label -> (mean RSS, max RSS) over the samples."""
        acc: dict[str, list[int]] = {}
        for x in self.samples:
            per_label: dict[str, int] = {}
            for pid, rss in x.rss.items():
                label = x.names.get(pid, str(pid))
                per_label[label] = per_label.get(label, 0) + rss
            for label, rss in per_label.items():
                acc.setdefault(label, []).append(rss)
        return {k: (sum(v) / len(v), max(v)) for k, v in acc.items()}


def pss_total(tree: harness.ProcessTree) -> float | None:
    """Proportional set size of the tree: shared pages (master/worker after fork) counted once."""
    total = 0
    try:
        for p in tree.processes():
            total += p.memory_full_info().pss
    except Exception:  # noqa: BLE001 - smaps may be unreadable; PSS is informative only
        return None
    return total


def start_floor(stack: contextlib.ExitStack, interval: float, mysql_url: str | None,
                redis_url: str | None) -> subprocess.Popen:
    argv = [harness.PY, str(harness.ROOT / "bench" / "floor.py"), "--interval", str(interval)]
    if mysql_url:
        argv += ["--mysql-url", mysql_url]
    if redis_url:
        argv += ["--redis-url", redis_url]
    proc = subprocess.Popen(argv, cwd=harness.ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    stack.callback(stop)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("floor:"):
        raise RuntimeError(f"floor loop did not start (exit {proc.poll()})")
    return proc


def connect_client(stack: contextlib.ExitStack, srv: harness.DashboardServer) -> dict:
    """One python-socketio client on /live for the whole run; counts the events it gets."""
    import socketio
    seen = {"events": 0, "disconnects": 0}
    client = socketio.Client(reconnection=True, handle_sigint=False)
    client.on("samples", lambda batch: seen.__setitem__("events", seen["events"] + 1),
              namespace="/live")
    client.on("disconnect", lambda *a: seen.__setitem__("disconnects", seen["disconnects"] + 1),
              namespace="/live")
    client.connect(srv.url, namespaces=["/live"], transports=["websocket"],
                   auth=srv.auth.socketio_auth(), headers=srv.auth.headers(), wait_timeout=20)
    stack.callback(client.disconnect)
    return seen


def measure(subjects: list[Subject], seconds: float, interval: float,
            pollers: tuple = ()) -> None:
    """Sample every subject each interval (PSS every 10th time: smaps is slower to read);
    ``pollers`` are called once per interval too (a client of a tool's web API)."""
    next_at = time.monotonic()
    end = next_at + seconds
    n = 0
    while True:
        for poll in pollers:
            poll()
        for s in subjects:
            s.samples.append(s.tree.sample())
            if n % 10 == 0 and (pss := pss_total(s.tree)) is not None:
                s.pss.append(pss)
        n += 1
        if next_at >= end:
            break
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def report(subjects: list[Subject], seconds: float, interval: float) -> None:
    every = max(1, round(10 / interval))
    print(f"\nmeasured {seconds:g} s at {interval:g} s intervals (CPU from cpu_times: 10 ms "
          f"ticks, all threads; schedstat: ns, live threads; blocks of {every * interval:g} s)")
    for s in subjects:
        blocks = s.block_cpu(every)
        rss = s.rss_sums()
        tag = "" if s.counted else "  (target, not counted)"
        print(f"\n{s.name}{tag}")
        oncpu = harness.oncpu_percent_between(s.samples[0], s.samples[-1])
        print(f"  CPU {s.cpu_pct():.3f} % of one core (mean; schedstat {oncpu:.3f} %); "
              f"10 s blocks {min(blocks, default=0):.2f}..{max(blocks, default=0):.2f} %; "
              f"put on a CPU {harness.runs_per_s_between(s.samples[0], s.samples[-1]):.1f} "
              "times a second")
        print(f"  RSS {harness.fmt_mb(sum(rss) / len(rss))} (mean of the tree's sum), "
              f"max {harness.fmt_mb(max(rss))}, growth first->last "
              f"{(rss[-1] - rss[0]) / 2**20:+.1f} MB")
        first, last = s.samples[0], s.samples[-1]
        wall = max(last.t - first.t, 1e-9)
        for label, (mean, mx) in sorted(s.rss_by_process().items()):
            cpu = sum(last.cpu_by_pid.get(pid, 0.0) - first.cpu_by_pid.get(pid, 0.0)
                      for pid, name in last.names.items() if name == label)
            print(f"    {label}: CPU {100 * cpu / wall:.3f} %, RSS {harness.fmt_mb(mean)} mean, "
                  f"{harness.fmt_mb(mx)} max")
        if s.pss:
            print(f"  PSS (shared pages counted once): {harness.fmt_mb(s.pss_mean())} mean of "
                  f"{len(s.pss)} readings, max {harness.fmt_mb(max(s.pss))}")


def start_targets(stack: contextlib.ExitStack, tmp: Path, args) -> tuple[dict, list[Subject], dict]:
    """Private MariaDB / Redis (and for --all the workload); returns the dashboard's env, the
    targets as (not counted) subjects, and connection facts for the other tools."""
    env = {"DASHBOARD_INTERVAL_S": str(args.interval)}
    targets: list[Subject] = []
    facts: dict = {}
    if args.with_mysql or args.with_redis:
        from dashboard.demo import services as devservices
    if args.with_mysql:
        db = devservices.start_mariadb(tmp / "mariadb", performance_schema=True)
        stack.callback(db.stop)
        password = secrets.token_hex(12)
        env["DASHBOARD_MYSQL_URL"] = db.create_monitor_user("benchmon", password, MYSQL_GRANTS)
        facts["mysql"] = {"port": db.port, "user": "benchmon", "password": password, "db": db}
        targets.append(Subject("MariaDB (mariadbd)", harness.ProcessTree(db.pid, "mariadb"), False))
    if args.with_redis:
        rs = devservices.start_redis(tmp / "redis")
        stack.callback(rs.stop)
        env["DASHBOARD_REDIS_URL"] = rs.url
        facts["redis"] = {"port": rs.port, "url": rs.url}
        targets.append(Subject("Redis (redis-server)", harness.ProcessTree(rs.pid, "redis"), False))
    if args.all:
        from bench import workload
        t = workload.start(tmp, facts["mysql"]["db"], "benchmon", facts["redis"]["url"])
        stack.callback(t.stop)
        env["DASHBOARD_CONFIG"] = str(t.config_path)
        facts["workload"] = t
    if args.async_mode:
        env["DASHBOARD_ASYNC_MODE"] = args.async_mode
    return env, targets, facts


def dashboard_phase(tmp: Path, env: dict, targets: list[Subject], args,
                    root: Path = harness.ROOT, data: str = "data") -> list[Subject]:
    with contextlib.ExitStack() as stack:
        mysql_url, redis_url = env.get("DASHBOARD_MYSQL_URL"), env.get("DASHBOARD_REDIS_URL")
        srv = stack.enter_context(harness.DashboardServer(data_dir=tmp / data, env=env, root=root))
        health = json.loads(srv.get("/healthz"))
        names = ", ".join(sorted(health.get("collectors", {})))
        print(f"dashboard ({root}): {srv.url}, collectors: {names} at {args.interval:g} s, "
              f"auth: {srv.auth.note}")
        floor = start_floor(stack, args.interval, mysql_url, redis_url)
        seen = connect_client(stack, srv)
        subjects = [Subject("dashboard (gunicorn master + worker)", srv.tree(),
                            note="one Socket.IO client"),
                    Subject("floor (bare Python loop: the same sampling only)",
                            harness.ProcessTree(floor.pid, "floor")),
                    *[Subject(t.name, t.tree, False) for t in targets]]
        print(f"warm-up {args.warmup:g} s, then {args.seconds:g} s measured ...", flush=True)
        time.sleep(args.warmup)
        events_before = seen["events"]
        measure(subjects, args.seconds, args.interval)
        events = seen["events"] - events_before
        report(subjects, args.seconds, args.interval)
        print(f"\nSocket.IO client: {events} samples events in the window, "
              f"{seen['disconnects']} disconnects")
        health = json.loads(srv.get("/healthz"))
        down = {k: (v.get("error") or "")[:80] for k, v in health.get("collectors", {}).items()
                if not v.get("ok", True)}
        if down:
            print(f"collectors reporting an error at the end: {down}")
        return subjects


def rival_phase(name: str, tmp: Path, facts: dict, targets: list[Subject], args) -> Subject | str:
    from bench import rivals
    why = rivals.netdata_available() if name == "netdata" else rivals.glances_available()
    if why:
        return why
    mysql, redis_ = facts.get("mysql", {}), facts.get("redis", {})
    rival = (rivals.start_netdata(tmp, mysql, redis_) if name == "netdata"
             else rivals.start_glances(tmp))
    try:
        polls = {"ok": 0, "failed": 0}

        def poll() -> None:
            polls["ok" if rival.poll() else "failed"] += 1
        subject = Subject(rival.name, rival.tree(), note=rival.note)
        subjects = [subject, *[Subject(t.name, t.tree, False) for t in targets]]
        print(f"\n{rival.name}: {rival.url}, {rival.note}; warm-up {args.warmup:g} s, then "
              f"{args.seconds:g} s measured, its API polled once a second ...", flush=True)
        deadline = time.monotonic() + args.warmup
        while time.monotonic() < deadline:
            poll()
            time.sleep(args.interval)
        measure(subjects, args.seconds, args.interval, pollers=(poll,))
        report(subjects, args.seconds, args.interval)
        print(f"  API polls: {polls['ok']} answered, {polls['failed']} failed")
        return subject
    finally:
        rival.stop()


def table(dash: Subject, others: list[Subject], skipped: dict[str, str]) -> None:
    d_cpu, d_rss, d_pss = dash.cpu_pct(), dash.rss_mean(), dash.pss_mean()
    print(f"\n{'':44} {'CPU % core':>10} {'RSS MB':>8} {'PSS MB':>8}   ratio to the dashboard "
          "(CPU, RSS, PSS)")
    for s in [dash, *others]:
        pss = s.pss_mean()
        ratio = "" if s is dash else (
            f"   {s.cpu_pct() / d_cpu:.1f}x, {s.rss_mean() / d_rss:.1f}x, "
            + (f"{pss / d_pss:.1f}x" if pss and d_pss else "n/a"))
        print(f"{s.name[:44]:44} {s.cpu_pct():10.3f} {s.rss_mean() / 2**20:8.1f} "
              f"{(pss or 0) / 2**20:8.1f}{ratio}")
        if s.note:
            print(f"    ({s.note})")
    for name, why in skipped.items():
        print(f"{name}: not measured: {why}")


def versus(tmp: Path, env: dict, targets: list[Subject], args) -> int:
    """This checkout (A) and ``args.vs`` (B) alternately, A B B A ..., under the same targets."""
    here, there = harness.ROOT, args.vs.resolve()
    order = [(here, there) if r % 2 == 0 else (there, here) for r in range(args.rounds)]
    got: dict[Path, list[tuple[float, float, float, float, float]]] = {here: [], there: []}
    for n, root in enumerate(r for pair in order for r in pair):
        subjects = dashboard_phase(tmp, env, targets, args, root=root, data=f"data-{n}")
        dash, floor = subjects[0], subjects[1]
        # schedstat (ns) rather than cpu_times' 10 ms ticks: the differences sought are small
        got[root].append((harness.oncpu_percent_between(dash.samples[0], dash.samples[-1]),
                          (dash.pss_mean() or 0) / 2**20, dash.rss_mean() / 2**20,
                          harness.oncpu_percent_between(floor.samples[0], floor.samples[-1]),
                          harness.runs_per_s_between(dash.samples[0], dash.samples[-1])))
        print(f"\nphase {n + 1}: {root}: CPU {got[root][-1][0]:.3f} %, PSS {got[root][-1][1]:.1f} MB "
              f"(floor {got[root][-1][3]:.3f} %), on a CPU {got[root][-1][4]:.1f}/s; "
              f"{harness.machine_line()}", flush=True)
    print(f"\n{harness.machine_line()}")
    print(f"{'checkout (CPU: schedstat)':44} {'CPU % core':>10} {'PSS MB':>8} {'RSS MB':>8} "
          f"{'floor CPU':>9} {'on CPU/s':>8}  phases")
    means = {}
    for root, rows in got.items():
        means[root] = [sum(r[i] for r in rows) / len(rows) for i in range(5)]
        cpu, pss, rss, fl, runs = means[root]
        print(f"{str(root)[-44:]:44} {cpu:10.3f} {pss:8.1f} {rss:8.1f} {fl:9.3f} {runs:8.1f}  "
              + ", ".join(f"{r[0]:.3f}" for r in rows))
    a, b = means[here], means[there]
    print(f"ratio this/--vs: CPU {a[0] / b[0]:.2f}x, PSS {a[1] / b[1]:.2f}x, RSS {a[2] / b[2]:.2f}x "
          f"(floor {a[3] / b[3] if b[3] else float('nan'):.2f}x: the machine's drift between phases)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds (default 60)")
    ap.add_argument("--warmup", type=float, default=10.0, help="excluded seconds (default 10)")
    ap.add_argument("--interval", type=float, default=1.0,
                    help="sampling interval of the dashboard, the floor and the measurement")
    ap.add_argument("--with-mysql", action="store_true",
                    help="start a private MariaDB and point DASHBOARD_MYSQL_URL at it")
    ap.add_argument("--with-redis", action="store_true",
                    help="start a private Redis and point DASHBOARD_REDIS_URL at it")
    ap.add_argument("--all", action="store_true",
                    help="every collector, a workload, then Netdata and Glances (implies both)")
    ap.add_argument("--rivals", default="netdata,glances",
                    help="with --all: comparison tools to run, comma-separated ('' for none)")
    ap.add_argument("--async-mode", choices=("eventlet", "gevent"),
                    help="the server's worker (default: the settings', i.e. eventlet)")
    ap.add_argument("--vs", type=Path, metavar="DIR",
                    help="another checkout's dashboard, run alternately with this one's (no rivals)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="with --vs: phases per checkout, in the order A B B A ... (default 2)")
    args = ap.parse_args(argv)
    if args.vs is not None and not (args.vs / "dashboard" / "__main__.py").exists():
        ap.error(f"--vs {args.vs}: no dashboard checkout there")
    if not 1 <= args.rounds <= 10:
        ap.error("--rounds 1..10")
    if not 5 <= args.seconds <= 3600 or not 0 <= args.warmup <= 600 or not 0.1 <= args.interval <= 60:
        ap.error("--seconds 5..3600, --warmup 0..600, --interval 0.1..60")
    rival_names = [r for r in args.rivals.split(",") if r.strip()] if args.all else []
    if set(rival_names) - {"netdata", "glances"}:
        ap.error("--rivals: netdata and/or glances")
    if args.all:
        args.with_mysql = args.with_redis = True
    harness.sigterm_as_exit()
    from bench import rivals
    rivals.become_subreaper()
    print(harness.machine_line())
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="dash-overhead-"))
        stack.callback(lambda: __import__("shutil").rmtree(tmp, ignore_errors=True))
        env, targets, facts = start_targets(stack, tmp, args)
        if args.vs is not None:
            return versus(tmp, env, targets, args)
        subjects = dashboard_phase(tmp, env, targets, args)
        dash, base = subjects[0], subjects[1]
        d_cpu, f_cpu = dash.cpu_pct(), base.cpu_pct()
        ratio = f"{d_cpu / f_cpu:.1f}x" if f_cpu > 0 else "n/a (floor below resolution)"
        print(f"ratio dashboard/floor: CPU {ratio}, RSS {dash.rss_mean() / base.rss_mean():.1f}x")
        others, skipped = [base], {}
        for name in rival_names:
            got = rival_phase(name, tmp, facts, targets, args)
            if isinstance(got, str):
                skipped[name] = got
            else:
                others.append(got)
        if "workload" in facts:
            c = facts["workload"].counts
            print(f"\nworkload over the whole run: {c.get('workload_steps', 0)} steps, "
                  f"{c.get('statsd_lines', 0)} StatsD lines")
        print(f"\n{harness.machine_line()}")
        table(dash, others, skipped)
        d_rss, d_pss = dash.rss_mean() / 2**20, (dash.pss_mean() or 0) / 2**20
        cpu_t, rss_t, why = TARGETS["all" if args.with_mysql and args.with_redis else "host"]
        print(f"against the targets ({why}): CPU {d_cpu:.3f} % (target <= {cpu_t:g} %) "
              f"{'met' if d_cpu <= cpu_t else 'MISSED'}; "
              f"RSS {d_rss:.1f} MB, PSS {d_pss:.1f} MB (target <= {rss_t:g} MB) "
              f"RSS {'met' if d_rss <= rss_t else 'MISSED'}, PSS {'met' if d_pss <= rss_t else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
