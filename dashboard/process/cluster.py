"""Several processes, one collector: a leader lock in Redis, and collector status for web instances.

With ``message_queue`` configured, every process that may collect (``collect``, or ``serve``
without ``--web-only``) competes for one Redis key. The holder runs the collectors, the alert
engine and the outbox sender; the others stand by and poll. The lock expires ``ttl_s`` after its
holder stops renewing it (crash, kill -9, network cut), so a standby takes over within
``ttl_s + poll_s`` seconds (6 s by default, the issue allows 10).

Fenced: a leader that cannot renew its lock (Redis down, or partitioned away from it) must
stop judging and sending before a standby can take over. Its *lease* ends ``safety`` (0.8) of the
TTL after the start of its last successful renewal, on the monotonic clock: from then on the alert
engine and the outbox do nothing (``lease_valid``), and a watchdog thread stops the collectors,
engine and senders (``on_lose``) even while a renewal call still hangs. The process stays up as a
standby and competes again once it reaches Redis: no exit, no crash loop.

Each time it wins the lock the leader takes a fencing token from the store (``Store.next_fence``,
``dashboard/store/fence.py``); every alert transition and outbox send it writes carries it, and
the store refuses, inside the write's transaction, a token lower than the highest issued. So a
leader paused past its lease (a long GC, a stopped VM) cannot record or send anything once the
next leader has started. Nothing of the alert state lives only in memory (engine state and
outbox are in the store), so the new leader neither re-pages nor forgets.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable

log = logging.getLogger(__name__)

LOCK_KEY = "dashboard:collector-leader"
STATUS_KEY = "dashboard:collector-status"

# Renew only while we still hold it; a plain EXPIRE could extend someone else's lock.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaderLock:
    """The lock, and this process's lease on it.

    ``lease_valid()`` is what the alert engine and the outbox ask before judging and sending:
    true only while we lead and less than ``safety`` of the TTL has passed since the start of
    our last successful renewal (monotonic clock; Redis counts the TTL from when it ran the
    command, which is later). A renewal that hangs (Redis partitioned away) cannot stretch it.
    """

    def __init__(self, client, key: str = LOCK_KEY, ttl_s: float = 5.0, poll_s: float = 1.0,
                 identity: str | None = None, safety: float = 0.8) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.poll_s = poll_s
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.is_leader = False
        self.safety = safety
        self._lease_until = 0.0          # monotonic; past it we may no longer hold the lock
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def lease_valid(self) -> bool:
        return self.is_leader and time.monotonic() < self._lease_until

    def _extend(self, asked_at: float) -> None:
        self._lease_until = asked_at + self.ttl_ms / 1000 * self.safety

    def try_acquire(self) -> bool:
        """Take the lock if it is free (or still ours: we stood down while a renewal hung)."""
        asked = time.monotonic()
        if (self.client.set(self.key, self.identity, nx=True, px=self.ttl_ms)
                or self._renew(keys=[self.key], args=[self.identity, self.ttl_ms])):
            self._extend(asked)
            return True
        return False

    def renew(self) -> bool:
        asked = time.monotonic()
        if self._renew(keys=[self.key], args=[self.identity, self.ttl_ms]):
            self._extend(asked)
            return True
        return False

    def holder(self) -> str | None:
        v = self.client.get(self.key)
        return v.decode() if isinstance(v, bytes) else v

    def release(self) -> None:
        try:
            self._release(keys=[self.key], args=[self.identity])
        except Exception:  # noqa: BLE001 - Redis gone: the lock expires by itself
            log.warning("could not release the leader lock; it expires in %d ms", self.ttl_ms)
        self.is_leader = False

    def run(self, on_gain: Callable[[], None], on_lose: Callable[[], None]) -> None:
        """Poll in a background thread: call ``on_gain`` each time we become leader, and
        ``on_lose`` each time we stop leading: the lock taken by another, or not renewed
        in time (Redis not reachable). Then we stand by and compete again."""
        lost_lock = threading.Lock()

        def step_down(why: str) -> None:
            with lost_lock:
                if not self.is_leader:
                    return
                self.is_leader = False
                self._lease_until = 0.0
            log.error("standing down as collector leader: %s", why)
            try:
                on_lose()
            except Exception:  # noqa: BLE001
                log.exception("stepping down failed")

        def watch() -> None:
            # The lease ends while a renewal may still hang: stop judging and sending now.
            while not self._stop.is_set() and self.is_leader:
                left = self._lease_until - time.monotonic()
                if left <= 0:
                    step_down(f"the lock was not renewed for {self.ttl_ms * self.safety:.0f} ms")
                    return
                self._stop.wait(min(left, self.poll_s))

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    if self.is_leader:
                        if not self.renew():
                            step_down(f"the lock is held by {self.holder()}")
                    elif self.try_acquire():
                        self.is_leader = True
                        log.info("collector leader: %s", self.identity)
                        threading.Thread(target=watch, name="leader-lease", daemon=True).start()
                        try:
                            on_gain()
                        except Exception:  # noqa: BLE001 - e.g. the store cannot give a token
                            log.exception("could not take the lead")
                            step_down("taking the lead failed")
                            self.release()
                except Exception as e:  # noqa: BLE001 - Redis unreachable: keep trying
                    log.warning("leader lock: Redis not reachable (%s)", type(e).__name__)
                    if self.is_leader and time.monotonic() >= self._lease_until:
                        step_down("Redis not reachable")
                self._stop.wait(self.poll_s)

        self._thread = threading.Thread(target=loop, name="leader-lock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.is_leader:
            self.release()


def publish_status(client, status: dict, identity: str, ttl_s: float = 10.0) -> None:
    """The leader's collector status, for /healthz on web-only instances."""
    client.set(STATUS_KEY, json.dumps({"leader": identity, "ts": time.time(),
                                       "collectors": status}), px=int(ttl_s * 1000))


