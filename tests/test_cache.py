"""The cache collector against a real Redis and a real memcached."""
from __future__ import annotations

import json

import pytest
import redis
from pymemcache.client.base import Client as MemcacheClient

from dashboard.collectors.cache import CacheCollector
from dashboard.collectors.queues.collector import QueueCollector
from dashboard.config import load as config
from dashboard.model import CollectorError


class FakeClock:
    """Time for rates and windows, moved by the test (the servers' counters stay real)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _reads(r: redis.Redis, hits: int, misses: int, tag: str) -> None:
    r.set(f"hit:{tag}", "x")
    pipe = r.pipeline(transaction=False)
    for _ in range(hits):
        pipe.get(f"hit:{tag}")
    for i in range(misses):
        pipe.get(f"miss:{tag}:{i}")
    pipe.execute()


def _since_boot(r: redis.Redis) -> float:
    s = r.info("stats")
    return s["keyspace_hits"] / (s["keyspace_hits"] + s["keyspace_misses"]) * 100


def test_hit_rate_is_over_the_window_not_since_boot(make_redis):
    # A private server: the shared one's since-boot counters carry other tests' reads.
    redis_server = make_redis()
    r = redis.Redis.from_url(redis_server.url)
    clock = FakeClock()
    cache = CacheCollector(redis_url=redis_server.url, window_s=60, clock=clock)
    try:
        cache.collect()
        _reads(r, hits=20, misses=1000, tag="old")       # a cold start, a minute ago
        clock.t += 5
        cache.collect()
        clock.t += 60                                      # ... now out of the window
        cache.collect()
        _reads(r, hits=210, misses=90, tag="now")          # 300 reads in the window
        clock.t += 5
        values = cache.collect()[0].values
    finally:
        cache.close()
    assert values["cache.hit_rate"] == pytest.approx(70.0, abs=1.0)
    assert abs(_since_boot(r) - 70.0) > 10, "the since-boot ratio must differ for this test to mean anything"
    assert values["cache.hits_per_s"] == pytest.approx(210 / 5, rel=0.02)
    assert values["cache.misses_per_s"] == pytest.approx(90 / 5, rel=0.02)
    assert values["cache.clients"] >= 1


def test_queue_polling_on_the_same_redis_does_not_dilute_the_hit_rate(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    settings = config.from_dict({"redis": {"url": redis_server.url}, "queues": [
        {"name": f"q{i}", "kind": "redis-list", "key": f"dilute:q{i}", "age_field": "t"}
        for i in range(10)]})
    clock = FakeClock()
    cache = CacheCollector(redis_url=redis_server.url, window_s=60, clock=clock)
    queues = QueueCollector(settings.queues, redis_url=redis_server.url)
    try:
        cache.collect()
        for _ in range(5):          # 10 empty queues: 100 key misses of our own making
            queues.collect()
        _reads(r, hits=30, misses=10, tag="dilute")
        queues.collect()
        clock.t += 5
        values = cache.collect()[0].values
    finally:
        cache.close()
        queues.close()
    assert values["cache.hit_rate"] == pytest.approx(75.0, abs=0.01)


def test_memory_is_a_share_of_maxmemory_or_of_host_ram_and_check_says_which(make_redis):
    server = make_redis(extra_args=["--maxmemory", "64mb"])
    cache = CacheCollector(redis_url=server.url)
    try:
        v = cache.collect()[0].values
        assert v["cache.memory_limit_bytes"] == 64 * 2**20
        assert v["cache.memory_of_host"] == 0
        assert 0 < v["cache.memory_percent"] < 100
        assert not any("maxmemory" in n for n in cache.check_notes())
        redis.Redis.from_url(server.url).config_set("maxmemory", 0)
        v = cache.collect()[0].values
        assert v["cache.memory_of_host"] == 1
        assert v["cache.memory_limit_bytes"] > 64 * 2**20
        assert any("no maxmemory" in n and "host's RAM" in n for n in cache.check_notes())
    finally:
        cache.close()


def test_evictions_per_second_come_from_a_full_cache(make_redis):
    server = make_redis(extra_args=["--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru"])
    r = redis.Redis.from_url(server.url)
    clock = FakeClock()
    cache = CacheCollector(redis_url=server.url, clock=clock)
    try:
        cache.collect()
        pipe = r.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"big:{i}", "x" * 2000)
        pipe.execute()
        clock.t += 2
        v = cache.collect()[0].values
    finally:
        cache.close()
    evicted = r.info("stats")["evicted_keys"]
    assert evicted > 0
    assert v["cache.evicted_per_s"] == pytest.approx(evicted / 2, rel=0.01)


def test_memcached_alone_writes_the_unlabelled_cache_series(memcached_server):
    mc = MemcacheClient(memcached_server.address)
    clock = FakeClock()
    cache = CacheCollector(memcached=f"{memcached_server.host}:{memcached_server.port}", clock=clock)
    try:
        cache.collect()
        mc.set("k", "v")
        for _ in range(30):
            mc.get("k")
        for i in range(10):
            mc.get(f"absent-{i}")
        clock.t += 2
        [reading] = cache.collect()
    finally:
        cache.close()
        mc.close()
    assert reading.labels == {}
    assert reading.values["cache.hit_rate"] == pytest.approx(75.0)
    assert reading.values["cache.memory_limit_bytes"] == 64 * 2**20


def test_memcached_next_to_redis_is_labelled_and_its_outage_does_not_fail_redis(
        redis_server, make_memcached):
    mc_server = make_memcached()
    cache = CacheCollector(redis_url=redis_server.url, memcached=f"127.0.0.1:{mc_server.port}")
    try:
        plain, mc = cache.collect()
        assert plain.labels == {} and "cache.clients" in plain.values
        assert mc.labels == {"server": "memcached"} and mc.values["cache.up"] == 1
        mc_server.stop()
        plain, mc = cache.collect()
        assert "cache.clients" in plain.values
        assert mc.values == {"cache.up": 0.0}
        assert "memcached 127.0.0.1" in (mc.error or "")
        mc_server.start()
        assert cache.collect()[1].values["cache.up"] == 1
    finally:
        cache.close()


def test_an_unreachable_redis_is_a_collector_error_without_the_password(make_redis):
    server = make_redis()
    # (set after start: the fixture's readiness PING does not authenticate)
    redis.Redis.from_url(server.url).config_set("requirepass", "s3cret-pw")
    url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
    cache = CacheCollector(redis_url=url, timeout_s=2)
    try:
        assert cache.collect()[0].values["cache.clients"] >= 1
        server.stop()
        with pytest.raises(CollectorError) as e:
            cache.collect()
        assert f"127.0.0.1:{server.port}" in str(e.value)
        assert "s3cret-pw" not in str(e.value)
        assert "s3cret-pw" not in json.dumps(cache.check_notes())
    finally:
        cache.close()
