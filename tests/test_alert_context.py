"""Pages that say why (issue 18): a firing page carries what changed around it, made when the
alert fires, through the real MySQL collector, statement book, store, outbox and channels.

* Real MariaDB load: one statement runs steadily all along (the heaviest in total time), another
  starts late; when the pool alert fires, the page (webhook and e-mail) names the late one first.
* A queue alert carries that queue's depth and processing rate, and its link pins the queue.
* Statement texts from the monitored server are cut to 200 characters and escaped in the HTML
  e-mail and in Slack; a context that cannot be computed never stops the page.
"""
from __future__ import annotations

import math
import secrets
import threading
import time
from datetime import timezone

import pytest
import redis

from alerts import messages
from dashboard import alerting
from dashboard.alert_context import AlertContext
from dashboard.collectors.mysql.statements import Inc, StatementBook
from dashboard.config import load as config
from dashboard.model import Sample
from dashboard.runtime import Runtime
from dashboard.store import Store
from dashboard.web import panels
from tests.support.alert_helpers import FAST, Clock, delivered, drain, make_service, pool
from tests.support.util import mysql_connect, wait_until

POOL = 20
PUBLIC = "http://127.0.0.1:8050"


def install(rt: Runtime, why: AlertContext) -> None:
    rt.alerting = alerting.service_for(rt, policy=FAST, panel_for=panels.rule_panels(), why=why)
    rt.add(alerting.parts(rt.alerting, rt.settings))


class Loop:
    """A client running one statement over and over on its own connection until stopped."""

    def __init__(self, url: str, sql: str) -> None:
        self.conn = mysql_connect(url)
        self.sql, self.stop = sql, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute(self.sql)
                cur.fetchall()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.conn.close()


@pytest.fixture
def db_runtime(tmp_path, mariadb, webhook_receiver, smtp_server):
    url = mariadb.create_monitor_user("whymon", secrets.token_urlsafe(12),
                                      ["PROCESS", "BINLOG MONITOR", "SELECT ON performance_schema.*"])
    settings = config.from_dict({
        "data_dir": str(tmp_path / "data"), "interval_s": 0.5, "host_name": "db-host-1",
        "public_url": PUBLIC,
        "mysql": {"url": url, "pool_capacity": POOL, "digest_interval_s": 1},
        "rules": {"db_pool_utilization": {"for_s": 2, "keep_firing_for_s": 0}},
        "smtp": {"port": smtp_server.port},
        "notify": [{"kind": "webhook", "url": webhook_receiver.url, "name": "hook",
                    "rules": ["db_pool_utilization"]},
                   {"kind": "email", "to": ["oncall@example.com"], "name": "mail",
                    "rules": ["db_pool_utilization"]}],
    })
    rt = Runtime(settings)
    # The windows shortened: the last 6 s against the 20 s before (5 min and 1 h in service).
    install(rt, AlertContext(PUBLIC, rt.store, lambda: alerting.statement_book(rt),
                             recent_s=6, base_s=20))
    rt.start()
    yield rt
    rt.stop()


