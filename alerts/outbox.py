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

Retries: 3 retries with exponential backoff (the docs' figure; 2 s, 4 s, 8 s by default), or
after the receiver's ``Retry-After`` when it gave one (capped at an hour), in order: a channel's
next message waits for the one ahead of it, so "resolved" never overtakes its "firing". A
permanent failure (4xx) marks the message failed and the channel as failing permanently (shown on
the alerts page) until a later message gets through.

Storm control: the first message to a channel goes at once; transitions that arrive within
``group_window_s`` (30 s) of the previous message go out together as one message when that
window ends. Once a channel has had ``max_per_hour`` (20) messages in the past hour, waiting
items are sent as one digest every ``digest_every_s`` (5 min) instead.

While the store cannot write (a full disk), step 1 cannot happen: the alert service hands the
items to ``send_direct`` instead. They wait in memory (at most ``DIRECT_MAX`` per channel), go
out before anything of the store's outbox (whatever waits at the same moment as one message,
same retries and backoff), and the message, its items and its outcome are recorded once the
store writes again (and never sent again). A message of the store's outbox that was sent but
could not be marked delivered is kept in memory as done, not sent again every few seconds; it
is marked when the store writes again. Killed before those records: what only memory knew is
lost (docs/alerts.md, "When the store cannot write").

Fencing (several collector processes, ``dashboard/process/cluster.py``): the leader sets
``fence`` (its token from the store) and ``leading`` (false once its lock may have expired).
Nothing is sent while ``leading()`` is false, and each send is first claimed in the store with
the token (``OutboxRepo.claim``): a leader that lost its lock to a newer one sends nothing more.
"""
from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from alerts.notifiers import DeliveryError, Notifier
from dashboard.config import redact
from dashboard.store.fence import StaleFence
from dashboard.store.outbox import OutboxRepo, PendingMessage, WaitingItem
from dashboard.store.txn import Connection

log = logging.getLogger(__name__)

IDLE_POLL_S = 5.0
DIRECT_MAX = 1_000          # per channel: items waiting in memory, and sent ones not yet recorded
LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class Policy:
    retries: int = 3
    backoff_s: float = 2.0
    group_window_s: float = 30.0
    max_per_hour: int = 20
    digest_every_s: float = 300.0


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt, as the store keeps it."""

    state: str                  # delivered | failed | pending (again at next_attempt_at)
    attempts: int
    error: str | None
    at: float
    next_attempt_at: float
    channel_state: str          # ok | retrying | failing | failed_permanently


@dataclass
class DirectMessage:
    """A message sent from memory while the store could not write (``send_direct``)."""

    key: str
    body: dict[str, Any]
    items: list[tuple[str, dict[str, Any]]]        # (idempotency key, item)
    created_at: float
    outcome: Outcome | None = None


class StaleLease(RuntimeError):
    """The leader lock may have expired: nothing is sent until it is ours again."""


