"""The shop's HTTP server: requests are served by a fixed pool of worker threads, counted the
way PHP-FPM counts its children (active, idle, total, listen queue, max children reached), so
its ``/status?json`` page is a real account of a real pool.
"""
from __future__ import annotations

import http.server
import json
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from dashboard.demo.shop import Shop


class WorkerPool:
    """N worker threads taking accepted connections from a queue; counts what FPM counts."""

    def __init__(self, size: int, work: Callable[[Any], None]) -> None:
        self.size = size
        self._work = work
        self._q: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.active = self.max_active = self.accepted = self.max_children_reached = 0
        self.max_listen_queue = 0
        self.started = time.time()
        self._threads = [threading.Thread(target=self._loop, name=f"shop-worker-{i}", daemon=True)
                         for i in range(size)]
        for t in self._threads:
            t.start()

    def submit(self, item: Any) -> None:
        with self._lock:
            self.accepted += 1
            if self.active >= self.size:
                self.max_children_reached += 1       # FPM's "max children reached"
            self.max_listen_queue = max(self.max_listen_queue, self._q.qsize() + 1)
        self._q.put(item)

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            with self._lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            try:
                self._work(item)
            finally:
                with self._lock:
                    self.active -= 1

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"pool": "shop", "process manager": "static",
                    "start time": int(self.started), "start since": int(time.time() - self.started),
                    "accepted conn": self.accepted, "listen queue": self._q.qsize(),
                    "max listen queue": self.max_listen_queue, "listen queue len": 128,
                    "idle processes": self.size - self.active, "active processes": self.active,
                    "total processes": self.size, "max active processes": self.max_active,
                    "max children reached": self.max_children_reached, "slow requests": 0}

    def stop(self, timeout: float = 3.0) -> None:
        for _ in self._threads:
            self._q.put(None)
        deadline = time.monotonic() + timeout       # a worker may be inside SLEEP(1.5)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))


class ShopServer(http.server.HTTPServer):
    """HTTPServer whose requests are served by the worker pool instead of a thread each."""

    def __init__(self, shop: "Shop", workers: int) -> None:
        self.shop = shop
        super().__init__(("127.0.0.1", 0), Handler)
        self.pool = WorkerPool(workers, self._serve)

    def process_request(self, request, client_address) -> None:
        self.pool.submit((request, client_address))

    def _serve(self, item) -> None:
        request, client_address = item
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - a broken client must not end the worker
            pass
        finally:
            self.shutdown_request(request)


class Handler(http.server.BaseHTTPRequestHandler):
    server: ShopServer
    server_version = "demo-shop/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass                         # the console belongs to the demo's own lines

    def do_GET(self) -> None:
        self.server.shop.handle(self, "GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 16))
        self.server.shop.handle(self, "POST")

    def reply(self, status: int, body: Any, ctype: str = "application/json") -> None:
        data = (json.dumps(body) if ctype == "application/json" else str(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
