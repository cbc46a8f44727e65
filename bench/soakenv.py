"""The platform the endurance benches run against: the demo's private MariaDB and Redis, its shop
(HTTP, PHP-FPM-style status page, StatsD) and its workload (connection surges, slow statements,
cold-cache reads, queue backlogs, a failed job), with a dashboard sampling every collector at
``interval_s`` (0.1 s: ten times the default rate).

The demo's own pieces are reused (``dashboard.demo``: platform, shop, workload, configfile) so
every collector has a real target. Only the timings change:

* ``interval_s`` (host, db, cache, queue, statsd, phpfpm) through DASHBOARD_INTERVAL_S;
* the collectors with an interval of their own, scaled by the same factor where the
  configuration allows it: the statements digest job (15 s -> 1.5 s) and the probes (30 s ->
  the configuration's minimum, 1 s);
* ``raw_retention_h`` small, so that pruning really runs within a short soak;
* one webhook channel to a receiver in this process (answers 204), so the alert outbox is used.

Everything runs on loopback and is stopped when the ``with`` block ends (also on Ctrl-C).
"""
from __future__ import annotations

import http.server
import re
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from bench import harness

DIGEST_INTERVAL_S = 1.5          # mysql.digest_interval_s: 15 s by default, scaled x0.1
PROBE_INTERVAL_S = 1             # probes' interval_s: the configuration's minimum


@dataclass
class SoakEnv:
    server: harness.DashboardServer
    config_path: Path
    interval_s: float
    raw_retention_h: float
    hooks: "HookReceiver"
    notes: list[str] = field(default_factory=list)


class HookReceiver(http.server.ThreadingHTTPServer):
    """The alert webhook's far end: counts deliveries, answers 204."""

    daemon_threads = True

    def __init__(self) -> None:
        self.received = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(h) -> None:  # noqa: N805
                h.rfile.read(int(h.headers.get("Content-Length") or 0))
                self.received += 1
                h.send_response(204)
                h.end_headers()

            def log_message(h, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="soak-hooks", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def soak_config(text: str, hook_url: str) -> str:
    """The demo's configuration with the soak's collector timings and a webhook (module doc)."""
    text += f'\n[[notify]]\nname = "soak-hook"\nkind = "webhook"\nurl = "{hook_url}"\n'
    text = re.sub(r"(?m)^digest_interval_s = .*$", f"digest_interval_s = {DIGEST_INTERVAL_S:g}", text)
    # Every "interval_s =" line: the top-level one is overridden by DASHBOARD_INTERVAL_S anyway,
    # the others are the probes'.
    return re.sub(r"(?m)^interval_s = .*$", f"interval_s = {PROBE_INTERVAL_S:g}", text)


@contextmanager
def soak_platform(base: Path, interval_s: float, raw_retention_h: float,
                  server_env: dict[str, str] | None = None,
                  before_start: Callable[[Path, dict[str, str]], None] | None = None,
                  say: Callable[[str], None] = print) -> Iterator[SoakEnv]:
    """MariaDB, Redis, the shop, the dashboard (gunicorn) and the workload, all stopped on exit."""
    from dashboard.demo.configfile import SHOP_WORKERS, Targets, render
    from dashboard.demo.platform import Platform
    from dashboard.demo.runner import FAST_SCALE
    from dashboard.demo.shop import Shop
    from dashboard.demo.timing import Schedule, Timing
    from dashboard.demo.workload import Workload

    base.mkdir(parents=True, exist_ok=True)
    timing = Timing(FAST_SCALE)      # the demo's --fast cycle: every phase every ~2.5 min
    stop = threading.Event()
    platform = Platform(base / "platform")
    shop = workload = server = None
    hooks = HookReceiver()
    try:
        platform.start_mariadb()
        platform.start_redis()
        platform.prepare()
        assert platform.redis is not None
        statsd = ("127.0.0.1", _free_udp_port())
        schedule_box: list[Schedule] = []
        shop = Shop(platform.shop_db, platform.redis.url, statsd, workers=SHOP_WORKERS,
                    checkout_trouble=lambda: bool(schedule_box) and schedule_box[0].active("checkout"))
        shop.start()
        data_dir = base / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = harness.free_port()
        bind = f"127.0.0.1:{port}"
        text = soak_config(render(data_dir, Targets(
            bind=bind, mysql_url=platform.monitor_url, redis_url=platform.redis.url,
            statsd_bind=f"{statsd[0]}:{statsd[1]}", shop_url=shop.url), timing), hooks.url)
        config_path = base / "soak.toml"
        config_path.touch(mode=0o600)
        config_path.write_text(text)
        env = {"DASHBOARD_CONFIG": str(config_path), "DASHBOARD_INTERVAL_S": f"{interval_s:g}",
               "DASHBOARD_RAW_RETENTION_H": f"{raw_retention_h:g}", **(server_env or {})}
        server = harness.DashboardServer(data_dir=data_dir, env=env, port=port,
                                         before_start=before_start, ready_timeout_s=120)
        server.start()
        schedule = Schedule(timing)
        schedule_box.append(schedule)
        workload = Workload(schedule, shop.url, platform.shop_db, platform.redis.url,
                            lambda text: None, stop)
        workload.start()
        yield SoakEnv(server, config_path, interval_s, raw_retention_h, hooks, notes=[
            f"workload: the demo's ({timing.cycle_s:.0f} s cycle: surge, slow reports, checkout "
            "errors, cold cache, queue backlog, a failed job), repeated",
            f"collectors: every one at {interval_s:g} s; statements digest every "
            f"{DIGEST_INTERVAL_S:g} s, probes every {PROBE_INTERVAL_S:g} s (config minimum)"])
    finally:
        stop.set()
        if workload is not None:
            workload.join(5.0)
        if server is not None:
            server.stop()
        if shop is not None:
            shop.stop()
        platform.stop()
        hooks.stop()
