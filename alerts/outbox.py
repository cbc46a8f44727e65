"""A durable outbox in the store's SQLite file, and one sender thread per channel.

Delivery, step by step, and what a ``kill -9`` at each point does:

1. The alert service writes the engine's new state, the alert's history and one outbox *item*
   per (alert transition, channel) in ONE transaction. Killed before the commit: nothing was
   recorded, the restored engine state is the old one and the next samples produce the same
   transition again. Killed after: the item is on disk and will be sent.
2. The channel's sender groups waiting items into one *message* (storm control, below), renders
   its body once and stores it with its idempotency key, in ONE transaction.
3. It sends the message (outside any transaction: no lock is held during network I/O) and then
   marks it delivered. This is the at-least-once boundary: killed after the receiver answered
   2xx but before the mark was committed, the message is sent again after the restart, with the
   SAME body and the SAME ``Idempotency-Key`` (email: the same ``Message-ID``), so a receiver
   that remembers keys it has seen drops the copy. Every other crash point sends exactly once.

Retries: 3 retries with exponential backoff (the docs' figure; 2 s, 4 s, 8 s by default), in
order: a channel's next message waits for the one ahead of it, so "resolved" never overtakes
its "firing". A permanent failure (4xx) marks the message failed and the channel as failing
permanently (shown on the alerts page) until a later message gets through.

Storm control: the first message to a channel goes at once; transitions that arrive within
``group_window_s`` (30 s) of the previous message go out together as one message when that
window ends. Once a channel has had ``max_per_hour`` (20) messages in the past hour, waiting
items are sent as one digest every ``digest_every_s`` (5 min) instead.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from alerts.notifiers import DeliveryError, Notifier

log = logging.getLogger(__name__)

IDLE_POLL_S = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    event TEXT NOT NULL,
    item TEXT NOT NULL,
    created_at REAL NOT NULL,
    message_id INTEGER,                  -- NULL: waiting to be grouped into a message
    UNIQUE (channel, idempotency_key)
);
CREATE INDEX IF NOT EXISTS outbox_items_waiting ON outbox_items(channel, message_id);
CREATE INDEX IF NOT EXISTS outbox_items_alert ON outbox_items(alert_id);
CREATE TABLE IF NOT EXISTS outbox_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    body TEXT NOT NULL,
    items INTEGER NOT NULL,
    digest INTEGER NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,                 -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_messages_channel ON outbox_messages(channel, state, id);
CREATE TABLE IF NOT EXISTS outbox_channels (
    channel TEXT PRIMARY KEY,
    state TEXT NOT NULL,                 -- ok | retrying | failing | failed_permanently
    error TEXT,
    since REAL NOT NULL,
    last_ok REAL
);
"""


@dataclass(frozen=True)
class Policy:
    retries: int = 3
    backoff_s: float = 2.0
    group_window_s: float = 30.0
    max_per_hour: int = 20
    digest_every_s: float = 300.0


