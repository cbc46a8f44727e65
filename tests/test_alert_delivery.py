"""Notifications end to end through the real notifiers: a real HTTP receiver and a real SMTP
server (aiosmtpd) on loopback. Most tests drive the outbox step by step with a hand-moved
clock (no sleeping); the retry test runs the real sender thread."""
from __future__ import annotations

import json

import pytest

from dashboard.model import Sample
from tests.support.alert_helpers import (
    FAST,
    WEBHOOK_ALERT_KEYS,
    WEBHOOK_KEYS,
    Clock,
    drain,
    make_service,
    pool,
    verify_signature,
)
from tests.support.util import wait_until

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

SECRET = "hook-secret-123"


@pytest.fixture
def services():
    made = []
    yield made
    for svc in made:
        svc.outbox.stop()
        svc.close()


def hook(receiver, **kw):
    return {"kind": "webhook", "url": receiver.url, "secret": SECRET, "name": "hook", **kw}


def quick(**kw):
    return {"db_pool_utilization": {"for_s": 0, "keep_firing_for_s": 0, **kw}}


def test_webhook_message_has_the_documented_fields_and_a_valid_signature(
        tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.append(svc)
    svc.process([pool(87.5, clock.now)], clock.now)
    drain(svc, clock)
    [req] = webhook_receiver.requests
    body = req.json()
    assert set(body) == WEBHOOK_KEYS and body["schema"] == "dashboard.alert/v1"
    [alert] = body["alerts"]
    assert set(alert) == WEBHOOK_ALERT_KEYS
    assert (alert["event"], alert["severity"], alert["rule"], alert["value"], alert["threshold"],
            alert["direction"], alert["host"]) == ("firing", "warning", "db_pool_utilization",
                                                   87.5, 80, "above", "web-1")
    assert "87.5 % is above 80 %" in alert["summary"]
    assert alert["links"]["panel"].endswith("/#panel-db-pool")
    assert "/alerts/ack/" in alert["links"]["ack"]
    assert req.header("Idempotency-Key") == body["idempotency_key"] == alert["idempotency_key"]
    assert verify_signature(SECRET, req.body, req.header("X-Dashboard-Signature"))
    assert not verify_signature("another secret", req.body, req.header("X-Dashboard-Signature"))


def test_it_retries_on_503_and_delivers_once_on_the_third_attempt(tmp_path, webhook_receiver, services):
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick())
    services.append(svc)
    webhook_receiver.respond_with([503, 503, 200])
    svc.outbox.start()
    svc.process([pool(90)])
    reqs = webhook_receiver.wait_for(3, timeout=10)
    assert [r.status for r in reqs] == [503, 503, 200]
    assert len({r.header("Idempotency-Key") for r in reqs}) == 1
    assert len({r.body for r in reqs}) == 1                     # the very same bytes each time
    wait_until(lambda: svc.overview()["channels"][0]["last_ok"], timeout=5)
    row = svc.conn.execute("SELECT state, attempts FROM outbox_messages").fetchall()
    assert row == [("delivered", 3)]
    assert len(webhook_receiver.requests) == 3                  # nothing after the 200


def test_a_4xx_marks_the_channel_as_failing_permanently_without_retrying(
        tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.append(svc)
    webhook_receiver.respond_with([(404, "no such hook")])
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    assert len(webhook_receiver.requests) == 1
    [ch] = svc.overview()["channels"]
    assert ch["state"] == "failed_permanently" and "HTTP 404" in ch["error"] and ch["failed"] == 1
    assert SECRET not in json.dumps(ch)
    # The next message gets through: the channel is ok again.
    svc.process([pool(10, clock.advance(1))], clock.now)
    drain(svc, clock)
    assert svc.overview()["channels"][0]["state"] == "ok"


def test_a_timeout_or_429_is_retried_and_gives_up_after_three_retries(tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.append(svc)
    webhook_receiver.respond_with([(429, "slow down"), 500, 502, 503])
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    assert [r.status for r in webhook_receiver.requests] == [429, 500, 502, 503]
    assert svc.overview()["channels"][0]["state"] == "failing"


def test_transitions_within_the_group_window_go_out_as_one_message(tmp_path, webhook_receiver, services):
    clock = Clock()
    rules = {**quick(), "queue_pending": {"for_s": 0, "keep_firing_for_s": 0}}
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], rules, clock=clock)
    services.append(svc)
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)                                  # the first goes at once
    for name in ("emails", "reports", "thumbs"):      # then three within the window
        svc.process([Sample("queue", clock.advance(0.1), {"queue.pending": 70}, {"queue": name})],
                    clock.now)
    drain(svc, clock)
    reqs = webhook_receiver.requests
    assert len(reqs) == 2
    grouped = reqs[1].json()
    assert sorted(a["labels"]["queue"] for a in grouped["alerts"]) == ["emails", "reports", "thumbs"]
    assert grouped["idempotency_key"].startswith("group-") and not grouped["digest"]
    assert grouped["sent_at"] - reqs[0].json()["sent_at"] >= FAST.group_window_s


