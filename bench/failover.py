"""Failover time of the collector (issue 16): kill -9 of the leader -> the standby holds the lock.

Two ``python -m dashboard collect`` processes, each with a data dir of its own, share a private
PostgreSQL (``store_url``, tests/support/pg.py) and a private Redis (``message_queue``, the
leader lock), all on loopback. Each run kills the leader with SIGKILL (its process group) and
times, on the monotonic clock, until the other process holds the lock (polled every 20 ms) and
until the store has a tick newer than the kill (the new leader collects); then the killed one is
started again as the standby and is given ``--settle`` seconds to reach Redis. Prints each run,
the median and the max, and the load average before and after.

Bounded: every wait has a deadline (``--timeout`` per run); the whole run stops after
``--budget`` seconds with what it has measured. Everything it starts is killed at exit.

    .venv/bin/python bench/failover.py [--runs 10] [--ttl 5] [--timeout 60] [--budget 600]
"""
from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from dashboard.demo import services as devservices  # noqa: E402
from dashboard.store import Store  # noqa: E402
from tests.support.machines import LOCK_KEY, pid_of  # noqa: E402
from tests.support.pg import start_cluster  # noqa: E402
from tests.support.server import DashboardServer  # noqa: E402

T = TypeVar("T")


class TimedOut(RuntimeError):
    pass


def wait(what: str, predicate: Callable[[], T], deadline: float, interval: float = 0.02) -> T:
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimedOut(what)
        time.sleep(interval)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--ttl", type=float, default=5.0, help="leader_ttl_s (the default: 5)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds one run may take")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds the restarted standby gets before the next kill")
    ap.add_argument("--budget", type=float, default=600.0, help="seconds for the whole bench")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)      # type: ignore[union-attr]  # runs as they end
    end = time.monotonic() + args.budget

    print(f"load before: {loadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    cluster = start_cluster()
    rds = devservices.start_redis(tmp / "redis")
    servers: dict[str, DashboardServer] = {}
    took: list[float] = []
    collected: list[float] = []
    try:
        url = cluster.url(cluster.create_database())
        config = tmp / "dashboard.toml"
        config.write_text(f"interval_s = 0.5\nleader_ttl_s = {args.ttl}\n")
        client = redis.Redis.from_url(rds.url, socket_timeout=5)
        store = Store(tmp / "reader", store_url=url)

        def start(name: str) -> DashboardServer:
            s = DashboardServer(tmp / f"log-{name}", command="collect", config=config,
                                env={"DASHBOARD_MESSAGE_QUEUE": rds.url,
                                     "DASHBOARD_DATA_DIR": str(tmp / f"data-{name}"),
                                     "DASHBOARD_STORE_URL": url})
            servers[name] = s
            return s.start(wait=False)

        def leader() -> str | None:
            pid = pid_of(client.get(LOCK_KEY))
            return next((n for n, s in servers.items() if s.proc and s.proc.pid == pid), None)

        start("a")
        wait("a first leader", leader, time.monotonic() + 120, 0.1)
        start("b")
        time.sleep(args.settle)
        for run in range(1, args.runs + 1):
            if time.monotonic() + args.timeout > end:
                print(f"budget of {args.budget:.0f} s spent: {run - 1} runs")
                break
            deadline = time.monotonic() + args.timeout
            old = str(wait("a leader", leader, deadline))
            other = "b" if old == "a" else "a"

            def led(o: str = other) -> bool:
                return leader() == o

            def ticked(t: float) -> bool:
                return any(x.ts > t for x in store.latest())
            killed_wall, killed = time.time(), time.monotonic()
            servers[old].kill()
            wait(f"{other} leads", led, deadline)
            took.append(time.monotonic() - killed)
            wait("a tick of the new leader",
                 functools.partial(ticked, killed_wall), deadline, 0.1)
            collected.append(time.monotonic() - killed)
            print(f"run {run:2d}: {old} killed, {other} led after {took[-1]:5.2f} s, "
                  f"its first tick stored after {collected[-1]:5.2f} s")
            start(old)
            time.sleep(args.settle)
        store.close()
    except TimedOut as e:
        print(f"stopped: no {e} within the deadline")
    finally:
        for s in servers.values():
            s.kill()
        rds.kill()
        cluster.remove()
        shutil.rmtree(tmp, ignore_errors=True)
    if took:
        print(f"failover (kill -9 -> the standby holds the lock), {len(took)} runs, lock TTL "
              f"{args.ttl:g} s: median {statistics.median(took):.2f} s, max {max(took):.2f} s")
        print(f"kill -9 -> the new leader's first tick stored: median "
              f"{statistics.median(collected):.2f} s, max {max(collected):.2f} s")
    print(f"load after: {loadavg()}")
    return 0 if len(took) == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
