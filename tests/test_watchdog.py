"""The watchdog for the watcher (issue 18, item 2): the collecting process pings a healthchecks-
compatible URL while collection ticks, the store writes and the alert outbox moves, and sends
``/fail`` with the reason when one of them stops; a standby never pings.

Real services throughout: MariaDB and Redis frozen with SIGSTOP (targets that hang), a store on
a tmpfs filled to the last byte, a webhook receiver answering 503, a local healthchecks stand-in
(tests/support/healthchecks.py) and, for the standby, two real ``collect`` processes.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from dashboard import watchdog
from dashboard.collectors import registry
from dashboard.config import load as config
from dashboard.runtime import Runtime
from tests.support.alert_helpers import FAST, install_alerting, pool
from tests.support.disk import fill, small_tmpfs
from tests.support.hang import frozen
from tests.support.healthchecks import PingReceiver
from tests.support.server import DashboardServer
from tests.support.util import wait_until

EVERY_S = 2.0


@pytest.fixture
def hc():
    receiver = PingReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def runtimes():
    started: list[Runtime] = []
    yield started
    for rt in started:
        rt.stop()
        rt.store.close()


def start_runtime(started: list[Runtime], raw: dict, without_host: bool = False) -> Runtime:
    """A collecting runtime with alerting and the watchdog, as ``create_app`` wires them."""
    settings = config.from_dict(raw)
    collectors = registry.build(settings)
    if without_host:          # host statistics cannot hang on a target; every other one can
        collectors = [c for c in collectors if c.source != "host"]
    rt = Runtime(settings, collectors=collectors)
    install_alerting(rt, policy=FAST)
    rt.add(watchdog.parts(rt))
    started.append(rt)
    rt.start()
    return rt


def test_every_collector_hanging_turns_the_pings_to_fail_within_two_intervals_and_back(
        tmp_path, hc, runtimes, mariadb, redis_server):
    url = hc.check()
    # Collections are waited for 0.2 s; the Redis client's own I/O time-out (0.5 s at least) and
    # MariaDB's read timeout (10 s) are longer: a frozen server makes the collections hang. (At
    # 0.5 s each, a Redis time-out could end the cache's collection just in time to count as an
    # answer: a race, not the hang this test is about.)
    start_runtime(runtimes, {
        "data_dir": str(tmp_path / "data"), "interval_s": 0.5, "collector_timeout_s": 0.2,
        "mysql": {"url": mariadb.root_url}, "redis": {"url": redis_server.url},
        "watchdog": {"url": url, "every_s": EVERY_S}}, without_host=True)
    hc.wait_for_kind(url, "ok")
    assert all(p.kind == "ok" and p.body == "ok" for p in hc.pings(url))

    with frozen(mariadb, redis_server):
        hung_at = time.time()
        before = len(hc.pings(url))
        fail = hc.wait_for_kind(url, "fail", after=before, timeout=30)
        after_hang = hc.pings(url)[before:]
        oks_meanwhile = [p for p in after_hang if p.at < fail.at and p.kind == "ok"]
        assert len(oks_meanwhile) <= 2, (hung_at, after_hang)     # within two intervals
        assert "collection stuck" in fail.body and "cache, db" in fail.body, fail.body
        # It keeps saying so while they hang.
        hc.wait_for_kind(url, "fail", after=len(hc.pings(url)), timeout=30)
    # Recovery: the targets answer again, the pings resume.
    thawed = len(hc.pings(url))
    ok = hc.wait_for_kind(url, "ok", after=thawed, timeout=40)
    assert ok.body == "ok"


def test_a_store_that_cannot_write_fails_the_check_with_that_reason(tmp_path, hc, runtimes):
    url = hc.check()
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        rt = start_runtime(runtimes, {"data_dir": str(disk), "interval_s": 0.5,
                                      "watchdog": {"url": url, "every_s": EVERY_S}})
        hc.wait_for_kind(url, "ok")
        filler = fill(disk)
        wait_until(lambda: not rt.spool.up, timeout=20, message="the store still writes")
        fail = hc.wait_for_kind(url, "fail", after=len(hc.pings(url)), timeout=30)
        assert "store cannot write" in fail.body and "full" in fail.body, fail.body
        filler.unlink()
        wait_until(lambda: rt.spool.up, timeout=20, message="the store does not write again")
        hc.wait_for_kind(url, "ok", after=len(hc.pings(url)), timeout=30)
        rt.stop()
        rt.store.close()          # before the tmpfs is unmounted


def test_an_outbox_stuck_on_a_503_channel_fails_the_check_until_a_message_gets_through(
        tmp_path, hc, runtimes, webhook_receiver):
    url = hc.check()
    webhook_receiver.default_status = 503
    rt = start_runtime(runtimes, {
        "data_dir": str(tmp_path / "data"), "interval_s": 0.5,
        "watchdog": {"url": url, "every_s": EVERY_S},
        "rules": {"db_pool_utilization": {"for_s": 0, "keep_firing_for_s": 0}},
        "notify": [{"name": "pager", "kind": "webhook",
                    "url": webhook_receiver.url + "?token=s3cr3t-hook-token"}]})
    hc.wait_for_kind(url, "ok")
    assert rt.alerting is not None
    rt.alerting.process([pool(99.0)])                  # fires: one message to a 503 receiver
    webhook_receiver.wait_for(4, timeout=20)           # tried and retried (3 retries)
    schedule = rt.alerting.outbox.schedule_s("pager")
    fail = hc.wait_for_kind(url, "fail", after=len(hc.pings(url)), timeout=4 * schedule + 10)
    assert "channel pager" in fail.body and "HTTP 503" in fail.body, fail.body
    assert "s3cr3t-hook-token" not in fail.body                 # the hook's secret stays here
    # The receiver is back; the alert resolves, that message is delivered: moving again.
    webhook_receiver.default_status = 200
    rt.alerting.process([pool(10.0)])
    wait_until(lambda: any(r.status == 200 for r in webhook_receiver.requests), timeout=20)
    hc.wait_for_kind(url, "ok", after=len(hc.pings(url)), timeout=30)


def test_an_empty_outbox_and_a_fresh_store_ping_ok(tmp_path, hc, runtimes):
    url = hc.check()
    start_runtime(runtimes, {"data_dir": str(tmp_path / "data"), "interval_s": 0.5,
                             "watchdog": {"url": url, "every_s": 1},
                             "notify": [{"kind": "email", "to": ["ops@example.com"]}]})
    pings = wait_until(lambda: len(hc.pings(url)) >= 3 and hc.pings(url), timeout=30)
    assert [p.kind for p in pings] == ["ok"] * len(pings)


def test_a_ping_endpoint_that_hangs_stalls_no_collection(tmp_path, runtimes):
    """The endpoint accepts and never answers: collection goes on at its interval."""
    import socket
    listener = socket.create_server(("127.0.0.1", 0))      # never accepts: connections queue up
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/5f2a8b1c-hang"
        rt = start_runtime(runtimes, {"data_dir": str(tmp_path / "data"), "interval_s": 0.5,
                                      "watchdog": {"url": url, "every_s": 1}})
        started = time.time()
        # Several watchdog rounds hang meanwhile; the host collector keeps its interval.
        wait_until(lambda: len([s for s in rt.store.between(started, sources=["host"])
                                if not s.labels]) >= 8, timeout=30)
        status = rt.runner.status()["host"]
        assert status["status"] == "ok" and status["age_s"] < 2
    finally:
        listener.close()


@pytest.fixture
def two_collectors(tmp_path, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    started: list[DashboardServer] = []
    yield tmp_path, {"DASHBOARD_MESSAGE_QUEUE": redis_server.url, "DASHBOARD_INTERVAL_S": "0.5"}, \
        client, started
    for s in started:
        s.kill()


def test_only_the_leader_pings_and_a_standby_that_takes_over_starts_pinging(two_collectors, hc):
    tmp, env, client, started = two_collectors
    urls = []
    for name in ("first", "second"):
        url = hc.check()
        urls.append(url)
        cfg = tmp / f"{name}.toml"
        cfg.write_text(f'[watchdog]\nurl = "{url}"\nevery_s = 1\n')
        proc = DashboardServer(tmp / "data", env=env, command="collect", config=cfg)
        started.append(proc.start(wait=False))
        if name == "first":
            wait_until(lambda: client.get("dashboard:collector-leader"), timeout=30,
                       message=lambda: f"no leader; log:\n{started[0].log()[-2000:]}")
    first, second = started
    leader = client.get("dashboard:collector-leader").decode()
    assert leader.split(":")[1] == str(first.proc.pid)
    # While the leader pings five times, the standby pings never.
    wait_until(lambda: len(hc.pings(urls[0])) >= 5, timeout=30,
               message=lambda: f"leader log:\n{first.log()[-2000:]}")
    assert hc.pings(urls[1]) == []
    assert [p.kind for p in hc.pings(urls[0])] == ["ok"] * len(hc.pings(urls[0]))
    # The leader dies: its pings stop (the outside service notices), the new leader's begin.
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    killed = len(hc.pings(urls[0]))
    hc.wait_for_kind(urls[1], "ok", timeout=30)
    assert len(hc.pings(urls[0])) == killed


def test_bad_watchdog_settings_stop_start_up_naming_the_key(tmp_path):
    import subprocess
    import sys
    for body, key in (('[watchdog]\nevery_s = 60\n', "watchdog.url"),
                      ('[watchdog]\nurl = "https://hc-ping.com/x-y"\nevery_s = 0\n', "watchdog.every_s"),
                      ('[watchdog]\nurl = "hc-ping.com/abc"\n', "watchdog.url")):
        cfg = tmp_path / "bad.toml"
        cfg.write_text(body)
        r = subprocess.run([sys.executable, "-m", "dashboard", "--config", str(cfg), "check"],
                           capture_output=True, text=True, timeout=60,
                           cwd=Path(__file__).resolve().parents[1],
                           env={**os.environ, "DASHBOARD_DATA_DIR": str(tmp_path / "d")})
        assert r.returncode == 2, (body, r.stdout, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and key in lines[0], (body, r.stderr)


def test_the_ping_url_is_masked_in_every_printed_view():
    secret_path = "5f2a8b1c-1111-2222-3333-444455556666"
    s = config.from_dict({"watchdog": {"url": f"https://hc-ping.com/{secret_path}"}})
    assert s.masked()["watchdog"]["url"] == "https://hc-ping.com/***"
    assert secret_path in s.secrets()          # scrubbed from every log record