def test_past_twenty_messages_an_hour_a_channel_gets_a_digest(tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.append(svc)
    value = 10.0
    for i in range(24):                                # 12 alert episodes: 24 transitions
        value = 90.0 if value < 50 else 10.0
        # 20 spaced out (one message each), then 4 within one digest interval
        clock.advance(FAST.group_window_s + 0.1 if i < 20 else 0.1)
        svc.process([pool(value, clock.now)], clock.now)
        if i < 20:
            drain(svc, clock)
    drain(svc, clock)
    bodies = [r.json() for r in webhook_receiver.requests]
    assert len(bodies) == 21
    assert [b["digest"] for b in bodies] == [False] * 20 + [True]
    assert len(bodies[20]["alerts"]) == 4 and bodies[20]["title"].startswith("[Digest] 4 alert changes")
    keys = [a["idempotency_key"] for b in bodies for a in b["alerts"]]
    assert len(keys) == len(set(keys)) == 24           # nothing lost, nothing twice


def test_email_has_text_and_html_parts_links_and_the_idempotency_key_as_message_id(
        tmp_path, smtp_server, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [{"kind": "email", "to": ["oncall@example.com"], "name": "mail"}],
                          quick(), clock=clock,
                          smtp={"host": "127.0.0.1", "port": smtp_server.port, "user": "alerts",
                                "password": "mail-pass-9", "sender": "dash@example.com"})
    services.append(svc)
    svc.process([pool(97, clock.now)], clock.now)
    drain(svc, clock)
    [mail] = smtp_server.messages
    msg = mail.message
    assert mail.rcpt_tos == ["oncall@example.com"] and mail.auth_login == "alerts"
    assert msg["Subject"].startswith("[CRITICAL] DB connection pool utilisation 97 % on web-1")
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "97 % is above 95 %" in text and "/#panel-db-pool" in text and "/alerts/ack/" in text
    assert "Acknowledge</a>" in html and "97 % is above 95 %" in html
    key = msg["X-Dashboard-Idempotency-Key"]
    assert msg["Message-ID"] == f"<{key}@dashboard.alerts>"
    assert "mail-pass-9" not in mail.data.decode()


def test_smtp_4xx_is_retried_and_5xx_is_permanent(tmp_path, smtp_server, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [{"kind": "email", "to": ["oncall@example.com"], "name": "mail"}],
                          quick(), clock=clock, smtp={"port": smtp_server.port})
    services.append(svc)
    smtp_server.reject_next(1, "451 4.3.0 Try again later")
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    assert len(smtp_server.messages) == 1
    smtp_server.reject_next(1, "554 5.7.1 Rejected")
    svc.process([pool(10, clock.advance(5))], clock.now)
    drain(svc, clock)
    assert len(smtp_server.messages) == 1
    ch = svc.overview()["channels"][0]
    assert ch["state"] == "failed_permanently" and "554" in ch["error"]


def test_slack_payload_has_a_text_and_blocks_with_links(tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [{"kind": "slack", "url": webhook_receiver.url, "name": "slack"}],
                          quick(), clock=clock)
    services.append(svc)
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    body = webhook_receiver.requests[0].json()
    assert body["text"].startswith("[WARNING] DB connection pool utilisation 90 %")
    section = body["blocks"][0]["text"]["text"]
    assert "|panel>" in section and "|acknowledge>" in section


def test_an_ack_made_by_a_web_instance_is_never_overtaken_by_a_repeat_in_the_tick(
        tmp_path, webhook_receiver, services):
    """Repeats go out from the scheduled tick only, after it has read acknowledgements made
    by other processes; the collection tick's samples never send one."""
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    web, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.extend([svc, web])
    [fired] = svc.process([pool(97, clock.now)], clock.now)
    drain(svc, clock)
    web.acknowledge(fired.alert_id, "ann", "on it")    # another process: svc's engine is stale
    assert svc.process([pool(97, clock.advance(1800))], clock.now) == []   # repeat due, not here
    assert svc.tick(clock.now) == []                   # the tick sees the ack first
    drain(svc, clock)
    assert [r.json()["alerts"][0]["event"] for r in webhook_receiver.requests] == ["firing"]


def test_an_acknowledged_alert_stops_repeating_but_its_resolved_still_goes_out(
        tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.append(svc)
    svc.process([pool(97, clock.now)], clock.now)
    drain(svc, clock)
    svc.tick(clock.advance(1800))                      # critical repeats after 30 min
    drain(svc, clock)
    events = [r.json()["alerts"][0]["event"] for r in webhook_receiver.requests]
    assert events == ["firing", "repeat"]
    alert_id = webhook_receiver.requests[0].json()["alerts"][0]["id"]
    ep = svc.acknowledge(alert_id, "ann", "looking at it")
    assert (ep["acked_by"], ep["ack_comment"]) == ("ann", "looking at it")
    svc.tick(clock.advance(4 * 3600))
    drain(svc, clock)
    assert len(webhook_receiver.requests) == 2         # no repeat once acknowledged
    svc.process([pool(5, clock.advance(1))], clock.now)
    drain(svc, clock)
    last = webhook_receiver.requests[-1].json()["alerts"][0]
    assert (last["event"], last["acknowledged"]) == ("resolved", True)


def test_a_critical_only_channel_hears_critical_and_the_resolved_of_what_it_heard(
        tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver, min_severity="critical", name="pager")],
                          quick(), clock=clock)
    services.append(svc)
    svc.process([pool(85, clock.now)], clock.now)      # warning: not for this channel
    drain(svc, clock)
    assert webhook_receiver.requests == []
    svc.process([pool(99, clock.advance(1))], clock.now)
    svc.process([pool(85, clock.advance(1))], clock.now)
    svc.process([pool(10, clock.advance(1))], clock.now)
    drain(svc, clock)
    events = [a["event"] for r in webhook_receiver.requests for a in r.json()["alerts"]]
    assert events == ["escalated", "deescalated", "resolved"]


