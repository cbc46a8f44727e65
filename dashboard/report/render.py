"""The summary as text (CLI, e-mail), CSV and the e-mail's HTML. Formatting only: every figure
comes from ``build.build_report``'s dict. Texts from monitored systems (SQL, queue names) are
escaped in HTML; the CSV is plain RFC 4180 via the csv module."""
from __future__ import annotations

import csv
import html
import io
from datetime import datetime
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from alerts.messages import fmt_duration, fmt_value

VERDICT_WORDS = {"met": "MET", "missed": "MISSED", "no data": "NO DATA"}
VERDICT_COLORS = {"met": "#2e7d32", "missed": "#c62828", "no data": "#666666"}


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "–"
    if unit == "jobs":
        return fmt_value(v, "").strip() + (" job" if v == 1 else " jobs")
    return fmt_value(v, unit)


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f} %" if abs(v) >= 10 else f"{v:.1f} %"


def day_title(doc: dict[str, Any]) -> str:
    d = datetime.fromisoformat(doc["day"]["start_local"])
    hours = doc["day"]["hours"]
    extra = f", {hours:g} h day" if abs(hours - 24) > 0.01 else ""
    so_far = " (today so far)" if doc["day"]["today"] else ""
    return f"{d:%A %d %B %Y}{so_far} · {doc['timezone']}{extra}"


def coverage_line(doc: dict[str, Any]) -> str:
    c = doc["coverage"]
    if c["status"] == "no data":
        return "No data was recorded for this day."
    if c["status"] == "so far":
        return (f"Today so far: data for {c['minutes']} of {c['of_minutes']} minutes elapsed "
                f"({pct(c['pct'])}); figures cover only the minutes with data.")
    if c["status"] == "partial":
        return (f"Partly covered: data for {c['minutes']} of {c['of_minutes']} minutes "
                f"({pct(c['pct'])}); averages are of the covered minutes only, not of the day.")
    return f"Complete: data for all {c['of_minutes']} minutes of the day."


def check_figure(c: dict[str, Any]) -> str:
    if c["verdict"] == "no data":
        return "no data"
    text = f"{c['figure']} {fmt(c['value'], c['unit'])}"
    if c.get("at_local"):
        text += f" at {c['at_local']}"
    return text


def check_detail(c: dict[str, Any]) -> str:
    parts = []
    if c["series"] and "{" in c["series"]:
        parts.append(c["series"])
    if c.get("minutes_past"):
        side = ("at or above" if c["inclusive"] else "above") if c["direction"] == "above" else (
            "at or below" if c["inclusive"] else "below")
        parts.append(f"{c['minutes_past']} min {side} {fmt(c['level'], c['unit'])}")
    if c["verdict"] != "no data" and c["coverage_pct"] < 99.95:
        parts.append(f"watched {pct(c['coverage_pct'])} of the time")
    return "; ".join(parts)


def subject(doc: dict[str, Any]) -> str:
    missed = sum(1 for c in doc["checklist"] if c["verdict"] == "missed")
    state = "no data" if doc["coverage"]["status"] == "no data" else (
        f"{missed} check{'s' if missed != 1 else ''} missed" if missed else "all checks met")
    return f"Daily capacity summary {doc['date']} · {doc['host']}: {state}"


def runway_text(r: dict[str, Any]) -> str:
    if r["days_to_limit"] is None:
        return r["status"]
    if r["days_to_limit"] == 0:
        return "at the limit now"
    text = f"limit {fmt(r['limit'], r['unit'])} in {r['days_to_limit']:.0f} days"
    if r.get("days_to_warning"):
        text += f" (warning {fmt(r['warning'], r['unit'])} in {r['days_to_warning']:.0f} days)"
    return text


def alerts_line(a: dict[str, Any]) -> str:
    if not a["available"] or a["count"] == 0:
        extra = f"; {a['carried_over']} carried over from earlier" if a.get("carried_over") else ""
        return "No alerts fired this day" + extra + "."
    sev = ", ".join(f"{n} {s}" for s, n in sorted(a["by_severity"].items()))
    parts = [f"{a['count']} alerts fired ({sev})"]
    if a["time_to_ack"]["count"]:
        parts.append(f"median time to acknowledge {fmt_duration(a['time_to_ack']['median_s'])}")
    if a["time_to_resolve"]["count"]:
        parts.append(f"median time to resolve {fmt_duration(a['time_to_resolve']['median_s'])}")
    if a["longest"]:
        parts.append(f"longest {a['longest']['rule']} {fmt_duration(a['longest']['duration_s'])}")
    if a["still_firing"]:
        parts.append(f"{a['still_firing']} still firing")
    return "; ".join(parts) + "."