def group_key(keys: Sequence[str]) -> str:
    """A message's idempotency key: its item's, or a hash of its items' keys."""
    return keys[0] if len(keys) == 1 else (
        "group-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32])


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
        # While the store cannot write (each channel's sender alone touches its entries, but
        # for _waiting, which the alert service fills):
        self._memory_lock = threading.Lock()
        self._waiting: dict[str, deque[tuple[str, dict[str, Any]]]] = {}
        self._direct: dict[str, DirectMessage] = {}             # being sent
        self._sent: dict[str, deque[DirectMessage]] = {}        # done, to be recorded
        self._unmarked: dict[str, tuple[int, Outcome]] = {}     # a stored message's outcome
        self._logged_at: dict[str, float] = {}
        self.fence: int | None = None                  # the leader's fencing token
        self.leading: Callable[[], bool] = lambda: True

    def send_direct(self, channel: str, key: str, item: dict[str, Any]) -> None:
        """Send ``item`` from memory (the store cannot take it), and record it afterwards."""
        with self._memory_lock:
            waiting = self._waiting.setdefault(channel, deque())
            if len(waiting) >= DIRECT_MAX:
                lost = waiting.popleft()[0]
                log.error("channel %s: more than %d notifications wait in memory; %s is lost",
                          channel, DIRECT_MAX, lost)
            waiting.append((key, item))
        self.wake()

    # --- one step of one channel's sender (also called directly by tests) -----------------------

    def step(self, conn: Connection, channel: str) -> float | None:
        """Do the next thing due on ``channel``. Returns 0 to go on at once, the seconds until
        something is due, or None when nothing waits. Raises while the store cannot record
        what was done (the sender tries again a few seconds later), and ``StaleFence`` when a
        newer leader exists."""
        if not self.leading():
            return IDLE_POLL_S
        due = self._step_direct(channel)
        if due is not None:
            return due
        now = self._clock()
        policy = self.policies.get(channel, self.policy)
        repo = OutboxRepo(conn, self.fence)
        self._record_memory(repo, channel)
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
        key = group_key([w.key for w in waiting])
        items = [w.item for w in waiting]
        body = self.notifiers[channel].render(items, key, channel, now, digest)
        repo.add_message(channel, key, body, [w.id for w in waiting], digest, now)

    def _attempt(self, repo: OutboxRepo, channel: str, head: PendingMessage) -> None:
        repo.claim(head.id)             # StaleFence: a newer leader sends it, not us
        if not self.leading():          # the lock may have expired while we waited for the store
            raise StaleLease(channel)
        # Kept until the store has it: a send the store cannot mark is not sent again.
        self._unmarked[channel] = (head.id, self._try(channel, head.body, head.key,
                                                      head.attempts))
        self._mark(repo, channel)

    def _try(self, channel: str, body: Mapping[str, Any], key: str, attempts: int) -> Outcome:
        """Send once; what came of it (after ``attempts`` earlier attempts)."""
        policy = self.policies.get(channel, self.policy)
        error: DeliveryError | None = None
        try:
            self.notifiers[channel].send(body, key)
        except DeliveryError as e:
            error = e
        except Exception as e:  # noqa: BLE001 - a bug in one channel must not stop the sender
            log.exception("channel %s: sending failed unexpectedly", channel)
            error = DeliveryError(f"{type(e).__name__}: {e}", permanent=False)
        now = self._clock()
        attempts += 1
        if error is None:
            return Outcome("delivered", attempts, None, now, now, "ok")
        # A receiver's answer is part of the error (shown on the alerts page, sent through the
        # other channels by notify_channel_failing): one that quotes a credential (a proxy
        # echoing the request) is scrubbed of every configured secret, like the logs.
        text = redact.scrub(str(error)) or ""
        log.warning("channel %s: attempt %d of message %s failed: %s", channel, attempts, key, text)
        if error.permanent or attempts > policy.retries:
            return Outcome("failed", attempts, text, now, now,
                           "failed_permanently" if error.permanent else "failing")
        # The receiver's Retry-After (or Telegram's retry_after) wins over our backoff: sooner
        # would only be refused again (429), later would delay the page for nothing.
        wait = (error.retry_after if error.retry_after is not None
                else policy.backoff_s * 2 ** (attempts - 1))
        return Outcome("pending", attempts, text, now, now + wait, "retrying")

    def _mark(self, repo: OutboxRepo, channel: str) -> None:
        """Write the outcome of the stored message last tried on ``channel``."""
        msg_id, o = self._unmarked[channel]
        if o.state == "pending":
            repo.retry_later(msg_id, o.attempts, o.next_attempt_at, o.error or "")
        else:
            repo.finish(msg_id, o.state, o.attempts, o.error, o.at)
        repo.set_channel_state(channel, o.channel_state, o.error, o.at)
        del self._unmarked[channel]

    # --- while the store cannot write -------------------------------------------------------------

    def _step_direct(self, channel: str) -> float | None:
        """Send what waits in memory for ``channel``; None when nothing does."""
        with self._memory_lock:
            msg = self._direct.get(channel)
            if msg is None:
                waiting = list(self._waiting.pop(channel, ()))
                if not waiting:
                    return None
                now = self._clock()
                key = group_key([k for k, _ in waiting])
                body = self.notifiers[channel].render([i for _, i in waiting], key, channel, now,
                                                      False)
                msg = self._direct[channel] = DirectMessage(key, body, waiting, now)
        if msg.outcome is not None and msg.outcome.next_attempt_at > self._clock():
            return msg.outcome.next_attempt_at - self._clock()
        msg.outcome = self._try(channel, msg.body, msg.key,
                                msg.outcome.attempts if msg.outcome else 0)
        if msg.outcome.state != "pending":
            with self._memory_lock:
                del self._direct[channel]
                sent = self._sent.setdefault(channel, deque(maxlen=DIRECT_MAX))
                sent.append(msg)
        return 0

    def _record_memory(self, repo: OutboxRepo, channel: str) -> None:
        """What was done from memory, into the store (raises while it still cannot write)."""
        if channel in self._unmarked:
            self._mark(repo, channel)
        sent = self._sent.get(channel)
        while sent:
            msg = sent[0]
            assert msg.outcome is not None
            repo.add_sent(channel, msg.key, msg.body, msg.items, msg.outcome.state,
                          msg.outcome.attempts, msg.outcome.error, msg.created_at, msg.outcome.at)
            repo.set_channel_state(channel, msg.outcome.channel_state, msg.outcome.error,
                                   msg.outcome.at)
            sent.popleft()

    def failed_step(self, channel: str, e: Exception) -> None:
        """A step that raised (the store busy or full): said once a minute per channel."""
        if isinstance(e, (StaleFence, StaleLease)):
            return                      # said by the fence (once), and by the leader lock
        now = time.monotonic()
        if now - self._logged_at.get(channel, -math.inf) >= LOG_EVERY_S:
            self._logged_at[channel] = now
            log.warning("alert sender %s: %s: %s (trying again every %g s)", channel,
                        type(e).__name__, e, IDLE_POLL_S)

    # --- is it moving? (the watchdog, rule notify_channel_failing) ------------------------------

    def schedule_s(self, channel: str) -> float:
        """A message's retry schedule on ``channel``: from its first attempt to its last (2 + 4
        + 8 s by default), at least the senders' idle poll."""
        p = self.policies.get(channel, self.policy)
        return max(p.backoff_s * float(2 ** p.retries - 1), IDLE_POLL_S)

    def stuck(self, conn: Connection) -> list[str]:
        """Why the outbox is not moving: each channel with a message that has waited longer than
        twice its retry schedule (an item: its group window or digest period, and then that),
        unless it waits for the next attempt its receiver asked for (``_waits_as_asked``).
        Empty when it moves; an empty outbox moves."""
        now = self._clock()
        repo = OutboxRepo(conn)
        states = repo.channel_states()
        out = []
        for ch, u in repo.undelivered().items():
            if ch not in self.notifiers:             # a channel no longer configured
                continue
            limit = 2 * self.schedule_s(ch)
            waited = now - u.oldest_message if u.oldest_message is not None else 0.0
            if u.oldest_item is not None:
                p = self.policies.get(ch, self.policy)
                digest = repo.messages_since(ch, now - 3600) >= p.max_per_hour
                waited = max(waited, now - u.oldest_item
                             - (p.digest_every_s if digest else p.group_window_s))
            if waited > limit and not self._waits_as_asked(repo, ch, states.get(ch) or {}, now, limit):
                error = (states.get(ch) or {}).get("error")
                out.append(f"channel {ch}: a message waits for {waited:.0f} s (more than twice "
                           f"its retry schedule, {limit:g} s)" + (f": {error}" if error else ""))
        with self._memory_lock:
            direct = [(ch, m.created_at) for ch, m in self._direct.items()]
        for ch, created in direct:
            limit = 2 * self.schedule_s(ch)
            if now - created > limit:
                out.append(f"channel {ch}: a message sent from memory waits for "
                           f"{now - created:.0f} s (more than {limit:g} s)")
        return out

    @staticmethod
    def _waits_as_asked(repo: OutboxRepo, channel: str, state: Mapping[str, Any], now: float,
                        limit: float) -> bool:
        """The channel's oldest undelivered message is its head, tried and waiting for its next
        attempt (a receiver's ``Retry-After``, PagerDuty's 30 s after a 429), not overdue by more
        than ``limit``, and nothing was given up on since the channel last delivered: it moves
        as the receiver asked (a retry that fails for good is judged then)."""
        head = repo.head(channel)
        if head is None or not head.attempts or now > head.next_attempt_at + limit:
            return False
        return not repo.failed_counts(state.get("last_ok") or 0.0).get(channel)

    def failing_for(self, conn: Connection) -> dict[str, tuple[float, str | None]]:
        """Each channel: seconds since its first failed attempt with no delivery after it (0 when
        it delivers), and its last error (secret-free: notifiers never quote a hook's URL)."""
        now = self._clock()
        repo = OutboxRepo(conn)
        states = repo.channel_states()
        tried = {ch: u.oldest_tried for ch, u in repo.undelivered().items()
                 if u.oldest_tried is not None}
        out = {}
        for ch in self.notifiers:
            st = states.get(ch) or {}
            failing = st.get("state", "ok") != "ok" and ch in tried
            out[ch] = (max(0.0, now - tried[ch]) if failing else 0.0, st.get("error") if failing else None)
        return out

    # --- what the page shows --------------------------------------------------------------------

    def status(self, conn: Connection) -> dict[str, dict[str, Any]]:
        repo = OutboxRepo(conn)
        out: dict[str, dict[str, Any]] = {
            name: {"channel": name, "kind": n.kind, "state": "ok", "error": None, "since": None,
                   "last_ok": None, "waiting": 0, "failed": 0, "undelivered": 0,
                   "oldest_undelivered_s": None}
            for name, n in self.notifiers.items()}
        for ch, st in repo.channel_states().items():
            if ch in out:
                out[ch].update(st)
        for ch, n in repo.waiting_counts().items():
            if ch in out:
                out[ch]["waiting"] += n
        # What has not arrived (pending, or given up on since the channel last delivered),
        # for a failing channel's notice and its notify_channel_failing alert.
        now = self._clock()
        for ch, u in repo.undelivered().items():
            if ch in out and u.oldest is not None:
                out[ch]["undelivered"] = u.count
                out[ch]["oldest_undelivered_s"] = round(max(0.0, now - u.oldest), 1)
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
                except Exception as e:  # noqa: BLE001 - e.g. the database busy for too long
                    self.outbox.failed_step(self.channel, e)
                    delay = IDLE_POLL_S
                if delay == 0:
                    continue
                # Idle: look again every few seconds; another process (a web instance ending a
                # silence) may have queued items without being able to wake this thread.
                self.wake.wait(IDLE_POLL_S if delay is None else min(delay, IDLE_POLL_S))
        finally:
            conn.close()
