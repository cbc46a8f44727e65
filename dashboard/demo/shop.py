"""The demo's "shop": a real HTTP server on loopback with a fixed pool of workers, like PHP-FPM.

It is what the dashboard watches as the application:

- ``/health`` (probed): a ``SELECT 1`` and a Redis ``PING``.
- ``/status?json``: a PHP-FPM-compatible status page about its own worker pool (active, idle,
  total workers, listen queue, accepted connections, max children reached), read by the
  dashboard's PHP-FPM collector.
- ``/``, ``/product/<id>`` read through the Redis cache (a miss goes to MariaDB and fills the
  cache); ``POST /checkout`` writes an order and queues a confirmation e-mail (a JSON job with
  ``enqueued_at``) on the ``queue:emails`` list; ``/report`` runs the slow statements.
- Every request sends real StatsD packets to the dashboard: ``shop.requests``, ``shop.errors``
  (5xx), ``shop.response_time`` (ms), ``shop.checkout.success`` / ``shop.checkout.failure``.

Each worker thread keeps one persistent MariaDB connection (as PHP's persistent connections
do), so the shop's share of the connection pool is its number of workers.
"""
from __future__ import annotations

import itertools
import json
import random
import re
import socket
import threading
import time
from typing import Any, Callable

import pymysql
import redis

from dashboard.demo.workers import Handler, ShopServer

EMAIL_QUEUE = "queue:emails"
HOT_PRODUCTS = 50                   # what customers usually look at; warm in the cache
PRODUCT_ROWS = 1000


class Statsd:
    """Fire-and-forget StatsD over UDP, one packet per request."""

    def __init__(self, address: tuple[str, int], prefix: str = "shop.") -> None:
        self.address, self.prefix = address, prefix
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, *lines: str) -> None:
        try:
            self.sock.sendto("\n".join(self.prefix + ln for ln in lines).encode(), self.address)
        except OSError:
            pass                     # nobody listening yet: StatsD loses packets by design

    def close(self) -> None:
        self.sock.close()


