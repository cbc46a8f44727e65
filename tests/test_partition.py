"""Two collector machines and a partition (issue 16), on network namespaces made by the test.

Machine C runs Redis (the message queue and the leader lock) and the monitored MariaDB; machines
A and B each run ``collect``; the test process is the webhook receiver every machine reaches.
A leads and pages a firing pool alert; then A is cut off from C (a partition: A still reaches
the receiver, so only the fence keeps it quiet). A must stand down within the lock's lifetime,
B lead within 10 s and say "resolved" once the pool empties, and A, back on the network, must
stand by (it leads again when B dies, and pages nothing twice).

The store: for now both machines share one SQLite data dir (``store_env``); with the PostgreSQL
backend each machine gets a data dir of its own and ``DASHBOARD_STORE_URL`` instead.
"""
from __future__ import annotations

import math
import os
import secrets
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import redis

from dashboard.demo import services as devservices
from tests.support import netns
from tests.support.receivers import WebhookReceiver
from tests.support.server import DashboardServer
from tests.support.util import mysql_connect, wait_until

POOL = 20
TTL_S = 5.0
LOCK_KEY = "dashboard:collector-leader"
STOOD_DOWN = "standing down as collector leader"


@pytest.fixture
def store_env(tmp_path):
    """Environment giving a machine its store. SQLite: one data dir shared by both machines
    (they run on one kernel); PostgreSQL later: a data dir each and ``DASHBOARD_STORE_URL``."""
    shared = tmp_path / "data"

    def env(machine: str) -> dict[str, str]:
        return {"DASHBOARD_DATA_DIR": str(shared)}
    env.data_dir = shared  # type: ignore[attr-defined]
    return env


@pytest.fixture
def machines(test_network: netns.Network, tmp_path):
    net = test_network
    for role in ("c", "a", "b"):
        net.host(role)
    # No password on this private test network: Redis answers other hosts only without
    # protected mode.
    rds = net.service("c", devservices.Redis, tmp_path / "redis", 6379,
                      extra_args=("--protected-mode", "no"))
    rds.start()
    db = net.service("c", devservices.MariaDB, tmp_path / "mariadb", 3306,
                     performance_schema=False, extra_args=(), start_timeout=180.0)
    db.start()
    receiver = WebhookReceiver(host=net.gateway).start()
    try:
        yield net, rds, db, receiver
    finally:
        receiver.stop()
        db.kill()
        rds.kill()


def events(receiver) -> list[tuple[str, str]]:
    return [(a["event"], r.header("Idempotency-Key") or "") for r in receiver.requests
            for a in r.json()["alerts"] if a["rule"] == "db_pool_utilization"]


def pid_of(holder: bytes | None) -> int | None:
    return int(holder.decode().split(":")[1]) if holder else None


