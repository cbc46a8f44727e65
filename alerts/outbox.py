"""A durable outbox (its tables: ``dashboard/store/outbox.py``), and one sender thread per channel.

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
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from alerts.notifiers import DeliveryError, Notifier
from dashboard.store.outbox import OutboxRepo, PendingMessage, WaitingItem
from dashboard.store.txn import Connection

log = logging.getLogger(__name__)

IDLE_POLL_S = 5.0

@dataclass(frozen=True)
class Policy:
    retries: int = 3
    backoff_s: float = 2.0
    group_window_s: float = 30.0
    max_per_hour: int = 20
    digest_every_s: float = 300.0


class Outbox:
    def __init__(self, connect: Callable[[], Connection], notifiers: Mapping[str, Notifier],
                 policy: Policy = Policy(), clock: Callable[[], float] = time.time,
                 policies: Mapping[str, Policy] | None = None) -> None:
        self._connect = connect
        self.notifiers = dict(notifiers)
        self.policy = policy                        # default; ``policies`` per channel
        self.policies = dict(policies or {})
        self._clock = clock
        conn = connect()
        try:
            OutboxRepo(conn).create()
        finally:
            conn.close()
        self._senders: dict[str, _Sender] = {}

    # --- one step of one channel's sender (also called directly by tests) -----------------------

    def step(self, conn: Connection, channel: str) -> float | None:
        """Do the next thing due on ``channel``. Returns 0 to go on at once, the seconds until
        something is due, or None when nothing waits."""
        now = self._clock()
        policy = self.policies.get(channel, self.policy)
        repo = OutboxRepo(conn)
        head = repo.head(channel)
        if head:
            if head.next_attempt_at > now:
                return head.next_attempt_at - now
            self._attempt(repo, channel, head)
            return 0
        waiting = repo.waiting(channel)
        if not waiting:
            return None
        last = repo.last_message_at(channel)
        digest = repo.messages_since(channel, now - 3600) >= policy.max_per_hour
        wait = policy.digest_every_s if digest else policy.group_window_s
        due = (last or 0.0) + wait
        if due > now:
            return due - now
        self._compose(repo, channel, waiting, digest, now)
        return 0

    def _compose(self, repo: OutboxRepo, channel: str, waiting: list[WaitingItem], digest: bool,
                 now: float) -> None:
        keys = [w.key for w in waiting]
        key = keys[0] if len(keys) == 1 else (
            "group-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32])
        items = [w.item for w in waiting]
        body = self.notifiers[channel].render(items, key, channel, now, digest)
        repo.add_message(channel, key, body, [w.id for w in waiting], digest, now)

    def _attempt(self, repo: OutboxRepo, channel: str, head: PendingMessage) -> None:
        policy = self.policies.get(channel, self.policy)
        error: DeliveryError | None = None
        try:
            self.notifiers[channel].send(head.body, head.key)
        except DeliveryError as e:
            error = e
        except Exception as e:  # noqa: BLE001 - a bug in one channel must not stop the sender
            log.exception("channel %s: sending failed unexpectedly", channel)
            error = DeliveryError(f"{type(e).__name__}: {e}", permanent=False)
        now = self._clock()
        attempts = head.attempts + 1
        if error is None:
            repo.finish(head.id, "delivered", attempts, None, now)
            repo.set_channel_state(channel, "ok", None, now)
            return
        log.warning("channel %s: attempt %d of message %d failed: %s", channel, attempts, head.id,
                    error)
        if error.permanent or attempts > policy.retries:
            repo.finish(head.id, "failed", attempts, str(error), now)
            repo.set_channel_state(channel, "failed_permanently" if error.permanent else "failing",
                                   str(error), now)
            return
        delay = policy.backoff_s * 2 ** (attempts - 1)
        repo.retry_later(head.id, attempts, now + delay, str(error))
        repo.set_channel_state(channel, "retrying", str(error), now)

    # --- what the page shows --------------------------------------------------------------------

    def status(self, conn: Connection) -> dict[str, dict[str, Any]]:
        repo = OutboxRepo(conn)
        out: dict[str, dict[str, Any]] = {
            name: {"channel": name, "kind": n.kind, "state": "ok", "error": None, "since": None,
                   "last_ok": None, "waiting": 0, "failed": 0} for name, n in self.notifiers.items()}
        for ch, st in repo.channel_states().items():
            if ch in out:
                out[ch].update(st)
        for ch, n in repo.waiting_counts().items():
            if ch in out:
                out[ch]["waiting"] += n
        for ch, n in repo.failed_counts(self._clock() - 86400).items():
            if ch in out:
                out[ch]["failed"] = n
        return out

    def prune(self, conn: Connection, keep_s: float = 30 * 86400) -> None:
        OutboxRepo(conn).prune(self._clock() - keep_s)

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