def text(doc: dict[str, Any]) -> str:
    out = [f"Daily capacity summary · {doc['host']} · {day_title(doc)}", coverage_line(doc), "",
           "Daily checklist"]
    for c in doc["checklist"]:
        detail = check_detail(c)
        out.append(f"  {VERDICT_WORDS[c['verdict']]:<8} {c['text']:<52} {check_figure(c)}"
                   + (f"  ({detail})" if detail else ""))
    if doc["runway"]:
        out += ["", "Runway (14-day trend of daily peaks)"]
        for r in doc["runway"]:
            out.append(f"  {r['series']:<40} {runway_text(r)}")
    out += ["", "Areas (min / avg / p95 / max, peak time, minutes past warning / critical, "
            "headroom at the peak)"]
    for a in doc["areas"]:
        if not a["series"]:
            out.append(f"  {a['title']}: no data")
            continue
        for s in a["series"]:
            room = next((h for h in s["headroom"] if h["headroom_pct"] is not None), None)
            past = " / ".join(str(s["breach"][k]["minutes"]) if k in s["breach"] else "–"
                              for k in ("warning", "critical"))
            u = a["unit"]
            out.append(f"  {s['key']:<44} {fmt(s['min'], u)} / {fmt(s['avg'], u)} / "
                       f"{fmt(s['p95'], u)} / {fmt(s['max'], u)}, peak {fmt(s['peak'], u)} at "
                       f"{s['peak_at_local']}, past {past} min"
                       + (f", headroom {pct(room['headroom_pct'])} to {room['against']}" if room else "")
                       + (f", {pct(s['coverage_pct'])} covered" if s["coverage_pct"] < 99.95 else ""))
    out += ["", "Alerts", "  " + alerts_line(doc["alerts"])]
    st = doc["statements"]
    out += ["", "Heaviest statements"]
    if not st or not st["rows"]:
        out.append("  none recorded for this day")
    else:
        for r in st["rows"]:
            out.append(f"  {r['total_ms'] / 1000:9.1f} s  {r['calls']:>8} calls  "
                       f"{r['share_pct']:5.1f} %  {r['text'][:100]}")
    out += ["", f"Page: {doc['link']}"]
    return "\n".join(out) + "\n"


CSV_COLUMNS = ("date", "section", "area", "series", "check", "verdict", "figure", "value", "unit",
               "min", "avg", "p95", "max", "peak_at", "minutes_covered", "coverage_pct",
               "warning", "minutes_past_warning", "critical", "minutes_past_critical", "limit",
               "headroom_pct", "avg_vs_prev_7d_pct", "days_to_limit")


def _csv_rows(doc: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for c in doc["checklist"]:
        yield {"section": "checklist", "area": c["area"], "series": c["series"], "check": c["text"],
               "verdict": c["verdict"], "figure": c["figure"], "value": c["value"],
               "unit": c["unit"], "peak_at": c.get("at_local"), "coverage_pct": c["coverage_pct"]}
    for a in doc["areas"]:
        for s in a["series"]:
            room = next((h for h in s["headroom"] if h["against"] == "limit"), None)
            yield {"section": "area", "area": a["key"], "series": s["key"], "unit": a["unit"],
                   "min": s["min"], "avg": s["avg"], "p95": s["p95"], "max": s["max"],
                   "peak_at": s["peak_at_local"], "minutes_covered": s["minutes"],
                   "coverage_pct": s["coverage_pct"],
                   "warning": s["breach"].get("warning", {}).get("level"),
                   "minutes_past_warning": s["breach"].get("warning", {}).get("minutes"),
                   "critical": s["breach"].get("critical", {}).get("level"),
                   "minutes_past_critical": s["breach"].get("critical", {}).get("minutes"),
                   "limit": a["limit"], "headroom_pct": room["headroom_pct"] if room else None,
                   "avg_vs_prev_7d_pct": s["trend"]["avg"]["change_pct"],
                   "days_to_limit": (s.get("runway") or {}).get("days_to_limit")}


def to_csv(doc: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for row in _csv_rows(doc):
        row["date"] = doc["date"]
        w.writerow({k: ("" if v is None else round(v, 6) if isinstance(v, float) else v)
                    for k, v in row.items()})
    return buf.getvalue()


def email_html(doc: dict[str, Any]) -> str:
    """The verdict table and a link to the page; inline styles (mail clients drop <style>)."""
    e = html.escape
    rows = []
    for c in doc["checklist"]:
        color = VERDICT_COLORS[c["verdict"]]
        detail = check_detail(c)
        rows.append(
            f'<tr><td style="padding:4px 8px;font-weight:bold;color:{color}">'
            f'{VERDICT_WORDS[c["verdict"]]}</td><td style="padding:4px 8px">{e(c["text"])}</td>'
            f'<td style="padding:4px 8px">{e(check_figure(c))}</td>'
            f'<td style="padding:4px 8px;color:#555">{e(detail)}</td></tr>')
    runway = "".join(f"<li>{e(r['series'])}: {e(runway_text(r))}</li>" for r in doc["runway"])
    return (
        '<html><body style="font-family:sans-serif">'
        f'<h2 style="margin:0 0 4px">Daily capacity summary · {e(doc["host"])}</h2>'
        f'<p style="margin:0 0 8px;color:#555">{e(day_title(doc))}<br>{e(coverage_line(doc))}</p>'
        '<table style="border-collapse:collapse" border="1" cellspacing="0">'
        '<thead><tr><th>Verdict</th><th>Check</th><th>Figure</th><th>Detail</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
        + (f"<h3>Runway</h3><ul>{runway}</ul>" if runway else "")
        + f"<p>{e(alerts_line(doc['alerts']))}</p>"
        f'<p><a href="{e(doc["link"])}">Open the full summary</a></p></body></html>')


def sparkline(values: list[float | None], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for the page (an inline <svg>, not a script: fine under the CSP)."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if not known:
        return ""
    lo = min(v for _, v in known)
    hi = max(v for _, v in known)
    span = (hi - lo) or 1.0
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}"
                    for i, v in known)


def local_time(ts: float, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%H:%M")