def test_a_pool_page_names_first_the_statement_whose_time_grew_not_the_heaviest(
        db_runtime, mariadb, webhook_receiver, smtp_server):
    rt = db_runtime
    book = wait_until(lambda: alerting.statement_book(rt) if alerting.statement_book(rt)._since
                      else None, timeout=20, message="no digest snapshot")
    loops, opened = [], []
    try:
        # Steady all along, and the heaviest in total time throughout (two clients).
        loops += [Loop(mariadb.root_url, "SELECT SLEEP(0.02) AS steady_report") for _ in range(2)]
        wait_until(lambda: time.time() - book._since >= 14, timeout=30)
        # Starts late, one client: less total time than the steady one, all of it new.
        loops.append(Loop(mariadb.root_url, "SELECT SLEEP(0.03) AS checkout_lookup"))
        time.sleep(8)      # the test's input: the late statement fills the 6 s recent window
        connected = wait_until(lambda: next((s.values["db.threads_connected"] for s in rt.store.latest()
                                             if s.source == "db" and "db.threads_connected" in s.values),
                                            None), timeout=10)
        for _ in range(math.ceil(0.9 * POOL) - int(connected)):
            opened.append(mysql_connect(mariadb.root_url))
        [hook] = webhook_receiver.wait_for(1, timeout=30)
        [mail] = smtp_server.wait_for(1, timeout=20)
    finally:
        for c in opened:
            c.close()
        for loop in loops:
            loop.close()

    [alert] = hook.json()["alerts"]
    assert alert["event"] == "firing" and alert["rule"] == "db_pool_utilization"
    ctx = alert["context"]
    rows = ctx["statements"]["rows"]
    assert "checkout_lookup" in rows[0]["text"], rows
    assert rows[0]["before_ms_per_min"] is not None          # compared with a real baseline
    # The steady statement is the heaviest in total time (what the top-statements table puts
    # first), yet it did not grow: it is not named first.
    heaviest = book.top("1h", "total_ms", limit=1)["rows"][0]["text"]
    assert "steady_report" in heaviest, heaviest
    assert ctx["host"]["cpu_percent"] is not None and ctx["host"]["load1"] is not None
    assert ctx["window"]["from"] <= alert["since"] and ctx["window"]["to"] > alert["at"]
    assert ctx["window"]["url"] == f"{PUBLIC}/?from={ctx['window']['from']}&to={ctx['window']['to']}"

    text = mail.text
    why = text[text.index("What changed around it"):]
    first = next(line for line in why.splitlines() if line.strip().startswith("1."))
    assert "checkout_lookup" in first
    assert ctx["window"]["url"] in why
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    assert "checkout_lookup" in html and "live page at that moment" in html


def test_a_queue_page_carries_that_queues_depth_rate_and_a_link_pinned_to_it(
        tmp_path, redis_server, webhook_receiver):
    r = redis.Redis.from_url(redis_server.url)
    r.delete("why:emails")
    r.rpush("why:emails", *range(80))
    settings = config.from_dict({
        "data_dir": str(tmp_path / "data"), "interval_s": 0.5, "public_url": PUBLIC,
        "redis": {"url": redis_server.url},
        "queues": [{"name": "emails", "kind": "redis-list", "key": "why:emails", "window_s": 30}],
        "rules": {"queue_pending": {"for_s": 3, "keep_firing_for_s": 0}},
        "notify": [{"kind": "webhook", "url": webhook_receiver.url, "name": "hook",
                    "rules": ["queue_pending"]}],
    })
    rt = Runtime(settings)
    install(rt, AlertContext(PUBLIC, rt.store, lambda: None))
    rt.start()
    try:
        wait_until(lambda: any(s.source == "queue" and s.labels.get("queue") == "emails"
                               for s in rt.store.latest()), timeout=15)
        r.lpop("why:emails", 10)                 # workers take 10: a processing rate to show
        [hook] = webhook_receiver.wait_for(1, timeout=20)
    finally:
        rt.stop()
        r.delete("why:emails")
    [alert] = hook.json()["alerts"]
    assert alert["rule"] == "queue_pending" and alert["labels"] == {"queue": "emails"}
    q = alert["context"]["queue"]
    assert q["name"] == "emails" and q["pending"] == 70 and q["net_dequeue_per_s"] > 0
    assert q["dequeued_per_s"] is None            # a plain list does not count what was added
    assert alert["context"]["window"]["url"].endswith("&queue=emails")
    assert alert["context"]["statements"] is None            # no MySQL here: said as absent


SCRIPT = "SELECT * FROM t WHERE note = '<script>alert(1)</script>' /* " + "x" * 400 + " */"


