"""A jobs table of 1,000,000 rows in a real MariaDB as a queue: fast with the right index,
stopped by the statement time limit without it, with no query left running on the server."""
from __future__ import annotations

import time
from typing import Iterator

import pytest

from dashboard.collectors import registry
from dashboard.collectors.queues.collector import QueueCollector
from dashboard.collectors.queues.sql import RETRY_AFTER_S
from dashboard.config import load as config
from tests.support.util import mysql_connect

DB = "shop_queue"
INDEX = "jobs_queue_idx"


@pytest.fixture(scope="module")
def jobs_table(mariadb) -> Iterator[str]:
    """``shop_queue.jobs``: 1,000,000 rows, 600 pending (priorities 1-3, the oldest 70 min old),
    250 processing, ~350 failed, the rest done; returns the URL of a monitor user allowed to SELECT it."""
    with mysql_connect(mariadb.root_url) as c, c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
        cur.execute(f"""CREATE TABLE {DB}.jobs (
            id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            job_type VARCHAR(32) NOT NULL, status VARCHAR(16) NOT NULL,
            priority TINYINT NOT NULL, created_at DATETIME NOT NULL,
            payload VARCHAR(64) NOT NULL) ENGINE=InnoDB""")
        # MariaDB's SEQUENCE engine makes the million rows in one INSERT ... SELECT.
        cur.execute(f"""INSERT INTO {DB}.jobs (job_type, status, priority, created_at, payload)
            SELECT 'send_email',
                   CASE WHEN seq > 999400 THEN 'pending' WHEN seq > 999150 THEN 'processing'
                        WHEN seq % 2855 = 0 THEN 'failed' ELSE 'done' END,
                   1 + seq % 3, NOW() - INTERVAL (1000000 - seq) * 7 SECOND,
                   'x' FROM {DB}.seq_1_to_1000000""")
        cur.execute(f"SELECT status, COUNT(*) FROM {DB}.jobs GROUP BY status")
        counts = dict(cur.fetchall())
    url = mariadb.create_monitor_user("queue_monitor", "q-s3cret", [f"SELECT ON {DB}.*"])
    yield url, counts
    with mysql_connect(mariadb.root_url) as c, c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute("DROP USER IF EXISTS 'queue_monitor'@'%'")


def _index(root_url: str, present: bool) -> None:
    with mysql_connect(root_url) as c, c.cursor() as cur:
        cur.execute(f"SHOW INDEX FROM {DB}.jobs WHERE Key_name = %s", (INDEX,))
        exists = bool(cur.fetchall())
        if present and not exists:
            cur.execute(f"CREATE INDEX {INDEX} ON {DB}.jobs (status, created_at, priority)")
        elif exists and not present:
            cur.execute(f"DROP INDEX {INDEX} ON {DB}.jobs")


def _collector(url: str, timeout_ms: int, clock=time.monotonic) -> QueueCollector:
    settings = config.from_dict({"queues": [{"name": "jobs", "kind": "sql", "table": f"{DB}.jobs",
                                             "url": url, "statement_timeout_ms": timeout_ms}]})
    return QueueCollector(settings.queues, clock=clock)


def test_without_the_index_the_time_limit_stops_the_query_and_names_the_index(mariadb, jobs_table):
    url, _ = jobs_table
    _index(mariadb.root_url, present=False)
    t = [100.0]
    collector = _collector(url, timeout_ms=20, clock=lambda: t[0])

    def selects_so_far() -> tuple[int, int]:
        """SELECTs the monitor user ran, and how many of them failed (performance_schema)."""
        rows = mariadb.query("SELECT COALESCE(SUM(count_star), 0), COALESCE(SUM(sum_errors), 0) "
                             "FROM performance_schema.events_statements_summary_by_user_by_event_name "
                             "WHERE user = 'queue_monitor' AND event_name = 'statement/sql/select'")
        return int(rows[0][0]), int(rows[0][1])

    before = selects_so_far()
    try:
        for _ in range(5):                      # five ticks within the retry delay
            readings = collector.collect()
            t[0] += 1
        running = mariadb.query("SELECT command, COALESCE(info, '') FROM information_schema.processlist "
                                "WHERE user = 'queue_monitor'")
        notes = collector.check_notes()
        [reading] = [r for r in readings if r.labels == {"queue": "jobs"}]
        assert reading.values == {"queue.up": 0.0}
        assert "statement time limit (20 ms)" in reading.error
        assert f"CREATE INDEX `jobs_queue_idx` ON `{DB}`.`jobs` (`status`, `created_at`, `priority`)" \
            in reading.error
        assert "q-s3cret" not in reading.error
        # one connection, idle: nothing left scanning, and no query per tick piling up
        assert [row[0] for row in running] == ["Sleep"]
        after = selects_so_far()     # one stopped statement (the version is the handshake's)
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
        assert any("has no index on (status, created_at)" in n for n in notes)

        t[0] += RETRY_AFTER_S                   # after the delay it tries (and is stopped) again
        [again] = [r for r in collector.collect() if r.labels == {"queue": "jobs"}]
        assert "statement time limit" in again.error
        assert selects_so_far() == (after[0] + 1, after[1] + 1)
    finally:
        collector.close()


