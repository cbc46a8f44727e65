"""Every collector at once, for bench/overhead.py ``--all``: the targets, the configuration and a
small local workload so that values move.

What it sets up on the private MariaDB and Redis (dashboard.devservices) and on loopback:
- 10 queues: 5 redis-lists (JSON items with an age field; one with a failed set, one with a
  processing list), 2 RQ queues made by the real ``rq`` library, 1 Celery queue (kombu's
  priority lists), 1 SQL jobs table in MariaDB, 1 more redis-list read from the right end;
- an HTTP server answering a probe (``/health``) and a PHP-FPM status page (``/fpm-status``);
- a StatsD stream of ~60 lines/s (requests, errors, response times, checkouts, a gauge);
- a workload thread: Redis GETs (hits and misses) and SETs, queue pushes and pops, a few
  MySQL statements per second over ~40 statement shapes (so digests and the status counters
  move), a job row inserted and finished now and then.
The thread runs in the bench process: its CPU is not counted against the dashboard.
"""
from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pymysql
import redis

from bench import harness

LIST_QUEUES = 6


@dataclass
class Targets:
    """Everything ``--all`` points the dashboard at; ``stop()`` ends the threads and servers."""

    config_path: Path
    http_port: int
    statsd_port: int
    queues: int
    threads: list[threading.Thread] = field(default_factory=list)
    servers: list[ThreadingHTTPServer] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    counts: dict[str, int] = field(default_factory=dict)

    def stop(self) -> None:
        self.stop_event.set()
        for s in self.servers:
            s.shutdown()
            s.server_close()
        for t in self.threads:
            t.join(timeout=10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"        # keep-alive, as nginx in front of PHP-FPM answers

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/fpm-status"):
            active = random.randint(2, 9)
            body = json.dumps({"pool": "www", "process manager": "dynamic",
                               "active processes": active, "idle processes": 12 - active,
                               "total processes": 12, "max children reached": 0,
                               "listen queue": 0, "accepted conn": int(time.time())}).encode()
            ctype = "application/json"
        else:
            body, ctype = b"ok", "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:      # quiet
        pass


def _mysql(url_root: str, port: int, password: str, db: str | None = None):
    return pymysql.connect(host="127.0.0.1", port=port, user="root", password=password,
                           database=db, autocommit=True, connect_timeout=5, read_timeout=10)


def prepare_sql(db, monitor_user: str) -> None:
    """A ``shop.jobs`` table the monitoring account may read (the sql queue kind)."""
    conn = _mysql(db.root_url, db.port, db.root_password)
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS shop")
        cur.execute("CREATE TABLE IF NOT EXISTS shop.jobs (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                    "status VARCHAR(16) NOT NULL, priority INT NOT NULL DEFAULT 0, "
                    "created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, KEY (status))")
        cur.execute("CREATE TABLE IF NOT EXISTS shop.items (id INT PRIMARY KEY, v INT)")
        cur.executemany("INSERT IGNORE INTO shop.items VALUES (%s, %s)",
                        [(i, i) for i in range(200)])
        cur.executemany("INSERT INTO shop.jobs (status) VALUES (%s)", [("pending",)] * 30)
        cur.execute(f"GRANT SELECT ON shop.* TO '{monitor_user}'@'%'")
    conn.close()


def fill_queues(r: redis.Redis) -> list[dict]:
    now = time.time()
    out: list[dict] = []
    for i in range(LIST_QUEUES):
        key = f"queue:list{i}"
        item = json.dumps({"created_at": now - 30 * i, "job": "send_email"})
        r.rpush(key, *([item] * (20 + 10 * i)))
        q: dict = {"name": f"list{i}", "kind": "redis-list", "key": key, "age_field": "created_at"}
        if i == 1:
            r.zadd(f"{key}:failed", {"job-1": 1, "job-2": 2})
            q["failed_key"] = f"{key}:failed"
        if i == 2:
            r.rpush(f"{key}:processing", item)
            q["processing_key"] = f"{key}:processing"
        if i == 5:
            q["consume_from"] = "right"
        out.append(q)
    msg = json.dumps({"body": "e30=", "headers": {"task": "t", "sent_at": now - 30}})
    for key in ("celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169"):
        r.lpush(key, *([msg] * 10))
    out.append({"name": "celery", "kind": "celery", "age_field": "headers.sent_at"})
    from rq import Queue
    for name in ("default", "reports"):
        q = Queue(name, connection=r)
        for _ in range(10):
            q.enqueue(len, "abc")
        out.append({"name": f"rq-{name}", "kind": "rq", "key": name})
    return out


def _toml_value(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)                    # a TOML basic string is JSON-compatible
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def write_config(path: Path, queues: list[dict], http_port: int, statsd_port: int) -> None:
    lines = [f'[statsd]\nbind = "127.0.0.1:{statsd_port}"\n',
             f'[phpfpm]\nurl = "http://127.0.0.1:{http_port}/fpm-status"\nmax_children = 12\n',
             f'[[probes]]\nname = "home"\nurl = "http://127.0.0.1:{http_port}/health"\n'
             'interval_s = 1\ntimeout_s = 2\n']
    for q in queues:
        lines.append("[[queues]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in q.items()))
    path.write_text("\n".join(lines))


def _statsd_sender(port: int, stop: threading.Event, counts: dict) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rnd = random.Random(3)
    try:
        while not stop.wait(0.1):
            lines = [b"shop.requests:5|c", b"shop.response_time:%d|ms" % rnd.randint(20, 400),
                     b"shop.response_time:%d|ms" % rnd.randint(20, 400), b"checkout.success:1|c",
                     b"shop.queue_depth:%d|g" % rnd.randint(0, 50)]
            if rnd.random() < 0.1:
                lines.append(b"shop.errors:1|c")
            s.sendto(b"\n".join(lines), ("127.0.0.1", port))
            counts["statsd_lines"] = counts.get("statsd_lines", 0) + len(lines)
    finally:
        s.close()


def _workload(db, redis_url: str, stop: threading.Event, counts: dict) -> None:
    """~20 Redis commands and ~5 MySQL statements per second; queues drift up and down."""
    rnd = random.Random(5)
    r = redis.Redis.from_url(redis_url, socket_timeout=5)
    conn = _mysql(db.root_url, db.port, db.root_password, "shop")
    for i in range(100):
        r.set(f"cache:item:{i}", "x" * 64)
    n = 0
    try:
        with conn.cursor() as cur:
            while not stop.wait(0.05):
                n += 1
                key = f"cache:item:{rnd.randint(0, 130)}"        # ~75 % hits
                if r.get(key) is None and rnd.random() < 0.3:
                    r.set(key, "x" * 64, ex=30)
                if n % 4 == 0:
                    q = f"queue:list{rnd.randrange(LIST_QUEUES)}"
                    if rnd.random() < 0.5:
                        r.rpush(q, json.dumps({"created_at": time.time(), "job": "send_email"}))
                    else:
                        r.lpop(q)
                    shape = rnd.randrange(40)
                    cur.execute(f"SELECT v, {shape} AS s{shape} FROM items WHERE id = %s",
                                (rnd.randrange(200),))
                    cur.fetchall()
                if n % 40 == 0:
                    cur.execute("INSERT INTO jobs (status) VALUES ('pending')")
                    cur.execute("UPDATE jobs SET status = 'done' WHERE status = 'pending' "
                                "ORDER BY id LIMIT 1")
                counts["workload_steps"] = n
    finally:
        conn.close()
        r.close()


def start(tmp: Path, db, monitor_user: str, redis_url: str) -> Targets:
    """Prepare the targets and start the threads; the caller passes ``config_path`` to the
    dashboard (DASHBOARD_CONFIG) and calls ``stop()`` when done."""
    prepare_sql(db, monitor_user)
    r = redis.Redis.from_url(redis_url)
    queues = fill_queues(r)
    r.close()
    queues.append({"name": "jobs", "kind": "sql", "table": "shop.jobs",
                   "pending_values": ["pending"], "failed_values": ["failed"]})
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    http.daemon_threads = True
    statsd_port = harness.free_port()
    path = tmp / "all.toml"
    write_config(path, queues, http.server_address[1], statsd_port)
    t = Targets(path, http.server_address[1], statsd_port, len(queues), servers=[http])
    t.threads = [threading.Thread(target=http.serve_forever, daemon=True, name="bench-http"),
                 threading.Thread(target=_statsd_sender, args=(statsd_port, t.stop_event, t.counts),
                                  daemon=True, name="bench-statsd"),
                 threading.Thread(target=_workload, args=(db, redis_url, t.stop_event, t.counts),
                                  daemon=True, name="bench-workload")]
    for th in t.threads:
        th.start()
    return t
