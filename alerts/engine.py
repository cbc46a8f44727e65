"""The alert engine: a pure state machine per (rule, label set).

    ok -> pending -> firing (warning | critical) -> resolved (back to ok)

* **pending**: the value breaches a level; it must keep breaching for ``for_s`` before the alert
  fires, so one bad sample never pages. Escalation to critical needs the same hold.
* **hysteresis**: a firing alert only resolves once the value is back past the rule's ``clear``
  level, and a critical one falls back to warning only past the critical clear level.
* **keep_firing_for_s**: the value must stay clear that long before "resolved" is sent, so a
  value flapping around the line gives one firing and one resolved, not a page storm.
* **repeat**: while firing and not acknowledged, the alert is sent again every ``repeat_s``.
* **missing data**: a source without any sample for three of its intervals is treated as
  ``<source>.up = 0`` (rule ``<source>_down``), never as "ok"; other rules keep their state.

``evaluate(samples)`` and ``tick(now)`` return ``Transition``s. Nothing here sleeps, sends, reads
a clock or does I/O: samples carry their time and callers pass ``now`` to ``tick``.
``export()`` / ``load()`` let the caller persist the state so a restart neither pages twice nor
forgets a firing alert.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from alerts.rules import Rule
from dashboard.model import Sample

MISSING_INTERVALS = 3
SLACK_INTERVALS = 0.25
SEVERITY_RANK = {None: 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Transition:
    """A change worth telling someone about."""

    kind: str                   # firing | escalated | deescalated | repeat | resolved
    alert_id: str
    rule: str
    labels: Mapping[str, str]
    severity: str               # after the change (for "resolved": the last severity)
    previous: str | None        # severity before (escalated / deescalated)
    value: float
    threshold: float            # the level crossed (for "resolved": the clear level)
    since: float                # when the breach began
    at: float
    seq: int                    # n-th notification of this alert: part of the idempotency key
    acknowledged: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["labels"] = dict(self.labels)
        return d


@dataclass
class AlertState:
    rule: str
    labels: dict[str, str]
    status: str = "ok"                      # ok | pending | firing
    severity: str | None = None             # fired severity
    pending_since: float | None = None      # breach began (pending or firing)
    critical_since: float | None = None     # critical level breached continuously since
    ok_since: float | None = None           # back past the clear level since (firing only)
    lower_since: float | None = None        # below the fired severity since (de-escalation)
    alert_id: str | None = None
    fired_at: float | None = None
    last_notified_at: float | None = None
    seq: int = 0
    acked: bool = False
    acked_until: float | None = None        # None with acked: until resolved
    value: float | None = None
    peak: float | None = None
    window: deque[tuple[float, int, float]] = field(default_factory=deque, repr=False)  # (minute, n, sum)

    def key_fields(self) -> tuple[Any, ...]:
        """The fields that must survive a restart (value and window are re-learnt)."""
        return (self.status, self.severity, self.pending_since, self.critical_since,
                self.ok_since, self.lower_since, self.alert_id, self.last_notified_at, self.seq,
                self.acked, self.acked_until)


_KEYS: dict[tuple[Any, ...], str] = {}       # (rule, labels as given) -> key: the same few per tick
_KEYS_MAX = 100_000


def alert_key(rule: str, labels: Mapping[str, str]) -> str:
    k = (rule, tuple(labels.items()))
    key = _KEYS.get(k)
    if key is None:
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.clear()
        key = _KEYS[k] = rule + json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    return key


def make_alert_id(rule: str, labels: Mapping[str, str], since: float) -> str:
    """Stable for one episode (rule, labels, breach start), new for the next one."""
    raw = f"{alert_key(rule, labels)}@{since:.3f}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _quiet_bound(rule: Rule) -> tuple[float | None, bool, bool]:
    """(bound, above, strict): ``value * rule.scale`` breaches neither level when it is
    strictly (``strict``) or at most below ``bound`` (``above``; else above it), as
    ``Rule.breaches`` judges it. None: no level, any value is quiet; nan: none is skipped
    (windowed rules judge a mean and keep a state while quiet)."""
    levels = [lv for lv in (rule.warning, rule.critical) if lv is not None]
    above = rule.direction == "above"
    if rule.window_s:
        return math.nan, above, False
    if not levels:
        return None, above, False
    # A value breaches a level past it (inclusive: at it too); the nearest level decides.
    return (min(levels) if above else max(levels)), above, rule.inclusive


class Engine:
    def __init__(self, rules: Mapping[str, Rule], source_intervals: Mapping[str, float] | None = None,
                 started_at: float = 0.0) -> None:
        self.rules = {n: r for n, r in rules.items() if r.enabled}
        self._by_metric: dict[str, list[Rule]] = {}
        for r in self.rules.values():
            self._by_metric.setdefault(r.metric, []).append(r)
        # Per metric, each rule with the value at which ``evaluate`` may skip it: most of a
        # tick's observations are of quiet series with nothing remembered (issue 19: 56 a tick
        # of the --all bench, ~45 % of publishing a tick), each of which cost a key, a state
        # look-up and the full level check only to return nothing.
        self._quiet: dict[str, list[tuple[Rule, float | None, bool, bool]]] = {
            m: [(r, *_quiet_bound(r)) for r in rs] for m, rs in self._by_metric.items()}
        self.source_intervals = dict(source_intervals or {})
        self.last_seen: dict[str, float] = {s: started_at for s in self.source_intervals}
        self.states: dict[str, AlertState] = {}
        self.dirty: set[str] = set()

    # --- input ---------------------------------------------------------------------------------

    def evaluate(self, samples: Iterable[Sample]) -> list[Transition]:
        """Judge a batch of samples, each at its own ``ts``. Missing data, repeats and expired
        acknowledgements are ``tick``'s alone: it runs on its own schedule, so a source that
        stops sending is noticed, and running it here too would judge time twice per interval."""
        out: list[Transition] = []
        # Rules with a state in memory: only these can have something to remember about a
        # series. A rule outside it, not windowed, with a value on the good side of both its
        # levels is what ``_observe`` would return nothing for without a change: skipped here.
        held = {st.rule for st in self.states.values()}
        quiet = self._quiet
        last_seen = self.last_seen
        for s in samples:
            ts = s.ts
            seen = last_seen.get(s.source)
            last_seen[s.source] = ts if seen is None or ts > seen else seen
            for metric, value in s.values.items():
                judged = quiet.get(metric)
                if judged is None:
                    continue
                value = float(value)
                for rule, bound, above, strict in judged:
                    if rule.name not in held:
                        if bound is None:
                            continue
                        v = value * rule.scale          # as _observe judges it
                        if ((v < bound if strict else v <= bound) if above
                                else (v > bound if strict else v >= bound)):
                            continue
                    out.extend(self._observe(rule, s.labels, value, ts))
                    held.add(rule.name)
        return out

    def tick(self, now: float) -> list[Transition]:
        """What time alone changes: sources gone silent, repeats, expired acknowledgements.
        The caller runs it every interval whether or not samples arrive (dashboard/alerting.py)."""
        out: list[Transition] = []
        for source, interval in self.source_intervals.items():
            rule = self.rules.get(f"{source}_down")
            if rule and now - self.last_seen.get(source, now) > MISSING_INTERVALS * interval:
                out.extend(self._observe(rule, {}, 0.0, now))
        for key, st in self.states.items():
            if st.status != "firing":
                continue
            if st.acked and st.acked_until is not None and now >= st.acked_until:
                st.acked, st.acked_until = False, None
                self.dirty.add(key)
            rule = self.rules.get(st.rule)
            if rule is None or st.acked or st.last_notified_at is None:
                continue
            if now - st.last_notified_at >= rule.repeat_s.get(st.severity or "warning", math.inf):
                out.append(self._notify(key, st, rule, "repeat", None, now))
        return out

    def acknowledge(self, alert_id: str, until: float | None = None) -> AlertState | None:
        """Stop repeats of a firing alert (until ``until`` or its end); "resolved" still goes out."""
        for key, st in self.states.items():
            if st.alert_id == alert_id and st.status == "firing":
                st.acked, st.acked_until = True, until
                self.dirty.add(key)
                return st
        return None

    # --- the state machine -----------------------------------------------------------------------

    def _observe(self, rule: Rule, labels: Mapping[str, str], value: float,
                 t: float) -> list[Transition]:
        key = alert_key(rule.name, labels)
        st = self.states.get(key)
        if st is None:
            if not rule.window_s and self._target(rule, value * rule.scale, None) is None:
                # A quiet series with nothing remembered stays so: no state to make and drop
                # (issue 9: 200 queues are 600 such observations a tick).
                return []
            st = self.states[key] = AlertState(rule.name, dict(labels))
        if rule.window_s:
            judged = self._windowed(rule, st, value, t)
            if judged is None:
                return []
            value = judged
        value *= 1.0 if rule.window_s else rule.scale
        before = st.key_fields()
        st.value = value
        out = self._step(key, st, rule, value, t)
        if st.key_fields() != before:
            self.dirty.add(key)
        if st.status == "ok" and not rule.window_s:
            del self.states[key]          # nothing to remember about a quiet series
        return out

    def _windowed(self, rule: Rule, st: AlertState, value: float, t: float) -> float | None:
        minute = int(t // 60) * 60
        if st.window and st.window[-1][0] == minute:
            m, n, total = st.window[-1]
            st.window[-1] = (m, n + 1, total + value)
        else:
            st.window.append((minute, 1, value))
        while st.window and st.window[0][0] <= t - rule.window_s:
            st.window.popleft()
        if t - st.window[0][0] < rule.min_window_s:
            return None
        n = sum(b[1] for b in st.window)
        return float(sum(b[2] for b in st.window) / n * rule.scale)

    def _target(self, rule: Rule, value: float, fired: str | None) -> str | None:
        if rule.breaches(value, rule.critical):
            return "critical"
        crit_clear = rule.critical_clear_level
        if fired == "critical" and crit_clear is not None and not rule.is_clear_of(value, crit_clear):
            return "critical"
        if rule.breaches(value, rule.warning):
            return "warning"
        if fired and not rule.is_clear_of(value, rule.clear_level):
            return "warning" if rule.warning is not None else "critical"
        return None

    def _step(self, key: str, st: AlertState, rule: Rule, value: float, t: float) -> list[Transition]:
        firing = st.status == "firing"
        # Samples come every interval with some jitter: a hold of 2 s seen at 0.0, 1.0 and 1.98
        # must not wait for the next sample. A quarter interval of slack absorbs the jitter.
        slack = SLACK_INTERVALS * self.source_intervals.get(rule.source, 0.0)
        target = self._target(rule, value, st.severity if firing else None)
        if rule.breaches(value, rule.critical):
            st.critical_since = st.critical_since if st.critical_since is not None else t
        else:
            st.critical_since = None
        if not firing:
            if target is None:
                st.status, st.pending_since, st.critical_since = "ok", None, None
                return []
            if st.status == "ok":
                st.status, st.pending_since = "pending", t
            assert st.pending_since is not None
            if t - st.pending_since < rule.for_s - slack:
                return []
            held_critical = st.critical_since is not None and t - st.critical_since >= rule.for_s - slack
            severity = "critical" if held_critical or rule.warning is None else "warning"
            st.status, st.severity, st.fired_at = "firing", severity, t
            st.alert_id = make_alert_id(rule.name, st.labels, st.pending_since)
            st.seq, st.acked, st.acked_until, st.peak = 0, False, None, value
            st.ok_since = st.lower_since = None
            return [self._notify(key, st, rule, "firing", None, t)]
        st.peak = value if st.peak is None else (max if rule.direction == "above" else min)(st.peak, value)
        # Escalation: critical held for for_s while firing at warning.
        if (st.severity == "warning" and st.critical_since is not None
                and t - st.critical_since >= rule.for_s - slack):
            st.ok_since = st.lower_since = None
            return [self._notify(key, st, rule, "escalated", "critical", t)]
        below = SEVERITY_RANK[target] < SEVERITY_RANK[st.severity]
        st.lower_since = (st.lower_since if st.lower_since is not None else t) if below else None
        st.ok_since = (st.ok_since if st.ok_since is not None else t) if target is None else None
        if st.ok_since is not None and t - st.ok_since >= rule.keep_firing_for_s - slack:
            tr = self._notify(key, st, rule, "resolved", st.severity, t, resolved=True)
            st.status, st.severity, st.pending_since, st.critical_since = "ok", None, None, None
            st.ok_since = st.lower_since = None
            st.acked, st.acked_until, st.alert_id = False, None, None
            return [tr]
        if (st.severity == "critical" and st.lower_since is not None
                and t - st.lower_since >= rule.keep_firing_for_s - slack and target != "critical"):
            st.lower_since = None
            return [self._notify(key, st, rule, "deescalated", "warning", t)]
        return []

    def _notify(self, key: str, st: AlertState, rule: Rule, kind: str, severity: str | None,
                t: float, resolved: bool = False) -> Transition:
        previous = st.severity
        if severity and not resolved:
            st.severity = severity
        sev = st.severity or "warning"
        if resolved:
            threshold = rule.clear_level
        else:
            level = rule.critical if sev == "critical" else rule.warning
            threshold = level if level is not None else rule.clear_level
        st.seq += 1
        st.last_notified_at = t
        self.dirty.add(key)
        return Transition(kind=kind, alert_id=st.alert_id or "", rule=rule.name,
                          labels=dict(st.labels), severity=sev,
                          previous=previous if kind in ("escalated", "deescalated") else None,
                          value=st.value if st.value is not None else math.nan,
                          threshold=threshold, since=st.pending_since or t, at=t, seq=st.seq,
                          acknowledged=st.acked)

    # --- persistence -------------------------------------------------------------------------------

    def export(self, keys: Iterable[str] | None = None) -> dict[str, dict[str, Any] | None]:
        """State to persist: key -> plain dict, or None for a key that went back to ok."""
        out: dict[str, dict[str, Any] | None] = {}
        for key in (self.states if keys is None else keys):
            st = self.states.get(key)
            if st is None or st.status == "ok":
                out[key] = None
                continue
            d = {f.name: getattr(st, f.name) for f in dataclasses.fields(st) if f.name != "window"}
            out[key] = d
        return out

    def load(self, saved: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore persisted states (replacing the in-memory ones); unknown rules are dropped."""
        old = self.states
        # Windowed rules (availability) keep their learnt window even while "ok".
        self.states = {k: AlertState(st.rule, st.labels, window=st.window)
                       for k, st in old.items() if st.window and k not in saved}
        for key, d in saved.items():
            if d.get("rule") not in self.rules:
                continue
            st = AlertState(**{k: v for k, v in d.items() if k in AlertState.__dataclass_fields__
                               and k != "window"})
            if key in old:
                st.window = old[key].window
            self.states[key] = st
        self.dirty.clear()

    def firing(self) -> list[AlertState]:
        return [st for st in self.states.values() if st.status == "firing"]

    def pending(self) -> list[AlertState]:
        return [st for st in self.states.values() if st.status == "pending"]
