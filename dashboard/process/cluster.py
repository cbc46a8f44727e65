"""Several processes, one collector: a leader lock in Redis, and collector status for web instances.

With ``message_queue`` configured, every process that may collect (``collect``, or ``serve``
without ``--web-only``) competes for one Redis key. The holder runs the collectors, the alert
engine and the outbox sender; the others stand by and poll. The lock expires ``ttl_s`` after its
holder stops renewing it (crash, kill -9, network cut), so a standby takes over within
``ttl_s + poll_s`` seconds (6 s by default, the issue allows 10).

A holder that finds its lock gone (it was paused longer than the TTL and someone else took over)
must not go on sending notifications: ``on_lose`` is called and the process exits, to be
restarted as a standby by its supervisor. Nothing of the alert state lives only in memory
(engine state and outbox are in the store), so the new leader neither re-pages nor forgets.
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
    def __init__(self, client, key: str = LOCK_KEY, ttl_s: float = 5.0, poll_s: float = 1.0,
                 identity: str | None = None) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.poll_s = poll_s
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.is_leader = False
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        return bool(self.client.set(self.key, self.identity, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.identity, self.ttl_ms]))

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
        """Poll in a background thread: call ``on_gain`` once when we become leader, and
        ``on_lose`` if we lose the lock while leading."""
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    if self.is_leader:
                        if not self.renew():
                            self.is_leader = False
                            log.error("lost the collector leader lock to %s", self.holder())
                            on_lose()
                            return
                    elif self.try_acquire():
                        self.is_leader = True
                        log.info("collector leader: %s", self.identity)
                        on_gain()
                except Exception:  # noqa: BLE001 - Redis unreachable: keep trying
                    log.warning("leader lock: Redis not reachable", exc_info=True)
                    if self.is_leader and self._stop.wait(self.ttl_ms / 1000 * 0.8):
                        return
                self._stop.wait(self.poll_s)

        self._thread = threading.Thread(target=loop, name="leader-lock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
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
    lock = LeaderLock(client)

    def gained() -> None:
        runtime.runner.add_job(
            lambda: publish_status(client, runtime.runner.status(), lock.identity),
            trigger="interval", seconds=2)
        runtime.start()

    def lost() -> None:
        # Someone else leads now: stop sending anything at once, and let the supervisor
        # (systemd, gunicorn's master) start us again as a standby.
        log.error("exiting: another process leads the collectors now")
        if on_lose is not None:
            on_lose()
        os._exit(75)

    lock.run(on_gain=gained, on_lose=lost)
    runtime.on_stop.append(lock.stop)
    runtime.leader_lock = lock
    return lock
