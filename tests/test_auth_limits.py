"""Rate limits (issue 7): login 10 per 5 minutes per IP (docs/thresholds.md row 18), API 100 per
minute per IP; kept in the dashboard's own Redis (message_queue) when configured, else in
memory (also while that Redis is down); never in the monitored [redis]."""
from __future__ import annotations

import re

import redis

from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.runtime import Runtime
from tests.support.auth_helpers import add_token, add_user
from tests.test_auth import without_csrf


def make_app(tmp_path, **extra):
    settings = from_dict({"data_dir": str(tmp_path / "data"), "async_mode": "threading", **extra})
    return create_app(settings, Runtime(settings, []), async_mode="threading")


def attempt(client, name, password, ip="10.0.0.1"):
    page = client.get("/login", environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})


def test_the_eleventh_login_attempt_within_five_minutes_gets_429_whoever_is_named(tmp_path):
    app = make_app(tmp_path)
    add_user(app, "ann", "viewer", password="correct horse battery")
    c = app.test_client()
    for i in range(10):
        name = "ann" if i % 2 else f"nobody{i}"
        assert attempt(c, name, "wrong password").status_code == 401
    refused_known = attempt(c, "ann", "correct horse battery")
    refused_unknown = attempt(c, "nobody", "whatever")
    assert refused_known.status_code == refused_unknown.status_code == 429
    assert without_csrf(refused_known.get_data(as_text=True)) == \
        without_csrf(refused_unknown.get_data(as_text=True))
    assert "Too many login attempts" in refused_known.get_data(as_text=True)
    assert "Retry-After" in refused_known.headers
    # the limit is per address: a colleague elsewhere still logs in
    assert attempt(c, "ann", "correct horse battery", ip="10.0.0.2").status_code == 302


def test_the_api_allows_100_requests_per_minute_per_address(tmp_path):
    app = make_app(tmp_path)
    headers = {"Authorization": f"Bearer {add_token(app, 'viewer')}"}
    c = app.test_client()
    for _ in range(100):
        assert c.get("/api/latest", headers=headers).status_code == 200
    r = c.get("/api/history", headers=headers)
    assert r.status_code == 429 and "rate limit" in r.get_json()["error"]
    assert c.get("/api/latest", headers=headers,
                 environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200
    assert c.get("/healthz").status_code == 200          # pages and health are not API calls


def test_the_monitored_redis_never_holds_rate_limits_memory_does_when_only_redis_is_configured(
        tmp_path, make_redis):
    # [redis] is the application's cache under watch: limiter reads would count as its hits
    # and misses (cache.hit_rate) and allkeys-lru could evict the counters.
    redis_server = make_redis()         # its own: the shared one's hit/miss stats stay untouched
    watched = redis.Redis.from_url(redis_server.url)
    before = watched.info("stats")
    app = make_app(tmp_path, redis={"url": redis_server.url},
                   auth={"api_rate_limit": "3 per minute"})
    headers = {"Authorization": f"Bearer {add_token(app, 'viewer')}"}
    c = app.test_client()
    assert [c.get("/api/latest", headers=headers).status_code for _ in range(4)] == [200] * 3 + [429]
    after = watched.info("stats")
    assert watched.keys("*") == []
    assert (after["keyspace_hits"], after["keyspace_misses"]) == \
        (before["keyspace_hits"], before["keyspace_misses"])


def test_logins_still_work_and_are_limited_when_the_message_queue_redis_is_down(
        tmp_path, make_redis):
    server = make_redis()
    url = server.url
    server.stop()
    app = make_app(tmp_path, message_queue=url)
    add_user(app, "ann", "viewer", password="correct horse battery")
    assert attempt(app.test_client(), "ann", "correct horse battery").status_code == 302
    c = app.test_client()
    for _ in range(9):
        assert attempt(c, "ann", "wrong password").status_code == 401
    assert attempt(c, "ann", "correct horse battery").status_code == 429


def test_limits_use_the_dashboards_own_redis_when_a_message_queue_is_configured(
        tmp_path, make_redis):
    redis_server = make_redis()
    app = make_app(tmp_path, message_queue=redis_server.url, auth={"api_rate_limit": "2 per minute"})
    c = app.test_client()
    headers = {"Authorization": f"Bearer {add_token(app, 'viewer')}"}
    assert [c.get("/api/latest", headers=headers).status_code for _ in range(3)] == [200, 200, 429]
    r = redis.Redis.from_url(redis_server.url)
    keys = r.keys("*dashboard-limits*")
    assert keys
    r.delete(*keys)
