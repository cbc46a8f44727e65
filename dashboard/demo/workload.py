"""The demo's workload: customers, a mail worker, and the trouble that crosses thresholds on
purpose, phase by phase (``timing``). Every thread checks the schedule and the stop event; none
sleeps past a stop for more than half a second.

- customers (3 threads, ~9 requests/s): product pages, the home page, checkouts; during the
  cold-cache phase most product pages ask for keys that were never cached;
- reports (7 threads, slow phase only): ``/report`` on the shop, so the slow statements come
  from the application and occupy its workers as they would in production;
- the surge: persistent connections opened as the shop's account until ``Threads_connected``
  is 85 % of ``mysql.pool_capacity``, held, then closed;
- a bulk import during the cold-cache phase (large keys with a TTL: memory and evictions);
- the mail worker: takes jobs off ``queue:emails`` in batches, stops during the mail outage,
  bounces one job per cycle to ``queue:emails:failed``; the newsletter adds 75 jobs at once.
"""
from __future__ import annotations

import http.client
import json
import math
import random
import threading
import time
from typing import Callable, cast
from urllib.parse import urlsplit

import pymysql
import redis

from dashboard.demo.configfile import POOL_CAPACITY
from dashboard.demo.shop import EMAIL_QUEUE, HOT_PRODUCTS
from dashboard.demo.timing import Schedule, fmt

FAILED_QUEUE = EMAIL_QUEUE + ":failed"
SURGE_SHARE = 0.85
NEWSLETTER_JOBS = 75


