"""A fenced collector leader (issue 16): a stale leader's late writes are refused by the store,
and a leader that cannot renew its lock stops judging and sending within the lock's lifetime,
then stands by and leads again once Redis answers (no exit)."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import redis

from dashboard.process.cluster import LeaderLock
from dashboard.store import Store
from dashboard.store import fence as fencing
from dashboard.store.pg import ConnParams, PgConnection
from tests.support.alert_helpers import Clock, drain, make_service, pool
from tests.support.util import wait_until


@pytest.fixture
def services():
    made = []
    yield made
    for svc in made:
        svc.outbox.stop()
        svc.close()


def hook(receiver):
    return {"kind": "webhook", "url": receiver.url, "name": "hook"}


QUICK = {"db_pool_utilization": {"for_s": 0, "keep_firing_for_s": 0}}


def store_conn(data_dir):
    """A connection to the store the services of ``data_dir`` write (the SQLite file, or the
    test's PostgreSQL database under ``store_backend``)."""
    return Store(data_dir).connect()


@pytest.mark.usefixtures("store_backend")
def test_tokens_never_go_backwards_across_store_objects(tmp_path):
    tokens = [Store(tmp_path).next_fence() for _ in range(3)]
    assert tokens == sorted(set(tokens)) and tokens[0] >= 1


@pytest.mark.usefixtures("store_backend")
def test_a_stale_leaders_late_transition_is_refused_and_the_new_leaders_is_kept(
        tmp_path, webhook_receiver, services):
    clock = Clock()
    old, _ = make_service(tmp_path, [hook(webhook_receiver)], QUICK, clock=clock)
    new, _ = make_service(tmp_path, [hook(webhook_receiver)], QUICK, clock=clock)
    services.extend([old, new])
    store = Store(tmp_path)
    old.set_fence(store.next_fence())
    new.set_fence(store.next_fence())          # the new leader won the lock afterwards
    refused_before = fencing.refused_total

    # The old leader, paused past its lease, wakes up and judges a breach.
    assert old.process([pool(90.0, clock.now)], clock.now) == []
    db = store_conn(tmp_path)
    assert db.execute("SELECT COUNT(*) FROM alert_events").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM outbox_items").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM alert_state").fetchone()[0] == 0
    assert fencing.refused_total == refused_before + 1
    assert fencing.for_conn(db).refused() == 1          # counted in the store, for /metrics

    # The new leader judges the same breach: recorded with its token, and paged once.
    new.reload(clock.now)
    [t] = new.process([pool(90.0, clock.now)], clock.now)
    assert t.kind == "firing"
    assert db.execute("SELECT fence FROM alert_events").fetchall() == [(new.state.fence,)]
    drain(new, clock)
    assert [a["event"] for r in webhook_receiver.requests for a in r.json()["alerts"]] == ["firing"]
    assert db.execute("SELECT fence FROM outbox_messages").fetchall() == [(new.state.fence,)]


@pytest.mark.usefixtures("store_backend")
def test_a_stale_leaders_outbox_sends_nothing(tmp_path, webhook_receiver, services):
    clock = Clock()
    old, _ = make_service(tmp_path, [hook(webhook_receiver)], QUICK, clock=clock)
    services.append(old)
    store = Store(tmp_path)
    old.set_fence(store.next_fence())
    old.process([pool(90.0, clock.now)], clock.now)       # queued while it still led
    store.next_fence()                                     # another process leads now
    with pytest.raises(fencing.StaleFence):
        drain(old, clock)
    assert webhook_receiver.requests == []
    db = store_conn(tmp_path)
    assert fencing.for_conn(db).refused() == 1
    # Nothing claimed by the stale leader: the item waits for the new leader.
    assert db.execute("SELECT COUNT(*) FROM outbox_messages WHERE state = 'delivered'"
                      ).fetchone()[0] == 0


