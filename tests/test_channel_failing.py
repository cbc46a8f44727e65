"""A failing channel is itself an alert (issue 18, item 2): ``notify_channel_failing{channel}``
fires after 10 minutes of failed attempts on a channel, goes out through the *other* channels,
is shown on the alerts page with what has not arrived on that channel, and resolves once when
the channel delivers again.

Real receivers (an HTTP server answering 503, aiosmtpd), the real store and senders; the clock
is the test's (tests/support/alert_helpers.py), so "10 minutes" takes no time.
"""
from __future__ import annotations

import pytest

from dashboard.app import create_app
from dashboard.runtime import Runtime
from tests.support.alert_helpers import Clock, drain, make_service, pool
from tests.support.auth_helpers import logged_in_client

RULE_TITLE = "Notification channel failing"


@pytest.fixture
def setup(tmp_path, webhook_receiver, smtp_server):
    clock = Clock()
    svc, settings = make_service(
        tmp_path / "data",
        notify=[{"name": "pager", "kind": "webhook", "url": webhook_receiver.url},
                {"name": "ops-mail", "kind": "email", "to": ["ops@example.com"]}],
        rules={"db_pool_utilization": {"for_s": 0, "keep_firing_for_s": 0}}, clock=clock,
        smtp={"host": "127.0.0.1", "port": smtp_server.port}, async_mode="threading",
        auth={"api_rate_limit": "100000 per minute"})
    rt = Runtime(settings, [])
    rt.alerting = svc                   # create_app takes this service (and its clock) as it is
    app = create_app(settings, rt, async_mode="threading")
    yield svc, clock, app
    rt.stop()
    rt.store.close()
    svc.close()


def channel_mails(smtp_server, kind: str) -> list:
    """E-mails about the failing channel whose subject says ``kind`` (FIRING / RESOLVED)."""
    return [m for m in smtp_server.messages if RULE_TITLE in m.subject and kind in m.subject.upper()]


def channel_items_to_webhook(webhook_receiver) -> list:
    return [a for r in webhook_receiver.requests for a in r.json()["alerts"]
            if a["rule"] == "notify_channel_failing"]


def test_a_webhook_failing_for_10_minutes_pages_through_email_not_itself_and_resolves_once(
        setup, webhook_receiver, smtp_server):
    svc, clock, app = setup
    webhook_receiver.default_status = 503
    svc.process([pool(99.0, clock.now)], clock.now)      # a page: to the webhook and the mail
    drain(svc, clock)
    assert len(smtp_server.messages) == 1
    assert len(webhook_receiver.requests) == 4 and {r.status for r in webhook_receiver.requests} == {503}
    failing_from = clock.now

    # Failing for 9 minutes: not yet an alert of its own.
    for _ in range(9):
        clock.advance(60)
        assert [t for t in svc.tick() if t.rule == "notify_channel_failing"] == []
        drain(svc, clock)
    assert channel_mails(smtp_server, "") == []

    clock.advance(failing_from + 600 + 5 - clock.now)    # past 10 minutes of failure
    fired = [t for t in svc.tick() if t.rule == "notify_channel_failing"]
    assert [(t.kind, dict(t.labels), t.severity) for t in fired] == [
        ("firing", {"channel": "pager"}, "critical")]
    drain(svc, clock)
    [mail] = channel_mails(smtp_server, "")
    assert "pager" in mail.text and "HTTP 503" in mail.text, mail.text
    assert channel_items_to_webhook(webhook_receiver) == []          # never through itself
    assert len(webhook_receiver.requests) == 4                        # nothing else tried there

    # The alerts page: the alert, and what has not arrived on that channel.
    html = logged_in_client(app, "viewer").get("/alerts").get_data(as_text=True)
    assert "notify_channel_failing" in html and "channel=pager" in html.replace('"', "")
    assert "1 undelivered, oldest 10 min" in html, html
    channels = {c["channel"]: c for c in svc.overview()["channels"]}
    assert channels["pager"]["undelivered"] == 1
    assert channels["pager"]["oldest_undelivered_s"] >= 600
    assert channels["ops-mail"]["undelivered"] == 0

    # The webhook answers again; its next message (the pool alert's "resolved") gets through.
    webhook_receiver.default_status = 200
    svc.process([pool(10.0, clock.now)], clock.now)
    drain(svc, clock)
    assert webhook_receiver.requests[-1].status == 200
    resolved = [t for t in svc.tick() if t.rule == "notify_channel_failing"]
    assert [t.kind for t in resolved] == ["resolved"]
    for _ in range(5):                                  # and it stays resolved: said once
        drain(svc, clock)
        clock.advance(60)
        assert [t for t in svc.tick() if t.rule == "notify_channel_failing"] == []
    drain(svc, clock)
    assert len(channel_mails(smtp_server, "RESOLVED")) == 1, [m.subject for m in smtp_server.messages]
    assert channel_items_to_webhook(webhook_receiver) == []
    assert {c["channel"]: c["undelivered"] for c in svc.overview()["channels"]} == {
        "pager": 0, "ops-mail": 0}


