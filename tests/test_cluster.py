"""One collector process, several web instances, a standby collector: joined by Redis."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import redis
import socketio

from dashboard.process.cluster import LeaderLock, read_status
from tests.support.auth_helpers import add_token
from tests.support.server import DashboardServer
from tests.support.util import wait_until


def test_only_one_candidate_leads_and_another_takes_over_when_renewals_stop(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    a = LeaderLock(client, key="t:leader", ttl_s=1.0, poll_s=0.1)
    b = LeaderLock(client, key="t:leader", ttl_s=1.0, poll_s=0.1)
    assert a.try_acquire() and not b.try_acquire()
    assert a.renew() and not b.renew()            # b cannot extend a's lock
    # a stops renewing (paused, killed): the lock expires and b gets it.
    wait_until(lambda: b.try_acquire(), timeout=5, interval=0.1)
    assert not a.renew()                          # a finds out it lost, and must step down
    b.release()
    assert client.get("t:leader") is None


def memory_events(receiver):
    return [a["event"] for r in receiver.requests for a in r.json()["alerts"]
            if a["rule"] == "host_memory"]


def collector(data_dir, env, notify_config=None):
    return DashboardServer(data_dir, env=env, command="collect", config=notify_config)


def leader_of(client):
    v = client.get("dashboard:collector-leader")
    return v.decode() if v else None


@pytest.fixture
def cluster_env(tmp_path, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    env = {"DASHBOARD_MESSAGE_QUEUE": redis_server.url, "DASHBOARD_INTERVAL_S": "0.5"}
    started: list[DashboardServer] = []
    yield tmp_path / "data", env, client, started
    for s in started:
        s.kill()


def receive(url, token, into, stop):
    sio = socketio.Client(reconnection=True)
    sio.on("samples", lambda batch: into.extend(batch), namespace="/live")
    sio.connect(url, namespaces=["/live"], auth={"token": token}, transports=["websocket"],
                wait_timeout=10)
    stop.wait()
    sio.disconnect()


def test_two_web_instances_receive_the_same_samples_from_one_collector(cluster_env):
    data, env, client, started = cluster_env
    col = collector(data, env)
    started.append(col.start(wait=False))
    web = [DashboardServer(data, env=env, args=("--web-only",)) for _ in range(2)]
    token = add_token(data, "viewer")
    for w in web:
        started.append(w.start())              # healthy = the leader's status reached Redis
    got: list[list[dict]] = [[], []]
    stop = threading.Event()
    threads = [threading.Thread(target=receive, args=(w.url, token, got[i], stop), daemon=True)
               for i, w in enumerate(web)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(len({s["seq"] for s in g}) >= 10 for g in got), timeout=30,
                   message=lambda: f"received {[len(g) for g in got]}")
    finally:
        stop.set()
    a, b = ({s["seq"] for s in g} for g in got)
    common = a & b
    assert len(common) >= 8, (sorted(a)[:5], sorted(b)[:5])
    # Same sample, same content, on both instances.
    by_seq_a = {s["seq"]: s for s in got[0]}
    by_seq_b = {s["seq"]: s for s in got[1]}
    assert all(by_seq_a[q] == by_seq_b[q] for q in common)
    # The web instances do not collect: every sample came from the one collector process.
    st = read_status(client)
    assert st and st["collectors"]["host"]["status"] == "ok"
    assert [w.healthz()["status"] for w in web] == ["ok", "ok"]


def test_a_standby_collector_takes_over_within_10_s_without_a_duplicate_page(
        cluster_env, webhook_receiver, tmp_path):
    data, env, client, started = cluster_env
    config = tmp_path / "dashboard.toml"
    # A rule that fires at once (memory in use is always above 0.001 %), so the page is certain.
    config.write_text(f'''
[rules.host_memory]
warning = 0.001
critical = 1000
for_s = 0
[[notify]]
kind = "webhook"
url = "{webhook_receiver.url}"
''')
    first = collector(data, env, config)
    started.append(first.start(wait=False))
    wait_until(lambda: leader_of(client), timeout=30,
               message=lambda: f"no collector took the lead; log:\n{first.log()[-2000:]}")
    second = collector(data, env, config)
    started.append(second.start(wait=False))
    webhook_receiver.wait_for(1, timeout=30)
    assert memory_events(webhook_receiver) == ["firing"]
    # Kill after the delivery is on record. (Killed in the milliseconds between the receiver's
    # 200 and that record, the message goes out again with the same Idempotency-Key: the
    # documented at-least-once boundary, deduplicated by receivers; tests/test_alerts_* cover it.)
    import sqlite3
    db = sqlite3.connect(data / "history.sqlite3")
    wait_until(lambda: db.execute("SELECT COUNT(*) FROM outbox_messages WHERE state = 'delivered'")
               .fetchone()[0] >= 1, timeout=10)
    db.close()
    leader = leader_of(client)
    assert leader.split(":")[1] == str(first.proc.pid), "the first collector should lead"

    killed_at = time.time()
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    wait_until(lambda: (leader_of(client) or leader).split(":")[1] == str(second.proc.pid),
               timeout=10, interval=0.1, message=lambda: f"leader is still {leader_of(client)}")
    took_over = time.time() - killed_at       # the wait_until's 10 s deadline is the assertion

    from dashboard.store import Store
    store = Store(data)
    wait_until(lambda: any(s.ts > killed_at + took_over for s in store.between(killed_at)),
               timeout=15, message="the new leader stores no samples")
    # Give the new leader a few evaluation rounds to (wrongly) page again.
    wait_until(lambda: len([s for s in store.between(killed_at, sources=["host"]) if not s.labels]) >= 6,
               timeout=20)
    assert memory_events(webhook_receiver) == ["firing"], [   # paged once, not again
        (r.header("Idempotency-Key"), r.json()["sent_at"],
         [(a["id"], a["event"], a["at"]) for a in r.json()["alerts"]])
        for r in webhook_receiver.requests]
    host_ts = [s.ts for s in store.between(killed_at - 5, sources=["host"]) if not s.labels]
    gaps = [b - a for a, b in zip(host_ts, host_ts[1:])]
    assert max(gaps) <= 10, max(gaps)
