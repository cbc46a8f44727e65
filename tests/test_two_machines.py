"""Two machines, simulated (issue 16): A and B each run ``collect`` and ``serve --web-only``, each
with a data dir of its own and the same ``store_url`` and ``message_queue``; PostgreSQL, Redis
and the monitored MariaDB run on machine C (tests/support/machines.py, network namespaces made
by the test; the partition scenario is tests/test_partition.py).

* kill -9 of everything on A while the pool alert fires: B leads within 10 s, the receiver gets
  one page and one "resolved" in all, and B's web instance serves the history (from PostgreSQL)
  with no gap longer than the failover.
* PostgreSQL restarted mid-run: the leader keeps its ticks in memory (``store_buffer_s``) and
  writes them when the server is back, so the history has no hole (an outage longer than the
  buffer: a hole where the ticks older than the buffer were, the newer ones kept);
  ``store_down`` pages once and resolves once; no process exits.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import netns
from tests.support.machines import (
    Site,
    StoreEnv,
    delivered,
    events,
    gaps,
    latest_threads,
    postgresql_on_c,
    site,
)
from tests.support.pg import PgCluster
from tests.support.server import DashboardServer
from tests.support.util import mysql_connect, wait_until

POOL = 20
FAILOVER_S = 10.0            # the bound: the standby leads within 10 s
OUTAGE_S = 25.0              # PostgreSQL down at least this long: longer than any gap allowed
SHORT_BUFFER_S = 10.0        # store_buffer_s shorter than the outage
METRIC = "db.threads_connected"


@pytest.fixture
def machines(test_network: netns.Network, tmp_path):
    with site(test_network, tmp_path) as made:
        yield made


@pytest.fixture
def pg(machines: Site, tmp_path) -> Any:
    with postgresql_on_c(machines.net) as (cluster, url):
        yield cluster, StoreEnv(tmp_path, url)


def write_config(path: Path, monitor: str, hook: str, rules: list[str], extra: str = "") -> Path:
    path.write_text(f'''
interval_s = 0.5
{extra}
[mysql]
url = "{monitor}"
pool_capacity = {POOL}
[rules.db_pool_utilization]
for_s = 0
keep_firing_for_s = 0
[rules.store_down]
for_s = 2
[[notify]]
kind = "webhook"
name = "hook"
url = "{hook}"
rules = {rules!r}
''')
    return path


def history(web: DashboardServer, token: str, since: float) -> list[float]:
    """The times of ``METRIC``'s points in ``/api/history`` on ``web`` since ``since``."""
    window = max(60, math.ceil(time.time() - since) + 5)
    r = requests.get(f"{web.url}/api/history", params={"window_s": str(window)},
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text[:500]
    doc = r.json()
    assert doc["resolution"] == "raw", doc["resolution"]
    return [t for s in doc["series"].values() if s["metric"] == METRIC for t in s["t"]
            if t >= since]


def alive(servers: list[DashboardServer]) -> None:
    for s in servers:
        assert s.proc is not None and s.proc.poll() is None, f"{s.command} exited:\n{s.log()[-3000:]}"


def test_kill_9_of_machine_a_during_a_firing_alert_b_leads_pages_once_and_serves_the_history(
        machines: Site, pg, tmp_path):
    _, store = pg
    monitor, load_url = machines.monitor_users()
    config = write_config(tmp_path / "dashboard.toml", monitor, machines.receiver.url,
                          ["db_pool_utilization"])
    receiver = machines.receiver
    opened = []
    try:
        started = time.time()
        collect_a = machines.run("a", "collect", config, store)
        wait_until(lambda: machines.leader() is collect_a, timeout=60,
                   message=lambda: f"A never led; log:\n{collect_a.log()[-3000:]}")
        collect_b = machines.run("b", "collect", config, store)
        web_a = machines.run("a", "serve", config, store, args=("--web-only",))
        web_b = machines.run("b", "serve", config, store, args=("--web-only",))
        for web in (web_a, web_b):
            web.wait_healthy(timeout=90)
        token = store.token("viewer")

        # The pool at 90 %: A pages once.
        base = wait_until(lambda: latest_threads(store, "a"), timeout=30, message="no db sample")
        for _ in range(math.ceil(0.9 * POOL) - base):
            opened.append(mysql_connect(load_url))
        wait_until(lambda: events(receiver), timeout=30, message="the pool alert never paged")
        wait_until(lambda: delivered(store) >= 1, timeout=10)
        assert [e for e, _ in events(receiver)] == ["firing"]
        assert history(web_b, token, started), "B's web instance serves no history of A's ticks"

        # Everything on A dies at once.
        killed_wall, killed = time.time(), time.monotonic()
        collect_a.kill()
        web_a.kill()
        wait_until(lambda: machines.leader() is collect_b, timeout=FAILOVER_S + 20, interval=0.05,
                   message=lambda: f"B never led; log:\n{collect_b.log()[-3000:]}")
        took = time.monotonic() - killed
        print(f"\nkill -9 of A: B led {took:.2f} s later")
        assert took <= FAILOVER_S, took

        # The pool empties: B says "resolved", once; nothing was paged twice.
        for c in opened:
            c.close()
        opened.clear()
        wait_until(lambda: [e for e, _ in events(receiver)] == ["firing", "resolved"], timeout=30,
                   message=lambda: f"events {events(receiver)}")

        # B's web instance: the history across the failover, from PostgreSQL.
        wait_until(lambda: [t for t in history(web_b, token, started) if t > killed_wall + 5],
                   timeout=30, message="no sample of B's collector after the failover")
        points = history(web_b, token, started)
        assert min(points) < killed_wall
        (frm, to), *_ = gaps(points)
        print(f"longest gap in B's history: {to - frm:.2f} s, from {frm - killed_wall:+.2f} s "
              f"of the kill; B led {took:.2f} s after it")
        assert to - frm <= FAILOVER_S, (frm - killed_wall, to - killed_wall)

        got = events(receiver)
        assert [e for e, _ in got] == ["firing", "resolved"], got
        assert len({k for _, k in got}) == 2
        alive([collect_b, web_b])
    finally:
        for c in opened:
            c.close()


@pytest.mark.parametrize("buffer_s", [None, SHORT_BUFFER_S], ids=["default-buffer", "short-buffer"])
def test_a_postgresql_restart_loses_no_sample_within_the_buffer_and_pages_store_down_once(
        machines: Site, pg, tmp_path, buffer_s: float | None):
    cluster: PgCluster = pg[0]
    store: StoreEnv = pg[1]
    monitor, _ = machines.monitor_users()
    config = write_config(tmp_path / "dashboard.toml", monitor, machines.receiver.url,
                          ["store_down"], "" if buffer_s is None else f"store_buffer_s = {buffer_s}")
    receiver = machines.receiver
    started = time.time()
    collect_a = machines.run("a", "collect", config, store)
    wait_until(lambda: machines.leader() is collect_a, timeout=60,
               message=lambda: f"A never led; log:\n{collect_a.log()[-3000:]}")
    collect_b = machines.run("b", "collect", config, store)
    web_b = machines.run("b", "serve", config, store, args=("--web-only",))
    web_b.wait_healthy(timeout=90)
    token = store.token("viewer")
    wait_until(lambda: latest_threads(store, "a"), timeout=30, message="no db sample")

    # PostgreSQL stops (a fast shutdown: sessions ended) and stays down OUTAGE_S at least.
    down_wall = time.time()
    cluster.stop()
    wait_until(lambda: events(receiver, "store_down"), timeout=60,
               message=lambda: f"store_down never paged; A's log:\n{collect_a.log()[-3000:]}")
    time.sleep(max(0.0, down_wall + OUTAGE_S - time.time()))
    alive([collect_a, collect_b, web_b])
    cluster.start()
    up_wall = time.time()

    wait_until(lambda: [e for e, _ in events(receiver, "store_down")] == ["firing", "resolved"],
               timeout=60, message=lambda: f"store_down events {events(receiver, 'store_down')}")
    wait_until(lambda: [t for t in history(web_b, token, started) if t > up_wall + 3], timeout=60,
               ignore=(AssertionError,), message="no sample written after the restart")
    points = history(web_b, token, started)
    during = [t for t in points if down_wall < t < up_wall]
    (frm, to), *_ = gaps(points)
    print(f"\nPostgreSQL down {up_wall - down_wall:.1f} s: {len(during)} samples of {METRIC} "
          f"from the outage in the history; longest gap {to - frm:.2f} s")
    dropped = re.findall(r"(\d+) samples of the outage were dropped", collect_a.log())
    assert dropped, collect_a.log()[-3000:]
    if buffer_s is None:
        # A hole as long as the outage (OUTAGE_S) if the buffered ticks were lost.
        assert to - frm <= FAILOVER_S, (frm - down_wall, to - down_wall)
        assert during and min(during) < down_wall + 5 and max(during) > up_wall - 5, \
            (min(during, default=None), max(during, default=None), down_wall, up_wall)
        assert dropped == ["0"]
    else:
        # Lost: the ticks older than the buffer when the server came back, and nothing else
        # (the hole starts with the outage; the outage's last ticks are in the history).
        assert abs(frm - down_wall) <= FAILOVER_S, (frm - down_wall, to - down_wall)
        assert to < up_wall - 2, (frm - down_wall, to - down_wall, up_wall - down_wall)
        assert [t for t in during if t > up_wall - buffer_s + 2], (during, up_wall)
        assert int(dropped[-1]) > 0
        _, (frm2, to2), *_ = gaps(points)
        assert to2 - frm2 <= FAILOVER_S, (frm2 - down_wall, to2 - down_wall)  # one hole only

    time.sleep(3)                                  # a few ticks more: nothing pages again
    assert [e for e, _ in events(receiver, "store_down")] == ["firing", "resolved"]
    alive([collect_a, collect_b, web_b])
    assert machines.leader() is collect_a          # the outage did not move the lock
