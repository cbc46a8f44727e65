"""Signed acknowledge links: HMAC, expiry, one use (dashboard/auth/signing.py, issue 7)."""
from __future__ import annotations

import threading

import pytest
from flask import Blueprint, jsonify

from dashboard.auth import guard as auth
from dashboard.auth import signing
from dashboard.store import Store

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def signer(tmp_path):
    store = Store(tmp_path)
    clock = Clock()
    s = signing.LinkSigner(signing.secret_key(tmp_path), store.connect, clock=clock)
    s.clock = clock
    yield s
    store.close()


def refused(fn, *args) -> str:
    with pytest.raises(signing.LinkRefused) as e:
        fn(*args)
    return e.value.reason


def test_a_link_works_once(signer):
    token = signer.sign("ack", {"alert": 7}, ttl_s=3600)
    assert signer.check(token, "ack").data == {"alert": 7}          # a GET does not use it up
    assert signer.consume(token, "ack").data == {"alert": 7}
    assert refused(signer.consume, token, "ack") == "used"
    assert refused(signer.check, token, "ack") == "used"


def test_an_expired_link_is_refused(signer):
    token = signer.sign("ack", {"alert": 7}, ttl_s=60)
    signer.clock.t += 61
    assert refused(signer.consume, token, "ack") == "expired"


def test_an_edited_or_foreign_link_is_refused(signer, tmp_path):
    token = signer.sign("ack", {"alert": 7})
    payload, sig = token.rsplit(".", 1)
    forged = signing.URLSafeSerializer(b"another key" * 3, salt="dashboard-link:ack").dumps(
        {"d": {"alert": 8}, "exp": 9e12, "n": "x"})
    assert refused(signer.check, payload + "." + sig[::-1], "ack") == "invalid"
    assert refused(signer.check, forged, "ack") == "invalid"
    assert refused(signer.check, token, "unsubscribe") == "invalid"   # purpose is signed too
    assert refused(signer.check, "", "ack") == "invalid"


def test_two_clicks_racing_use_the_link_exactly_once(signer):
    token = signer.sign("ack", {"alert": 7})
    results: list[str] = []

    def click() -> None:
        try:
            signer.consume(token, "ack")
            results.append("ok")
        except signing.LinkRefused as e:
            results.append(e.reason)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["used"] * 7


def test_the_collector_process_and_the_web_app_share_key_and_nonces(app):
    from dashboard.auth.signing import for_runtime
    from dashboard.auth.signing import signer as app_signer
    token = for_runtime(app.extensions["dashboard"]).sign("ack", {"alert": 1})
    app_signer(app).consume(token, "ack")
    assert refused(for_runtime(app.extensions["dashboard"]).consume, token, "ack") == "used"


def test_a_signed_link_view_opens_without_login_only_for_a_valid_link(app, anon_client, client):
    bp = Blueprint("linktest", __name__)

    @bp.route("/t/ack/<token>", methods=["GET", "POST"])
    @auth.signed_link("ack")
    def ack(token):
        claims = signing.signer().consume(token, "ack")
        return jsonify(alert=claims.data["alert"], by=auth.current_principal().name)

    app.register_blueprint(bp)
    signer = signing.signer(app)
    good = signer.sign("ack", {"alert": 5})
    r = anon_client.get(f"/t/ack/{good}")
    assert r.status_code == 200 and r.get_json() == {"alert": 5, "by": "link"}
    r = anon_client.get(f"/t/ack/{good}")
    assert r.status_code == 401 and "already been used" in r.get_data(as_text=True)
    assert anon_client.get("/t/ack/garbage").status_code == 401
    assert client.get("/t/ack/garbage").status_code == 403             # logged in: 403 + reason
    expired = signer.sign("ack", {"alert": 5}, ttl_s=-1)
    assert "expired" in anon_client.get(f"/t/ack/{expired}").get_data(as_text=True)
    # a POST from the confirmation page needs its CSRF token like any page form
    assert anon_client.post(f"/t/ack/{signer.sign('ack', {'alert': 6})}").status_code == 400
