"""The outbox's tables: items waiting per channel, the messages made of them, channel health.

* ``outbox_items``: one per (alert transition, channel), written in the alert service's
  transaction; grouped into a message later (``message_id``).
* ``outbox_messages``: what a channel's sender sends (body rendered once, idempotency key), its
  attempts and its outcome.
* ``outbox_channels``: each channel's delivery state for the alerts page.

The delivery logic (grouping, retries, backoff, senders) is ``alerts/outbox.py``'s; this module
only keeps what it decides. With ``fence`` set (the collector leader's token,
``dashboard/store/fence.py``), items, messages and each send (``claim``, before the network call,
and its outcome) are written only while no newer leader exists: ``StaleFence`` otherwise.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from dashboard.store import fence as fencing
from dashboard.store.txn import Connection, immediate

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
    fence INTEGER,                       -- the leader's fencing token (store/fence.py)
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
    done_at REAL,
    fence INTEGER                        -- token of the leader that last sent it
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
class PendingMessage:
    id: int
    key: str                             # idempotency key
    body: dict[str, Any]                 # what the channel's notifier rendered
    attempts: int
    next_attempt_at: float


@dataclass(frozen=True)
class Undelivered:
    """What a channel has not delivered: counts, and creation times of the oldest."""
    messages: int
    oldest_message: float | None
    oldest_tried: float | None           # the oldest message tried at least once
    items: int = 0                       # not yet grouped into a message
    oldest_item: float | None = None

    @property
    def count(self) -> int:
        return self.messages + self.items

    @property
    def oldest(self) -> float | None:
        return min((t for t in (self.oldest_message, self.oldest_item) if t is not None),
                   default=None)


@dataclass(frozen=True)
class WaitingItem:
    id: int
    key: str
    item: dict[str, Any]


class OutboxRepo:
    """The outbox tables through one connection (the caller's: the alert service queues items
    inside its own transaction; each sender thread has its connection)."""

    def __init__(self, conn: Connection, fence: int | None = None) -> None:
        self.conn = conn
        self.fence = fence                     # the leader's fencing token; None: not fenced
        self._fencer = fencing.SqliteFence(conn)

    def create(self) -> None:
        self.conn.executescript(SCHEMA)
        fencing.create(self.conn)
        fencing.add_column(self.conn, "outbox_items", "fence")
        fencing.add_column(self.conn, "outbox_messages", "fence")

    def check_fence(self) -> None:
        self._fencer.check(self.fence)

    def enqueue(self, channel: str, key: str, item: Mapping[str, Any], now: float) -> bool:
        """Queue an item (with its ``alert_id`` and ``event``) inside the caller's transaction.
        A key already queued on the channel is ignored: False. Fenced."""
        self.check_fence()
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO outbox_items (channel, idempotency_key, alert_id, event, item,"
            " created_at, fence) VALUES (?,?,?,?,?,?,?)",
            (channel, key, item["alert_id"], item["event"], json.dumps(item), now, self.fence))
        return cur.rowcount == 1

    # --- a channel's sender ---------------------------------------------------------------------

    def head(self, channel: str) -> PendingMessage | None:
        """The channel's oldest message not yet delivered nor failed."""
        row = self.conn.execute(
            "SELECT id, idempotency_key, body, attempts, next_attempt_at FROM outbox_messages"
            " WHERE channel = ? AND state = 'pending' ORDER BY id LIMIT 1", (channel,)).fetchone()
        if row is None:
            return None
        return PendingMessage(row[0], row[1], json.loads(row[2]), row[3], row[4])

    def waiting(self, channel: str) -> list[WaitingItem]:
        """Items not yet in a message, oldest first."""
        return [WaitingItem(i, k, json.loads(it)) for i, k, it in self.conn.execute(
            "SELECT id, idempotency_key, item FROM outbox_items WHERE channel = ? AND"
            " message_id IS NULL ORDER BY id", (channel,))]

    def last_message_at(self, channel: str) -> float | None:
        last: float | None = self.conn.execute(
            "SELECT MAX(created_at) FROM outbox_messages WHERE channel = ?", (channel,)).fetchone()[0]
        return last

    def messages_since(self, channel: str, since: float) -> int:
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM outbox_messages WHERE channel = ? AND created_at > ?",
            (channel, since)).fetchone()[0])

    def add_message(self, channel: str, key: str, body: Mapping[str, Any], item_ids: Sequence[int],
                    digest: bool, now: float) -> None:
        """A pending message made of ``item_ids``, due now: one transaction (fenced)."""
        try:
            with immediate(self.conn):
                self.check_fence()
                cur = self.conn.execute(
                    "INSERT INTO outbox_messages (channel, idempotency_key, body, items, digest,"
                    " created_at, state, next_attempt_at, fence)"
                    " VALUES (?,?,?,?,?,?, 'pending', ?, ?)",
                    (channel, key, json.dumps(body), len(item_ids), int(digest), now, now,
                     self.fence))
                self.conn.executemany("UPDATE outbox_items SET message_id = ? WHERE id = ?",
                                      [(cur.lastrowid, i) for i in item_ids])
        except fencing.StaleFence:
            self._fencer.count_refused()
            raise

    def add_sent(self, channel: str, key: str, body: Mapping[str, Any],
                 items: Sequence[tuple[str, Mapping[str, Any]]], state: str, attempts: int,
                 error: str | None, created_at: float, done_at: float) -> None:
        """A message sent while the store could not write, recorded afterwards with its items
        and outcome: one transaction. Items already on record keep their row."""
        with immediate(self.conn):
            cur = self.conn.execute(
                "INSERT INTO outbox_messages (channel, idempotency_key, body, items, digest,"
                " created_at, state, attempts, next_attempt_at, last_error, done_at)"
                " VALUES (?,?,?,?,0,?,?,?,?,?,?)",
                (channel, key, json.dumps(body), len(items), created_at, state, attempts,
                 done_at, error, done_at))
            self.conn.executemany(
                "INSERT OR IGNORE INTO outbox_items (channel, idempotency_key, alert_id, event,"
                " item, created_at, message_id) VALUES (?,?,?,?,?,?,?)",
                [(channel, k, it["alert_id"], it["event"], json.dumps(it), created_at,
                  cur.lastrowid) for k, it in items])

    def claim(self, msg_id: int) -> None:
        """Before sending message ``msg_id``: the send is recorded with our token, in a
        transaction of its own; ``StaleFence`` (nothing is sent) if a newer leader exists."""
        try:
            with immediate(self.conn):
                self.check_fence()
                self.conn.execute("UPDATE outbox_messages SET fence = ? WHERE id = ?",
                                  (self.fence, msg_id))
        except fencing.StaleFence:
            self._fencer.count_refused()
            raise

    # An outcome is recorded whatever the token: the message went out (or not), and a new leader
    # must know it, not send it again.

    def retry_later(self, msg_id: int, attempts: int, at: float, error: str) -> None:
        self.conn.execute("UPDATE outbox_messages SET attempts = ?, next_attempt_at = ?,"
                          " last_error = ? WHERE id = ?", (attempts, at, error, msg_id))

    def finish(self, msg_id: int, state: str, attempts: int, error: str | None,
               now: float) -> None:
        """The message is done: ``state`` delivered or failed."""
        self.conn.execute("UPDATE outbox_messages SET state = ?, attempts = ?, last_error = ?,"
                          " done_at = ? WHERE id = ?", (state, attempts, error, now, msg_id))

    def set_channel_state(self, channel: str, state: str, error: str | None, now: float) -> None:
        """``since`` moves only when the state changes; ``last_ok`` is the newest "ok"."""
        row = self.conn.execute("SELECT state FROM outbox_channels WHERE channel = ?",
                                (channel,)).fetchone()
        if row and row[0] == state and state == "ok":
            self.conn.execute("UPDATE outbox_channels SET last_ok = ? WHERE channel = ?",
                              (now, channel))
            return
        self.conn.execute(
            "INSERT INTO outbox_channels (channel, state, error, since, last_ok) VALUES (?,?,?,?,?)"
            " ON CONFLICT(channel) DO UPDATE SET state = excluded.state, error = excluded.error,"
            " since = CASE WHEN outbox_channels.state = excluded.state THEN outbox_channels.since"
            " ELSE excluded.since END, last_ok = COALESCE(excluded.last_ok, outbox_channels.last_ok)",
            (channel, state, error, now, now if state == "ok" else None))

    # --- what the page shows --------------------------------------------------------------------

    def channel_states(self) -> dict[str, dict[str, Any]]:
        """channel -> {state, error, since, last_ok} of the channels that ever sent."""
        return {ch: {"state": state, "error": error, "since": since, "last_ok": last_ok}
                for ch, state, error, since, last_ok in self.conn.execute(
                    "SELECT channel, state, error, since, last_ok FROM outbox_channels")}

    def waiting_counts(self) -> dict[str, int]:
        """channel -> messages pending plus items not yet in a message."""
        out: dict[str, int] = {}
        for ch, n in self.conn.execute("SELECT channel, COUNT(*) FROM outbox_messages WHERE"
                                       " state = 'pending' GROUP BY channel"):
            out[ch] = out.get(ch, 0) + n
        for ch, n in self.conn.execute("SELECT channel, COUNT(*) FROM outbox_items WHERE"
                                       " message_id IS NULL GROUP BY channel"):
            out[ch] = out.get(ch, 0) + n
        return out

    def undelivered(self) -> dict[str, Undelivered]:
        """Per channel, what has not arrived: messages pending, or failed since the channel last
        delivered (given up on, they still never arrived), and items not yet in a message."""
        out: dict[str, Undelivered] = {}
        for ch, n, oldest, tried in self.conn.execute(
                "SELECT m.channel, COUNT(*), MIN(m.created_at), MIN(CASE WHEN m.attempts > 0"
                " THEN m.created_at END) FROM outbox_messages m LEFT JOIN outbox_channels c"
                " ON c.channel = m.channel WHERE m.state = 'pending' OR (m.state = 'failed'"
                " AND m.done_at > COALESCE(c.last_ok, 0)) GROUP BY m.channel"):
            out[ch] = Undelivered(n, oldest, tried)
        for ch, n, oldest in self.conn.execute(
                "SELECT channel, COUNT(*), MIN(created_at) FROM outbox_items"
                " WHERE message_id IS NULL GROUP BY channel"):
            u = out.get(ch, Undelivered(0, None, None))
            out[ch] = Undelivered(u.messages, u.oldest_message, u.oldest_tried, n, oldest)
        return out

    def failed_counts(self, since: float) -> dict[str, int]:
        """channel -> messages that failed after ``since``."""
        return {ch: n for ch, n in self.conn.execute(
            "SELECT channel, COUNT(*) FROM outbox_messages WHERE state = 'failed' AND done_at > ?"
            " GROUP BY channel", (since,))}

    def prune(self, before: float) -> None:
        """Forget messages done before ``before``, and their items."""
        self.conn.execute("DELETE FROM outbox_items WHERE message_id IN (SELECT id FROM"
                          " outbox_messages WHERE state != 'pending' AND done_at < ?)", (before,))
        self.conn.execute("DELETE FROM outbox_messages WHERE state != 'pending' AND done_at < ?",
                          (before,))
