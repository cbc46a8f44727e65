"""The alert service: engine + persistence + routing + silences + acknowledgements.

``process(samples, now)`` runs the engine and, in ONE store transaction, saves the engine's
new state, the alerts' history, and an outbox item per (transition, channel). The outbox's
sender threads deliver later, outside the collection tick.

When the store cannot write (a full disk: the outbox is in the same file), the engine keeps its
state in memory and goes on judging; each transition is handed to the channels' senders
directly (``Outbox.send_direct``, in memory) and kept, with the channels it went to, until a
transaction succeeds again: that one records them all (history, who was told, the new state),
never sending them a second time. ``tick`` also judges the store itself (rule ``store_down``)
from ``store_status`` (dashboard/store/spool.py).

Routing: a channel gets a transition when its ``min_severity`` and ``rules`` filters (or the
rule's ``severity_channels``) accept the alert's severity; "resolved" and "de-escalated" go to
every channel that was told about the alert, also when it was acknowledged meanwhile.

Acknowledgements: an ack made on the dashboard (page, API or a notification's signed link) is
also queued, in the same transaction, to each PagerDuty channel that was told about the alert, as
an "acknowledged" item (PagerDuty's ``acknowledge`` event, with the episode's ``dedup_key``).

Silences: a transition of a silenced alert is recorded (``silenced_by``) and sends nothing.
When the silence ends (its end time passes, or it is deleted), each held alert is reconciled
per channel: one that resolved meanwhile gets its "resolved" if the channel had heard of it;
one still firing is announced at its current severity.

Fencing (several collector processes, ``dashboard/process/cluster.py``): the leader sets its
token with ``set_fence`` and ``leading``; while ``leading()`` is false nothing is judged, and a
transaction whose token a newer leader has outdated is refused by the store (``StaleFence``):
nothing of it is recorded, nothing sent, the transitions are left to the new leader.
"""
from __future__ import annotations

import logging
import math
import sqlite3  # the store's errors, on either backend (dashboard/store/txn.py)
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from alerts import overview
from alerts.engine import SEVERITY_RANK, Engine, Transition, alert_key
from alerts.outbox import Outbox
from alerts.rules import Rule
from dashboard.model import Sample
from dashboard.store.alerts import AlertStateRepo
from dashboard.store.fence import StaleFence
from dashboard.store.outbox import OutboxRepo
from dashboard.store.txn import Connection

log = logging.getLogger(__name__)

# Channel kinds that mirror an acknowledgement made on the dashboard (PagerDuty's
# "acknowledge" event); the others' ack links are the dashboard's own.
ACK_KINDS = ("pagerduty",)
CONTEXT_KINDS = ("firing", "escalated")   # pages that carry what changed around them
UNSAVED_MAX = 10_000        # transitions kept for the history while the store cannot write
LOG_EVERY_S = 60.0


class AlertNotFound(LookupError):
    pass


class AlertNotFiring(ValueError):
    pass


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str
    min_severity: str = "warning"
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unsaved:
    """A transition judged while the store could not write, and what was done about it."""

    t: Transition
    now: float
    peak: float | None
    silence: int | None
    told: list[str] = field(default_factory=list)      # the channels it was sent to


@dataclass(frozen=True)
class Context:
    host: str
    public_url: str
    tz: str = "UTC"
    panel_for: Mapping[str, str] | None = None                # rule -> live page panel id
    ack_link: Callable[[str, str], str] | None = None          # (alert id, channel) -> URL
    # (rule, labels, since, at) -> what changed around a firing alert (dashboard/alert_context.py)
    why: Callable[[Rule, Mapping[str, str], float, float], dict[str, Any] | None] | None = None


