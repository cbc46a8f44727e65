"""Rules tested on history before they page anyone (issue 18, item 4).

``backtest(reads, rules, intervals, since, until)`` replays the stored history through the live
engine (``alerts.engine``: the same hold, escalation, hysteresis and keep-firing logic, with the
same quarter-interval slack) and counts, per rule and label set, what it would have paged:
fired, resolved, escalated, flaps (episodes shorter than ``FLAP_S``), the time spent firing and
each episode (start, end, peak, severity).

* **Resolution.** Raw samples where the store still keeps them; before the oldest raw sample,
  the one-minute rollups. A rule that fires above a level is fed each minute's max and one that
  fires below a level each minute's min, at the minute's start: a breach anywhere in a minute
  counts for the whole minute, so from rollups a backtest pages at least as often as live would.
  A windowed rule (``app_availability``: the mean over 24 h) is fed each minute's mean: the min
  of a minute would count one failed probe as a whole minute down. ``resolution`` says which:
  ``raw``, ``1m``, or ``1m until <ISO time>, raw after``.
* **Bounded memory.** Rollups are read a series and an hour block at a time; raw samples
  ``CHUNK_S`` at a time, for the shapes carrying a rule's metric only. The engine keeps one state
  per label set, and the result one entry per episode.
* **Order.** Each (rule, label set) is an independent state machine, so the rollup part is
  replayed series by series, then the raw part in time order: the same as one time-ordered pass.
* **Not replayed.** What only time judges live (``Engine.tick``): a source silent for three
  intervals (a gap in the history is as likely the dashboard's own downtime), repeats and
  acknowledgements, and the rules of ``TICK_RULES`` (``store_down``, ``notify_channel_failing``).
  Each run starts with no state, as after a restart.

``apply_sets(settings, ["rules.NAME.KEY=VALUE", ...])`` merges proposed overrides into the
configuration's ``[rules.NAME]`` tables, checked by the same code as the configuration file
(``ConfigError`` naming the key).
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from alerts.engine import AlertState, Engine, Transition, alert_key
from alerts.rules import Rule, build_rules
from dashboard.config.load import RULE_KEYS, parse_rules
from dashboard.config.settings import ConfigError, Settings

if TYPE_CHECKING:
    from dashboard.store.history_reads import HistoryReads

FLAP_S = 300.0              # an episode shorter than this is a flap
CHUNK_S = 300.0             # raw samples read this many seconds at a time
SET_KEYS = tuple(sorted(RULE_KEYS - {"severity_channels", "repeat_s"}))   # what changes a count
MAX_SINCE_S = 400 * 86400
STORE_RULE = "store_down"   # judged from the store's health (Engine.tick), never from samples
# Rules the alert service judges from its own state at each tick, never from stored samples (the
# store's health, the channels' deliveries: notify.channel_failing_s is never stored): a
# backtest of them would say "0 pages" whatever they paged.
TICK_RULES = frozenset({STORE_RULE, "notify_channel_failing"})
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$")
_UNIT_S = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str) -> float:
    """``7d``, ``36h``, ``90m``, ``600s`` or a number of seconds -> seconds; ValueError else."""
    m = _SINCE.match(text or "")
    if not m:
        raise ValueError(f"expected a duration like 7d, 36h or 90m, got {text[:40]!r}")
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if not 60 <= seconds <= MAX_SINCE_S:
        raise ValueError(f"must be between 1 minute and 400 days, got {text[:40]!r}")
    return seconds


def _set_value(raw: str) -> Any:
    """A value as the TOML file would read it (80, 1.5, true); anything else stays text, for
    the configuration's own check to refuse with its message."""
    try:
        parsed = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return raw
    return parsed["v"] if len(parsed) == 1 else raw


def apply_sets(settings: Settings, sets: Iterable[str]) -> Settings:
    """``settings`` with ``rules.NAME.KEY=VALUE`` overrides merged into its ``[rules.NAME]``;
    raises ``ConfigError`` naming the assignment or the key that is wrong."""
    changes: dict[str, dict[str, Any]] = {}
    for item in sets:
        path, eq, raw = item.partition("=")
        parts = path.strip().split(".")
        if not eq or len(parts) != 3 or parts[0] != "rules" or not parts[1] or not raw.strip():
            raise ConfigError(item[:80] or "--set", "expected rules.NAME.KEY=VALUE")
        changes.setdefault(parts[1], {})[parts[2]] = _set_value(raw.strip())
    return apply_overrides(settings, changes)


def apply_overrides(settings: Settings, changes: Mapping[str, Mapping[str, Any]]) -> Settings:
    """``settings`` with ``changes`` (rule -> key -> value) merged into its ``[rules.NAME]``
    tables, checked as the configuration file is; ``ConfigError`` names the key."""
    merged: dict[str, dict[str, Any]] = {n: dict(b) for n, b in settings.rules.items()}
    for name, body in changes.items():
        for key, value in body.items():
            if key not in SET_KEYS:
                raise ConfigError(f"rules.{name}.{key}",
                                  f"unknown key {key!r}; one of: {', '.join(SET_KEYS)}")
            merged.setdefault(name, {})[key] = value
    changed = replace(settings, rules=parse_rules(merged))
    build_rules(changed)              # levels that contradict each other, named by key
    return changed


