"""The text of ``python -m dashboard backtest`` (alerts/backtest.py makes the document): a
line per rule and label set with its counts, its episodes under it, then the rules that would
not have fired and those without data in the window."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from alerts.backtest import FLAP_S
from alerts.rules import Rule


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    h, m = divmod(s // 60, 60)
    return f"{h} h {m} min" if h < 48 else f"{h // 24} d {h % 24} h"


_CONTROL = dict.fromkeys([*range(32), 127], "?")


def _labels(labels: Mapping[str, str]) -> str:
    """Label values come from monitored systems: no control character reaches the terminal."""
    if not labels:
        return ""
    return ("{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}").translate(_CONTROL)


def _num(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}{' ' + unit if unit else ''}"


def render(doc: Mapping[str, Any], rules: Mapping[str, Rule], tz: Any = timezone.utc) -> str:
    """The text of ``python -m dashboard backtest``: a line per rule and label set with its
    counts, its episodes under it, then the rules that would not have fired."""
    def when(t: float) -> str:
        return datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S")

    lines = [f"backtest {when(doc['since'])} .. {when(doc['until'])} "
             f"({_duration(doc['until'] - doc['since'])}, {tz}), resolution: {doc['resolution']}"]
    pages = sum(r["fired"] for r in doc["rules"])
    flaps = sum(r["flaps"] for r in doc["rules"])
    lines.append(f"{pages} page{'s' if pages != 1 else ''}, {flaps} of them flaps "
                 f"(episodes under {_duration(FLAP_S)})")
    for r in doc["rules"]:
        unit = rules[r["rule"]].unit if r["rule"] in rules else ""
        lines.append("")
        lines.append(f"{r['rule']} {_labels(r['labels'])}".rstrip()
                     + f": fired {r['fired']}, resolved {r['resolved']}, escalated {r['escalated']}, "
                     f"flaps {r['flaps']}, firing {_duration(r['firing_s'])}")
        for e in r["episodes"]:
            end = when(e["end"]) if e["end"] is not None else "still firing"
            length = _duration((e["end"] if e["end"] is not None else doc["until"]) - e["start"])
            flap = "  flap" if e["end"] is not None and e["end"] - e["start"] < FLAP_S else ""
            lines.append(f"  {when(e['start'])} -> {end}  {length}  {e['severity']}"
                         f"  peak {_num(e['peak'], unit)}{flap}")
    fired = {r["rule"] for r in doc["rules"]}
    quiet = [f"{n} ({k} series)" for n, k in doc.get("series", {}).items() if n not in fired and k]
    nodata = [n for n, k in doc.get("series", {}).items() if not k]
    if quiet:
        lines += ["", "would not have fired: " + ", ".join(quiet)]
    if nodata:
        lines += ["", "no data in the window: " + ", ".join(nodata)]
    return "\n".join(lines) + "\n"