def test_postgresql_tokens_come_from_a_sequence_racing_takers_never_share_one(pg_url):
    conns = [PgConnection(ConnParams.from_url(pg_url)) for _ in range(2)]
    fences = [fencing.PgFence(c) for c in conns]
    got: list[list[int]] = [[], []]

    def take(i: int) -> None:
        for _ in range(40):
            got[i].append(fences[i].next_fence())

    threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    tokens = got[0] + got[1]
    assert len(tokens) == 80 and len(set(tokens)) == 80               # none handed out twice
    assert all(g == sorted(g) for g in got)                             # each taker's go up
    assert fences[0].highest() == max(tokens)                           # the row keeps the highest
    # The sequence issues them, not the row: a row set back (a backup restored over it) does not
    # make a token come again.
    conns[0].execute("UPDATE fence SET token = 0")
    assert fences[1].next_fence() > max(tokens)
    for c in conns:
        c.close()


def test_postgresql_a_new_token_waits_for_an_open_fenced_write_and_the_next_stale_one_is_refused(
        pg_url):
    old_leader, new_leader, watcher = (PgConnection(ConnParams.from_url(pg_url)) for _ in range(3))
    old_fence, new_fence = fencing.PgFence(old_leader), fencing.PgFence(new_leader)
    old = old_fence.next_fence()
    old_leader.execute("CREATE TABLE pages (token BIGINT NOT NULL)")
    # The old leader is inside a fenced write: checked, written, not committed yet.
    old_leader.execute("BEGIN")
    old_fence.check(old)
    old_leader.execute("INSERT INTO pages VALUES (?)", (old,))
    taken: list[int] = []
    taker = threading.Thread(target=lambda: taken.append(new_fence.next_fence()))
    taker.start()
    try:
        # The new leader's token waits on the fence row: it cannot be issued between the old
        # leader's check and its commit.
        wait_until(lambda: watcher.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'").fetchone()[0] == 1, timeout=20,
            message="next_fence did not wait for the open fenced write")
        assert taken == []
    finally:
        old_leader.execute("COMMIT")
        taker.join(30)
    [new] = taken
    assert new > old
    # The old leader's next write is refused inside its transaction, and nothing of it stays.
    refused_before = fencing.refused_total
    old_leader.execute("BEGIN")
    old_leader.execute("INSERT INTO pages VALUES (?)", (old,))
    with pytest.raises(fencing.StaleFence):
        old_fence.check(old)
    old_leader.rollback()
    old_fence.count_refused()
    assert fencing.refused_total == refused_before + 1
    assert new_fence.refused() == 1
    new_leader.execute("BEGIN")
    new_fence.check(new)                                  # the new leader's writes go through
    new_leader.execute("INSERT INTO pages VALUES (?)", (new,))
    new_leader.execute("COMMIT")
    assert watcher.execute("SELECT token FROM pages ORDER BY token").fetchall() == [(old,), (new,)]
    for c in (old_leader, new_leader, watcher):
        c.close()


def test_a_fence_check_outside_a_transaction_is_refused_on_postgresql(pg_url):
    conn = PgConnection(ConnParams.from_url(pg_url))
    fence = fencing.PgFence(conn)
    token = fence.next_fence()
    with pytest.raises(RuntimeError, match="outside a write transaction"):
        fence.check(token)          # its lock would end with the statement: no guard at all
    conn.close()


def test_a_leader_cut_off_from_redis_stops_within_the_ttl_and_leads_again_after(make_redis):
    server = make_redis()
    ttl_s = 3.0
    client = redis.Redis.from_url(server.url, socket_timeout=ttl_s / 4,
                                  socket_connect_timeout=ttl_s / 4)
    lock = LeaderLock(client, key="t:fenced", ttl_s=ttl_s, poll_s=0.3)
    renewed: list[float] = []
    real_renew = lock.renew

    def renew() -> bool:
        asked = time.monotonic()
        ok = real_renew()
        if ok:
            renewed.append(asked)
        return ok

    lock.renew = renew  # type: ignore[method-assign]
    gains: list[float] = []
    losses: list[tuple[float, bool]] = []
    lock.run(on_gain=lambda: gains.append(time.monotonic()),
             on_lose=lambda: losses.append((time.monotonic(), lock.lease_valid())))
    try:
        wait_until(lambda: len(renewed) >= 2, timeout=20)
        # Redis stops answering (a partition: packets vanish, calls hang until they time out).
        os.kill(server.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: losses, timeout=20, message="the leader never stood down")
            lost_at, valid_then = losses[0]
            assert not valid_then and not lock.lease_valid()
            # Stood down before the lock could expire in Redis (TTL from the last renewal).
            assert lost_at - renewed[-1] < ttl_s, (lost_at - renewed[-1], ttl_s)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # Redis is back: the process competes again and leads, without exiting.
        wait_until(lambda: len(gains) >= 2 and lock.lease_valid(), timeout=20,
                   message="the leader never came back")
        assert lock._thread is not None and lock._thread.is_alive()
    finally:
        lock.stop()


