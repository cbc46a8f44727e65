"""``python -m dashboard demo``: start the demo platform, the dashboard and the workload; on
Ctrl-C (SIGINT), SIGTERM or SIGHUP stop all of it, newest first, and leave no process and no
listening port behind.

Ownership, so that nothing survives the demo:
- MariaDB and Redis: ``devservices`` (own process group each, SIGKILL with their parent);
- the dashboard: a child in its own process group, SIGTERM with its parent (``child``);
- the shop and the workload: threads of this process, gone when it is.
A second Ctrl-C while stopping stops at once (SIGKILL instead of graceful).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from dashboard.auth.cli import PASSWORD_FILE, open_accounts, write_password_file
from dashboard.config import load as config_mod
from dashboard.config.settings import ConfigError, Settings
from dashboard.demo import configfile
from dashboard.demo.child import DashboardChild
from dashboard.demo.platform import Platform
from dashboard.demo.services import DevServiceError
from dashboard.demo.shop import Shop
from dashboard.demo.timing import Schedule, Timing, fmt
from dashboard.demo.workload import Workload
from dashboard.store.datadir import make_private

FAST_SCALE = 0.4


@dataclass(frozen=True)
class Options:
    data_dir: Path
    bind: str
    fast: bool = False


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(bind: str) -> bool:
    host, _, port = bind.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            return False
    return True


def already_running(data_dir: Path) -> str | None:
    """The URL and pid of a live demo on this data dir (its demo.json), if any."""
    try:
        state = json.loads((data_dir / "demo.json").read_text())
        cmd = " ".join(psutil.Process(int(state["pid"])).cmdline())
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
    return f"{state.get('url')} (pid {state['pid']})" if "dashboard" in cmd and "demo" in cmd else None


class Demo:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.dir = opts.data_dir
        self.timing = Timing(FAST_SCALE if opts.fast else 1.0)
        self.stopping = threading.Event()
        self.hurry = False
        self.platform = Platform(self.dir)
        self.shop: Shop | None = None
        self.child: DashboardChild | None = None
        self.workload: Workload | None = None
        self.schedule: Schedule | None = None
        self.cycle_wall = 0.0
        self._t0 = time.monotonic()
        self._say_lock = threading.RLock()
        self.signal_name = ""
        self._state_written = False

    @property
    def url(self) -> str:
        return f"http://{self.opts.bind}"

    def say(self, text: str) -> None:
        with self._say_lock:
            print(f"demo: {text}", flush=True)

    # --- start -------------------------------------------------------------------------------

    def start(self) -> bool:
        """Bring everything up; False if stopped meanwhile or something failed (already said)."""
        make_private(self.dir)     # its servers' files and demo.json too: owner only
        self.say(f"starting a demo platform in {self.dir} (MariaDB, Redis, a shop, a workload)")
        self.platform.start_mariadb()
        if self.stopping.is_set():
            return False
        self.platform.start_redis()
        self.platform.prepare()
        if self.stopping.is_set():
            return False
        assert self.platform.redis is not None
        statsd = ("127.0.0.1", _free_udp_port())
        self.shop = Shop(self.platform.shop_db, self.platform.redis.url, statsd,
                         checkout_trouble=lambda: self.schedule is not None
                         and self.schedule.active("checkout"),
                         workers=configfile.SHOP_WORKERS)
        self.shop.start()
        path = configfile.write(self.dir, configfile.Targets(
            bind=self.opts.bind, mysql_url=self.platform.monitor_url, redis_url=self.platform.redis.url,
            statsd_bind=f"{statsd[0]}:{statsd[1]}", shop_url=self.shop.url), self.timing)
        settings = config_mod.load(path, env={})        # our own file must load; else say why
        login = self.admin_login(settings)
        self.child = DashboardChild(path, self.url, self.dir / "dashboard.log")
        self.child.start()
        if not self.child.wait_ready(90, self.stopping.is_set):
            if not self.stopping.is_set():
                self.say(f"the dashboard did not start (exit code {self.child.exit_code}); "
                         f"last lines of {self.child.log_path}:\n{self.child.log_tail()}")
            return False
        self.schedule = Schedule(self.timing)            # the cycle starts with the page
        self.cycle_wall = time.time()
        self.workload = Workload(self.schedule, self.shop.url, self.platform.shop_db,
                                 self.platform.redis.url, self.say, self.stopping)
        self.workload.start()
        self.write_state(statsd[1])
        self.banner(login)
        return True

    def admin_login(self, settings: Settings) -> str:
        """The first admin (random password, as on any first start), kept for the demo user."""
        pw_file = self.dir / PASSWORD_FILE          # where `serve` keeps it too
        with open_accounts(settings) as acc:
            password = acc.bootstrap_admin("admin")
        if password is not None:
            write_password_file(pw_file, password)
        elif pw_file.exists():
            password = pw_file.read_text().strip()
        if password is None:
            return "log in with an account of this data dir (it had users before the demo)"
        return f"user admin, password {password}   (kept in {pw_file}; change it on /admin)"

    def banner(self, login: str) -> None:
        t, sched = self.timing, self.schedule
        assert sched is not None and self.shop is not None
        lines = [f"ready in {time.monotonic() - self._t0:.0f} s",
                 f"  dashboard  {self.url}/   (marked DEMO; alerts on {self.url}/alerts)",
                 f"  log in     {login}",
                 f"  shop       {self.shop.url}/   (worker pool status: {self.shop.url}/status?json)",
                 f"  what moves when, from now, repeating every {fmt(t.cycle_s)}:"]
        lines += [f"    {line}" for line in sched.lines()]
        lines += [f"  alert rules: thresholds as shipped; hold {t.for_s:g} s and resolve after "
                  f"{t.keep_firing_s:g} s of calm (demo timings, in {self.dir / 'demo.toml'})",
                  f"  logs       {self.dir / 'dashboard.log'}, {self.dir / 'mariadb'}, {self.dir / 'redis'}",
                  "Ctrl-C stops everything the demo started."]
        self.say("\n".join(lines))

    def write_state(self, statsd_port: int) -> None:
        """``demo.json``: where everything listens (for scripts and tests); removed at stop."""
        assert self.shop is not None and self.child is not None and self.child.proc is not None
        state = {"pid": os.getpid(), "url": self.url, "shop_url": self.shop.url,
                 "dashboard_pid": self.child.proc.pid, "fast": self.opts.fast,
                 "cycle_s": self.timing.cycle_s, "cycle_started_at": self.cycle_wall,
                 "phases": {p.name: [p.start, p.end] for p in self.timing.phases},
                 "ports": {"dashboard": int(self.opts.bind.rpartition(":")[2]),
                           "shop": int(self.shop.url.rpartition(":")[2]), "statsd_udp": statsd_port,
                           **self.platform.ports()}}
        tmp = self.dir / "demo.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.dir / "demo.json")
        self._state_written = True

    # --- run and stop --------------------------------------------------------------------------

    def wait(self) -> int:
        """Until a signal (0) or until a part of the demo dies on its own (1)."""
        while not self.stopping.wait(1.0):
            assert self.child is not None
            if self.child.exit_code is not None:
                self.say(f"the dashboard exited (code {self.child.exit_code}); last lines of "
                         f"{self.child.log_path}:\n{self.child.log_tail()}")
                return 1
            for name, svc in (("MariaDB", self.platform.mariadb), ("Redis", self.platform.redis)):
                if svc is not None and not svc.running:
                    self.say(f"{name} stopped on its own; see {svc.log_path}")
                    return 1
        return 0

    def stop(self) -> None:
        self.stopping.set()
        if self.workload is not None:
            self.workload.join(2.0 if self.hurry else 5.0)
        if self.child is not None:
            self.child.stop(lambda: self.hurry)
        if self.shop is not None:
            self.shop.stop()
        self.platform.stop(hurry=self.hurry)
        if self._state_written:
            (self.dir / "demo.json").unlink(missing_ok=True)


def run(opts: Options) -> int:
    demo = Demo(opts)
    starting = True

    def on_signal(signum: int, _frame) -> None:
        # No printing here: the main thread may be inside print() (a reentrant write fails).
        if not demo.stopping.is_set():
            demo.signal_name = signal.Signals(signum).name
            demo.stopping.set()
            return
        demo.hurry = True
        if starting:
            raise KeyboardInterrupt      # out of a server's start; its own cleanup kills it

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    running = already_running(opts.data_dir)
    if running:
        demo.say(f"a demo is already running in {opts.data_dir}: {running}")
        return 2
    code = 1
    try:
        ok = demo.start()
        starting = False
        code = demo.wait() if ok else (0 if demo.stopping.is_set() else 1)
    except KeyboardInterrupt:
        code = 0
    except (DevServiceError, ConfigError) as e:
        if demo.stopping.is_set():
            code = 0          # Ctrl-C reached a server's start-up too (same process group)
        else:
            demo.say(f"cannot start: {e}")
            code = 1
    finally:
        starting = False
        if demo.signal_name:
            demo.say(f"{demo.signal_name}: stopping everything the demo started (again to stop at once)")
        demo.stop()
        demo.say("stopped: the dashboard, the shop, Redis and MariaDB")
    return code
