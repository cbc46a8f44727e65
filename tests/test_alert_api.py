"""Alerts over HTTP and Socket.IO: /api/alerts, acknowledge (API and signed link), silences,
the /alerts page, the live page's alert bar and the ``alert`` event."""
from __future__ import annotations

import re
import time

import pytest

from dashboard.model import Sample
from tests.support.alert_helpers import Clock, drain
from tests.support.auth_helpers import live_socket_client

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL


def service(app):
    return app.extensions["dashboard.alerting"]


def fire(app, value: float = 90.0, labels: dict | None = None, metric: str = "db.pool_utilization",
         source: str = "db") -> str:
    """Hold a breach past the default 60 s hold; return the alert id."""
    now = time.time()
    svc = service(app)
    svc.process([Sample(source, now - 61, {metric: value}, labels or {})], now - 61)
    [t] = svc.process([Sample(source, now, {metric: value}, labels or {})], now)
    return t.alert_id


def resolve(app, alert_id: str) -> None:
    svc = service(app)
    now = time.time()
    svc.process([Sample("db", now - 61, {"db.pool_utilization": 10.0})], now - 61)
    svc.process([Sample("db", now, {"db.pool_utilization": 10.0})], now)


def test_api_alerts_lists_active_alerts_with_counts_for_a_viewer(app, viewer_client):
    alert_id = fire(app, 97.0)
    d = viewer_client.get("/api/alerts").get_json()
    assert d["counts"]["critical"] == 1 and d["counts"]["warning"] == 0
    [a] = d["active"]
    assert (a["id"], a["severity"], a["rule"], a["panel"]) == (alert_id, "critical",
                                                                "db_pool_utilization", "db-pool")
    assert a["acked_at"] is None and a["duration_s"] >= 0


def test_api_alerts_refuses_a_bad_history_window(viewer_client):
    r = viewer_client.get("/api/alerts?history_s=forever")
    assert r.status_code == 400 and "history_s" in r.get_json()["error"]


def test_an_operator_acknowledges_with_a_comment_and_an_expiry(app, operator_client):
    alert_id = fire(app)
    r = operator_client.post(f"/api/alerts/{alert_id}/ack",
                             json={"comment": "on it", "duration_s": 3600})
    assert r.status_code == 200
    a = r.get_json()["alert"]
    assert a["acked_by"] == operator_client.user.name and a["ack_comment"] == "on it"
    assert a["ack_until"] == pytest.approx(time.time() + 3600, abs=30)
    assert a["time_to_ack_s"] >= 0
    assert service(app).counts()["acknowledged"] == 1


def test_acknowledge_errors_are_4xx_json(app, operator_client, viewer_client):
    alert_id = fire(app)
    assert viewer_client.post(f"/api/alerts/{alert_id}/ack", json={}).status_code == 403
    assert operator_client.post("/api/alerts/nope/ack", json={}).status_code == 404
    bad = operator_client.post(f"/api/alerts/{alert_id}/ack", json={"duration_s": -5})
    assert bad.status_code == 400 and "duration_s" in bad.get_json()["error"]
    bad = operator_client.post(f"/api/alerts/{alert_id}/ack", data="[1]",
                               content_type="application/json")
    assert bad.status_code == 400
    resolve(app, alert_id)
    gone = operator_client.post(f"/api/alerts/{alert_id}/ack", json={})
    assert gone.status_code == 409 and "resolved" in gone.get_json()["error"]


def test_silences_are_created_listed_and_ended_with_author_and_reason(app, operator_client):
    r = operator_client.post("/api/silences", json={"rule": "queue_pending",
                                                    "labels": {"queue": "emails"},
                                                    "duration_s": 3600, "reason": "migration"})
    assert r.status_code == 201
    sil = r.get_json()["silence"]
    assert sil["author"] == operator_client.user.name and sil["reason"] == "migration"
    listed = operator_client.get("/api/silences").get_json()["silences"]
    assert [s["id"] for s in listed] == [sil["id"]] and listed[0]["active"]
    # a silenced alert fires on the engine but is shown as silenced
    fire(app, 70.0, {"queue": "emails"}, "queue.pending", "queue")
    assert operator_client.get("/api/alerts").get_json()["active"][0]["silenced_by"] == sil["id"]
    ended = operator_client.delete(f"/api/silences/{sil['id']}")
    assert ended.status_code == 200 and ended.get_json()["silence"]["ended_by"] == operator_client.user.name
    assert operator_client.delete(f"/api/silences/{sil['id']}").status_code == 409
    assert operator_client.delete("/api/silences/999").status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"rule": "no_such_rule", "duration_s": 60, "reason": "x"}, "rule"),
    ({"duration_s": 60}, "reason"),
    ({"reason": "x"}, "ends_at"),
    ({"reason": "x", "ends_at": 1000}, "ends_at"),
    ({"reason": "x", "duration_s": 60, "labels": {"queue": 5}}, "labels"),
    ({"reason": "x", "duration_s": 400 * 86400}, "ends_at"),
])
def test_bad_silences_are_refused_naming_the_field(operator_client, body, field):
    r = operator_client.post("/api/silences", json=body)
    assert r.status_code == 400 and field in r.get_json()["error"]