def test_with_the_index_a_million_row_jobs_table_is_read_in_one_cheap_tick(mariadb, jobs_table):
    url, counts = jobs_table
    _index(mariadb.root_url, present=True)
    t = [100.0]
    # A correctness check, not a timing one: a limit no indexed read on a loaded machine reaches
    # (the time it took is printed for bench figures, never asserted).
    collector = _collector(url, timeout_ms=5000, clock=lambda: t[0])
    try:
        collector.collect()
        with mysql_connect(mariadb.root_url) as c, c.cursor() as cur:
            cur.execute(f"INSERT INTO {DB}.jobs (job_type, status, priority, created_at, payload) "
                        f"SELECT 'send_email', 'pending', 1, NOW(), 'y' FROM {DB}.seq_1_to_30")
        t[0] += 10
        started = time.perf_counter()
        readings = collector.collect()
        elapsed_ms = (time.perf_counter() - started) * 1000
        notes = collector.check_notes()
    finally:
        collector.close()
    print(f"\nbench: SQL queue tick over 1,000,000 rows with the index: {elapsed_ms:.1f} ms")
    main = next(r for r in readings if r.labels == {"queue": "jobs"})
    v = main.values
    assert main.error is None
    assert v["queue.pending"] == counts["pending"] + 30
    assert v["queue.processing"] == counts["processing"]
    assert v["queue.failed"] == counts["failed"]
    assert v["queue.oldest_pending_age_s"] == pytest.approx(599 * 7, abs=30)
    assert v["queue.enqueued_per_s"] == pytest.approx(3.0)          # 30 rows in 10 s
    by_priority = {r.labels["priority"]: r.values["queue.pending_by_priority"]
                   for r in readings if "priority" in r.labels}
    assert sum(by_priority.values()) == v["queue.pending"] and set(by_priority) == {"1", "2", "3"}
    assert not any("index" in n for n in notes)


def test_a_missing_table_or_column_says_what_to_configure(mariadb, jobs_table):
    url, _ = jobs_table
    settings = config.from_dict({"queues": [
        {"name": "nope", "kind": "sql", "table": f"{DB}.absent", "url": url},
        {"name": "cols", "kind": "sql", "table": f"{DB}.jobs", "url": url, "status_column": "state"}]})
    collector = QueueCollector(settings.queues)
    try:
        errors = {r.labels["queue"]: r.error for r in collector.collect() if r.labels}
    finally:
        collector.close()
    assert "does not exist" in errors["nope"]
    assert "status_column" in errors["cols"]


def test_queues_on_the_monitored_server_share_the_mysql_collectors_connections(mariadb, jobs_table):
    """DESIGN: never more than two connections to the monitored server (status + digests). A
    queue table there (url = mysql.url) is read on the digests connection, not a third."""
    url, counts = jobs_table
    _index(mariadb.root_url, present=True)
    settings = config.from_dict({"mysql": {"url": url},
                                 "queues": [{"name": "jobs", "kind": "sql", "table": f"{DB}.jobs",
                                             "statement_timeout_ms": 5000}]})
    collectors = {c.source: c for c in registry.build(settings)}
    db, queues = collectors["db"], collectors["queue"]
    try:
        db.collect()
        db.reader.run()                                # the digest job: its own connection
        for _ in range(3):
            readings = queues.collect()
        jobs = next(r for r in readings if r.labels == {"queue": "jobs"})
        assert jobs.error is None and jobs.values["queue.pending"] >= counts["pending"]
        ours = mariadb.query("SELECT COUNT(*) FROM information_schema.processlist"
                             " WHERE user = 'queue_monitor'")
        assert int(ours[0][0]) == 2
        queues.close()                                 # the collector's connection stays open
        db.reader.run()
        assert db.reader_conn.connects == 1
    finally:
        for c in collectors.values():
            c.close()
