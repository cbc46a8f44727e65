"""Two collector machines and a partition (issue 16), on network namespaces made by the test.

Machine C runs Redis (the message queue and the leader lock) and the monitored MariaDB; machines
A and B each run ``collect``; the test process is the webhook receiver every machine reaches
(tests/support/machines.py).
A leads and pages a firing pool alert; then A is cut off from C (a partition: A still reaches
the receiver, so only the fence keeps it quiet). A must stand down within the lock's lifetime,
B lead within 10 s and say "resolved" once the pool empties, and A, back on the network, must
stand by (it leads again when B dies, and pages nothing twice).

The store (``store_env``, both in turn): SQLite, one data dir both machines share (they run on
one kernel); PostgreSQL, run on C (its address only), with a data dir of its own on each machine
and the same ``DASHBOARD_STORE_URL``: the alert state, the outbox and the fence are then shared
through the server only (the history too), and the partition cuts A off it too.
"""
from __future__ import annotations

import math
import os
import signal
import time

import pytest

from dashboard.store import Store
from tests.support import netns
from tests.support.machines import (
    STOOD_DOWN,
    Site,
    StoreEnv,
    delivered,
    events,
    latest_threads,
    postgresql_on_c,
    site,
)
from tests.support.server import DashboardServer
from tests.support.util import mysql_connect, wait_until

POOL = 20
TTL_S = 5.0


@pytest.fixture
def machines(test_network: netns.Network, tmp_path):
    with site(test_network, tmp_path) as made:
        yield made


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request, machines: Site, tmp_path):
    if request.param == "sqlite":
        yield StoreEnv(tmp_path, None)
        return
    with postgresql_on_c(machines.net) as (_, url):
        yield StoreEnv(tmp_path, url)


def test_a_partitioned_leader_stops_paging_the_standby_takes_over_and_it_rejoins_as_standby(
        machines, store_env, tmp_path):
    net, receiver = machines.net, machines.receiver
    monitor, load_url = machines.monitor_users()
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
    servers: dict[str, DashboardServer] = {}

    def collect(machine: str) -> DashboardServer:
        servers[machine] = machines.run(machine, "collect", config, store_env)
        return servers[machine]

    def leader() -> str | None:
        held = machines.leader()
        return next((m for m, s in servers.items() if s is held), None)

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
                   message=lambda: f"after the cut: {seen}; leader {leader()}; "
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


def fence_of_events(store_env: StoreEnv) -> list[int]:
    return [r[0] for r in store_env.query(
        "SELECT e.fence FROM alert_events e JOIN alert_episodes p ON p.id = e.alert_id"
        " WHERE p.rule = 'db_pool_utilization' AND e.kind IN ('firing', 'resolved') ORDER BY e.id")]


def newest_db_sample_after(store_env: StoreEnv, machine: str, ts: float) -> bool:
    s: Store = store_env.open(machine)
    try:
        return any(x.ts > ts for x in s.between(ts - 1, sources=["db"]))
    finally:
        s.close()
