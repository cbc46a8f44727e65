"""The page's charts, built with the plotly Python package when a report page is built.

plotly is imported here, inside ``figures()``, never at app start (it costs ~1 s). The page
embeds each figure as JSON in a ``<script type="application/json">`` block and the page's own
static JS draws it with the vendored plotly.js (the CSP forbids inline scripts).

Texts from monitored systems (series keys carry queue, mount, probe and host names) pass
through ``plotly_text``: plotly reads ``<a href>``, ``<span style>``, ``<b>``... in trace names,
legends, hover labels and titles as markup, so a queue named ``<a href=...>`` would otherwise be
a link inside the logged-in page. live.js escapes label values for its traces the same way.

The x axis is hours since local midnight with local wall-clock tick labels, so a 23 or 25 hour
day is drawn at its true length and the repeated hour of a 25 hour day does not fold back.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.report.days import Day, day_of

COLORS = ("#4fc3f7", "#ba68c8", "#81c784", "#ffb74d", "#e57373", "#90a4ae")
LEVEL_COLORS = {"warning": "#ffb300", "critical": "#ff5252", "limit": "#9e9e9e"}
MAX_BANDS = 3                  # min-max bands for the first few series; more would be clutter
MAX_SEGMENTS = 50              # a day cut into more stretches than this gets no band


def plotly_text(s: str) -> str:
    """``s`` shown literally by plotly: its pseudo-HTML is parsed after entities are decoded,
    so escaping ``&``, ``<`` and ``>`` is enough (as live.js's ``plotlyText``)."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ticks(day: Day) -> tuple[list[float], list[str]]:
    """Ticks at local 00:00, 03:00, ... 24:00, placed at their elapsed hour (a wall time that a
    DST change skips has no tick)."""
    vals, text = [], []
    for hour in range(0, 25, 3):
        ts = day.end if hour == 24 else datetime.combine(day.date, dtime(hour)).replace(
            tzinfo=day.tz).timestamp()
        if hour < 24 and day.local(ts).hour != hour:
            continue                                  # in the spring-forward gap
        vals.append(round((ts - day.start) / 3600, 4))
        text.append(f"{hour:02d}:00")
    return vals, text


def figures(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One figure per area with data: ``{area key: {"data": [...], "layout": {...}}}``."""
    import plotly.graph_objects as go

    day = day_of(date.fromisoformat(doc["date"]), ZoneInfo(doc["timezone"]), doc["generated_at"])
    tickvals, ticktext = _ticks(day)
    out: dict[str, dict[str, Any]] = {}
    for area in doc["areas"]:
        if not area["series"]:
            continue
        fig = go.Figure()
        for i, s in enumerate(area["series"][:len(COLORS)]):
            color = COLORS[i]
            ch = s["chart"]
            name = plotly_text(s["key"])
            if i < MAX_BANDS:
                # min-max band: one closed shape per stretch of data, so a gap stays empty
                for xs, lows, highs in _segments(ch)[:MAX_SEGMENTS]:
                    fig.add_scatter(x=xs + xs[::-1], y=highs + lows[::-1], mode="lines",
                                    line={"width": 0}, fill="toself",
                                    fillcolor=_alpha(color, 0.18), hoverinfo="skip",
                                    showlegend=False)
            fig.add_scatter(x=ch["x"], y=ch["mean"], mode="lines", name=name,
                            line={"color": color, "width": 1.5}, connectgaps=False,
                            # the (escaped) name by reference: a name is never read as a template
                            hovertemplate="%{y:.4g}<extra>%{fullData.name}</extra>")
            px = (s["peak_at"] - day.start + 30) / 3600
            fig.add_scatter(x=[px], y=[s["peak"]], mode="markers", showlegend=False,
                            marker={"color": color, "size": 8, "symbol": "diamond"},
                            hovertemplate=f"peak %{{y:.4g}} at {s['peak_at_local']}<extra></extra>")
        shapes = []
        for name in ("warning", "critical"):
            level = area["levels"][name]
            if level is not None:
                shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level,
                               "y1": level, "line": {"color": LEVEL_COLORS[name], "width": 1,
                                                     "dash": "dash"}})
        fig.update_layout(
            height=260, margin={"l": 50, "r": 10, "t": 10, "b": 30},
            paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
            font={"color": "#8b949e", "size": 11}, shapes=shapes, hovermode="x unified",
            showlegend=len(area["series"]) > 1, legend={"orientation": "h", "y": -0.2},
            xaxis={"range": [0, day.hours], "tickvals": tickvals, "ticktext": ticktext,
                   "gridcolor": "rgba(128,128,128,0.2)", "zeroline": False},
            yaxis={"title": {"text": area["unit"]}, "gridcolor": "rgba(128,128,128,0.2)",
                   "zeroline": False, "rangemode": "tozero" if area["direction"] == "above" else "normal"},
        )
        fig_json = json.loads(fig.to_json())
        fig_json["layout"].pop("template", None)      # plotly.js defaults; saves ~10 KB each
        out[area["key"]] = fig_json
    return out


def _segments(ch: dict[str, list]) -> list[tuple[list, list, list]]:
    """The chart's stretches between gaps: (x, min, max) lists."""
    out: list[tuple[list, list, list]] = [([], [], [])]
    for x, lo, hi in zip(ch["x"], ch["min"], ch["max"]):
        if lo is None:
            out.append(([], [], []))
            continue
        out[-1][0].append(x); out[-1][1].append(lo); out[-1][2].append(hi)
    return [seg for seg in out if seg[0]]


def _alpha(hex_color: str, a: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{a})"