def test_the_lease_watchdog_stands_down_while_a_renewal_still_hangs(make_redis):
    server = make_redis()
    client = redis.Redis.from_url(server.url, socket_timeout=30)    # renewals may hang long
    lock = LeaderLock(client, key="t:hang", ttl_s=2.0, poll_s=0.2)
    lost = threading.Event()
    lock.run(on_gain=lambda: None, on_lose=lost.set)
    try:
        wait_until(lock.lease_valid, timeout=20)
        os.kill(server.pid, signal.SIGSTOP)
        try:
            assert lost.wait(15), "the watchdog never stood the leader down"
            assert not lock.lease_valid()
        finally:
            os.kill(server.pid, signal.SIGCONT)
    finally:
        lock._stop.set()


@pytest.mark.usefixtures("store_backend")
def test_refused_writes_are_counted_on_the_metrics_page(tmp_path, webhook_receiver, services):
    from prometheus_client.parser import text_string_to_metric_families

    from dashboard.app import create_app
    from dashboard.config.load import from_dict
    from dashboard.runtime import Runtime
    from tests.support.auth_helpers import token_client

    settings = from_dict({"data_dir": str(tmp_path / "data"), "async_mode": "threading"})
    app = create_app(settings, Runtime(settings, []), async_mode="threading")
    client = token_client(app, "viewer")

    def refused_total() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        [fam] = [f for f in text_string_to_metric_families(text)
                 if f.name == "dashboard_fence_refused"]
        return fam.samples[0].value

    assert refused_total() == 0
    clock = Clock()
    stale, _ = make_service(tmp_path / "data", [hook(webhook_receiver)], QUICK, clock=clock)
    services.append(stale)
    store = Store(tmp_path / "data")
    stale.set_fence(store.next_fence())
    store.next_fence()
    stale.process([pool(90.0, clock.now)], clock.now)
    assert refused_total() == 1


@pytest.mark.usefixtures("store_backend")
def test_a_user_ending_a_silence_on_a_former_leader_is_not_refused(
        tmp_path, webhook_receiver, services):
    clock = Clock()
    former, _ = make_service(tmp_path, [hook(webhook_receiver)], QUICK, clock=clock)
    leader, _ = make_service(tmp_path, [hook(webhook_receiver)], QUICK, clock=clock)
    services.extend([former, leader])
    store = Store(tmp_path)
    former.set_fence(store.next_fence())
    former.leading = lambda: False                      # it stood down; its web pages still serve
    leader.set_fence(store.next_fence())
    sil = leader.add_silence("db_pool_utilization", {}, clock.now, clock.now + 3600, "ann", "work")
    leader.process([pool(90.0, clock.now)], clock.now)  # fires, held by the silence
    silence, ended = former.end_silence(sil["id"], "ann")
    assert ended and silence is not None
    drain(leader, clock)
    assert [a["event"] for r in webhook_receiver.requests for a in r.json()["alerts"]] == ["firing"]


def test_a_leader_whose_redis_is_down_stands_by_and_leads_again_when_it_returns(make_redis):
    server = make_redis()
    client = redis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    lock = LeaderLock(client, key="t:down", ttl_s=2.0, poll_s=0.2)
    gains, losses = [], []
    lock.run(on_gain=lambda: gains.append(1), on_lose=lambda: losses.append(lock.lease_valid()))
    try:
        wait_until(lock.lease_valid, timeout=20)
        server.kill()                                   # Redis gone: connections refused
        wait_until(lambda: losses, timeout=15, message="the leader never stood down")
        assert losses == [False]
        server.start()                                  # same port, empty (no persistence)
        wait_until(lambda: len(gains) == 2 and lock.lease_valid(), timeout=20,
                   message="the leader never came back")
        assert lock._thread is not None and lock._thread.is_alive()
    finally:
        lock.stop()
