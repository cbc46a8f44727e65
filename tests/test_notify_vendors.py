"""The on-call vendors' channels (PagerDuty, Microsoft Teams, Telegram, ntfy) end to end, each
against a local receiver that checks the vendor's documented request shape and answers with the
vendor's documented bodies (tests/support/vendor_receivers.py)."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from dashboard.config import load as config
from dashboard.model import Sample
from tests.support.alert_helpers import Clock, drain, make_service, pool
from tests.support.alert_process import AlertChild
from tests.support.util import wait_until
from tests.support.vendor_receivers import (
    NtfyReceiver,
    PagerDutyReceiver,
    TeamsReceiver,
    TelegramReceiver,
    VendorReceiver,
)

ROOT = Path(__file__).resolve().parent.parent
ROUTING_KEY = "R0ut1ngKey0123456789abcdefABCDEF"
BOT_TOKEN = "123456789:AAE-secretBotToken_0123456789abcd"
CHAT = "-1001234567890"
SIG = "s1gN4tur3SecretValue0123456789xyz"
TOPIC = "oncall-7f3a9c2e"
NTFY_TOKEN = "tk_secretaccesstoken0123456789"
SECRETS = (ROUTING_KEY, BOT_TOKEN, SIG, TOPIC, NTFY_TOKEN)
KINDS = ["pagerduty", "teams", "telegram", "ntfy"]


def receiver_for(kind: str) -> tuple[VendorReceiver, dict]:
    """A started receiver and the [[notify]] table pointing at it (``url`` as the proxy override)."""
    if kind == "pagerduty":
        r: VendorReceiver = PagerDutyReceiver(ROUTING_KEY).start()
        return r, {"kind": kind, "name": "pd", "routing_key": ROUTING_KEY, "url": r.endpoint}
    if kind == "teams":
        t = TeamsReceiver(SIG).start()
        return t, {"kind": kind, "name": "teams", "url": t.endpoint}
    if kind == "telegram":
        g = TelegramReceiver(BOT_TOKEN, CHAT).start()
        return g, {"kind": kind, "name": "tg", "bot_token": BOT_TOKEN, "chat_id": int(CHAT),
                   "url": g.url}
    n = NtfyReceiver(TOPIC, NTFY_TOKEN).start()
    return n, {"kind": kind, "name": "phone", "url": n.endpoint, "token": NTFY_TOKEN}


@pytest.fixture
def vendor(request):
    receiver, notify = receiver_for(request.param)
    yield receiver, notify
    receiver.stop()


@pytest.fixture
def services():
    made = []
    yield made
    for svc in made:
        svc.outbox.stop()
        svc.close()


def quick(rule: str = "db_pool_utilization") -> dict:
    return {rule: {"for_s": 0, "keep_firing_for_s": 0}}


def channel(svc) -> dict:
    [ch] = svc.overview()["channels"]
    return ch


# --- PagerDuty: one alert per episode, acknowledged and resolved there -----------------------------

def test_pagerduty_gets_trigger_acknowledge_and_resolve_under_one_dedup_key_per_episode(
        tmp_path, services):
    pd, notify = receiver_for("pagerduty")
    try:
        clock = Clock()
        svc, _ = make_service(tmp_path, [notify], quick(), clock=clock)
        services.append(svc)
        svc.process([pool(90, clock.now)], clock.now)
        drain(svc, clock)
        [alert_id] = [a["id"] for a in svc.overview()["active"]]
        svc.acknowledge(alert_id, "alice", "on it")          # as the page, API and ack link do
        drain(svc, clock)
        clock.advance(5)
        svc.process([pool(10, clock.now)], clock.now)
        drain(svc, clock)
        events = pd.documents()
        assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
        assert {e["dedup_key"] for e in events} == {alert_id}
        trigger = events[0]
        assert trigger["payload"]["severity"] == "warning" and trigger["payload"]["source"] == "web-1"
        assert "90 %" in trigger["payload"]["summary"]
        assert any("/alerts/ack/" in link["href"] for link in trigger["links"])
        assert pd.alerts == {alert_id: {"status": "resolved", "triggers": 1}}
        clock.advance(5)                                     # the next episode is a new alert there
        svc.process([pool(97, clock.now)], clock.now)
        drain(svc, clock)
        last = pd.documents()[-1]
        assert last["event_action"] == "trigger" and last["dedup_key"] != alert_id
        assert last["payload"]["severity"] == "critical"
        assert pd.problems == []
    finally:
        pd.stop()


def test_a_pagerduty_retry_never_reopens_an_alert_the_same_message_resolved(tmp_path, services):
    """One message may carry an alert's trigger and its resolve (a flap inside the group window)
    and more events after them. When PagerDuty refuses a later event (429), the retry goes on from
    the refused event: sending the trigger again would open a new incident for the resolved
    alert there, which stays open (paging) if the retry stops before the resolve."""
    pd, notify = receiver_for("pagerduty")
    try:
        clock = Clock()
        svc, _ = make_service(tmp_path, [notify], {**quick(), **quick("host_cpu")}, clock=clock)
        services.append(svc)
        [other] = svc.process([Sample("host", clock.now, {"host.cpu_percent": 99.0})], clock.now)
        drain(svc, clock)                                    # its trigger goes at once
        clock.advance(0.1)
        [flap] = svc.process([pool(90, clock.now)], clock.now)
        clock.advance(0.1)
        svc.process([pool(10, clock.now)], clock.now)       # resolved within the group window
        svc.process([Sample("host", clock.now, {"host.cpu_percent": 10.0})], clock.now)
        # The second message: the flap's trigger and resolve get in, then the limit is reached;
        # after each wait one more event gets in and the next is refused.
        pd.respond_with(["accepted", "accepted", "rate_limited"] + ["accepted", "rate_limited"] * 3)
        drain(svc, clock)
        assert pd.alerts[flap.alert_id] == {"status": "resolved", "triggers": 1}
        assert pd.alerts[other.alert_id]["status"] == "resolved"
        assert [(d["event_action"], d["dedup_key"]) for d in pd.documents()] == [
            ("trigger", other.alert_id), ("trigger", flap.alert_id), ("resolve", flap.alert_id),
            ("resolve", other.alert_id)]
        assert pd.problems == []
    finally:
        pd.stop()


def test_an_ack_through_the_api_acknowledges_the_pagerduty_alert(tmp_path):
    from dashboard.app import create_app
    from dashboard.runtime import Runtime
    from tests.support.auth_helpers import logged_in_client
    pd, notify = receiver_for("pagerduty")
    notify["group_window_s"] = 0           # the outbox runs on the real clock here
    settings = config.from_dict({"data_dir": str(tmp_path / "d"), "async_mode": "threading",
                                 "notify": [notify], "auth": {"api_rate_limit": "100000 per minute"}})
    rt = Runtime(settings, [])
    try:
        app = create_app(settings, rt, async_mode="threading")
        svc = app.extensions["dashboard.alerting"]
        now = time.time()
        svc.process([pool(90, now - 61)], now - 61)
        [t] = svc.process([pool(90, now)], now)
        drain(svc, Clock())
        r = logged_in_client(app, "operator").post(f"/api/alerts/{t.alert_id}/ack",
                                                   json={"comment": "looking"})
        assert r.status_code == 200
        drain(svc, Clock())
        assert [e["event_action"] for e in pd.documents()] == ["trigger", "acknowledge"]
        assert pd.alerts[t.alert_id]["status"] == "acknowledged" and pd.problems == []
    finally:
        rt.stop()
        pd.stop()


# --- every vendor: the documented shape, escaping, limits -------------------------------------------

@pytest.mark.parametrize("vendor", KINDS, indirect=True)
def test_each_vendor_gets_its_documented_request_shape_with_every_value_escaped(
        tmp_path, vendor, services):
    receiver, notify = vendor
    clock = Clock()
    svc, _ = make_service(tmp_path, [notify], quick("queue_pending"), clock=clock)
    services.append(svc)
    hostile = '<i>jobs</i> & "x" <script> [click](https://evil.example) *loud*'
    svc.process([Sample("queue", clock.now, {"queue.pending": 250.0}, {"queue": hostile})], clock.now)
    drain(svc, clock)
    clock.advance(5)
    svc.process([Sample("queue", clock.now, {"queue.pending": 0.0}, {"queue": hostile})], clock.now)
    drain(svc, clock)
    assert receiver.problems == []
    docs = receiver.documents() if notify["kind"] != "teams" else [r.json() for r in receiver.requests]
    assert len(docs) == 2 and all(200 <= r.status < 300 for r in receiver.requests)
    first, second = docs
    if notify["kind"] == "pagerduty":
        assert (first["event_action"], second["event_action"]) == ("trigger", "resolve")
        assert first["payload"]["custom_details"]["labels"] == {"queue": hostile}
        assert "routing_key" in first and first["routing_key"] == ROUTING_KEY
    elif notify["kind"] == "telegram":
        assert "queue=&lt;i&gt;jobs&lt;/i&gt; &amp; \"x\" &lt;script&gt; [click]" in first["text"]
        assert "\U0001F534" in first["text"] and "\u2705" in second["text"]
        assert first["parse_mode"] == "HTML" and str(first["chat_id"]) == CHAT
    elif notify["kind"] == "ntfy":
        assert (first["priority"], second["priority"]) == (5, 3)        # critical, then resolved
        assert first["topic"] == TOPIC and hostile in first["message"]
        assert [a["label"] for a in first["actions"]] == ["Acknowledge", "Open the panel"]
        assert "/alerts/ack/" in first["actions"][0]["url"]
        assert [a["label"] for a in second["actions"]] == ["Open the panel"]
    else:
        card = first["attachments"][0]["content"]
        facts = {b["inlines"][0]["text"]: b["inlines"][1]["text"]
                 for b in card["body"][0]["items"][2:-1]}
        assert facts["Labels: "] == f"queue={hostile}" and card["version"] == "1.4"
        assert card["body"][0]["style"] == "attention"


@pytest.mark.parametrize("vendor", ["telegram", "teams", "ntfy"], indirect=True)
def test_a_flood_of_alerts_stays_within_the_vendors_size_limit(tmp_path, vendor, services):
    receiver, notify = vendor
    clock = Clock()
    svc, _ = make_service(tmp_path, [notify], {**quick(), **quick("queue_pending")}, clock=clock)
    services.append(svc)
    svc.process([pool(90, clock.now)], clock.now)            # the first message goes at once...
    drain(svc, clock)
    long = "q" * 400
    samples = [Sample("queue", clock.now, {"queue.pending": 250.0}, {"queue": f"{long}{i}"})
               for i in range(60)]
    svc.process(samples, clock.now)                          # ...these 60 wait and go as one
    drain(svc, clock)
    assert receiver.problems == [] and len(receiver.requests) == 2
    assert "more on the alerts page" in receiver.requests[1].body.decode()


# --- errors as each vendor documents them -----------------------------------------------------------

@pytest.mark.parametrize("vendor", KINDS, indirect=True)
def test_a_rate_limit_waits_as_long_as_the_vendor_asks_then_delivers(tmp_path, vendor, services):
    receiver, notify = vendor
    clock = Clock()
    svc, _ = make_service(tmp_path, [notify], quick(), clock=clock)
    services.append(svc)
    receiver.respond_with(["rate_limited"])
    svc.process([pool(90, clock.now)], clock.now)
    conn = svc.outbox._connect()
    try:
        assert svc.outbox.step(conn, notify["name"]) == 0     # the message is composed
        assert svc.outbox.step(conn, notify["name"]) == 0     # tried: 429
        wait = svc.outbox.step(conn, notify["name"])
    finally:
        conn.close()
    # Teams sends Retry-After: 7, Telegram parameters.retry_after: 7; PagerDuty gives no time
    # and its docs ask for retries 30 s apart (its limit counts the last 60 s); ntfy gives no
    # time, so the outbox's backoff (0.2 s in tests) applies.
    expected = {"teams": 7.0, "telegram": 7.0, "pagerduty": 30.0}.get(notify["kind"], 0.2)
    assert wait == pytest.approx(expected, abs=0.01)
    assert channel(svc)["state"] == "retrying" and "429" in channel(svc)["error"]
    drain(svc, clock)
    assert [r.status // 100 for r in receiver.requests] == [4, 2]
    assert receiver.requests[0].body == receiver.requests[1].body and receiver.problems == []
    assert channel(svc)["state"] == "ok"


@pytest.mark.parametrize("retry_after", [86400, 1e308, -5, True])
def test_telegrams_retry_after_is_capped_like_a_retry_after_header(tmp_path, services, retry_after):
    """Telegram's flood control can ask for hours (``parameters.retry_after``); the outbox waits
    at most an hour, as for an HTTP Retry-After, and never a negative or endless time (JSON
    allows 1e308; a bool is no number of seconds)."""
    receiver, notify = receiver_for("telegram")
    try:
        clock = Clock()
        svc, _ = make_service(tmp_path, [notify], quick(), clock=clock)
        services.append(svc)
        receiver.respond_with([(429, json.dumps({
            "ok": False, "error_code": 429, "description": "Too Many Requests: retry later",
            "parameters": {"retry_after": retry_after}}), {"Content-Type": "application/json"})])
        svc.process([pool(90, clock.now)], clock.now)
        conn = svc.outbox._connect()
        try:
            assert svc.outbox.step(conn, notify["name"]) == 0     # the message is composed
            assert svc.outbox.step(conn, notify["name"]) == 0     # tried: 429
            wait = svc.outbox.step(conn, notify["name"])
        finally:
            conn.close()
        expected = {86400: 3600.0, 1e308: 3600.0, -5: 0.0, True: 0.2}[retry_after]
        assert wait == pytest.approx(expected, abs=0.01)
        if expected:                   # (a wait of 0: the third step already tried again)
            assert channel(svc)["state"] == "retrying"
    finally:
        receiver.stop()


def test_a_message_waiting_as_the_vendor_asks_keeps_the_outbox_moving(tmp_path, services):
    """The watchdog's "the outbox is moving": a message PagerDuty throttled waits 30 s, as its
    docs ask, longer than twice the outbox's own schedule; it is waiting as told, not stuck
    (a /fail would page the outside service for a 429). Overdue past its next attempt (the sender
    hung), it is stuck."""
    pd, notify = receiver_for("pagerduty")
    try:
        clock = Clock()
        svc, _ = make_service(tmp_path, [notify], quick(), clock=clock)
        services.append(svc)
        pd.respond_with(["rate_limited"])
        svc.process([pool(90, clock.now)], clock.now)
        conn = svc.outbox._connect()
        try:
            assert svc.outbox.step(conn, "pd") == 0                  # composed
            assert svc.outbox.step(conn, "pd") == 0                  # tried: 429
            limit = 2 * svc.outbox.schedule_s("pd")
            assert limit < 30
            clock.advance(limit + 5)
            assert svc.outbox.stuck(conn) == []
            clock.advance(30 + limit)                                # overdue: nobody tried again
            [why] = svc.outbox.stuck(conn)
            assert why.startswith("channel pd:") and "429" in why
            assert svc.outbox.step(conn, "pd") == 0                  # tried again: delivered
            assert svc.outbox.stuck(conn) == []
        finally:
            conn.close()
    finally:
        pd.stop()


@pytest.mark.parametrize("vendor", KINDS, indirect=True)
def test_a_5xx_is_retried(tmp_path, vendor, services):
    receiver, notify = vendor
    clock = Clock()
    svc, _ = make_service(tmp_path, [notify], quick(), clock=clock)
    services.append(svc)
    receiver.respond_with(["server_error", "server_error"])
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    assert [r.status // 100 for r in receiver.requests] == [5, 5, 2]
    assert channel(svc)["state"] == "ok"


VENDOR_MESSAGES = {"pagerduty": "'routing_key' does not belong to an enabled integration",
                   "teams": "WorkflowNotFound: The workflow was not found or was turned off.",
                   "telegram": "Forbidden: bot was kicked from the supergroup chat",
                   "ntfy": "forbidden (40301)"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_rejection_is_permanent_and_the_vendors_message_is_on_the_alerts_page(tmp_path, kind):
    from dashboard.app import create_app
    from dashboard.runtime import Runtime
    from tests.support.auth_helpers import logged_in_client
    receiver, notify = receiver_for(kind)
    settings = config.from_dict({"data_dir": str(tmp_path / "d"), "async_mode": "threading",
                                 "notify": [notify], "auth": {"api_rate_limit": "100000 per minute"}})
    rt = Runtime(settings, [])
    try:
        app = create_app(settings, rt, async_mode="threading")
        svc = app.extensions["dashboard.alerting"]
        receiver.respond_with(["rejected"])
        now = time.time()
        svc.process([pool(90, now - 61)], now - 61)
        svc.process([pool(90, now)], now)
        drain(svc, Clock())
        assert len(receiver.requests) == 1                    # not retried
        ch = channel(svc)
        assert ch["state"] == "failed_permanently" and VENDOR_MESSAGES[kind] in ch["error"]
        page = logged_in_client(app, "viewer").get("/alerts").get_data(as_text=True)
        assert "fails permanently" in page and notify["name"] in page
        import html as html_lib
        assert VENDOR_MESSAGES[kind] in html_lib.unescape(page)
        for secret in SECRETS:
            assert secret not in ch["error"] and secret not in page
    finally:
        rt.stop()
        receiver.stop()


def test_a_telegram_token_never_shows_even_when_the_api_cannot_be_reached(tmp_path, services, caplog):
    from dashboard.demo.services import free_port
    clock = Clock()
    svc, _ = make_service(tmp_path, [{"kind": "telegram", "name": "tg", "bot_token": BOT_TOKEN,
                                      "chat_id": CHAT, "url": f"http://127.0.0.1:{free_port()}"}],
                          quick(), clock=clock)
    services.append(svc)
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    ch = channel(svc)
    assert ch["state"] == "failing" and "telegram http://127.0.0.1" in ch["error"]
    assert BOT_TOKEN not in ch["error"] and BOT_TOKEN.split(":")[1] not in caplog.text


def test_vendor_credentials_are_masked_in_the_effective_settings():
    s = config.from_dict({"notify": [
        {"kind": "pagerduty", "routing_key": ROUTING_KEY},
        {"kind": "teams", "url": f"https://prod.westeurope.logic.azure.com/workflows/1/x?sig={SIG}"},
        {"kind": "telegram", "bot_token": BOT_TOKEN, "chat_id": "@oncall_room"},
        {"kind": "ntfy", "url": f"https://ntfy.sh/{TOPIC}", "token": NTFY_TOKEN}]})
    shown = json.dumps(s.masked())
    for secret in SECRETS:
        assert secret not in shown
        assert any(secret in known for known in s.secrets())
    assert "https://prod.westeurope.logic.azure.com/***" in shown and "https://ntfy.sh/***" in shown


@pytest.mark.parametrize(("table", "key"), [
    ({"kind": "pagerduty"}, "routing_key"),
    ({"kind": "pagerduty", "routing_key": "short"}, "routing_key"),
    ({"kind": "teams"}, "url"),
    ({"kind": "telegram", "bot_token": BOT_TOKEN}, "chat_id"),
    ({"kind": "telegram", "bot_token": "nope", "chat_id": CHAT}, "bot_token"),
    ({"kind": "ntfy", "url": "https://ntfy.sh/"}, "url"),
    ({"kind": "ntfy", "url": f"https://ntfy.sh/{TOPIC}", "routing_key": ROUTING_KEY}, "routing_key"),
])
def test_a_bad_vendor_table_stops_start_up_naming_the_key(table, key):
    with pytest.raises(config.ConfigError) as e:
        config.from_dict({"notify": [table]})
    assert str(e.value).startswith(f"notify[0].{key}")
    for secret in SECRETS:
        assert secret not in str(e.value)


# --- kill -9 between the vendor's 2xx and the outbox's record ---------------------------------------

def Child(data_dir: Path, notify: dict) -> AlertChild:
    return AlertChild(data_dir, "-", "90", json.dumps(notify))


@pytest.mark.parametrize("vendor", KINDS, indirect=True)
def test_kill_9_after_the_vendors_2xx_repeats_at_most_once_with_the_same_key(tmp_path, vendor):
    receiver, notify = vendor
    data = tmp_path / "data"
    made: list[Child] = []
    try:
        receiver.hold()                         # the vendor has the message; we never hear back
        made.append(Child(data, notify))
        wait_until(lambda: receiver.requests, timeout=30)
        made[0].kill()
        receiver.release()
        made.append(Child(data, notify))
        made[1].wait_line("idle")
        reqs = receiver.requests
        assert len(reqs) == 2 and receiver.problems == []
        assert reqs[0].body == reqs[1].body
        assert reqs[0].header("Idempotency-Key") == reqs[1].header("Idempotency-Key")
        if notify["kind"] == "pagerduty":        # PagerDuty merges the copy: one alert, not two
            [key] = {r.json()["dedup_key"] for r in reqs}
            assert pd_alerts(receiver) == {key: {"status": "triggered", "triggers": 2}}
    finally:
        for c in made:
            c.kill()


def pd_alerts(receiver: VendorReceiver) -> dict:
    assert isinstance(receiver, PagerDutyReceiver)
    return receiver.alerts


EVIL_SQL = "SELECT * FROM t WHERE note = '<b>x</b> & [click](https://evil.example)'"


@pytest.mark.parametrize("vendor", KINDS, indirect=True)
def test_each_vendor_page_says_what_changed_around_it_escaped_with_a_link_to_that_moment(
        tmp_path, vendor, services):
    # lazy: only this test builds a statement book and the page context
    from datetime import timezone

    from dashboard.alert_context import AlertContext
    from dashboard.collectors.mysql.statements import Inc, StatementBook

    receiver, notify = vendor
    clock = Clock()
    book = StatementBook(1000.0, timezone.utc, clock=clock)
    t0 = clock.now - 1200
    for i in range(20):                    # a minute apart; the evil one only in the last 5 min
        incs = {"quiet": Inc(1, 5.0, 5.0)}
        if i >= 16:
            incs["evil"] = Inc(10, 900.0, 120.0)
        book.add(t0 + 60 * i + 60, incs, [("quiet", "app", "SELECT 1"), ("evil", "app", EVIL_SQL)])
    why = AlertContext("http://127.0.0.1:8050", None, lambda: book)
    svc, _ = make_service(tmp_path, [notify], quick(), clock=clock, why=why)
    services.append(svc)
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    assert receiver.problems == []
    [doc] = receiver.documents() if notify["kind"] != "teams" else [r.json() for r in receiver.requests]
    moment = "http://127.0.0.1:8050/?from="
    if notify["kind"] == "pagerduty":
        changed = doc["payload"]["custom_details"]["what_changed"]
        assert any(EVIL_SQL in line for line in changed)
        assert any(link["href"].startswith(moment) for link in doc["links"])
    elif notify["kind"] == "telegram":
        assert "&lt;b&gt;x&lt;/b&gt; &amp; [click]" in doc["text"] and "<b>x</b>" not in doc["text"]
        assert f'<a href="{moment}' in doc["text"]
    elif notify["kind"] == "ntfy":
        assert EVIL_SQL in doc["message"]
        assert any(a["url"].startswith(moment) for a in doc["actions"])
    else:
        card = doc["attachments"][0]["content"]
        texts = [run["text"] for b in card["body"][0]["items"] for run in b.get("inlines", [])]
        assert any(EVIL_SQL in t for t in texts)
        [actions] = [b["actions"] for b in card["body"][0]["items"] if b["type"] == "ActionSet"]
        assert any(a["url"].startswith(moment) for a in actions)


def test_a_single_telegram_page_too_long_once_escaped_is_shortened_never_dropped(tmp_path, services):
    """A queue named with 700 ``&`` (queue names come from the monitored system) makes one
    item over Telegram's 4,096 characters once escaped: the page must still say what fired."""
    receiver, notify = receiver_for("telegram")
    try:
        clock = Clock()
        svc, _ = make_service(tmp_path, [notify], quick("queue_pending"), clock=clock)
        services.append(svc)
        svc.process([Sample("queue", clock.now, {"queue.pending": 250.0}, {"queue": "&" * 700})],
                    clock.now)
        drain(svc, clock)
        assert receiver.problems == []
        [doc] = receiver.documents()
    finally:
        receiver.stop()
    assert "Pending jobs" in doc["text"] and "queue=&amp;&amp;" in doc["text"]
    assert "more on the alerts page" not in doc["text"]
    assert "/alerts/ack/" in doc["text"]                  # the ack link is what on-call taps


def test_an_ntfy_url_with_the_auth_query_parameter_keeps_it_and_never_shows_it(tmp_path, services):
    """ntfy documents ``?auth=`` (the Authorization header's value in raw URL-safe base64) for
    any publish, so a topic URL that carries it must be sent with it, and masked like a token."""
    auth = base64.urlsafe_b64encode(f"Bearer {NTFY_TOKEN}".encode()).decode().rstrip("=")
    receiver = NtfyReceiver(TOPIC, NTFY_TOKEN).start()
    try:
        notify = {"kind": "ntfy", "name": "phone", "url": f"{receiver.endpoint}?auth={auth}"}
        clock = Clock()
        svc, settings = make_service(tmp_path, [notify], quick(), clock=clock)
        services.append(svc)
        svc.process([pool(90, clock.now)], clock.now)
        drain(svc, clock)
        assert receiver.problems == [] and len(receiver.requests) == 1
        assert receiver.requests[0].status == 200 and channel(svc)["state"] == "ok"
    finally:
        receiver.stop()
    assert auth not in json.dumps(settings.masked()) and auth not in json.dumps(svc.overview())
    assert any(auth in s for s in settings.secrets())
