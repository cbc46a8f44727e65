"""Queue collector against a real Redis: plain lists, the real ``rq`` library, Celery's layout."""
from __future__ import annotations

import json
import operator
import time
from datetime import timedelta

import pytest
import redis
from rq import Queue, SimpleWorker, Worker

from dashboard.collectors.queues.collector import QueueCollector
from dashboard.collectors.queues.redis import MAX_RQ_QUEUES
from dashboard.config import load as config
from dashboard.config.settings import ConfigError, Settings


class FakeClock:
    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


def _settings(redis_url: str, *queues: dict) -> Settings:
    return config.from_dict({"redis": {"url": redis_url}, "queues": list(queues)})


def _own_db(redis_server) -> str:
    """A database of its own on the shared server: these tests flush it."""
    return redis_server.url.rsplit("/", 1)[0] + "/7"


def _by_queue(readings) -> dict[str, dict]:
    return {r.labels["queue"]: dict(r.values) for r in readings
            if r.labels.keys() == {"queue"}}


def test_a_million_item_list_is_measured_with_llen_and_never_read(make_redis):
    server = make_redis()
    r = redis.Redis.from_url(server.url)
    now = time.time()
    oldest = json.dumps({"created_at": now - 1234.0, "job": "send_email"})
    r.rpush("queue:emails", oldest)
    pipe = r.pipeline(transaction=False)
    for _start in range(1, 1_000_000, 50_000):
        pipe.rpush("queue:emails", *(b'{"created_at": %d}' % int(now) for _ in range(50_000)))
    pipe.execute()
    r.rpop("queue:emails")              # exactly 1,000,000 items, the oldest first in line
    assert r.llen("queue:emails") == 1_000_000
    settings = _settings(server.url, {"name": "emails", "kind": "redis-list", "key": "queue:emails",
                                      "age_field": "created_at"})
    collector = QueueCollector(settings.queues, redis_url=server.url)
    r.config_resetstat()
    try:
        for _ in range(5):
            values = _by_queue(collector.collect())["emails"]
    finally:
        collector.close()
    stats = r.info("commandstats")
    assert values["queue.pending"] == 1_000_000
    assert values["queue.oldest_pending_age_s"] == pytest.approx(1234, abs=30)
    assert stats["cmdstat_llen"]["calls"] == 5
    assert stats["cmdstat_lindex"]["calls"] == 5          # one item per tick, at the head
    assert not any(k in stats for k in ("cmdstat_lrange", "cmdstat_lpos", "cmdstat_sort",
                                        "cmdstat_scan", "cmdstat_keys", "cmdstat_dump"))
    # nothing else ran: O(1) commands only, on one connection opened once for the five ticks
    assert set(stats) <= {"cmdstat_llen", "cmdstat_lindex", "cmdstat_hello", "cmdstat_client|setname",
                          "cmdstat_config|resetstat", "cmdstat_info"}
    assert stats["cmdstat_hello"]["calls"] == 1


def test_rq_queues_and_failures_made_by_the_real_rq_library_are_discovered(redis_server):
    url = _own_db(redis_server)
    r = redis.Redis.from_url(url)
    r.flushdb()
    emails, reports = Queue("emails", connection=r), Queue("reports", connection=r)
    for i in range(3):
        emails.enqueue(len, "x" * i)
    reports.enqueue(len, "ok")
    reports.enqueue(operator.truediv, 1, 0)          # fails: ZeroDivisionError
    reports.enqueue_in(timedelta(minutes=10), len, "later")
    Worker([emails], connection=r, name="idle-emails-worker").register_birth()
    SimpleWorker([reports], connection=r).work(burst=True)

    settings = _settings(url, {"name": "jobs", "kind": "rq"})
    clock = FakeClock()
    collector = QueueCollector(settings.queues, redis_url=url, clock=clock)
    try:
        seen = _by_queue(collector.collect())
        assert set(seen) == {"emails", "reports"}
        assert seen["emails"]["queue.pending"] == 3
        assert seen["emails"]["queue.workers"] == 1
        assert 0 <= seen["emails"]["queue.oldest_pending_age_s"] < 60
        assert seen["reports"]["queue.pending"] == 0
        assert seen["reports"]["queue.failed"] == 1
        assert seen["reports"]["queue.scheduled"] == 1

        reports.enqueue(operator.truediv, 2, 0)       # a new failure within the window
        SimpleWorker([reports], connection=r).work(burst=True)
        clock.t += 5
        seen = _by_queue(collector.collect())
        assert seen["reports"]["queue.failed"] == 2
        assert seen["reports"]["queue.failed_new"] == 1
        assert seen["emails"]["queue.failed_new"] == 0
    finally:
        collector.close()
        r.flushdb()


def test_rq_discovery_collects_the_first_50_queues_and_counts_the_rest(redis_server):
    # An application that names a queue per customer must not grow the store without bound.
    url = _own_db(redis_server)
    r = redis.Redis.from_url(url)
    r.flushdb()
    names = [f"tenant{i:03d}" for i in range(MAX_RQ_QUEUES + 12)]
    for name in names:
        Queue(name, connection=r).enqueue(len, "x")
    collector = QueueCollector(_settings(url, {"name": "jobs", "kind": "rq"}).queues,
                               redis_url=url, clock=FakeClock())
    try:
        readings = collector.collect()
        seen = _by_queue(readings)
        assert sorted(seen) == names[:MAX_RQ_QUEUES]
        assert all(v["queue.pending"] == 1 for v in seen.values())
        plain = [dict(x.values) for x in readings if not x.labels]
        assert plain == [{"queue.not_shown": 12.0}]
        assert "rq: 12 more queues of rq:queues not shown (at most 50)" in collector.check_notes()
    finally:
        collector.close()
        r.flushdb()


