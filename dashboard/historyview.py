"""The raw part of ``/api/history``: stored rows -> columns per series, built for large
installations (issue 9: 50 hosts and 200 queues are ~300 samples and ~1,600 values a tick,
1.4 million values in a 15-minute window).

Rows are read as stored (JSON text) and decoded once each; a series' key and labels are worked
out once per (metric, label text), not once per value. With ``view=live`` the answer holds only
what the live page draws (dashboard.panels), and host metrics of one host: this dashboard's own
(no ``host`` label) or, with ``host=NAME``, that agent's; other agents' host rows are skipped
without being decoded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from dashboard.model import series_key

Row = tuple[float, str, str]          # ts, labels (JSON text, "" for none), vals (JSON text)


@dataclass(frozen=True)
class LiveView:
    """What the live page draws: the panels' metrics; host metrics of one host only."""

    metrics: frozenset[str]
    host: str | None = None           # None: this dashboard's own host (no "host" label)

    def keeps(self, metric: str, labels: dict[str, str]) -> bool:
        if metric not in self.metrics:
            return False
        if metric.startswith("host."):
            return labels.get("host") == self.host
        return True

    def skips_row(self, labels_text: str, vals_text: str) -> bool:
        """True for a row only of other hosts' host metrics, judged on the text: values are
        numbers, so every quote in the object belongs to a key; all keys are host metrics when
        each key starts with ``"host.``."""
        if '"host"' not in labels_text:
            return False
        if self.host is not None and json.loads(labels_text).get("host") == self.host:
            return False
        return vals_text.count('"') == 2 * vals_text.count('"host.')


def live_view(host: str | None) -> LiveView:
    from dashboard.panels import PANELS
    return LiveView(frozenset(m for p in PANELS for m in p.metrics), host)


def add_rows(series: dict[str, dict[str, Any]], rows: Iterable[Row],
             rnd: Callable[[float], float], view: LiveView | None = None) -> None:
    """Append every (ts, value) of ``rows`` to ``series`` (key -> {metric, labels, t, v})."""
    labels_of: dict[str, dict[str, str]] = {}
    targets: dict[tuple[str, str], dict[str, Any] | None] = {}   # None: not wanted
    loads = json.loads
    for ts, labels_text, vals_text in rows:
        if view is not None and view.skips_row(labels_text, vals_text):
            continue
        t = round(ts, 3)
        for metric, value in loads(vals_text).items():
            k = (metric, labels_text)
            s = targets.get(k, ...)
            if s is ...:
                labels = labels_of.get(labels_text)
                if labels is None:
                    labels = labels_of[labels_text] = loads(labels_text) if labels_text else {}
                s = None
                if view is None or view.keeps(metric, labels):
                    key = series_key(metric, labels)
                    s = series.get(key)
                    if s is None:
                        s = series[key] = {"metric": metric, "labels": labels, "t": [], "v": []}
                targets[k] = s
            if s is not None:
                s["t"].append(t)
                s["v"].append(rnd(value))
