"""One series' figures for one day, from its minutes (rolled up or raw).

* min / max are exact; avg is sum / count over every sample of the covered minutes (a gap is
  left out, never filled: a partly covered day is the average of the time it was watched);
* p95 comes from the day's MERGED sketches (within 1 %), never from per-minute p95s;
* the peak is the worst value (the maximum, or the minimum for "below" areas such as the hit
  rate) and the minute it happened in;
* a minute is *in breach* of a level when the minute's mean is past it, compared the way the
  alert rule compares (``>=`` for the inclusive queue level, ``<`` for "below" rules): a blip does
  not paint a whole minute, while a counted event (a failed job, a slow query) always does,
  because its mean is then above zero;
* headroom at the peak against each level and the hard limit: ``limit - peak`` in the area's
  unit and as a share of the limit (pool peak 62 of 100 -> 38 % headroom).
"""
from __future__ import annotations

from typing import Any

from dashboard.report.areas import Area
from dashboard.report.days import Day
from dashboard.report.reader import CHART_BUCKET_S, Agg, Level
from dashboard.store import sketch


def levels_of(rule: Any) -> list[Level]:
    return [Level(name, v, rule.direction, rule.inclusive)
            for name, v in (("warning", rule.warning), ("critical", rule.critical)) if v is not None]


def headroom(value: float, level: float, direction: str) -> dict[str, float | None]:
    room = (level - value) if direction == "above" else (value - level)
    return {"headroom": room, "headroom_pct": (100.0 * room / abs(level)) if level else None}


def series_figures(agg: Agg, area: Area, rule: Any, limit: float | None, day: Day,
                   chart: bool) -> dict[str, Any]:
    """Figures of one series over ``day`` from its aggregate (at least one minute)."""
    k = area.scale
    below = rule.direction == "below"
    worst = agg.lo if below else agg.hi
    peak_minute = agg.lo_at if below else agg.hi_at
    p95 = None if area.binary else sketch.quantile(agg.sketch, 0.95, agg.lo, agg.hi)
    p05 = None if area.binary else sketch.quantile(agg.sketch, 0.05, agg.lo, agg.hi)
    breach = {lv.name: {"level": lv.value, "minutes": agg.breach.get(lv.name, 0),
                        "inclusive": lv.inclusive} for lv in levels_of(rule)}
    room = []
    if limit is not None:
        room.append({"against": "limit", "level": limit, **headroom(worst * k, limit, rule.direction)})
    for name in ("warning", "critical"):
        level = getattr(rule, name)
        if level is not None and level != limit:
            room.append({"against": name, "level": level, **headroom(worst * k, level, rule.direction)})
    out: dict[str, Any] = {
        "minutes": agg.minutes,
        "coverage_pct": 100.0 * agg.minutes / day.elapsed_minutes if day.elapsed_minutes else 0.0,
        "samples": agg.n,
        "min": agg.lo * k, "avg": agg.total / agg.n * k,
        "p95": None if p95 is None else p95 * k, "p05": None if p05 is None else p05 * k,
        "max": agg.hi * k, "peak": worst * k, "peak_at": peak_minute,
        "peak_at_local": day.clock(peak_minute) if peak_minute is not None else None,
        "breach": breach, "headroom": room,
    }
    if chart:
        out["chart"] = chart_points(agg, day, k)
    return out


def chart_points(agg: Agg, day: Day, k: float) -> dict[str, list]:
    """5-minute buckets on an axis of hours since local midnight (right on 23/25 h days)."""
    x: list[float] = []
    mean: list[float | None] = []
    mins: list[float | None] = []
    maxs: list[float | None] = []
    prev = None
    for b in sorted(agg.buckets):
        n, total, lo, hi = agg.buckets[b]
        if prev is not None and b != prev + 1:
            # a gap in the data is a gap in the line, never a straight line across it
            x.append(round((prev + 1) * CHART_BUCKET_S / 3600, 4))
            mean.append(None); mins.append(None); maxs.append(None)
        x.append(round((b + 0.5) * CHART_BUCKET_S / 3600, 4))
        mean.append(total / n * k); mins.append(lo * k); maxs.append(hi * k)
        prev = b
    return {"x": x, "mean": mean, "min": mins, "max": maxs}
