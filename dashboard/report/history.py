"""The previous days: a trend against the last 7 and a runway from the last 14.

Daily figures of earlier days are each day's count, sum, min and max per series (``daycache``);
a day's peak is its worst sample. A day watched for less than half of it is
shown in the sparkline but left out of comparisons and of the runway's fit: its peak would be a
guess and its average could be of the quiet half only.

Runway: a least-squares line through the daily peaks of the 14 days ending with the report day
(the 14 before it when the report is of today so far); the days until that line reaches the
limit (and the warning level). A line that does not rise has no runway to report.
"""
from __future__ import annotations

from typing import Any, Sequence

from dashboard.report.areas import Area
from dashboard.report.days import Day

TREND_DAYS = 7
RUNWAY_DAYS = 14
MIN_DAY_COVERAGE = 0.5
MIN_RUNWAY_POINTS = 5
FLAT_PCT = 5.0                   # changes smaller than this are "flat"


def past_days(totals: Sequence[dict], metric: str, labels: str, days: Sequence[Day],
              area: Area, direction: str) -> list[dict[str, Any]]:
    """One entry per day in ``days`` (oldest first) from that day's totals (``daycache``)."""
    out = []
    for d, per_series in zip(days, totals):
        entry: dict[str, Any] = {"date": d.date.isoformat(), "coverage_pct": 0.0,
                                 "avg": None, "peak": None}
        agg = per_series.get((metric, labels))
        if agg is not None:
            minutes, n, total, lo, hi = agg
            entry.update(coverage_pct=100.0 * minutes / d.minutes, avg=total / n * area.scale,
                         peak=(lo if direction == "below" else hi) * area.scale)
        out.append(entry)
    return out


def _usable(entry: dict[str, Any]) -> bool:
    return entry["peak"] is not None and entry["coverage_pct"] >= 100 * MIN_DAY_COVERAGE


def _change(now: float | None, before: list[float], direction: str) -> dict[str, Any]:
    if now is None or not before:
        return {"direction": None, "change_pct": None, "previous": None, "worse": None}
    prev = sum(before) / len(before)
    pct = 100.0 * (now - prev) / abs(prev) if prev else (0.0 if now == prev else None)
    if pct is None:
        way = "up" if now > prev else "down"
    else:
        way = "flat" if abs(pct) < FLAT_PCT else ("up" if pct > 0 else "down")
    worse = None if way == "flat" else (way == "up") == (direction == "above")
    return {"direction": way, "change_pct": pct, "previous": prev, "worse": worse}


def trend(today: dict[str, Any], history: list[dict[str, Any]], direction: str,
          day_complete: bool) -> dict[str, Any]:
    """This day against the mean of the previous 7 usable days, for the average and the peak."""
    week = [e for e in history[-TREND_DAYS:] if _usable(e)]
    this = {"date": today["date"], "coverage_pct": today["coverage_pct"],
            "avg": today["avg"], "peak": today["peak"]}
    return {
        "days": history[-TREND_DAYS:] + [this],
        "avg": _change(today["avg"], [e["avg"] for e in week], direction),
        # A day still running has not had its peak yet: compare peaks of whole days only.
        "peak": _change(today["peak"] if day_complete else None, [e["peak"] for e in week],
                        direction),
        "days_compared": len(week),
    }


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = a + b x; returns (a, b)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - b * mx, b


def _days_to(level: float | None, fitted: float, slope: float, latest: float,
             direction: str) -> float | None:
    if level is None:
        return None
    sign = 1.0 if direction == "above" else -1.0
    if sign * (latest - level) >= 0 or sign * (fitted - level) >= 0:
        return 0.0
    if sign * slope <= 0:
        return None                       # not heading there
    return (level - fitted) / slope


def runway(history: list[dict[str, Any]], today: dict[str, Any] | None, limit: float | None,
           warning: float | None, direction: str) -> dict[str, Any]:
    """Days until the 14-day trend of daily peaks reaches ``limit`` (and ``warning``)."""
    window = (history + ([today] if today is not None else []))[-RUNWAY_DAYS:]
    points = [(float(i), e["peak"]) for i, e in enumerate(window) if _usable(e)]
    out: dict[str, Any] = {"limit": limit, "warning": warning, "days_used": len(points),
                           "window_days": len(window), "slope_per_day": None,
                           "days_to_limit": None, "days_to_warning": None, "status": None}
    if len(points) < MIN_RUNWAY_POINTS:
        out["status"] = f"not enough history ({len(points)} of {MIN_RUNWAY_POINTS} days needed)"
        return out
    a, b = fit(points)
    last_x = float(len(window) - 1)
    fitted = a + b * last_x
    latest = points[-1][1]
    out.update(slope_per_day=b, fitted_now=fitted,
               days_to_limit=_days_to(limit, fitted, b, latest, direction),
               days_to_warning=_days_to(warning, fitted, b, latest, direction))
    if out["days_to_limit"] == 0.0:
        out["status"] = "at the limit"
    elif out["days_to_limit"] is None:
        out["status"] = "not rising" if (b <= 0 if direction == "above" else b >= 0) else "no limit"
    else:
        out["status"] = "rising"
    return out
