"""What the dashboard costs the host it watches: the whole process tree (gunicorn master + worker
and any child) as % of one core and RSS, with one Socket.IO client connected on /live.

Measured in the same run, for scale: the floor, a bare Python loop that only samples the same
targets each interval (bench/floor.py). With ``--with-mysql`` / ``--with-redis`` private MariaDB /
Redis instances are started (dashboard.devservices) and both the dashboard (DASHBOARD_MYSQL_URL /
DASHBOARD_REDIS_URL) and the floor sample them; their own servers' cost is printed apart and not
counted. Further subjects (Netdata, Glances, ...) plug in as more ``Subject``s.

    .venv/bin/python bench/overhead.py                      # 60 s after a 10 s warm-up
    .venv/bin/python bench/overhead.py --seconds 120 --with-mysql --with-redis
"""
from __future__ import annotations

import argparse
import contextlib
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


def measure(subjects: list[Subject], seconds: float, interval: float) -> None:
    next_at = time.monotonic()
    end = next_at + seconds
    while True:
        for s in subjects:
            s.samples.append(s.tree.sample())
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
              f"10 s blocks {min(blocks, default=0):.2f}..{max(blocks, default=0):.2f} %")
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
        pss = pss_total(s.tree)
        if pss is not None:
            print(f"  PSS (shared pages counted once) at the end: {harness.fmt_mb(pss)}")


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
    ap.add_argument("--async-mode", choices=("eventlet", "gevent"),
                    help="the server's worker (default: the settings', i.e. eventlet)")
    args = ap.parse_args(argv)
    if not 5 <= args.seconds <= 3600 or not 0 <= args.warmup <= 600 or not 0.1 <= args.interval <= 60:
        ap.error("--seconds 5..3600, --warmup 0..600, --interval 0.1..60")
    harness.sigterm_as_exit()
    print(harness.machine_line())
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="dash-overhead-"))
        stack.callback(lambda: __import__("shutil").rmtree(tmp, ignore_errors=True))
        env = {"DASHBOARD_INTERVAL_S": str(args.interval)}
        mysql_url = redis_url = None
        targets: list[Subject] = []
        if args.with_mysql or args.with_redis:
            from dashboard import devservices
        if args.with_mysql:
            db = devservices.start_mariadb(tmp / "mariadb", performance_schema=True)
            stack.callback(db.stop)
            mysql_url = db.create_monitor_user("benchmon", secrets.token_hex(12), MYSQL_GRANTS)
            env["DASHBOARD_MYSQL_URL"] = mysql_url
            targets.append(Subject("MariaDB (mariadbd)", harness.ProcessTree(db.pid, "mariadb"), False))
        if args.with_redis:
            rs = devservices.start_redis(tmp / "redis")
            stack.callback(rs.stop)
            redis_url = rs.url
            env["DASHBOARD_REDIS_URL"] = redis_url
            targets.append(Subject("Redis (redis-server)", harness.ProcessTree(rs.pid, "redis"), False))
        if args.async_mode:
            env["DASHBOARD_ASYNC_MODE"] = args.async_mode
        srv = stack.enter_context(harness.DashboardServer(data_dir=tmp / "data", env=env))
        collected = "host" + (" + MySQL" if mysql_url else "") + (" + Redis" if redis_url else "")
        print(f"dashboard: {srv.url}, collectors: {collected} at {args.interval:g} s, "
              f"auth: {srv.auth.note}")
        floor = start_floor(stack, args.interval, mysql_url, redis_url)
        seen = connect_client(stack, srv)
        subjects = [Subject("dashboard (gunicorn master + worker)", srv.tree()),
                    Subject("floor (bare Python loop: the same sampling only)",
                            harness.ProcessTree(floor.pid, "floor")), *targets]
        print(f"warm-up {args.warmup:g} s, then {args.seconds:g} s measured ...", flush=True)
        time.sleep(args.warmup)
        events_before = seen["events"]
        measure(subjects, args.seconds, args.interval)
        events = seen["events"] - events_before
        report(subjects, args.seconds, args.interval)
        dash, base = subjects[0], subjects[1]
        d_cpu, f_cpu = dash.cpu_pct(), base.cpu_pct()
        d_rss = sum(dash.rss_sums()) / len(dash.samples)
        f_rss = sum(base.rss_sums()) / len(base.samples)
        print(f"\nSocket.IO client: {events} samples events in the window, "
              f"{seen['disconnects']} disconnects")
        ratio = f"{d_cpu / f_cpu:.1f}x" if f_cpu > 0 else "n/a (floor below resolution)"
        print(f"ratio dashboard/floor: CPU {ratio}, RSS {d_rss / f_rss:.1f}x")
        cpu_t, rss_t, why = TARGETS["all" if mysql_url and redis_url else "host"]
        print(f"against the targets ({why}): CPU {d_cpu:.3f} % (target <= {cpu_t:g} %) "
              f"{'met' if d_cpu <= cpu_t else 'MISSED'}; "
              f"RSS {d_rss / 2**20:.1f} MB (target <= {rss_t:g} MB) "
              f"{'met' if d_rss / 2**20 <= rss_t else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