def test_the_10_minutes_are_configurable(tmp_path, webhook_receiver, smtp_server):
    clock = Clock()
    svc, _ = make_service(
        tmp_path / "data",
        notify=[{"name": "pager", "kind": "webhook", "url": webhook_receiver.url},
                {"name": "ops-mail", "kind": "email", "to": ["ops@example.com"]}],
        rules={"db_pool_utilization": {"for_s": 0},
               "notify_channel_failing": {"critical": 120}}, clock=clock,
        smtp={"host": "127.0.0.1", "port": smtp_server.port})
    try:
        webhook_receiver.default_status = 503
        svc.process([pool(99.0, clock.now)], clock.now)
        drain(svc, clock)
        clock.advance(125)
        assert [t.kind for t in svc.tick() if t.rule == "notify_channel_failing"] == ["firing"]
    finally:
        svc.close()


def test_a_receiver_that_quotes_the_hooks_token_never_spreads_it(tmp_path, webhook_receiver,
                                                                 smtp_server):
    """A receiver's error body is part of the channel's error (shown on the alerts page, and sent
    through the other channels by notify_channel_failing); a body that quotes the hook's token
    (a proxy echoing the request) must not carry it there: errors are scrubbed of every
    configured secret like the logs."""
    token = "s3cr3t-hook-token-0123456789"
    clock = Clock()
    svc, settings = make_service(
        tmp_path / "data",
        notify=[{"name": "pager", "kind": "webhook", "url": f"{webhook_receiver.url}?token={token}"},
                {"name": "ops-mail", "kind": "email", "to": ["ops@example.com"]}],
        rules={"db_pool_utilization": {"for_s": 0, "keep_firing_for_s": 0}}, clock=clock,
        smtp={"host": "127.0.0.1", "port": smtp_server.port}, async_mode="threading",
        auth={"api_rate_limit": "100000 per minute"})
    rt = Runtime(settings, [])                 # registers the configured secrets, as at start-up
    rt.alerting = svc
    app = create_app(settings, rt, async_mode="threading")
    try:
        webhook_receiver.respond_with([(403, f'{{"error": "token {token} is revoked"}}',
                                        {"Content-Type": "application/json"})])
        svc.process([pool(99.0, clock.now)], clock.now)
        drain(svc, clock)
        [pager] = [c for c in svc.overview()["channels"] if c["channel"] == "pager"]
        assert pager["state"] == "failed_permanently" and "is revoked" in pager["error"]
        clock.advance(605)
        assert [t.kind for t in svc.tick() if t.rule == "notify_channel_failing"] == ["firing"]
        drain(svc, clock)
        [mail] = channel_mails(smtp_server, "")
        assert "is revoked" in mail.text
        html = logged_in_client(app, "viewer").get("/alerts").get_data(as_text=True)
        for text in (pager["error"], mail.text, mail.html if hasattr(mail, "html") else "", html):
            assert token not in text
    finally:
        rt.stop()
        rt.store.close()
        svc.close()