def enqueue(conn: sqlite3.Connection, channel: str, key: str, item: Mapping[str, Any],
            now: float) -> bool:
    """Add an item inside the caller's transaction. A key already queued is ignored."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO outbox_items (channel, idempotency_key, alert_id, event, item,"
        " created_at) VALUES (?,?,?,?,?,?)",
        (channel, key, item["alert_id"], item["event"], json.dumps(item), now))
    return cur.rowcount == 1


class Outbox:
    def __init__(self, connect: Callable[[], sqlite3.Connection], notifiers: Mapping[str, Notifier],
                 policy: Policy = Policy(), clock: Callable[[], float] = time.time,
                 policies: Mapping[str, Policy] | None = None) -> None:
        self._connect = connect
        self.notifiers = dict(notifiers)
        self.policy = policy                        # default; ``policies`` per channel
        self.policies = dict(policies or {})
        self._clock = clock
        conn = connect()
        try:
            conn.executescript(SCHEMA)
        finally:
            conn.close()
        self._senders: dict[str, _Sender] = {}

    # --- one step of one channel's sender (also called directly by tests) -----------------------

    def step(self, conn: sqlite3.Connection, channel: str) -> float | None:
        """Do the next thing due on ``channel``. Returns 0 to go on at once, the seconds until
        something is due, or None when nothing waits."""
        now = self._clock()
        policy = self.policies.get(channel, self.policy)
        head = conn.execute(
            "SELECT id, idempotency_key, body, attempts, next_attempt_at FROM outbox_messages"
            " WHERE channel = ? AND state = 'pending' ORDER BY id LIMIT 1", (channel,)).fetchone()
        if head:
            if head[4] > now:
                return head[4] - now
            self._attempt(conn, channel, head)
            return 0
        waiting = conn.execute(
            "SELECT id, idempotency_key, item FROM outbox_items WHERE channel = ? AND"
            " message_id IS NULL ORDER BY id", (channel,)).fetchall()
        if not waiting:
            return None
        last = conn.execute("SELECT MAX(created_at) FROM outbox_messages WHERE channel = ?",
                            (channel,)).fetchone()[0]
        recent = conn.execute("SELECT COUNT(*) FROM outbox_messages WHERE channel = ? AND"
                              " created_at > ?", (channel, now - 3600)).fetchone()[0]
        digest = recent >= policy.max_per_hour
        wait = policy.digest_every_s if digest else policy.group_window_s
        due = (last or 0.0) + wait
        if due > now:
            return due - now
        self._compose(conn, channel, waiting, digest, now)
        return 0

    def _compose(self, conn: sqlite3.Connection, channel: str, waiting: list[tuple], digest: bool,
                 now: float) -> None:
        keys = [k for _, k, _ in waiting]
        key = keys[0] if len(keys) == 1 else (
            "group-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32])
        items = [json.loads(it) for _, _, it in waiting]
        body = self.notifiers[channel].render(items, key, channel, now, digest)
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "INSERT INTO outbox_messages (channel, idempotency_key, body, items, digest,"
                " created_at, state, next_attempt_at) VALUES (?,?,?,?,?,?, 'pending', ?)",
                (channel, key, json.dumps(body), len(items), int(digest), now, now))
            conn.executemany("UPDATE outbox_items SET message_id = ? WHERE id = ?",
                             [(cur.lastrowid, i) for i, _, _ in waiting])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _attempt(self, conn: sqlite3.Connection, channel: str, head: tuple) -> None:
        msg_id, key, body, attempts, _ = head
        policy = self.policies.get(channel, self.policy)
        error: DeliveryError | None = None
        try:
            self.notifiers[channel].send(json.loads(body), key)
        except DeliveryError as e:
            error = e
        except Exception as e:  # noqa: BLE001 - a bug in one channel must not stop the sender
            log.exception("channel %s: sending failed unexpectedly", channel)
            error = DeliveryError(f"{type(e).__name__}: {e}", permanent=False)
        now = self._clock()
        attempts += 1
        if error is None:
            self._finish(conn, msg_id, "delivered", attempts, None, now)
            self._channel_state(conn, channel, "ok", None, now)
            return
        log.warning("channel %s: attempt %d of message %d failed: %s", channel, attempts, msg_id, error)
        if error.permanent or attempts > policy.retries:
            self._finish(conn, msg_id, "failed", attempts, str(error), now)
            self._channel_state(conn, channel, "failed_permanently" if error.permanent else "failing",
                                str(error), now)
            return
        delay = policy.backoff_s * 2 ** (attempts - 1)
        conn.execute("UPDATE outbox_messages SET attempts = ?, next_attempt_at = ?, last_error = ?"
                     " WHERE id = ?", (attempts, now + delay, str(error), msg_id))
        self._channel_state(conn, channel, "retrying", str(error), now)

    @staticmethod
    def _finish(conn, msg_id: int, state: str, attempts: int, error: str | None, now: float) -> None:
        conn.execute("UPDATE outbox_messages SET state = ?, attempts = ?, last_error = ?,"
                     " done_at = ? WHERE id = ?", (state, attempts, error, now, msg_id))

    @staticmethod
    def _channel_state(conn, channel: str, state: str, error: str | None, now: float) -> None:
        row = conn.execute("SELECT state FROM outbox_channels WHERE channel = ?", (channel,)).fetchone()
        if row and row[0] == state and state == "ok":
            conn.execute("UPDATE outbox_channels SET last_ok = ? WHERE channel = ?", (now, channel))
            return
        conn.execute(
            "INSERT INTO outbox_channels (channel, state, error, since, last_ok) VALUES (?,?,?,?,?)"
            " ON CONFLICT(channel) DO UPDATE SET state = excluded.state, error = excluded.error,"
            " since = CASE WHEN outbox_channels.state = excluded.state THEN outbox_channels.since"
            " ELSE excluded.since END, last_ok = COALESCE(excluded.last_ok, outbox_channels.last_ok)",
            (channel, state, error, now, now if state == "ok" else None))

    # --- what the page shows --------------------------------------------------------------------

    def status(self, conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {
            name: {"channel": name, "kind": n.kind, "state": "ok", "error": None, "since": None,
                   "last_ok": None, "waiting": 0, "failed": 0} for name, n in self.notifiers.items()}
        for ch, state, error, since, last_ok in conn.execute(
                "SELECT channel, state, error, since, last_ok FROM outbox_channels"):
            if ch in out:
                out[ch].update(state=state, error=error, since=since, last_ok=last_ok)
        for ch, n in conn.execute("SELECT channel, COUNT(*) FROM outbox_messages WHERE state ="
                                  " 'pending' GROUP BY channel"):
            if ch in out:
                out[ch]["waiting"] += n
        for ch, n in conn.execute("SELECT channel, COUNT(*) FROM outbox_items WHERE message_id IS"
                                  " NULL GROUP BY channel"):
            if ch in out:
                out[ch]["waiting"] += n
        for ch, n in conn.execute("SELECT channel, COUNT(*) FROM outbox_messages WHERE state ="
                                  " 'failed' AND done_at > ? GROUP BY channel",
                                  (self._clock() - 86400,)):
            if ch in out:
                out[ch]["failed"] = n
        return out

    def prune(self, conn: sqlite3.Connection, keep_s: float = 30 * 86400) -> None:
        cut = self._clock() - keep_s
        conn.execute("DELETE FROM outbox_items WHERE message_id IN (SELECT id FROM outbox_messages"
                     " WHERE state != 'pending' AND done_at < ?)", (cut,))
        conn.execute("DELETE FROM outbox_messages WHERE state != 'pending' AND done_at < ?", (cut,))

    # --- threads ----------------------------------------------------------------------------------

    def start(self) -> None:
        for name in self.notifiers:
            if name not in self._senders:
                s = self._senders[name] = _Sender(self, name)
                s.start()

    def wake(self) -> None:
        for s in self._senders.values():
            s.wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        senders, self._senders = list(self._senders.values()), {}
        for s in senders:
            s.stopping.set()
            s.wake.set()
        for s in senders:
            s.thread.join(timeout)


class _Sender:
    """One thread per channel, so a slow or failing channel never delays another."""

    def __init__(self, outbox: Outbox, channel: str) -> None:
        self.outbox, self.channel = outbox, channel
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"alert-sender-{channel}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        conn = self.outbox._connect()
        try:
            while not self.stopping.is_set():
                self.wake.clear()        # before the step: a wake during the step is not lost
                try:
                    delay = self.outbox.step(conn, self.channel)
                except Exception:  # noqa: BLE001 - e.g. the database busy for too long
                    log.exception("alert sender %s", self.channel)
                    delay = 5.0
                if delay == 0:
                    continue
                # Idle: look again every few seconds; another process (a web instance ending a
                # silence) may have queued items without being able to wake this thread.
                self.wake.wait(IDLE_POLL_S if delay is None else min(delay, IDLE_POLL_S))
        finally:
            conn.close()
