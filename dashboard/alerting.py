"""Alerting for a Runtime (no Flask here): rules + engine + outbox from the settings.

``service_for(runtime, emit)`` builds the service (emitting the Socket.IO ``alert`` event,
namespace ``/live``, on every transition and ack); ``parts(service, settings)`` says what it
adds to the runtime, which ``dashboard.app.create_app`` adds:
* an evaluating sink (each stored tick goes through the engine),
* a job that judges what time alone changes (a source silent for three intervals is down,
  repeats, expired acknowledgements, ended silences) and the store's health (``store_down``),
  and a daily prune,
* the saved state reloaded and the outbox's sender threads started with the runtime
  (``on_start``), stopped with it.

Run it in the process that collects (one per installation): the engine's state and the sender
threads live there. Several processes sending from one outbox would each send.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from alerts import notifiers
from alerts.engine import Engine, Transition
from alerts.outbox import Outbox, Policy
from alerts.rules import build_rules
from alerts.service import AlertService, Channel, Context
from dashboard.alert_context import AlertContext
from dashboard.auth import signing
from dashboard.config.settings import Settings
from dashboard.model import Sample
from dashboard.runtime import Parts
from dashboard.store import Store

if TYPE_CHECKING:
    from dashboard.runtime import Runtime

NAMESPACE = "/live"
ACK_LINK_TTL_S = 24 * 3600
ACK_PURPOSE = "ack"


def build(settings: Settings, store: Store, source_intervals: dict[str, float], *,
          policy: Policy | None = None, ack_link: Callable[[str, str], str] | None = None,
          clock: Callable[[], float] = time.time,
          panel_for: Mapping[str, str] | None = None,
          why: AlertContext | None = None) -> AlertService:
    """``panel_for``: rule -> the live page's panel id, for links in messages; ``why``: what
    changed around a firing alert, in its pages (fed each tick's samples)."""
    rules = build_rules(settings)
    engine = Engine(rules, source_intervals, started_at=clock())
    senders = {n.name: notifiers.build(n, settings.smtp, settings.timezone) for n in settings.notify}
    # Storm control per channel from [[notify]] (group_window_s, max_per_hour), unless the
    # caller (a test, the bench) gives one policy for all.
    per_channel = {} if policy else {
        n.name: Policy(group_window_s=n.group_window_s, max_per_hour=n.max_per_hour)
        for n in settings.notify}
    outbox = Outbox(store.connect, senders, policy or Policy(), clock=clock, policies=per_channel)
    channels = [Channel(n.name, n.kind, n.min_severity, n.rules) for n in settings.notify]
    ctx = Context(host=settings.host_name, public_url=settings.public_url, tz=settings.timezone,
                  panel_for=dict(panel_for or {}), ack_link=ack_link,
                  why=why.build if why is not None else None)
    service = AlertService(rules, engine, store.connect, outbox, channels, ctx, clock=clock)
    if why is not None:
        service.observers.append(why.observe)
    return service


def ack_link_maker(settings: Settings, signer) -> Callable[[str, str], str]:
    base = settings.public_url.rstrip("/")

    def make(alert_id: str, channel: str) -> str:
        token = signer.sign(ACK_PURPOSE, {"alert": alert_id, "channel": channel}, ttl_s=ACK_LINK_TTL_S)
        return f"{base}/alerts/ack/{token}"
    return make


def wire_event(transitions: list[Transition], counts: dict[str, int], service: AlertService) -> dict:
    """The Socket.IO ``alert`` event: what changed and the counts the alert bar shows."""
    out = []
    for t in transitions:
        rule = service.rules.get(t.rule)
        out.append({"id": t.alert_id, "event": t.kind, "rule": t.rule,
                    "title": rule.title if rule else t.rule, "labels": dict(t.labels),
                    "severity": t.severity, "previous": t.previous, "value": t.value,
                    "unit": rule.unit if rule else "", "threshold": t.threshold,
                    "since": t.since, "at": t.at})
    return {"transitions": out, "counts": counts}


def statement_book(runtime: Runtime) -> Any:
    """The MySQL collector's statement book now (its ``jobs`` replaces it), or None."""
    for c in runtime.runner.collectors:
        if c.source == "db" and hasattr(c, "book"):
            return c.book
    return None


def service_for(runtime: Runtime, emit: Callable[..., Any] | None = None,
                policy: Policy | None = None,
                panel_for: Mapping[str, str] | None = None,
                why: AlertContext | None = None) -> AlertService:
    """The alert service of ``runtime``: its rules, its collectors' intervals, signed ack links,
    and pages that say what changed around them (``why``; by default from the runtime's store and
    statement book)."""
    settings = runtime.settings
    intervals: dict[str, float] = {}
    for c in runtime.runner.collectors:
        intervals[c.source] = max(intervals.get(c.source, 0.0), float(c.interval_s))
    signer = signing.for_runtime(runtime)
    if why is None:
        why = AlertContext(settings.public_url, runtime.store, lambda: statement_book(runtime))
    service = build(settings, runtime.store, intervals, policy=policy,
                    ack_link=ack_link_maker(settings, signer), panel_for=panel_for, why=why)
    service.store_status = runtime.store_status       # judged as rule store_down
    if emit is not None:
        service.listeners.append(
            lambda trs, counts: emit("alert", wire_event(trs, counts, service), namespace=NAMESPACE))
    return service


def parts(service: AlertService, settings: Settings) -> Parts:
    """What alerting adds to the runtime (``Runtime.add``)."""
    def evaluate(samples: list[Sample]) -> None:
        service.process(samples)

    return Parts(
        sinks=[evaluate],
        jobs=[(service.tick, {"trigger": "interval",
                              "seconds": max(1.0, min(settings.interval_s, 5.0))}),
              (service.prune, {"trigger": "interval", "seconds": 86400})],
        # A standby process that becomes the collector takes the saved state over before sending.
        on_start=[service.reload, service.outbox.start],
        on_stop=[service.outbox.stop])