def test_celery_priority_sub_queues_add_up_and_the_oldest_is_at_the_consuming_end(redis_server):
    url = _own_db(redis_server)
    r = redis.Redis.from_url(url)
    r.flushdb()
    now = time.time()

    def message(sent_at: float) -> str:
        return json.dumps({"body": "e30=", "headers": {"task": "shop.send", "sent_at": sent_at},
                           "properties": {"priority": 0}})
    # kombu: LPUSH to publish, BRPOP to consume; priority steps 0, 3, 6, 9
    r.lpush("celery", message(now - 300), message(now - 10))
    r.lpush("celery\x06\x163", message(now - 900))
    r.lpush("celery\x06\x169", message(now - 5), message(now - 4), message(now - 3))
    settings = _settings(url, {"name": "celery", "kind": "celery", "age_field": "headers.sent_at"})
    collector = QueueCollector(settings.queues, redis_url=url)
    try:
        readings = collector.collect()
    finally:
        collector.close()
        r.flushdb()
    values = _by_queue(readings)["celery"]
    assert values["queue.pending"] == 6
    assert values["queue.oldest_pending_age_s"] == pytest.approx(900, abs=30)
    by_priority = {x.labels["priority"]: x.values["queue.pending_by_priority"] for x in readings
                   if "priority" in x.labels}
    assert by_priority == {"0": 2, "3": 1, "6": 0, "9": 3}


def test_drain_eta_follows_the_net_dequeue_rate_and_says_when_it_is_not_draining(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    r.delete("drain:q", "drain:failed")
    r.rpush("drain:q", *range(100))
    settings = _settings(redis_server.url, {"name": "q", "kind": "redis-list", "key": "drain:q",
                                            "failed_key": "drain:failed", "window_s": 60})
    clock = FakeClock()
    collector = QueueCollector(settings.queues, redis_url=redis_server.url, clock=clock)
    try:
        collector.collect()
        clock.t += 10
        r.lpop("drain:q", 20)                          # 2 jobs/s taken, none added
        v = _by_queue(collector.collect())["q"]
        assert v["queue.net_dequeue_per_s"] == pytest.approx(2.0)
        assert v["queue.drain_eta_s"] == pytest.approx(80 / 2.0)
        assert v["queue.draining"] == 1
        clock.t += 10
        r.rpush("drain:q", *range(60))                 # 60 added: net -1/s over the 20 s
        r.zadd("drain:failed", {"job-1": 1})
        v = _by_queue(collector.collect())["q"]
        assert v["queue.pending"] == 140
        assert v["queue.net_dequeue_per_s"] == pytest.approx(-40 / 20)
        assert "queue.drain_eta_s" not in v and v["queue.draining"] == 0
        clock.t += 1
        v = _by_queue(collector.collect())["q"]         # the failed key's type is known now
        assert v["queue.failed"] == 1
    finally:
        collector.close()
        r.delete("drain:q", "drain:failed")


def test_an_item_without_the_age_field_gives_a_check_note_not_an_error(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    r.delete("noage:q")
    r.rpush("noage:q", "plain text job")
    settings = _settings(redis_server.url, {"name": "q", "kind": "redis-list", "key": "noage:q",
                                            "age_field": "created_at"})
    collector = QueueCollector(settings.queues, redis_url=redis_server.url)
    try:
        values = _by_queue(collector.collect())["q"]
        assert values["queue.pending"] == 1 and values["queue.up"] == 1
        assert "queue.oldest_pending_age_s" not in values
        assert any("'created_at'" in n for n in collector.check_notes())
    finally:
        collector.close()
        r.delete("noage:q")


@pytest.mark.parametrize("queue, key", [
    ({"name": "a", "kind": "rq", "table": "jobs"}, "queues[0].table"),
    ({"name": "a", "kind": "redis-list", "key": "k", "consume_from": "middle"}, "queues[0].consume_from"),
    ({"name": "a", "kind": "celery", "priority_steps": ["high"]}, "queues[0].priority_steps"),
    ({"name": "a", "kind": "sql", "status_column": "status; DROP TABLE x"}, "queues[0].status_column"),
    ({"name": "a", "kind": "sql", "statement_timeout_ms": 0}, "queues[0].statement_timeout_ms"),
    ({"name": "a", "kind": "sql", "url": "redis://x/"}, "queues[0].url"),
])
def test_bad_queue_options_stop_start_up_naming_the_key(queue, key):
    with pytest.raises(ConfigError) as e:
        config.from_dict({"queues": [queue]})
    assert e.value.key == key


@pytest.mark.parametrize("queue", [{"name": "a", "kind": "sql"}, {"name": "a", "kind": "rq"}])
def test_a_queue_without_a_server_to_read_it_from_stops_start_up(queue):
    with pytest.raises(ConfigError) as e:
        config.from_dict({"queues": [queue]})
    assert e.value.key == "queues[0].url"