def read_status(client) -> dict | None:
    raw = client.get(STATUS_KEY)
    return json.loads(raw) if raw else None


def take_part(runtime, web_only: bool = False, on_lose: Callable[[], None] | None = None):
    """Start ``runtime``'s collectors in this process, now or once it becomes the leader.

    Without a message queue there is one process and it collects. With one, this process
    competes for the leader lock unless ``web_only``; a process that does not lead reads the
    leader's collector status from Redis for /healthz. Returns the lock (or None).
    """
    settings = runtime.settings
    if not settings.message_queue:
        if not web_only:
            runtime.start()
        return None
    import redis

    client = redis.Redis.from_url(settings.message_queue, socket_timeout=5, socket_connect_timeout=5)

    def leader_status() -> dict:
        try:
            st = read_status(client)
        except Exception:  # noqa: BLE001
            return {"_cluster": {"status": "error", "error": "message queue (Redis) not reachable",
                                 "last_sample_ts": None, "interval_s": None}}
        if st is None:
            return {"_cluster": {"status": "error", "error": "no collector process is leading",
                                 "last_sample_ts": None, "interval_s": None}}
        return st["collectors"]

    runtime.status_reader = leader_status
    if web_only:
        return None
    ttl_s = settings.leader_ttl_s
    # Renewals must not hang longer than the lease: a short socket timeout of their own.
    lock_client = redis.Redis.from_url(settings.message_queue, socket_timeout=ttl_s / 4,
                                       socket_connect_timeout=ttl_s / 4)
    lock = LeaderLock(lock_client, ttl_s=ttl_s, poll_s=min(1.0, ttl_s / 5))
    alerting = runtime.alerting
    if alerting is not None:
        alerting.leading = alerting.outbox.leading = lock.lease_valid
    runtime.runner.add_job(
        lambda: publish_status(client, runtime.runner.status(), lock.identity),
        trigger="interval", seconds=2)
    standing_down = threading.Event()
    changing = threading.Lock()     # the lease may end while we are still taking the lead

    def gained() -> None:
        with changing:
            standing_down.clear()
            token = runtime.store.next_fence()
            if alerting is not None:
                alerting.set_fence(token)
            log.info("collector leader %s: fencing token %d", lock.identity, token)
            runtime.start()

    def lost() -> None:
        # Judging and sending stopped already (the lease); stop collecting too, and stand by.
        with changing:
            standing_down.set()
            runtime.stop()
            # The alert service keeps its token: a write of a judgement begun before the
            # lease ended is refused by the store once another process leads.
            if on_lose is not None:
                on_lose()
        log.error("standing by: another process may lead the collectors now")

    def stop_lock() -> None:
        if not standing_down.is_set():
            lock.stop()

    lock.run(on_gain=gained, on_lose=lost)
    runtime.on_stop.append(stop_lock)
    runtime.leader_lock = lock
    return lock