def test_the_alerts_page_shows_active_and_history_and_escapes_labels(app, client):
    fire(app, 70.0, {"queue": "<script>alert(1)</script>"}, "queue.pending", "queue")
    alert_id = fire(app)
    client.post(f"/api/alerts/{alert_id}/ack", json={"comment": "<b>mine</b>"})
    resolve(app, alert_id)
    html = client.get("/alerts").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;mine&lt;/b&gt;" in html
    active = html[html.index('id="active"'):html.index('id="silences"')]
    history = html[html.index('id="history"'):]
    assert "Pending jobs" in active and f'id="alert-{alert_id}"' in history
    assert client.user.name in history                     # who acknowledged
    assert re.search(r"alerts_page\.js", html) and "<script>" not in html.replace(
        '<script src=', '').replace('<script type="application/json"', '')


def test_the_live_page_loads_the_alert_bar(client):
    html = client.get("/").get_data(as_text=True)
    assert 'id="alert-bar"' in html and "alerts.js" in html


def test_a_transition_emits_the_alert_event_on_live(app):
    sock = live_socket_client(app, "viewer")
    sock.get_received("/live")
    fire(app, 97.0)
    events = [e for e in sock.get_received("/live") if e["name"] == "alert"]
    assert len(events) == 1
    payload = events[0]["args"][0]
    assert payload["counts"]["critical"] == 1
    assert [(t["event"], t["rule"], t["severity"]) for t in payload["transitions"]] == [
        ("firing", "db_pool_utilization", "critical")]
    sock.disconnect("/live")


def ack_link(app, alert_id: str) -> str:
    """The link a notification to channel "hook" carries (made by the collector side's signer)."""
    from dashboard import alerting
    from dashboard.auth import signing
    signer = signing.for_runtime(app.extensions["dashboard"])
    return alerting.ack_link_maker(app.config["SETTINGS"], signer)(alert_id, "hook")


def test_the_signed_link_shows_a_form_on_get_and_acknowledges_once_on_post(app, anon_client):
    alert_id = fire(app)
    path = ack_link(app, alert_id).split("8050", 1)[1]
    page = anon_client.get(path)
    assert page.status_code == 200 and b"Acknowledge" in page.data
    assert service(app).counts()["acknowledged"] == 0          # a GET (mail scanner) does nothing
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()
    done = anon_client.post(path, data={"csrf_token": token, "comment": "from my phone"})
    assert done.status_code == 200 and b"Acknowledged" in done.data
    ep = service(app).overview()["active"][0]
    assert (ep["acked_by"], ep["ack_comment"]) == ("link (hook)", "from my phone")
    again = anon_client.post(path, data={"csrf_token": token})
    assert again.status_code in (401, 403, 409)                 # one use
    assert service(app).overview()["active"][0]["acked_by"] == "link (hook)"


def test_a_tampered_link_is_refused(app, anon_client):
    alert_id = fire(app)
    path = ack_link(app, alert_id).split("8050", 1)[1]
    assert anon_client.get(path[:-3] + "abc").status_code == 401


@pytest.fixture
def failing_app(tmp_path, webhook_receiver):
    from dashboard.app import create_app
    from dashboard.config.load import from_dict
    from dashboard.runtime import Runtime
    settings = from_dict({"data_dir": str(tmp_path / "d2"), "async_mode": "threading",
                          "notify": [{"kind": "webhook", "url": webhook_receiver.url, "name": "ops-hook"}],
                          "auth": {"api_rate_limit": "100000 per minute"}})
    rt = Runtime(settings, [])
    yield create_app(settings, rt, async_mode="threading")
    rt.stop()


def test_a_channel_failing_permanently_is_shown_on_the_alerts_page(failing_app, webhook_receiver):
    from tests.support.auth_helpers import logged_in_client
    webhook_receiver.respond_with([(410, "gone")])
    fire(failing_app)
    drain(service(failing_app), Clock())
    html = logged_in_client(failing_app, "viewer").get("/alerts").get_data(as_text=True)
    assert "ops-hook" in html and "fails permanently" in html and "HTTP 410" in html