class Workload:
    def __init__(self, schedule: Schedule, shop_url: str, shop_db: dict, redis_url: str,
                 say: Callable[[str], None], stop: threading.Event) -> None:
        self.schedule, self.say, self.stop = schedule, say, stop
        u = urlsplit(shop_url)
        self.shop = (u.hostname or "127.0.0.1", u.port or 80)
        self.shop_db = {**shop_db, "database": "shop", "autocommit": True, "connect_timeout": 5,
                        "read_timeout": 10}
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.threads: list[threading.Thread] = []
        self.surge_connections: list[pymysql.Connection] = []

    def start(self) -> None:
        jobs: list[tuple[str, Callable[[], None]]] = [
            *((f"customer-{i}", self.customer) for i in range(3)),
            *((f"report-{i}", self.reporter) for i in range(7)),
            ("surge", self.surge), ("bulk-import", self.bulk_import), ("mailer", self.mailer),
            ("newsletter", self.newsletter), ("phases", self.announce)]
        for name, fn in jobs:
            t = threading.Thread(target=self._guard, args=(name, fn), name=f"demo-{name}", daemon=True)
            t.start()
            self.threads.append(t)

    def _guard(self, name: str, fn: Callable[[], None]) -> None:
        """Run a part of the workload; a failure (say, MariaDB restarting) pauses it, no more."""
        while not self.stop.is_set():
            try:
                fn()
                return
            except (OSError, pymysql.MySQLError, redis.RedisError, http.client.HTTPException) as e:
                if self.stop.is_set():
                    return
                self.say(f"{name}: {type(e).__name__}: {e}; retrying in 2 s")
                self.stop.wait(2)

    def join(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._close_surge()
        self.redis.close()

    # --- HTTP to the shop -------------------------------------------------------------------

    def _call(self, method: str, path: str) -> int:
        conn = http.client.HTTPConnection(*self.shop, timeout=30)
        try:
            conn.request(method, path, body=b"{}" if method == "POST" else None)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def customer(self) -> None:
        while not self.stop.is_set():
            r = random.random()
            if r < 0.65:
                cold = self.schedule.active("cache") and random.random() < 0.8
                pid = random.randint(10**6, 10**9) if cold else random.randint(1, HOT_PRODUCTS)
                self._call("GET", f"/product/{pid}")
            elif r < 0.88:
                self._call("GET", "/")
            else:
                self._call("POST", "/checkout")
            self.stop.wait(random.expovariate(1 / 0.3))

    def reporter(self) -> None:
        while not self.stop.is_set():
            if self.schedule.active("slow"):
                self._call("GET", "/report")
            else:
                self.stop.wait(0.5)

    # --- the connection surge -----------------------------------------------------------------

    def _connected(self) -> int:
        with self.surge_connections[0].cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            return int(cur.fetchone()[1])

    def _close_surge(self) -> None:
        while self.surge_connections:
            try:
                self.surge_connections.pop().close()
            except pymysql.MySQLError:
                pass

    def surge(self) -> None:
        target = math.ceil(SURGE_SHARE * POOL_CAPACITY)
        try:
            while not self.stop.is_set():
                if not self.schedule.active("surge"):
                    if self.surge_connections:
                        self._close_surge()
                        self.say("surge over: connections released")
                    self.stop.wait(0.5)
                    continue
                if not self.surge_connections:
                    self.surge_connections.append(pymysql.connect(**self.shop_db))
                # Top up (or trim) each second: other clients come and go during the hold.
                missing = target - self._connected()
                for _ in range(min(missing, 60 - len(self.surge_connections))):
                    self.surge_connections.append(pymysql.connect(**self.shop_db))
                for _ in range(min(-missing, len(self.surge_connections) - 1)):
                    self.surge_connections.pop().close()
                self.stop.wait(1)
        finally:
            self._close_surge()

    # --- the cache ------------------------------------------------------------------------------

    def bulk_import(self) -> None:
        """Large keys with a TTL while the cache is cold: memory climbs, then LRU evicts."""
        blob = b"x" * 20_000
        n = 0
        while not self.stop.is_set():
            if self.schedule.active("cache"):
                n += 1
                self.redis.set(f"import:{n}", blob, ex=60)
                self.stop.wait(0.02)
            else:
                self.stop.wait(0.5)

    # --- the queue -------------------------------------------------------------------------------

    def mailer(self) -> None:
        """Sends queued e-mails in batches every few seconds, like a cron-driven worker."""
        batch_every = max(1.0, self.schedule.timing.s(3))
        failed_cycle = -1
        while not self.stop.wait(batch_every):
            if self.schedule.active("backlog"):
                continue                               # the mail server is down
            while not self.stop.is_set() and not self.schedule.active("backlog"):
                item = self.redis.lpop(EMAIL_QUEUE)
                if item is None:
                    break
                cycle, due = self.schedule.reached("failure")
                if due and cycle != failed_cycle:
                    failed_cycle = cycle
                    job = json.loads(cast(bytes, item))
                    job.update(error="550 mailbox unavailable", failed_at=time.time())
                    self.redis.rpush(FAILED_QUEUE, json.dumps(job))
                    self.redis.ltrim(FAILED_QUEUE, -100, -1)
                    self.say("mailer: one job bounced (550) and went to queue:emails:failed")
                    continue
                self.stop.wait(0.1)                    # "sending"

    def newsletter(self) -> None:
        sent_cycle = -1
        while not self.stop.wait(0.5):
            cycle = self.schedule.cycle()
            if not self.schedule.active("backlog") or cycle == sent_cycle:
                continue
            sent_cycle = cycle
            spread = self.schedule.timing.s(10) / NEWSLETTER_JOBS
            for i in range(NEWSLETTER_JOBS):
                job = {"type": "newsletter", "n": i, "enqueued_at": time.time()}
                self.redis.rpush(EMAIL_QUEUE, json.dumps(job))
                if self.stop.wait(spread):
                    return

    # --- the console ---------------------------------------------------------------------------

    def announce(self) -> None:
        was: dict[str, bool] = {}
        while not self.stop.wait(0.5):
            cycle, t = self.schedule.position()
            for p in self.schedule.timing.phases:
                now = p.active(t)
                if now != was.get(p.name, False) and p.end - p.start > 1:
                    what = p.what.split(" -> ")[0]
                    self.say(f"cycle {cycle + 1} at {fmt(t)}: "
                             + (f"begins: {what}" if now else f"ends: {p.name}"))
                was[p.name] = now
