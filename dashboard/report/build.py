"""Build the daily summary of one local day (or of today so far) as one plain dict.

Everything the page, the JSON, the CSV, the text and the e-mail show comes from this dict; each
of them only formats it. No Flask here: the CLI and the scheduled e-mail use it as they are.
"""
from __future__ import annotations

import time
from contextlib import closing
from typing import Any

from alerts.daily import day_summary
from dashboard.collectors.mysql.statements import day_top
from dashboard.config.settings import DOWN_RULE_SOURCES, Settings
from dashboard.model import series_key
from dashboard.report import areas as area_mod
from dashboard.report import history
from dashboard.report.areas import AREAS, CACHE_TRAFFIC, CHECKLIST, Area
from dashboard.report.daycache import day_totals
from dashboard.report.days import Day, day_of, parse_date, previous_days
from dashboard.report.reader import Agg, Level, labels_dict, raw_aggs, rolled_agg
from dashboard.report.stats import levels_of, series_figures
from dashboard.store import Store
from dashboard.store import alerts as alert_state
from dashboard.store.reports import ReportsRepo

SCHEMA = "dashboard.daily_report/v1"


def build_report(store: Store, settings: Settings, date_text: str | None = None,
                 now: float | None = None, charts: bool = False) -> dict[str, Any]:
    """The summary of ``date_text`` (``YYYY-MM-DD``, ``today``, default yesterday).

    ``charts`` adds each series' 5-minute chart points (for the page). Raises
    ``days.BadDate`` for a date that is malformed or in the future.
    """
    now = time.time() if now is None else now
    day = day_of(parse_date(date_text, settings.tz, now), settings.tz, now)
    rules = area_mod.rules(settings)
    with closing(ReportsRepo(store.connect, store.history_connect)) as repo:
        return _build(store, repo, settings, rules, day, charts)


def _series_aggs(store: Store, repo: ReportsRepo, rules: dict, day: Day,
                 metrics: list[str], charts: bool) -> tuple[dict[tuple[str, str], Agg], set[int]]:
    """Every series of ``metrics`` over the day: rolled-up minutes plus the raw tail.
    Also the raw tail's minutes of the unlabelled ``*.up`` series (for coverage)."""
    levels = {a.metric: (levels_of(rules[a.rule]), a.scale) for a in AREAS}
    quantiles = {a.metric for a in AREAS if not a.binary}
    # a collector's minute is "down" when any of its collections failed (up = 0) in it
    levels.update({m: ([Level("down", 1.0, "below", False)], 1.0) for m in UP_METRICS})
    chart_start = day.start if charts else None
    reads = repo.history
    mark = reads.rolled_until()
    rolled_until = min(day.until, mark) if mark is not None else day.start
    out: dict[tuple[str, str], Agg] = {}
    if rolled_until > day.start:
        for metric in metrics:
            lv, scale = levels.get(metric, ((), 1.0))
            for lab in reads.label_sets(metric):
                agg = rolled_agg(reads, metric, lab, day.start, rolled_until, lv, scale, chart_start,
                                 metric in quantiles)
                if agg is not None:
                    out[(metric, lab)] = agg
    watched: set[int] = set()
    tail_from = max(day.start, rolled_until)
    if tail_from < day.until:
        for key, agg in raw_aggs(store, reads, metrics, tail_from, day.until, levels, chart_start).items():
            if key[0].endswith(".up") and key[1] == "":
                watched |= agg.minute_set or set()
            out[key] = out[key].merge(agg) if key in out else agg
    if rolled_until > day.start:
        watched |= reads.rolled_minutes(UP_METRICS, day.start, rolled_until)
    return out, watched


UP_METRICS = [f"{s}.up" for s in DOWN_RULE_SOURCES if s != "app"]


def _build(store: Store, repo: ReportsRepo, settings: Settings, rules: dict,
           day: Day, charts: bool) -> dict[str, Any]:
    metrics = [a.metric for a in AREAS] + list(CACHE_TRAFFIC) + UP_METRICS
    aggs, watched = _series_aggs(store, repo, rules, day, metrics, charts)
    prev = previous_days(day, history.RUNWAY_DAYS)
    totals = day_totals(repo, prev, [a.metric for a in AREAS], repo.history.rolled_until())
    areas = [_area(a, rules[a.rule], settings, day, prev, totals, aggs, charts) for a in AREAS]
    # An area only some deployments have (replica lag) is left out of a day without its data.
    areas = [x for a, x in zip(AREAS, areas) if x["series"] or not a.optional]
    by_key = {a["key"]: a for a in areas}
    # Coverage of the day: minutes in which any collector reported (its "<source>.up"); when
    # no collector's up-series is there, the best-covered area.
    covered_n = len(watched) or max((s["minutes"] for a in areas for s in a["series"]), default=0)
    if covered_n == 0:
        status = "no data"
    elif day.is_today:
        status = "so far"
    else:
        status = "complete" if covered_n >= day.minutes else "partial"
    return {
        "schema": SCHEMA,
        "date": day.date.isoformat(),
        "host": settings.host_name,
        "timezone": settings.timezone,
        "link": f"{settings.public_url}/reports/daily?date={day.date.isoformat()}",
        "generated_at": day.now,
        "day": {"start": day.start, "end": day.end, "start_local": day.iso(day.start),
                "end_local": day.iso(day.end), "hours": day.hours, "minutes": day.minutes,
                "today": day.is_today, "until": day.until, "elapsed_minutes": day.elapsed_minutes},
        "coverage": {"status": status, "minutes": covered_n, "of_minutes": day.elapsed_minutes,
                     "pct": 100.0 * covered_n / day.elapsed_minutes if day.elapsed_minutes else 0.0,
                     "day_pct": 100.0 * covered_n / day.minutes,
                     "sources": _sources(aggs, day)},
        "checklist": [_check(c, by_key[c.area], rules[by_key[c.area]["rule"]]) for c in CHECKLIST],
        "areas": areas,
        "runway": [dict(r, area=a["key"], title=a["title"], unit=a["unit"], series=s["key"])
                   for a in areas for s in a["series"] for r in [s.get("runway")] if r],
        "alerts": _alerts(store, day),
        "statements": day_top(repo.heaviest_statements(day.date.isoformat(), 5)),
    }


