"""Building an alert service for tests: real store, real notifiers, short storm-control windows.

``make_service(tmp_path, notify=[...], rules={...})`` -> (service, settings). Tests feed samples
with ``service.process([...], now)`` and start the sender threads with ``service.outbox.start()``
(the ``alert_service`` fixture of the test modules stops them).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any, Callable

from alerts.outbox import Policy
from alerts.service import AlertService
from dashboard import alerting
from dashboard.alert_context import AlertContext
from dashboard.auth import signing
from dashboard.config import load as config
from dashboard.config.settings import Settings
from dashboard.model import Sample
from dashboard.store import Store
from dashboard.web import panels

FAST = Policy(retries=3, backoff_s=0.2, group_window_s=0.4, max_per_hour=20, digest_every_s=1.0)

# The documented webhook schema (docs/alerts.md): every message has these keys...
WEBHOOK_KEYS = {"schema", "idempotency_key", "channel", "sent_at", "digest", "title", "alerts"}
# ...and every alert in it these.
WEBHOOK_ALERT_KEYS = {"id", "idempotency_key", "event", "rule", "title", "metric", "labels", "host",
                      "severity", "previous_severity", "value", "unit", "threshold", "direction",
                      "since", "since_iso", "at", "at_iso", "duration_s", "acknowledged",
                      "error", "summary", "links", "context"}


def make_service(data_dir: Path, notify: list[dict[str, Any]], rules: dict | None = None,
                 policy: Policy = FAST, clock: Callable[[], float] = time.time,
                 sources: dict[str, float] | None = None, why: AlertContext | None = None,
                 **extra: Any) -> tuple[AlertService, Settings]:
    settings = config.from_dict({"data_dir": str(data_dir), "host_name": "web-1",
                                 "public_url": "http://127.0.0.1:8050", "notify": notify,
                                 "rules": rules or {}, **extra})
    store = Store(settings.data_dir, store_url=settings.store_url)
    signer = signing.LinkSigner(signing.secret_key(settings.data_dir), store.connect)
    svc = alerting.build(settings, store, sources or {}, policy=policy,
                         ack_link=alerting.ack_link_maker(settings, signer), clock=clock,
                         panel_for=panels.rule_panels(), why=why)
    return svc, settings


def pool(value: float, ts: float | None = None) -> Sample:
    return Sample("db", time.time() if ts is None else ts, {"db.pool_utilization": value})


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


def delivered(requests) -> list:
    """The requests the receiver answered 2xx (what counts as delivered)."""
    return [r for r in requests if 200 <= r.status < 300]


class Clock:
    """A clock the test moves by hand (engine times, storm-control windows, backoff)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def drain(svc: AlertService, clock: Clock, max_steps: int = 200) -> None:
    """Run every channel's sender step by step until nothing waits, moving ``clock`` over waits
    (group window, backoff) instead of sleeping."""
    conn = svc.outbox._connect()
    try:
        for name in svc.outbox.notifiers:
            for _ in range(max_steps):
                delay = svc.outbox.step(conn, name)
                if delay is None:
                    break
                if delay > 0:
                    clock.advance(delay)
            else:
                raise AssertionError(f"channel {name} never drained")
    finally:
        conn.close()


def install_alerting(rt, policy: Policy = FAST) -> AlertService:
    """Alerting on a bare Runtime, as ``create_app`` adds it (for tests without the web app)."""
    rt.alerting = alerting.service_for(rt, policy=policy, panel_for=panels.rule_panels())
    rt.add(alerting.parts(rt.alerting, rt.settings))
    return rt.alerting