class Shop:
    def __init__(self, db: dict[str, Any], redis_url: str, statsd: tuple[str, int],
                 checkout_trouble: Callable[[], bool] = lambda: False, workers: int = 8) -> None:
        self.db_params = {**db, "database": "shop", "autocommit": True, "connect_timeout": 5,
                          "read_timeout": 30, "write_timeout": 30}
        self.cache = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.statsd = Statsd(statsd)
        self.checkout_trouble = checkout_trouble
        self.workers = workers
        self._local = threading.local()
        self._checkouts = itertools.count(1)     # while in trouble, every 6th payment fails
        self.server: ShopServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.warm()
        self.server = ShopServer(self, self.workers)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="shop-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server.pool.stop()
        self.statsd.close()
        self.cache.close()

    def warm(self) -> None:
        """Put the popular products in the cache, as a running shop would have them: the demo's
        Redis starts empty, and a cold start would read as a cache problem."""
        conn = pymysql.connect(**self.db_params)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id, name, category, price FROM products WHERE id <= %s",
                            (HOT_PRODUCTS,))
                pipe = self.cache.pipeline(transaction=False)
                for pid, name, category, price in cur.fetchall():
                    doc = {"id": pid, "name": name, "category": category, "price": float(price)}
                    pipe.set(f"product:{pid}", json.dumps(doc), ex=3600)
                pipe.set("page:home", "[]", ex=60)
                pipe.execute()
        finally:
            conn.close()

    # --- one request -------------------------------------------------------------------------

    def _db(self) -> pymysql.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or not conn.open:
            conn = self._local.conn = pymysql.connect(**self.db_params)
        return conn

    def _sql(self, statement: str, args: tuple = ()) -> list[tuple]:
        try:
            with self._db().cursor() as cur:
                cur.execute(statement, args)
                return list(cur.fetchall())
        except pymysql.err.OperationalError:
            self._local.conn = None      # reconnect on the next request
            raise

    def handle(self, h: Handler, method: str) -> None:
        t0 = time.perf_counter()
        path = h.path.split("?", 1)[0]
        lines: list[str] = []
        try:
            status, body, ctype = self._route(method, path, lines)
        except (pymysql.MySQLError, redis.RedisError, OSError) as e:
            status, body, ctype = 500, {"error": type(e).__name__}, "application/json"
        try:
            h.reply(status, body, ctype)
        except OSError:
            pass
        if path == "/status":
            return                       # monitoring traffic is not the shop's traffic
        ms = (time.perf_counter() - t0) * 1000.0
        lines += ["requests:1|c", f"response_time:{ms:.1f}|ms"]
        if status >= 500:
            lines.append("errors:1|c")
        self.statsd.send(*lines)

    def _route(self, method: str, path: str, lines: list[str]) -> tuple[int, Any, str]:
        if path == "/status":
            return 200, self.server.pool.status() if self.server else {}, "application/json"
        if path == "/health":
            self._sql("SELECT 1")
            self.cache.ping()
            return 200, {"status": "ok"}, "application/json"
        if path == "/":
            page = self.cache.get("page:home")
            if page is None:
                rows = self._sql("SELECT id, name FROM products ORDER BY id LIMIT 12")
                page = json.dumps([list(r) for r in rows])
                self.cache.set("page:home", page, ex=60)
            return 200, "<h1>Demo shop</h1>", "text/html"
        m = re.fullmatch(r"/product/(\d{1,9})", path)
        if m:
            return 200, self._product(int(m.group(1))), "application/json"
        if path == "/checkout" and method == "POST":
            return self._checkout(lines)
        if path == "/report":
            return 200, self._report(), "application/json"
        return 404, {"error": "not found"}, "application/json"

    def _product(self, pid: int) -> dict[str, Any]:
        key = f"product:{pid}"
        hit = self.cache.get(key)
        if hit is not None:
            return json.loads(hit)
        row = self._sql("SELECT id, name, category, price FROM products WHERE id = %s",
                        ((pid - 1) % PRODUCT_ROWS + 1,))[0]
        doc = {"id": pid, "name": row[1], "category": row[2], "price": float(row[3])}
        # hot products stay an hour; the long tail only briefly (it is rarely asked again)
        self.cache.set(key, json.dumps(doc), ex=3600 if pid <= HOT_PRODUCTS else 30)
        return doc

    def _checkout(self, lines: list[str]) -> tuple[int, Any, str]:
        pid = random.randint(1, HOT_PRODUCTS)
        qty = random.randint(1, 3)
        if self.checkout_trouble() and next(self._checkouts) % 6 == 0:
            time.sleep(0.3)              # the payment provider times out
            lines.append("checkout.failure:1|c")
            return 502, {"error": "payment provider timed out"}, "application/json"
        self._sql("INSERT INTO orders (product_id, qty, total, created_at) "
                  "SELECT id, %s, price * %s, NOW(3) FROM products WHERE id = %s", (qty, qty, pid))
        job = {"type": "order_confirmation", "product": pid, "enqueued_at": time.time()}
        self.cache.rpush(EMAIL_QUEUE, json.dumps(job))
        lines.append("checkout.success:1|c")
        return 200, {"ok": True}, "application/json"

    def _report(self) -> dict[str, Any]:
        """The slow page: a sleep standing in for a slow statement, and a heavy aggregate."""
        self._sql("SELECT SLEEP(1.5) AS slow_report")
        variant = random.randrange(3)
        if variant == 0:
            rows = self._sql("SELECT p.category, COUNT(*), SUM(o.total) FROM orders o JOIN products p "
                             "ON p.id = o.product_id WHERE o.created_at > NOW() - INTERVAL 10 MINUTE "
                             "GROUP BY p.category ORDER BY 3 DESC")
        elif variant == 1:
            rows = self._sql("SELECT COUNT(*) FROM seq_1_to_1000 a JOIN seq_1_to_300 b "
                             "ON (a.seq * b.seq) %% 7 = 0")
        else:
            rows = self._sql("SELECT category, COUNT(*) FROM products WHERE description LIKE %s "
                             "GROUP BY category", ("%blue%",))
        return {"rows": len(rows)}