def _alerts(store: Store, day: Day) -> dict[str, Any]:
    with alert_state.reading(store.connect) as repo:
        return day_summary(repo, day.start, day.end, day.now)


def _area(area: Area, rule: Any, settings: Settings, day: Day, prev: list[Day], totals: list[dict],
          aggs: dict[tuple[str, str], Agg], charts: bool) -> dict[str, Any]:
    limit = area_mod.limit_of(area, settings)
    series = []
    for (metric, lab), agg in sorted(aggs.items()):
        if metric != area.metric or agg.n == 0:
            continue
        labels = labels_dict(lab)
        s = {"key": series_key(metric, labels), "labels": labels,
             **series_figures(agg, area, rule, limit, day, charts)}
        if area.key == "cache_hit_rate":
            s["day_rate"] = _day_hit_rate(aggs, lab)
        past = history.past_days(totals, metric, lab, prev, area, rule.direction)
        today = {"date": day.date.isoformat(), "coverage_pct": s["coverage_pct"],
                 "avg": s["avg"], "peak": s["peak"]}
        complete = not day.is_today
        s["trend"] = history.trend(today, past, rule.direction, complete)
        if area.runway:
            s["runway"] = history.runway(past, today if complete else None, limit, rule.warning,
                                         rule.direction)
        series.append(s)
    worse = min if rule.direction == "below" else max
    worst = worse(series, key=lambda s: s["peak"]) if series else None
    return {"key": area.key, "title": area.title, "metric": area.metric, "unit": area.unit,
            "group": area.group, "rule": rule.name, "direction": rule.direction,
            "levels": {"warning": rule.warning, "critical": rule.critical,
                       "inclusive": rule.inclusive},
            "limit": limit, "worst": worst["key"] if worst else None, "series": series}


def _day_hit_rate(aggs: dict[tuple[str, str], Agg], lab: str) -> float | None:
    hits = aggs.get((CACHE_TRAFFIC[0], lab))
    misses = aggs.get((CACHE_TRAFFIC[1], lab))
    if hits is None or misses is None or hits.total + misses.total <= 0:
        return None
    return 100.0 * hits.total / (hits.total + misses.total)


FIGURE_NAMES = {"avg": "average", "peak": "peak", "p95": "p95", "day_rate": "day hit rate"}


def _check(check, area: dict[str, Any], rule: Any) -> dict[str, Any]:
    level = getattr(rule, check.level)
    out: dict[str, Any] = {"id": check.id, "area": area["key"], "source": check.source,
                           "level": level, "unit": area["unit"], "figure": FIGURE_NAMES[check.figure],
                           "text": check.text.format(level=fmt_level(level, area["unit"])),
                           "direction": rule.direction, "inclusive": rule.inclusive,
                           "verdict": "no data", "value": None, "series": None, "at": None,
                           "coverage_pct": 0.0, "minutes_past": None}
    candidates = []
    for s in area["series"]:
        v = s.get(check.figure)
        if check.figure == "day_rate" and v is None:
            v = s["avg"]                       # no hit/miss counters: the mean of the rate
        if v is not None:
            candidates.append((v, s))
    if not candidates or level is None:
        return out
    pick = min if rule.direction == "below" else max
    value, s = pick(candidates, key=lambda c: c[0])
    past = s["breach"].get(check.level, {}).get("minutes")
    out.update(value=value, series=s["key"], coverage_pct=s["coverage_pct"], minutes_past=past,
               verdict="missed" if rule.breaches(value, level) else "met",
               at=s["peak_at"] if check.figure == "peak" else None,
               at_local=s["peak_at_local"] if check.figure == "peak" else None)
    return out


def fmt_level(level: float | None, unit: str) -> str:
    if level is None:
        return "-"
    text = f"{level:g}"
    if unit == "%":
        return f"{text} %"
    if unit.startswith("/"):
        return f"{text}{unit}"
    return f"{text} {unit}"


def _sources(aggs: dict[tuple[str, str], Agg], day: Day) -> list[dict]:
    """Per collector: minutes with a sample, minutes it could not reach its target, none."""
    out = []
    for metric in UP_METRICS:
        agg = aggs.get((metric, ""))
        if agg is None:
            continue
        out.append({"source": metric.split(".")[0], "minutes": agg.minutes,
                    "minutes_down": agg.breach.get("down", 0),
                    "minutes_missing": max(0, day.elapsed_minutes - agg.minutes)})
    return out
