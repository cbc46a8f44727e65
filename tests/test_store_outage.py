"""The data directory on a disk that fills up (a real tmpfs, filled with a file): the store
cannot write, and that is loud, not silent (issue 15, item 5).

The dashboard (gunicorn, eventlet) runs with its data dir on a small tmpfs. The test fills the
tmpfs with a file, checks what a user notices during the outage (live samples keep coming with
continuing sequence numbers, ``resume`` answers, /healthz says degraded, ``store_down`` pages
once), deletes the file, and checks the recovery (``store_down`` resolves once, /healthz ok, the
outage's samples are in the store once, with the sequence numbers the page saw).

The tmpfs is 8 MiB, not 2: SQLite's WAL grows by every commit until its automatic checkpoint at
1,000 pages (4 MiB), so on 2 MiB the dashboard fills the disk by itself within a minute, also
after the recovery. The test fills it long before the first checkpoint (a WAL that was reset
would take writes into its old space for a while).
"""
from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest
import requests
import socketio

from dashboard.store import Store
from tests.support.alert_helpers import Clock, drain, make_service, pool
from tests.support.auth_helpers import add_token
from tests.support.disk import fill, small_tmpfs
from tests.support.server import DashboardServer
from tests.support.util import wait_until

DISK_SIZE = "8m"


@pytest.fixture
def small_disk(tmp_path: Path):
    # The test's processes are gone before it is unmounted (fixtures using it end first).
    with small_tmpfs(tmp_path / "disk", DISK_SIZE) as disk:
        yield disk


class LivePage:
    """A Socket.IO client on /live, as the page is: every ``samples`` batch it receives."""

    def __init__(self, url: str, token: str) -> None:
        self.samples: list[dict] = []
        self._lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("samples", self._got, namespace="/live")
        self.sio.connect(url, namespaces=["/live"], auth={"token": token},
                         transports=["websocket"], wait_timeout=10)

    def _got(self, batch: list[dict]) -> None:
        with self._lock:
            self.samples.extend(batch)

    def seqs(self) -> list[int]:
        with self._lock:
            return [s["seq"] for s in self.samples]

    def resume(self, after_seq: int) -> dict:
        return self.sio.call("resume", {"after_seq": after_seq}, namespace="/live", timeout=10)

    def close(self) -> None:
        self.sio.disconnect()


def store_down_events(receiver) -> list[tuple[str, str]]:
    return [(a["event"], a["idempotency_key"]) for r in receiver.requests
            for a in r.json()["alerts"] if a["rule"] == "store_down"]


@pytest.fixture
def server(tmp_path, small_disk, webhook_receiver):
    config = tmp_path / "dashboard.toml"
    config.write_text(f'''
interval_s = 0.5
[rules.store_down]
for_s = 2
[[notify]]
name = "pager"
kind = "webhook"
url = "{webhook_receiver.url}"
rules = ["store_down"]
group_window_s = 0
''')
    data = small_disk / "data"
    srv = DashboardServer(data, config=config)
    srv.log_path = tmp_path / "serve.log"        # not on the disk that fills up
    token = add_token(data, "viewer")
    srv.start()
    try:
        yield srv, token
    finally:
        srv.stop()