def test_a_rule_can_route_each_severity_to_named_channels(tmp_path, webhook_receiver, smtp_server, services):
    clock = Clock()
    rules = quick(severity_channels={"critical": ["pager"], "warning": ["mail"]})
    svc, _ = make_service(tmp_path, [hook(webhook_receiver, name="pager"),
                                     {"kind": "email", "to": ["a@example.com"], "name": "mail"}],
                          rules, clock=clock, smtp={"port": smtp_server.port})
    services.append(svc)
    svc.process([pool(85, clock.now)], clock.now)
    drain(svc, clock)
    assert len(smtp_server.messages) == 1 and webhook_receiver.requests == []
    svc.process([pool(99, clock.advance(1))], clock.now)
    drain(svc, clock)
    assert len(webhook_receiver.requests) == 1 and len(smtp_server.messages) == 1


def test_a_silenced_alert_sends_nothing_and_its_resolved_is_not_lost_when_the_silence_ends(
        tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.append(svc)
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    assert [r.json()["alerts"][0]["event"] for r in webhook_receiver.requests] == ["firing"]
    sil = svc.add_silence("db_pool_utilization", {}, clock.now, clock.now + 2400, "ann", "maintenance")
    svc.process([pool(99, clock.advance(1))], clock.now)     # escalation: held back
    svc.tick(clock.advance(1800))                            # repeat: held back
    svc.process([pool(10, clock.advance(1))], clock.now)     # resolved during the silence: held
    drain(svc, clock)
    assert len(webhook_receiver.requests) == 1
    kinds = [e["kind"] for e in svc.state.events(webhook_receiver.requests[0].json()["alerts"][0]["id"])]
    assert kinds == ["firing", "escalated", "repeat", "resolved"]
    assert svc.overview()["silences"][0]["id"] == sil["id"]
    svc.tick(clock.advance(600))        # the silence's end time has passed: released now
    drain(svc, clock)
    events = [a["event"] for r in webhook_receiver.requests for a in r.json()["alerts"]]
    assert events == ["firing", "resolved"]
    svc.tick(clock.advance(60))
    drain(svc, clock)
    assert len(webhook_receiver.requests) == 2         # released once, not again


def test_an_alert_that_fired_during_a_silence_is_announced_when_the_silence_is_deleted(
        tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.append(svc)
    sil = svc.add_silence(None, {}, clock.now, clock.now + 3600, "ann", "deploy")
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    assert webhook_receiver.requests == []
    ended, by_this_call = svc.end_silence(sil["id"], "bob")
    assert by_this_call and ended["ended_by"] == "bob"
    drain(svc, clock)
    [req] = webhook_receiver.requests
    assert [a["event"] for a in req.json()["alerts"]] == ["firing"]
    # An alert that fired and resolved inside a silence was never announced: nothing to resolve.
    sil2 = svc.add_silence(None, {}, clock.now, clock.now + 3600, "ann", "deploy")
    svc.process([pool(10, clock.advance(1))], clock.now)
    svc.process([pool(90, clock.advance(1))], clock.now)
    svc.process([pool(10, clock.advance(1))], clock.now)
    svc.end_silence(sil2["id"], "bob")
    drain(svc, clock)
    events = [a["event"] for r in webhook_receiver.requests for a in r.json()["alerts"]]
    assert events == ["firing", "resolved"]


def test_a_restarted_service_does_not_page_again_and_still_resolves(tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    svc.process([pool(90, clock.now)], clock.now)
    drain(svc, clock)
    svc.close()
    again, _ = make_service(tmp_path, [hook(webhook_receiver)], quick(), clock=clock)
    services.append(again)
    again.process([pool(91, clock.advance(1))], clock.now)
    drain(again, clock)
    assert len(webhook_receiver.requests) == 1
    assert again.counts()["warning"] == 1
    again.process([pool(10, clock.advance(1))], clock.now)
    drain(again, clock)
    assert [r.json()["alerts"][0]["event"] for r in webhook_receiver.requests] == ["firing", "resolved"]


def test_a_collector_that_cannot_reach_its_target_is_paged_in_words(tmp_path, webhook_receiver, services):
    clock = Clock()
    svc, _ = make_service(tmp_path, [hook(webhook_receiver)],
                          {"db_down": {"for_s": 0, "keep_firing_for_s": 0}}, clock=clock)
    services.append(svc)
    svc.process([Sample("db", clock.now, {"db.up": 0.0}, {}, "connection refused")], clock.now)
    drain(svc, clock)
    svc.process([Sample("db", clock.advance(30), {"db.up": 1.0})], clock.now)
    drain(svc, clock)
    first, second = [r.json() for r in webhook_receiver.requests]
    assert first["title"] == "[CRITICAL] db collector cannot reach its target on web-1"
    assert "down (or no sample for three intervals) since" in first["alerts"][0]["summary"]
    assert first["alerts"][0]["error"] == "connection refused"
    assert "Last error: connection refused." in first["alerts"][0]["summary"]
    assert second["alerts"][0]["summary"].startswith("db collector cannot reach its target: reached again")


def test_email_goes_over_starttls_with_login_when_configured(tmp_path, monkeypatch, services):
    import ssl
    import subprocess

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from dashboard.demo.services import free_port

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    seen: list[tuple[bool, str | None]] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            seen.append((session.ssl is not None, getattr(session, "login", None)))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        session.login = auth_data.login.decode()
        return AuthResult(success=auth_data.password == b"mail-pass-9")

    port = free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=server_ctx,
                     require_starttls=True, auth_require_tls=True, authenticator=authenticator)
    ctl.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))       # trust the test's own CA
        clock = Clock()
        svc, _ = make_service(tmp_path / "d", [{"kind": "email", "to": ["a@example.com"], "name": "mail"}],
                              quick(), clock=clock,
                              smtp={"port": port, "starttls": True, "user": "alerts",
                                    "password": "mail-pass-9"})
        services.append(svc)
        svc.process([pool(90, clock.now)], clock.now)
        drain(svc, clock)
        assert seen == [(True, "alerts")]                     # encrypted, then logged in
    finally:
        ctl.stop()