def source_intervals(settings: Settings) -> dict[str, float]:
    """Each source's sampling interval as the live engine gets it from the collectors
    (dashboard/alerting.py, dashboard/collectors/registry.py): the slack for sampling jitter is a
    quarter of it. Every collector samples at ``interval_s`` except the probes (source ``app``,
    their shortest interval); without probes no collector is of source ``app`` (StatsD's app
    metrics come from source ``statsd``), so the live engine gives the app rules no slack."""
    out = {s: float(settings.interval_s)
           for s in ("host", "db", "cache", "queue", "agents", "statsd", "phpfpm")}
    if settings.probes:
        out["app"] = min(float(p.interval_s) for p in settings.probes)
    return out


@dataclass
class Episode:
    start: float
    end: float | None
    peak: float | None
    severity: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "peak": _finite(self.peak),
                "severity": self.severity}


@dataclass
class SeriesResult:
    rule: str
    labels: dict[str, str]
    fired: int = 0
    resolved: int = 0
    escalated: int = 0
    episodes: list[Episode] = field(default_factory=list)

    def firing_s(self, until: float) -> float:
        return sum((until if e.end is None else e.end) - e.start for e in self.episodes)

    def flaps(self) -> int:
        return sum(1 for e in self.episodes if e.end is not None and e.end - e.start < FLAP_S)

    def to_dict(self, until: float) -> dict[str, Any]:
        return {"rule": self.rule, "labels": dict(self.labels), "fired": self.fired,
                "resolved": self.resolved, "escalated": self.escalated, "flaps": self.flaps(),
                "firing_s": round(self.firing_s(until), 3),
                "episodes": [e.to_dict() for e in self.episodes]}


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else v


class _Replay(Engine):
    """The live engine, fed one rule's value at a time (each rule its own value from a rollup
    minute: max, min or mean), and noting every transition with the episode's peak."""

    def __init__(self, rules: Mapping[str, Rule], intervals: Mapping[str, float]) -> None:
        super().__init__(rules, intervals)
        self.results: dict[str, SeriesResult] = {}
        self.series: dict[str, set[str]] = {n: set() for n in self.rules if n not in TICK_RULES}

    def feed(self, rule: Rule, labels: Mapping[str, str], value: float, t: float) -> None:
        self._observe(rule, labels, value, t)

    def _step(self, key: str, st: AlertState, rule: Rule, value: float,
              t: float) -> list[Transition]:
        out = super()._step(key, st, rule, value, t)
        for tr in out:
            self._note(key, st, tr)
        return out

    def _note(self, key: str, st: AlertState, tr: Transition) -> None:
        r = self.results.get(key)
        if r is None:
            r = self.results[key] = SeriesResult(tr.rule, dict(tr.labels))
        if tr.kind == "firing":
            r.fired += 1
            r.episodes.append(Episode(tr.at, None, st.peak, tr.severity))
        elif not r.episodes or r.episodes[-1].end is not None:
            return                            # cannot happen: every state starts "ok" here
        elif tr.kind == "escalated":
            r.escalated += 1
            r.episodes[-1].severity = "critical"
        elif tr.kind == "resolved":
            r.resolved += 1
            r.episodes[-1].end, r.episodes[-1].peak = tr.at, st.peak

    def finish(self) -> None:
        """Peaks of the episodes still firing at the end of the window."""
        for key, r in self.results.items():
            st = self.states.get(key)
            if r.episodes and r.episodes[-1].end is None and st is not None:
                r.episodes[-1].peak = st.peak


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def backtest(reads: HistoryReads, rules: Mapping[str, Rule], intervals: Mapping[str, float],
             since: float, until: float) -> dict[str, Any]:
    """The history in ``[since, until)`` replayed through ``rules`` (the enabled ones): the
    JSON document of ``python -m dashboard backtest --format json``, plus ``series`` (rule ->
    how many label sets it judged), which the text output and the page use."""
    engine = _Replay(rules, intervals)
    by_metric: dict[str, list[Rule]] = {}
    for r in engine.rules.values():
        if r.name not in TICK_RULES:
            by_metric.setdefault(r.metric, []).append(r)
    raw_from = reads.raw_since()
    if raw_from is None or raw_from >= until:
        cut = until
    else:
        # The first whole minute of raw samples: the rollups hold every minute before it.
        cut = min(max(since, math.ceil(raw_from / 60) * 60), until)
    rolled = False                           # any minute read from the rollups
    if cut > since and by_metric:
        seen: dict[str, str] | None = None
        for metric, labels, minute, n, total, lo, hi in reads.minutes_between(since, cut, by_metric):
            if labels is not seen:           # one dict per series: a new series begins
                seen, rolled = labels, True
                for rule in by_metric[metric]:
                    engine.series[rule.name].add(alert_key("", labels))
            for rule in by_metric[metric]:
                value = total / n if rule.window_s else hi if rule.direction == "above" else lo
                engine.feed(rule, labels, value, float(minute))
    if cut < until and by_metric:
        for ts, _source, labels, values in reads.metric_samples(by_metric, cut, until, CHUNK_S):
            for metric, value in values.items():
                for rule in by_metric.get(metric, ()):
                    engine.feed(rule, labels, value, ts)
                    engine.series[rule.name].add(alert_key("", labels))
    engine.finish()
    if cut <= since or (cut < until and not rolled):
        resolution = "raw"
    elif cut >= until:
        resolution = "1m"
    else:
        resolution = f"1m until {_iso(cut)}, raw after"
    results = sorted(engine.results.values(), key=lambda r: (r.rule, sorted(r.labels.items())))
    return {"since": since, "until": until, "resolution": resolution,
            "rules": [r.to_dict(until) for r in results],
            "series": {name: len(seen) for name, seen in sorted(engine.series.items())}}


def public(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The documented JSON shape (without the per-rule series counts)."""
    return {k: doc[k] for k in ("since", "until", "resolution", "rules")}