def test_a_partitioned_leader_stops_paging_the_standby_takes_over_and_it_rejoins_as_standby(
        machines, store_env, tmp_path):
    net, rds, db, receiver = machines
    monitor = db.create_monitor_user("alertmon", secrets.token_urlsafe(12),
                                     ["PROCESS", "BINLOG MONITOR"])
    load_url = db.create_monitor_user("loader", secrets.token_urlsafe(12), ["USAGE"])
    config = tmp_path / "dashboard.toml"
    config.write_text(f'''
interval_s = 0.5
leader_ttl_s = {TTL_S}
[mysql]
url = "{monitor}"
pool_capacity = {POOL}
[rules.db_pool_utilization]
for_s = 0
keep_firing_for_s = 0
[[notify]]
kind = "webhook"
name = "hook"
url = "{receiver.url}"
rules = ["db_pool_utilization"]
''')
    client = redis.Redis.from_url(rds.url, socket_timeout=5)
    servers: dict[str, DashboardServer] = {}

    def collect(machine: str) -> DashboardServer:
        s = DashboardServer(store_env.data_dir / f"log-{machine}", command="collect", config=config,
                            host=net.addresses[machine], prefix=tuple(net.command(machine, [])),
                            env={"DASHBOARD_MESSAGE_QUEUE": rds.url, **store_env(machine)})
        servers[machine] = s
        return s.start(wait=False)

    def leader() -> str | None:
        pid = pid_of(client.get(LOCK_KEY))
        return next((m for m, s in servers.items() if s.proc and s.proc.pid == pid), None)

    opened = []
    try:
        a = collect("a")
        wait_until(lambda: leader() == "a", timeout=60,
                   message=lambda: f"A never led; log:\n{a.log()[-3000:]}")
        collect("b")

        # The pool at 90 %: A pages once.
        base = wait_until(lambda: latest_threads(store_env.data_dir), timeout=30,
                          message="no db sample")
        for _ in range(math.ceil(0.9 * POOL) - base):
            opened.append(mysql_connect(load_url))
        wait_until(lambda: events(receiver), timeout=30, message="the pool alert never paged")
        wait_until(lambda: delivered(store_env.data_dir) >= 1, timeout=10)
        assert [e for e, _ in events(receiver)] == ["firing"]

        # A is cut off from Redis and MariaDB (not from the receiver).
        stood_down = a.log().count(STOOD_DOWN)
        cut_at = time.monotonic()
        net.cut("a", "c")
        seen: dict[str, float] = {}

        def both() -> bool:     # when each happened first, watched together
            now = time.monotonic() - cut_at
            if "a" not in seen and a.log().count(STOOD_DOWN) > stood_down:
                seen["a"] = now
            if "b" not in seen and leader() == "b":
                seen["b"] = now
            return len(seen) == 2
        wait_until(both, timeout=10 + TTL_S, interval=0.05,
                   message=lambda: f"after the cut: {seen}; leader {client.get(LOCK_KEY)!r}; "
                                   f"A's log:\n{a.log()[-3000:]}")
        took_over, a_quiet = seen["b"], seen["a"]
        print(f"\npartition: A stood down {a_quiet:.2f} s after the cut (lock TTL {TTL_S} s); "
              f"B led {took_over:.2f} s after it")
        assert a_quiet < took_over, seen       # A was quiet before B could lead
        assert took_over <= 10, took_over

        # The pool empties: B (not A, which cannot see it) says "resolved", once.
        for c in opened:
            c.close()
        opened.clear()
        wait_until(lambda: [e for e, _ in events(receiver)] == ["firing", "resolved"], timeout=30,
                   message=lambda: f"events {events(receiver)}")

        # A back on the network: a standby, no exit, no page.
        net.restore("a", "c")
        time.sleep(3 * TTL_S / 5)              # a few of A's lock polls
        assert a.proc is not None and a.proc.poll() is None, a.log()[-3000:]
        assert leader() == "b"
        # It competes: B gone, A leads again, and nothing is paged twice.
        assert servers["b"].proc is not None
        os.killpg(servers["b"].proc.pid, signal.SIGKILL)
        wait_until(lambda: leader() == "a", timeout=10 + TTL_S,
                   message=lambda: f"A did not lead again; log:\n{a.log()[-3000:]}")
        since = time.time()
        wait_until(lambda: newest_db_sample_after(store_env.data_dir, since + 1),
                   timeout=20, message="A collects nothing after leading again")
        got = events(receiver)
        assert [e for e, _ in got] == ["firing", "resolved"], got
        assert len({k for _, k in got}) == 2
        fences = fence_of_events(store_env.data_dir)
        assert fences[0] < fences[1], fences   # firing by A's token, resolved by B's
    finally:
        for c in opened:
            c.close()
        for s in servers.values():
            s.kill()


def _db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "history.sqlite3", timeout=10)


def latest_threads(data_dir: Path) -> int | None:
    from dashboard.store import Store
    if not (data_dir / "history.sqlite3").exists():
        return None
    s = Store(data_dir)
    try:
        v = next((x.values.get("db.threads_connected") for x in s.latest() if x.source == "db"
                  and "db.threads_connected" in x.values), None)
        return int(v) if v is not None else None
    finally:
        s.close()


def delivered(data_dir: Path) -> int:
    with _db(data_dir) as db:
        return int(db.execute("SELECT COUNT(*) FROM outbox_messages WHERE state = 'delivered'")
                   .fetchone()[0])


def fence_of_events(data_dir: Path) -> list[int]:
    with _db(data_dir) as db:
        return [r[0] for r in db.execute(
            "SELECT e.fence FROM alert_events e JOIN alert_episodes p ON p.id = e.alert_id"
            " WHERE p.rule = 'db_pool_utilization' AND e.kind IN ('firing', 'resolved')"
            " ORDER BY e.id")]


def newest_db_sample_after(data_dir: Path, ts: float) -> bool:
    from dashboard.store import Store
    s = Store(data_dir)
    try:
        return any(x.ts > ts for x in s.between(ts - 1, sources=["db"]))
    finally:
        s.close()
