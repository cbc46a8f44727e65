"""Two collector machines and a partition (issue 16), on network namespaces made by the test.

Machine C runs Redis (the message queue and the leader lock) and the monitored MariaDB; machines
A and B each run ``collect``; the test process is the webhook receiver every machine reaches.
A leads and pages a firing pool alert; then A is cut off from C (a partition: A still reaches
the receiver, so only the fence keeps it quiet). A must stand down within the lock's lifetime,
B lead within 10 s and say "resolved" once the pool empties, and A, back on the network, must
stand by (it leads again when B dies, and pages nothing twice).

The store (``store_env``, both in turn): SQLite, one data dir both machines share (they run on
one kernel); PostgreSQL, run on C (its address only), with a data dir of its own on each machine
and the same ``DASHBOARD_STORE_URL``: the alert state, the outbox and the fence are then shared
through the server only, and the partition cuts A off it too. (The history's tables stay in each
machine's own file for now: ``Store``'s docstring.)
"""
from __future__ import annotations

import math
import os
import secrets
import signal
import time
from pathlib import Path

import pytest
import redis

from dashboard.demo import services as devservices
from dashboard.store import Store
from tests.support import netns
from tests.support.pg import PgCluster
from tests.support.receivers import WebhookReceiver
from tests.support.server import DashboardServer
from tests.support.util import mysql_connect, wait_until

POOL = 20
TTL_S = 5.0
LOCK_KEY = "dashboard:collector-leader"
STOOD_DOWN = "standing down as collector leader"


class StoreEnv:
    """How a machine gets its store (``env``), and how the test reads it (``open``: a
    ``Store`` of that machine's data dir and the shared store)."""

    def __init__(self, tmp_path: Path, url: str | None) -> None:
        self.tmp_path, self.url = tmp_path, url

    def data_dir(self, machine: str) -> Path:
        return self.tmp_path / ("data" if self.url is None else f"data-{machine}")

    def env(self, machine: str) -> dict[str, str]:
        out = {"DASHBOARD_DATA_DIR": str(self.data_dir(machine))}
        if self.url is not None:
            out["DASHBOARD_STORE_URL"] = self.url
        return out

    def open(self, machine: str) -> Store:
        return Store(self.data_dir(machine), store_url=self.url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request, machines, tmp_path):
    if request.param == "sqlite":
        yield StoreEnv(tmp_path, None)
        return
    net = machines[0]
    cluster = PgCluster(host=net.addresses["c"], port=5432, prefix=net.command("c", []),
                        allow=str(net.subnet))
    try:
        cluster.start()
        yield StoreEnv(tmp_path, cluster.url(cluster.create_database()))
    finally:
        cluster.remove()


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
        s = DashboardServer(tmp_path / f"log-{machine}", command="collect", config=config,
                            host=net.addresses[machine], prefix=tuple(net.command(machine, [])),
                            env={"DASHBOARD_MESSAGE_QUEUE": rds.url, **store_env.env(machine)})
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
        base = wait_until(lambda: latest_threads(store_env, "a"), timeout=30,
                          message="no db sample")
        for _ in range(math.ceil(0.9 * POOL) - base):
            opened.append(mysql_connect(load_url))
        wait_until(lambda: events(receiver), timeout=30, message="the pool alert never paged")
        wait_until(lambda: delivered(store_env) >= 1, timeout=10)
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
        wait_until(lambda: newest_db_sample_after(store_env, "a", since + 1),
                   timeout=20, message="A collects nothing after leading again")
        got = events(receiver)
        assert [e for e, _ in got] == ["firing", "resolved"], got
        assert len({k for _, k in got}) == 2
        fences = fence_of_events(store_env)
        assert fences[0] < fences[1], fences   # firing by A's token, resolved by B's
    finally:
        for c in opened:
            c.close()
        for s in servers.values():
            s.kill()


def _query(store_env: StoreEnv, sql: str) -> list[tuple]:
    """Rows of the store both machines share (the SQLite file, or PostgreSQL on C)."""
    store = store_env.open("a")
    try:
        conn = store.connect()
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    finally:
        store.close()


def latest_threads(store_env: StoreEnv, machine: str) -> int | None:
    if not (store_env.data_dir(machine) / "history.sqlite3").exists():
        return None
    s = store_env.open(machine)
    try:
        v = next((x.values.get("db.threads_connected") for x in s.latest() if x.source == "db"
                  and "db.threads_connected" in x.values), None)
        return int(v) if v is not None else None
    finally:
        s.close()


def delivered(store_env: StoreEnv) -> int:
    return int(_query(store_env, "SELECT COUNT(*) FROM outbox_messages WHERE state = 'delivered'"
                      )[0][0])


def fence_of_events(store_env: StoreEnv) -> list[int]:
    return [r[0] for r in _query(
        store_env, "SELECT e.fence FROM alert_events e JOIN alert_episodes p ON p.id = e.alert_id"
        " WHERE p.rule = 'db_pool_utilization' AND e.kind IN ('firing', 'resolved') ORDER BY e.id")]


def newest_db_sample_after(store_env: StoreEnv, machine: str, ts: float) -> bool:
    s = store_env.open(machine)
    try:
        return any(x.ts > ts for x in s.between(ts - 1, sources=["db"]))
    finally:
        s.close()