def test_statement_texts_are_cut_and_escaped_in_the_html_email_and_slack(tmp_path, smtp_server,
                                                                        webhook_receiver):
    clock = Clock()
    book = StatementBook(1000.0, timezone.utc, clock=clock)
    t0 = clock.now - 1200
    for i in range(20):                    # a minute apart; the script one only in the last 5 min
        incs = {"quiet": Inc(1, 5.0, 5.0)}
        if i >= 16:
            incs["evil"] = Inc(10, 900.0, 120.0)
        book.add(t0 + 60 * i + 60, incs, [("quiet", "app", "SELECT 1"), ("evil", "app", SCRIPT)])
    # The cache an hour ago, from the store; now, from the newest sample seen.
    store = Store(tmp_path / "data")
    store.append([Sample("cache", clock.now - 3600 + s, {"cache.hit_rate": 98.0}) for s in (-20, 0, 20)])
    store.close()
    why = AlertContext(PUBLIC, Store(tmp_path / "data"), lambda: book)
    svc, _ = make_service(tmp_path / "data", clock=clock, why=why,
                          notify=[{"kind": "email", "to": ["a@example.com"], "name": "mail"},
                                  {"kind": "slack", "url": webhook_receiver.url, "name": "chat"}],
                          rules={"db_pool_utilization": {"for_s": 0}}, smtp={"port": smtp_server.port})
    try:
        svc.process([Sample("cache", clock.now, {"cache.hit_rate": 71.5})], clock.now)
        [t] = svc.process([pool(90, clock.now)], clock.now)
        assert t.kind == "firing"
        drain(svc, clock)
    finally:
        svc.close()
    [mail] = smtp_server.messages
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "71.5 % now, 98 % an hour before" in mail.text
    [slack] = delivered(webhook_receiver.requests)
    section = slack.json()["blocks"][0]["text"]["text"]
    assert "<script>" not in section and "&lt;script&gt;" in section
    first = next(line for line in mail.text.splitlines() if line.strip().startswith("1."))
    assert "alert(1)" in first and "SELECT 1" not in first
    rows = why.build(svc.rules["db_pool_utilization"], {}, clock.now, clock.now)["statements"]["rows"]
    assert rows[0]["id"] == "evil" and len(rows[0]["text"]) == 200 and rows[0]["text"].endswith("…")


def test_a_context_that_fails_costs_the_page_its_context_never_the_page(tmp_path, webhook_receiver):
    def broken() -> StatementBook:
        raise RuntimeError("book gone")

    clock = Clock()
    why = AlertContext(PUBLIC, None, broken)
    svc, _ = make_service(tmp_path / "data", clock=clock, why=why,
                          notify=[{"kind": "webhook", "url": webhook_receiver.url, "name": "hook"}],
                          rules={"db_pool_utilization": {"for_s": 0}})
    try:
        [t] = svc.process([pool(90, clock.now)], clock.now)
        drain(svc, clock)
    finally:
        svc.close()
    [hook] = delivered(webhook_receiver.requests)
    [alert] = hook.json()["alerts"]
    assert alert["event"] == "firing" and alert["context"] is None
    assert svc.context_failures == 1
    assert messages.context_text(None) == ""


class CountingBook(StatementBook):
    """A real book that counts how often a page's statements are summed."""

    calls = 0

    def growth(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().growth(*args, **kwargs)


def test_a_storm_of_pages_in_one_tick_sums_the_statements_once(tmp_path, webhook_receiver):
    """40 queues past their level in one tick are 40 pages with the same moment: what changed
    around it (the statements' sums, ~20 ms each with 500 statements, and the cache an hour
    before) is worked out once, not 40 times while the tick's publish waits."""
    clock = Clock()
    now = clock.now
    book = CountingBook(1000.0, timezone.utc, clock=clock)
    for j in range(40):
        book.add(now - 600 + 15 * j, {"k1": Inc(3, 5.0 * (4 if j > 20 else 1), 4.0)},
                 [("k1", "shop", "SELECT 1")] if j == 0 else ())
    store = Store(tmp_path / "ctx")
    store.append([Sample("cache", now - 3600, {"cache.hit_rate": 95.0})])
    why = AlertContext(PUBLIC, store, lambda: book)
    why.observe([Sample("cache", now, {"cache.hit_rate": 80.0})])
    svc, _ = make_service(tmp_path / "data", [{"kind": "webhook", "url": webhook_receiver.url,
                                               "name": "hook", "group_window_s": 0}],
                          {"queue_pending": {"for_s": 0, "keep_firing_for_s": 0}}, clock=clock, why=why)
    try:
        fired = svc.process([Sample("queue", now, {"queue.pending": 5000.0}, {"queue": f"q{i}"})
                             for i in range(40)], now)
        assert len(fired) == 40
        drain(svc, clock)
    finally:
        svc.outbox.stop()
        svc.close()
        store.close()
    alerts = [a for r in delivered(webhook_receiver.requests) for a in r.json()["alerts"]]
    assert len(alerts) == 40
    assert all(a["context"]["statements"]["rows"][0]["text"] == "SELECT 1" for a in alerts)
    assert all(a["context"]["cache_hit_rate"] == {"now": 80.0, "hour_before": 95.0} for a in alerts)
    assert book.calls == 1