def test_a_full_disk_keeps_the_page_live_pages_store_down_once_and_loses_no_sample(
        server, small_disk, webhook_receiver):
    srv, token = server
    auth = {"Authorization": f"Bearer {token}"}
    page = LivePage(srv.url, token)
    try:
        wait_until(lambda: len(page.seqs()) >= 3, timeout=20, message="no live samples")
        filler = fill(small_disk)
        before = max(page.seqs())

        # The page keeps moving: the ticks after the fill arrive, numbered on from the last.
        wait_until(lambda: len([q for q in page.seqs() if q > before]) >= 8, timeout=20,
                   message=lambda: f"the page got nothing after seq {before}; log:\n"
                                   f"{srv.log()[-3000:]}")
        # /healthz: degraded, with a store entry (status and age only without a login; why,
        # with one).
        anon = wait_until(lambda: (h := srv.healthz()) and h["status"] == "degraded" and h,
                          timeout=20, message=lambda: f"healthz: {srv.healthz()}")
        assert set(anon["store"]) == {"status", "age_s"} and anon["store"]["status"] == "error"
        full = requests.get(srv.url + "/healthz", headers=auth, timeout=5).json()
        assert "full" in full["store"]["error"] and full["store"]["buffered_ticks"] >= 1
        # store_down pages once, at critical, saying why.
        [fired] = webhook_receiver.wait_for(1, timeout=30)
        [alert] = fired.json()["alerts"]
        assert (alert["rule"], alert["event"], alert["severity"]) == \
            ("store_down", "firing", "critical")
        assert "full" in (alert["error"] or "")
        # A page that reconnects during the outage gets what it missed, from memory.
        seen = page.seqs()
        ack = page.resume(seen[-6])
        assert "error" not in ack, ack
        assert [s["seq"] for s in ack["samples"]][:5] == seen[-5:]
        outage = [q for q in page.seqs() if q > before]
        assert len(outage) >= 8

        filler.unlink()                               # space again: recovers by itself
        wait_until(lambda: (h := srv.healthz()) and h["status"] == "ok", timeout=30,
                   message=lambda: f"healthz: {srv.healthz()}")
        webhook_receiver.wait_for(2, timeout=30)
        after = max(page.seqs())
        wait_until(lambda: len([q for q in page.seqs() if q > after]) >= 3, timeout=20,
                   message="no live samples after the recovery")
    finally:
        page.close()

    seqs = page.seqs()
    # Sequence numbers continued through the outage: no gap, no repeat.
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    # The outage's samples are in the store once, with the numbers and times the page saw.
    seen_at = {s["seq"]: (s["ts"], s["source"]) for s in page.samples}
    reader = Store(srv.data_dir)          # the stored samples, read as the dashboard reads them
    try:
        every = reader.after(0)
    finally:
        reader.close()
    stored = {s.seq: (s.ts, s.source) for s in every if seqs[0] <= (s.seq or 0) <= seqs[-1]}
    keys = Counter((s.ts, s.source, tuple(sorted(s.labels.items()))) for s in every)
    twice = sum(1 for n in keys.values() if n > 1)
    db = sqlite3.connect(f"file:{srv.data_dir / 'history.sqlite3'}?mode=ro", uri=True)
    try:
        messages = db.execute("SELECT idempotency_key, state FROM outbox_messages"
                              " WHERE channel = 'pager' ORDER BY id").fetchall()
    finally:
        db.close()
    assert {q: stored.get(q) for q in outage} == {q: seen_at[q] for q in outage}
    assert twice == 0
    # store_down: one page, one resolved, nothing more.
    events = store_down_events(webhook_receiver)
    assert [e for e, _ in events] == ["firing", "resolved"], events
    assert len({k for _, k in events}) == 2
    # The page sent from memory is on record once the store writes again, once, as delivered.
    assert messages == [(k, "delivered") for _, k in events]
    # The log says it, once (not a traceback per tick).
    log = srv.log()
    assert "Traceback" not in log, log[-3000:]
    assert 1 <= log.count("store cannot write") <= 2, log[-3000:]


def test_a_message_sent_while_the_store_cannot_mark_it_is_not_sent_again(
        small_disk, webhook_receiver):
    """The outbox's own at-least-once boundary on a full disk: sent, the mark cannot be written;
    the sender keeps the outcome in memory instead of sending it again every few seconds."""
    clock = Clock()
    svc, _ = make_service(small_disk / "data", [{"kind": "webhook", "name": "hook",
                                                 "url": webhook_receiver.url}],
                          rules={"db_pool_utilization": {"for_s": 0}}, clock=clock)
    conn = svc.outbox._connect()
    try:
        [fired] = svc.process([pool(99.0, clock.now)], clock.now)
        assert svc.outbox.step(conn, "hook") == 0              # the message, in the store
        filler = fill(small_disk)
        for _ in range(3):                                     # the sender's tries, 5 s apart
            with pytest.raises(Exception, match="full"):
                svc.outbox.step(conn, "hook")
            clock.advance(5)
        assert len(webhook_receiver.requests) == 1
        filler.unlink()
        drain(svc, clock)
        assert len(webhook_receiver.requests) == 1
        assert svc.overview()["channels"][0]["state"] == "ok"
        assert [e["kind"] for e in svc.state.events(fired.alert_id)] == ["firing"]
    finally:
        conn.close()
        svc.close()
