"""PHP-FPM worker utilisation from its status page (``pm.status_path``, JSON output).

``app.worker_utilization`` = active processes / ``pm.max_children`` -- the limit the docs scale
(200) and the one a traffic spike hits. The status page does not report ``pm.max_children``,
so it comes from ``phpfpm.max_children``; without it the denominator is the processes running
now ("total processes"), which under ``pm = dynamic`` understates the headroom, and ``check``
says so. The ``max children reached`` counter becomes the count over the trailing 60 s: any
non-zero value means requests waited for a worker within the last minute.
"""
from __future__ import annotations

import json
import time
from typing import Callable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dashboard.collectors.httpget import HttpError, HttpGetter
from dashboard.collectors.rates import RateTracker, TrailingCounts
from dashboard.model import CollectorError, MetricSpec, Reading

METRICS: Sequence[MetricSpec] = (
    MetricSpec("app.worker_utilization", "%", "PHP-FPM active processes / pm.max_children "
               "(or / total processes when max_children is not given)"),
    MetricSpec("app.workers_active", "count", "PHP-FPM processes serving a request"),
    MetricSpec("app.workers_total", "count", "PHP-FPM processes running"),
    MetricSpec("app.listen_queue", "count", "Requests waiting for a free PHP-FPM worker"),
    MetricSpec("app.max_children_reached_per_min", "/min",
               "Times PHP-FPM hit pm.max_children over the last 60 s"),
    MetricSpec("app.accepted_per_s", "/s", "Requests accepted by PHP-FPM per second"),
)


def status_url(url: str) -> str:
    """The status page URL with ``json`` added (FPM answers plain text without it)."""
    p = urlsplit(url)
    query = parse_qsl(p.query, keep_blank_values=True)
    if not any(k == "json" for k, _ in query):
        query.append(("json", ""))
    q = "&".join(urlencode([(k, v)]) if v else k for k, v in query)
    return urlunsplit((p.scheme, p.netloc, p.path, q, ""))


_WHY = {"timeout": "no answer in time", "refused": "connection refused",
        "connect": "cannot connect", "protocol": "no valid HTTP answer"}


class PhpFpmCollector:
    source = "phpfpm"
    metrics = METRICS

    def __init__(self, url: str, max_children: int | None = None, interval_s: float = 1.0,
                 timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.max_children = status_url(url), max_children
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._rates = RateTracker()
        self._per_min = TrailingCounts(60.0)
        self._http = HttpGetter(self.url)

    def collect(self) -> list[Reading]:
        now = self._clock()
        try:
            resp = self._http.get(max(0.5, self.timeout_s - 1), follow=3)   # /status -> /status/
        except HttpError as e:
            raise CollectorError(f"php-fpm status page: {_WHY[e.kind]}") from None
        if resp.status >= 400:
            raise CollectorError(f"php-fpm status page: HTTP {resp.status}")
        try:
            s = json.loads(resp.body)
        except ValueError:
            raise CollectorError("php-fpm status page is not JSON (is pm.status_path right?)") from None
        if not isinstance(s, dict):
            raise CollectorError("php-fpm status page is not a JSON object")
        try:
            active = float(s["active processes"])
            total = float(s["total processes"])
        except (KeyError, TypeError, ValueError):
            raise CollectorError("php-fpm status JSON lacks 'active processes'/'total processes'") from None
        limit = float(self.max_children) if self.max_children else total
        values = {"app.workers_active": active, "app.workers_total": total,
                  "app.listen_queue": float(s.get("listen queue", 0) or 0)}
        if limit > 0:
            values["app.worker_utilization"] = active / limit * 100.0
        counts = {"app.max_children_reached_per_min": (self._per_min.count, "max children reached"),
                  "app.accepted_per_s": (self._rates.rate, "accepted conn")}
        for name, (figure, key) in counts.items():
            if key in s:
                value = figure(name, float(s[key]), now)
                if value is not None:
                    values[name] = value
        return [Reading(values)]

    def check_notes(self) -> list[str]:
        if self.max_children:
            return [f"php-fpm: utilisation of pm.max_children = {self.max_children}"]
        return ["php-fpm: phpfpm.max_children is not set, so utilisation is of the processes "
                "running now; set it to pm.max_children to measure against the limit"]

    def close(self) -> None:
        self._http.close()
