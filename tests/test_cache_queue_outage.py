"""Redis stopped while the dashboard runs: cache.up and queue.up drop to 0 with the reason, and
come back by themselves when Redis is started again -- no restart of the dashboard."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from dashboard.collectors.cache import CacheCollector
from dashboard.collectors.queues.collector import QueueCollector
from dashboard.config import load as config
from dashboard.model import CollectorError
from dashboard.scheduler import CollectorRunner
from tests.support.util import wait_until


def test_redis_stopped_mid_run_is_reported_down_and_recovers_without_restart(make_redis):
    server = make_redis()
    r = redis.Redis.from_url(server.url)
    r.rpush("queue:emails", "a", "b")
    settings = config.from_dict({"redis": {"url": server.url}, "queues": [
        {"name": "emails", "kind": "redis-list", "key": "queue:emails"},
        {"name": "jobs", "kind": "rq"}]})
    cache = CacheCollector(server.url, interval_s=0.2, timeout_s=3)
    queues = QueueCollector(settings.queues, server.url, interval_s=0.2, timeout_s=3)
    published: list = []
    runner = CollectorRunner([cache, queues], published.extend)

    def newest() -> dict[str, tuple[float, str | None]]:
        """Each collector's newest (up, error), from the ticks the running runner published."""
        out: dict[str, tuple[float, str | None]] = {}
        for s in reversed(list(published)):
            if not s.labels and s.source not in out:
                out[s.source] = (s.values[f"{s.source}.up"], s.error)
        return out

    def both(up: float):
        return lambda: (seen := newest()) and all(seen.get(c, (None,))[0] == up
                                                  for c in ("cache", "queue")) and seen

    try:
        runner.start()
        assert wait_until(both(1.0), timeout=20, message=lambda: f"newest: {newest()}") == \
            {"cache": (1.0, None), "queue": (1.0, None)}
        server.stop()
        down = wait_until(both(0.0), timeout=20, message=lambda: f"newest: {newest()}")
        for _, error in down.values():
            assert f"redis 127.0.0.1:{server.port}" in error and "ConnectionError" in error
        assert runner.status()["cache"]["status"] == "error"

        server.start()                          # same port; the list is gone (no persistence)
        assert wait_until(both(1.0), timeout=20, message=lambda: f"newest: {newest()}") == \
            {"cache": (1.0, None), "queue": (1.0, None)}
        emails = next(s for s in reversed(list(published)) if s.labels == {"queue": "emails"})
        assert emails.values["queue.pending"] == 0
        assert runner.status()["queue"]["status"] == "ok"
    finally:
        runner.stop()


def test_a_down_mysql_behind_an_sql_queue_leaves_the_redis_queues_reported(make_redis, mariadb):
    server = make_redis()
    db = mariadb               # stopped and started again here (the fixture copes with that)
    db.sql("DROP DATABASE IF EXISTS outage_shop; CREATE DATABASE outage_shop; "
           "CREATE TABLE outage_shop.jobs (id INT AUTO_INCREMENT PRIMARY KEY, status VARCHAR(16), "
           "priority INT, created_at DATETIME, KEY q (status, created_at, priority))")
    settings = config.from_dict({"redis": {"url": server.url}, "mysql": {"url": db.root_url},
                                 "queues": [{"name": "emails", "kind": "redis-list", "key": "q:e"},
                                            {"name": "orders", "kind": "sql", "table": "outage_shop.jobs"}]})
    queues = QueueCollector(settings.queues, server.url, settings.mysql, timeout_s=5)
    try:
        readings = queues.collect()
        assert {r.labels.get("queue"): r.values.get("queue.up") for r in readings} == \
            {"emails": 1.0, "orders": 1.0}
        db.stop()
        readings = queues.collect()
        plain = next(r for r in readings if not r.labels)
        assert plain.values == {"queue.up": 0.0}
        assert f"mysql 127.0.0.1:{db.port}" in plain.error
        assert db.root_password not in plain.error
        assert [r.labels["queue"] for r in readings if r.labels] == ["emails"]
        db.start()
        # back by itself once the reconnect backoff (1, 2, 4 ... s) allows the next attempt
        wait_until(lambda: {r.labels.get("queue"): r.values.get("queue.up")
                            for r in queues.collect()} == {"emails": 1.0, "orders": 1.0},
                   timeout=15, interval=0.2)
    finally:
        queues.close()
        db.start()
        db.sql("DROP DATABASE IF EXISTS outage_shop")


def test_an_unreachable_sql_queue_server_is_retried_with_backoff_not_every_tick():
    """Fault injection: a TCP server that accepts and hangs up at once (a MySQL that is not
    really there). Ten 1 s ticks make four connection attempts (0, 1, 3, 7 s), never ten, and
    the reason shown never carries the password."""
    listener = socket.create_server(("127.0.0.1", 0))
    attempts = []

    def accept_and_hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return                          # closed by the test
            attempts.append(time.monotonic())
            conn.close()
    threading.Thread(target=accept_and_hang_up, daemon=True).start()
    url = f"mysql://jobs:queue-pw-9x@127.0.0.1:{listener.getsockname()[1]}/"
    settings = config.from_dict({"queues": [{"name": "orders", "kind": "sql", "table": "shop.jobs",
                                             "url": url}]})
    t = [100.0]
    queues = QueueCollector(settings.queues, clock=lambda: t[0], timeout_s=5)
    errors = []
    try:
        for _ in range(10):
            with pytest.raises(CollectorError) as e:
                queues.collect()
            errors.append(str(e.value))
            t[0] += 1
        wait_until(lambda: len(attempts) >= 4, timeout=5)
        assert len(attempts) == 4
        assert errors[1].startswith(f"mysql 127.0.0.1:{listener.getsockname()[1]} unreachable")
        assert "next attempt in" in errors[2]
        assert not any("queue-pw-9x" in e for e in errors)
    finally:
        queues.close()
        listener.close()