class AlertService:
    def __init__(self, rules: Mapping[str, Rule], engine: Engine, connect: Callable[[], Connection],
                 outbox: Outbox, channels: Sequence[Channel], context: Context,
                 clock: Callable[[], float] = time.time) -> None:
        self.rules, self.engine, self.outbox = dict(rules), engine, outbox
        self.channels, self.ctx, self.clock = list(channels), context, clock
        self.listeners: list[Callable[[list[Transition], dict[str, int]], None]] = []
        # Fed each tick's samples before the engine judges them (the page context's newest values).
        self.observers: list[Callable[[list[Sample]], None]] = []
        self.lock = threading.RLock()
        self._errors: dict[tuple[str, str], str] = {}
        self.conn = connect()
        self.state = AlertStateRepo(self.conn)
        self._outbox_repo = OutboxRepo(self.conn)     # items queued in this service's transactions
        self.state.create()
        self.engine.load(self.state.load_states())
        # The store's health ({"status": "ok" | "error", "error"}), judged by ``tick``.
        self.store_status: Callable[[], Mapping[str, Any]] | None = None
        self._unsaved: deque[Unsaved] = deque(maxlen=UNSAVED_MAX)
        self._told_unsaved: dict[tuple[str, str], tuple[str, str]] = {}
        # What each channel was last told of open alerts, as this process last read or wrote it:
        # used only while the store cannot be read.
        self._told_known: dict[tuple[str, str], tuple[str, str]] = {}
        self._failed_logged_at = -math.inf
        self._context: dict[str, dict[str, Any] | None] = {}   # idempotency key -> page context
        self.context_failures = 0          # pages that went out without their context
        self.leading: Callable[[], bool] = lambda: True    # false: the leader lock may be lost

    @contextmanager
    def _as_web(self) -> Iterator[None]:
        """A user's request (a web instance's) in a process that does not lead (any more):
        its writes are not a leader's, so not fenced. Under ``self.lock``."""
        if self.leading():
            yield
            return
        saved = self.state.fence
        self.state.fence = self._outbox_repo.fence = None
        try:
            yield
        finally:
            self.state.fence = self._outbox_repo.fence = saved

    def set_fence(self, token: int | None) -> None:
        """The leader's fencing token, carried by every transition and outbox write."""
        with self.lock:
            self.state.fence = self._outbox_repo.fence = self.outbox.fence = token

    # --- the tick path -------------------------------------------------------------------------

    def process(self, samples: Iterable[Sample], now: float | None = None) -> list[Transition]:
        now = self.clock() if now is None else now
        samples = list(samples)
        if not self.leading():
            return []
        for observe in self.observers:
            try:
                observe(samples)
            except Exception:  # noqa: BLE001 - context is a nicety; judging goes on
                log.exception("alert observer failed")
        with self.lock:
            self._note_errors(samples)
            return self._commit(self.engine.evaluate(samples), now)

    def _note_errors(self, samples: list[Sample]) -> None:
        for s in samples:        # why a source is down: said in the <source>_down message
            key = (s.source, alert_key("", s.labels))
            if s.error:
                self._errors[key] = s.error[:300]
            else:
                self._errors.pop(key, None)

    def _store_sample(self, now: float) -> list[Sample]:
        """The store's health as a sample of source ``store`` (rule ``store_down``)."""
        if self.store_status is None:
            return []
        st = self.store_status()
        return [Sample("store", now, {"store.up": 1.0 if st["status"] == "ok" else 0.0},
                       error=st.get("error"))]

    def _channel_samples(self, now: float) -> list[Sample]:
        """Each channel's delivery as a sample of source ``notify`` (rule notify_channel_failing):
        seconds since its first failed attempt without a delivery after it."""
        if not self.outbox.notifiers:
            return []
        return [Sample("notify", now, {"notify.channel_failing_s": failing_s},
                       {"channel": ch}, error)
                for ch, (failing_s, error) in self.outbox.failing_for(self.conn).items()]

    def reload(self, now: float | None = None) -> None:
        """Take over from the saved state (start-up, or a standby becoming the collector): what
        another process changed meanwhile wins over this process's memory."""
        now = self.clock() if now is None else now
        with self.lock:
            self.engine.load(self.state.load_states())
            self.engine.last_seen = {s: now for s in self.engine.source_intervals}

    def tick(self, now: float | None = None) -> list[Transition]:
        """Missing data, repeats, expired acks and ended silences: run every interval."""
        now = self.clock() if now is None else now
        if not self.leading():
            return []
        with self.lock:
            try:
                self._sync_acks(now)
            except sqlite3.Error:       # the store cannot be read (PostgreSQL down): later
                pass
            store = self._store_sample(now)
            try:
                store += self._channel_samples(now)
            except Exception as e:  # noqa: BLE001 - the store unreadable: judged as store_down
                self._failed(e)
            self._note_errors(store)
            out = self._commit(self.engine.evaluate(store) + self.engine.tick(now), now)
            try:
                released = not self._unsaved and self.state.ended_unreleased(now)
            except sqlite3.Error:
                released = False
            if released:
                try:
                    with self.state.transaction():
                        self._release(now)
                except StaleFence:
                    self._count_refused()
                    return out
                self.outbox.wake()
            return out

    def _sync_acks(self, now: float) -> None:
        """Acknowledgements made by another process (a web instance) reach this engine."""
        for alert_id, until in self.state.acked_firing():
            if until is not None and until <= now:
                continue
            st = next((s for s in self.engine.states.values() if s.alert_id == alert_id), None)
            if st is not None and (not st.acked or st.acked_until != until):
                self.engine.acknowledge(alert_id, until)

    def _commit(self, transitions: list[Transition], now: float) -> list[Transition]:
        if not transitions and not self.engine.dirty and not self._unsaved:
            return []
        self._context = {self._key(t): self._why(t) for t in transitions
                         if t.kind in CONTEXT_KINDS}
        try:
            with self.state.transaction():
                self._write_unsaved()
                self._write(transitions, now)
        except StaleFence:
            # A newer leader exists: it judges and sends these; nothing of ours is recorded.
            # (Logged once by the fence; the leader lock steps down.)
            self._count_refused()
            return []
        except Exception as e:  # noqa: BLE001 - the store cannot write (a full disk): go on
            # Nothing was recorded: keep the state in memory (dirty), send directly, and record
            # it all at the next transaction that succeeds.
            self._failed(e)
            for t in transitions:
                self._hold(t, now)
        else:
            if self._unsaved:
                log.warning("alert state saved again; %d transitions judged while the store "
                            "could not write are recorded", len(self._unsaved))
                self._unsaved.clear()
                self._told_unsaved.clear()
                self._failed_logged_at = -math.inf
            self.engine.dirty.clear()
        self._context = {}
        if transitions:
            self.outbox.wake()
            try:
                counts = self.counts()
            except sqlite3.Error:    # unreadable store (PostgreSQL down): this engine's own
                counts = self._counts_in_memory()
            for listener in self.listeners:
                try:
                    listener(transitions, counts)
                except Exception:  # noqa: BLE001 - a browser relay never blocks alerting
                    log.exception("alert listener failed")
        return transitions

    def _why(self, t: Transition) -> dict[str, Any] | None:
        """What changed around ``t``, computed once for all its channels, before the store
        transaction; a failure costs the page its context, never the page."""
        if self.ctx.why is None:
            return None
        try:
            return self.ctx.why(self.rules[t.rule], t.labels, t.since, t.at)
        except Exception:  # noqa: BLE001 - the page goes out without it
            self.context_failures += 1
            if self.context_failures == 1:
                log.exception("the context of a page could not be computed; pages go out without "
                              "it (counted in context_failures, logged once)")
            return None

    def _write(self, transitions: list[Transition], now: float) -> None:
        self.state.save_states(self.engine.export(set(self.engine.dirty)))
        for t in transitions:
            rule = self.rules[t.rule]
            sid = self.state.active_silence(t.rule, t.labels, now)
            st = next((s for s in self.engine.states.values() if s.alert_id == t.alert_id), None)
            self.state.record(t, st.peak if st else None, sid)
            if sid is None:
                self._route(t, rule, now)

    def _count_refused(self) -> None:
        """After a transaction the fence refused was rolled back (store/fence.py)."""
        try:
            self.state.count_refused()
        except Exception:  # noqa: BLE001 - the count is a courtesy; the refusal stands
            log.debug("could not count a refused write", exc_info=True)

    def _failed(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self._failed_logged_at >= LOG_EVERY_S:       # once a minute, not every tick
            self._failed_logged_at = now
            log.warning("alert state cannot be saved (%s: %s); judging and sending go on from "
                        "memory, %d transitions wait to be recorded", type(e).__name__, e,
                        len(self._unsaved))

    def _hold(self, t: Transition, now: float) -> None:
        """A transition the store could not record: sent directly, recorded later."""
        rule = self.rules[t.rule]
        try:
            sid = self.state.active_silence(t.rule, t.labels, now)
        except sqlite3.Error:
            # Nor can it be read (PostgreSQL down, where a full disk still reads): silences are
            # unknown, and a page too many beats one held back for nothing.
            sid = None
        st = next((s for s in self.engine.states.values() if s.alert_id == t.alert_id), None)
        held = Unsaved(t, now, st.peak if st else None, sid)
        if sid is None:
            for ch in self._audience(t, rule):
                key = self._key(t)
                self.outbox.send_direct(ch.name, key, self.item(t, ch.name, key))
                self._told_unsaved[(t.alert_id, ch.name)] = (t.kind, t.severity)
                held.told.append(ch.name)
        self._unsaved.append(held)

    def _write_unsaved(self) -> None:
        """Inside the transaction: what was judged and sent while the store could not write."""
        for u in self._unsaved:
            self.state.record(u.t, u.peak, u.silence)
            for ch in u.told:
                self.state.set_told(u.t.alert_id, ch, u.t.kind, u.t.severity, u.now)

    def _told(self, alert_id: str, channel: str) -> tuple[str, str] | None:
        told = self._told_unsaved.get((alert_id, channel))
        if told is not None:
            return told
        try:
            told = self.state.told(alert_id, channel)
        except sqlite3.Error:
            # Unreadable store (PostgreSQL down; a full disk still reads): what this process
            # last knew, so a "resolved" still reaches the channels that heard the alert.
            return self._told_known.get((alert_id, channel))
        self._know_told(alert_id, channel, told)
        return told

    def _know_told(self, alert_id: str, channel: str, told: tuple[str, str] | None) -> None:
        """Remember what ``channel`` was told of an open alert (forgotten once resolved)."""
        if told is None or told[0] == "resolved":
            self._told_known.pop((alert_id, channel), None)
        else:
            self._told_known[(alert_id, channel)] = told

    # --- routing ---------------------------------------------------------------------------------

    def accepts(self, ch: Channel, rule: Rule, severity: str) -> bool:
        if rule.severity_channels is not None:
            return ch.name in rule.severity_channels.get(severity, ())
        if ch.rules and rule.name not in ch.rules:
            return False
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[ch.min_severity]

    def _route(self, t: Transition, rule: Rule, now: float) -> None:
        for ch in self._audience(t, rule):
            self._enqueue(t, ch, now)

    @staticmethod
    def _about(t_rule: str, labels: Mapping[str, str], ch: Channel) -> bool:
        """A message about ``ch`` failing, which ``ch`` itself cannot carry: the other channels
        do (rule notify_channel_failing)."""
        return t_rule == "notify_channel_failing" and labels.get("channel") == ch.name

    def _audience(self, t: Transition, rule: Rule) -> list[Channel]:
        """The channels ``t`` goes to."""
        out = []
        for ch in self.channels:
            if self._about(t.rule, t.labels, ch):
                continue
            told = self._told(t.alert_id, ch.name)
            heard = told is not None and told[0] != "resolved"
            if t.kind == "resolved":
                ok = heard
            elif t.kind == "deescalated":
                ok = heard or self.accepts(ch, rule, t.severity)
            else:
                ok = self.accepts(ch, rule, t.severity)
            if ok:
                out.append(ch)
        return out

    @staticmethod
    def _key(t: Transition) -> str:
        """The idempotency key of ``t``'s message, the same on every channel and every path."""
        return f"{t.alert_id}-{t.kind}-{t.seq}"

    def _enqueue(self, t: Transition, ch: Channel, now: float) -> None:
        key = self._key(t)
        if self._outbox_repo.enqueue(ch.name, key, self.item(t, ch.name, key), now):
            self.state.set_told(t.alert_id, ch.name, t.kind, t.severity, now)
            self._know_told(t.alert_id, ch.name, (t.kind, t.severity))

    def item(self, t: Transition, channel: str, key: str) -> dict[str, Any]:
        """Everything a message about ``t`` says (stored in the outbox, rendered later)."""
        rule = self.rules[t.rule]
        base = self.ctx.public_url.rstrip("/")
        panel = (self.ctx.panel_for or {}).get(t.rule)
        links = {"panel": f"{base}/#panel-{panel}" if panel else f"{base}/",
                 "alert": f"{base}/alerts#alert-{t.alert_id}"}
        if t.kind != "resolved" and self.ctx.ack_link is not None:
            links["ack"] = self.ctx.ack_link(t.alert_id, channel)
        return {"alert_id": t.alert_id, "idempotency_key": key, "event": t.kind,
                "rule": t.rule, "title": rule.title, "metric": rule.metric, "unit": rule.unit,
                "direction": rule.direction, "labels": dict(t.labels), "host": self.ctx.host,
                "severity": t.severity, "previous": t.previous, "value": t.value,
                "threshold": t.threshold, "since": t.since, "at": t.at,
                "acknowledged": t.acknowledged, "links": links,
                "context": self._context.get(key),
                "error": self._errors.get((rule.source, alert_key("", t.labels)))
                if t.rule.endswith("_down") or t.rule == "notify_channel_failing" else None}

    # --- silences ----------------------------------------------------------------------------------

    def _release(self, now: float) -> None:
        ended = self.state.ended_unreleased(now)
        for sid in ended:
            for alert_id in self.state.held_alerts(sid):
                ep = self.state.episode(alert_id)
                if ep is None:
                    continue
                other = self.state.active_silence(ep["rule"], ep["labels"], now)
                if other is not None:          # still covered: the other silence releases it
                    self.state.hand_over_held(alert_id, sid, other)
                    continue
                self._reconcile(ep, now)
        self.state.mark_released(ended)

    def _reconcile(self, ep: dict[str, Any], now: float) -> None:
        rule = self.rules.get(ep["rule"])
        if rule is None:
            return
        seq = max((e["seq"] or 0) for e in self.state.events(ep["id"]))
        live = next((s for s in self.engine.states.values() if s.alert_id == ep["id"]), None)
        base = Transition(kind="firing", alert_id=ep["id"], rule=ep["rule"], labels=ep["labels"],
                          severity=ep["severity"], previous=None,
                          value=live.value if live and live.value is not None else ep["value"],
                          threshold=ep["threshold"], since=ep["started_at"], at=now, seq=seq,
                          acknowledged=ep["acked_at"] is not None)
        for ch in self.channels:
            if self._about(ep["rule"], ep["labels"], ch):
                continue
            told = self.state.told(ep["id"], ch.name)
            heard = told is not None and told[0] != "resolved"
            if ep["status"] == "resolved":
                if heard:
                    self._enqueue(replace(base, kind="resolved", at=ep["resolved_at"],
                                          threshold=rule.clear_level), ch, now)
                continue
            if heard and told[1] == ep["severity"]:   # type: ignore[index]
                continue                              # it already knows; repeats resume
            if heard:
                kind = "escalated" if ep["severity"] == "critical" else "deescalated"
                if kind == "escalated" and not self.accepts(ch, rule, "critical"):
                    continue
                self._enqueue(replace(base, kind=kind, previous=told[1]), ch, now)  # type: ignore[index]
            elif self.accepts(ch, rule, ep["severity"]):
                self._enqueue(base, ch, now)

    def add_silence(self, rule: str | None, labels: Mapping[str, str], starts_at: float,
                    ends_at: float, author: str, reason: str) -> dict[str, Any]:
        now = self.clock()
        with self.lock:
            with self.state.transaction():
                sid = self.state.add_silence(rule, labels, starts_at, ends_at, author, reason, now)
            return self.state.silence(sid)  # type: ignore[return-value]

    def end_silence(self, silence_id: int, by: str) -> tuple[dict[str, Any] | None, bool]:
        """End a silence now; held notifications are reconciled at once.
        Returns the silence (None if unknown) and whether this call ended it."""
        now = self.clock()
        with self.lock:
            if self.state.silence(silence_id) is None:
                return None, False
            with self.state.transaction(), self._as_web():
                ended = self.state.end_silence(silence_id, by, now)
                self._release(now)
            self.outbox.wake()
            return self.state.silence(silence_id), ended

    # --- acknowledgements ---------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str, comment: str = "",
                    until: float | None = None) -> dict[str, Any]:
        now = self.clock()
        with self.lock:
            ep = self.state.episode(alert_id)
            if ep is None:
                raise AlertNotFound(alert_id)
            if ep["status"] != "firing":
                raise AlertNotFiring(alert_id)
            # The episode row is the truth about acks; the engine that collects (maybe in
            # another process) picks it up on its next tick (_sync_acks). Never write engine
            # state from here: this process's copy may be stale.
            with self.state.transaction():
                self.state.record_ack(alert_id, by, comment, until, now)
                acked = self._enqueue_ack(ep, by, comment, now)
            if acked:
                self.outbox.wake()
            self._sync_acks(now)
            for listener in self.listeners:
                try:
                    listener([], self.counts())
                except Exception:  # noqa: BLE001
                    log.exception("alert listener failed")
            return self.state.episode(alert_id)  # type: ignore[return-value]

    def _enqueue_ack(self, ep: dict[str, Any], by: str, comment: str, now: float) -> bool:
        """Inside the ack's transaction: each channel that mirrors acknowledgements (PagerDuty)
        and was told about the alert gets an "acknowledged" item, so the incident there stops
        escalating. True if any was queued."""
        rule = self.rules.get(ep["rule"])
        queued = False
        for ch in self.channels:
            told = self.state.told(ep["id"], ch.name)
            if ch.kind not in ACK_KINDS or rule is None or told is None or told[0] == "resolved":
                continue
            key = f"{ep['id']}-acknowledged-{round(now * 1000)}"
            base = self.ctx.public_url.rstrip("/")
            item = {"alert_id": ep["id"], "idempotency_key": key, "event": "acknowledged",
                    "rule": rule.name, "title": rule.title, "metric": rule.metric,
                    "unit": rule.unit, "direction": rule.direction, "labels": dict(ep["labels"]),
                    "host": self.ctx.host, "severity": ep["severity"], "previous": None,
                    "value": ep["value"], "threshold": ep["threshold"], "since": ep["started_at"],
                    "at": now, "acknowledged": True, "acknowledged_by": by, "comment": comment,
                    "links": {"panel": f"{base}/", "alert": f"{base}/alerts#alert-{ep['id']}"},
                    "error": None}
            queued = self._outbox_repo.enqueue(ch.name, key, item, now) or queued
        return queued

    # --- reading (alerts/overview.py) --------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return overview.counts(self)

    def _counts_in_memory(self) -> dict[str, int]:
        """``counts`` from this engine's states alone (the store cannot be read)."""
        out = {"critical": 0, "warning": 0, "acknowledged": 0, "pending": 0}
        for st in self.engine.states.values():
            if st.status == "pending":
                out["pending"] += 1
            elif st.status == "firing" and st.severity is not None:
                out[st.severity] = out.get(st.severity, 0) + 1
                out["acknowledged"] += int(st.acked)
        return out

    def describe(self, ep: dict[str, Any], now: float) -> dict[str, Any]:
        return overview.describe(self, ep, now)

    def overview(self, history_s: float = 86400.0, limit: int = 200) -> dict[str, Any]:
        return overview.overview(self, history_s, limit)

    def prune(self) -> None:
        with self.lock:
            self.outbox.prune(self.conn)

    def close(self) -> None:
        with self.lock:
            self.conn.close()
