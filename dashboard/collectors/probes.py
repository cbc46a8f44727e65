"""HTTP probes of the platform's own URLs: response time, status, up, and today's availability.

Each probe runs at its own interval (default 30 s, the docs' health-check cadence) with its own
timeout; due probes run in parallel so one slow URL never delays the others. A probe is up when
it answers 2xx or 3xx (redirects are not followed: a health URL that redirects to a login page
is answering, not healthy, and the status says so). A timeout or refused connection is down
with the reason on the sample; its response time is left out, not drawn as the timeout.

Availability today (``app.availability_percent{probe}``, in the configured time zone) counts
probes up / probes run, kept in the store (``dashboard.store.probe_days``), so a restart does
not reset the day.
"""
from __future__ import annotations

import logging
import sqlite3  # the store's errors, on either backend (dashboard/store/txn.py)
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from dashboard.collectors.httpget import HttpError, HttpGetter
from dashboard.config.settings import ProbeSettings
from dashboard.model import MetricSpec, Reading
from dashboard.store.probe_days import ProbeDaysRepo

log = logging.getLogger(__name__)

METRICS: Sequence[MetricSpec] = (
    MetricSpec("app.up", "bool", "The probed URL answered 2xx/3xx within its timeout", ("probe",)),
    MetricSpec("app.response_ms", "ms", "Time to the whole answer of a probe", ("probe",)),
    MetricSpec("app.status", "count", "HTTP status of the last probe (0: no answer)", ("probe",)),
    MetricSpec("app.availability_percent", "%", "Probes up today (local time zone)", ("probe",)),
)

MAX_BODY = 1 << 20          # read at most 1 MB of a probe's answer


class DayCounts:
    """Probes up / run per local day and probe, in memory and (optionally) in the store of
    ``data_dir``.

    Written to the store at most every ``flush_every_s`` (and at a day's end and on close), not per
    probe: a transaction per probe per second was the probe collector's largest cost. A crash
    forgets at most that many seconds of counts, out of a day's 86,400.
    """

    def __init__(self, data_dir: Path | str | None, tz: ZoneInfo,
                 flush_every_s: float = 30.0, store_url: str | None = None) -> None:
        self.tz = tz
        self.flush_every_s = flush_every_s
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._flushed_at = time.monotonic()
        self._failed_logged_at = float("-inf")
        self._repo = ProbeDaysRepo(data_dir, store_url) if data_dir is not None else None

    def day(self, wall: float) -> str:
        return datetime.fromtimestamp(wall, self.tz).strftime("%Y-%m-%d")

    def add(self, probe: str, wall: float, ok: bool) -> float:
        """Count one probe; return today's availability in percent."""
        day = self.day(wall)
        with self._lock:
            c = self._counts.get((day, probe))
            if c is None:
                self._flush()                    # a new day: yesterday's counts are final
                c = self._counts[(day, probe)] = self._load(day, probe)
                # keep only today's entries in memory
                for k in [k for k in self._counts if k[0] != day]:
                    del self._counts[k]
            c[0] += int(ok)
            c[1] += 1
            self._dirty.add((day, probe))
            if time.monotonic() - self._flushed_at >= self.flush_every_s:
                self._flush()
            return c[0] / c[1] * 100.0

    def _flush(self) -> None:
        self._flushed_at = time.monotonic()
        if self._repo is None or not self._dirty:
            self._dirty.clear()
            return
        counts = self._counts
        rows = [(d, p, counts[d, p][0], counts[d, p][1]) for d, p in self._dirty if (d, p) in counts]
        try:
            self._repo.save(rows)
        except sqlite3.Error as e:      # a full disk, PostgreSQL down: kept, written next time
            self._store_failed(e)
            return
        self._dirty.clear()

    def _load(self, day: str, probe: str) -> list[int]:
        if self._repo is None:
            return [0, 0]
        try:
            return list(self._repo.counts(day, probe))
        except sqlite3.Error as e:      # counted from 0 meanwhile (the day's start is lost)
            self._store_failed(e)
            return [0, 0]

    def _store_failed(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self._failed_logged_at >= 60:        # once a minute, not every probe
            self._failed_logged_at = now
            log.warning("probe availability cannot be kept in the store (%s: %s); counting goes on",
                        type(e).__name__, e)

    def close(self) -> None:
        with self._lock:
            self._flush()
        if self._repo is not None:
            self._repo.close()
            self._repo = None


class ProbeCollector:
    source = "app"
    metrics = METRICS

    def __init__(self, probes: Sequence[ProbeSettings], data_dir: Path | str | None = None,
                 tz: ZoneInfo | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, store_url: str | None = None) -> None:
        if not probes:
            raise ValueError("ProbeCollector needs at least one probe")
        self.probes = list(probes)
        self.interval_s = min(p.interval_s for p in probes)
        # Parallel probes: the tick lasts as long as the slowest timeout, plus a margin.
        self.timeout_s = max(p.timeout_s for p in probes) + 2.0
        self._clock, self._wall = clock, wall
        self._next: dict[str, float] = {}
        self._last: dict[str, str] = {}           # probe -> how the last probe went, for `check`
        # One kept-alive connection per probe; no proxies from the environment: probes go straight.
        self._getters = {p.name: HttpGetter(p.url) for p in probes}
        self._pool = ThreadPoolExecutor(max_workers=min(8, len(probes)), thread_name_prefix="probe")
        # Today's availability per probe is kept in the store of ``data_dir`` (None: in memory),
        # or in store_url's PostgreSQL.
        self._days = DayCounts(data_dir, tz or ZoneInfo("UTC"), store_url=store_url)

    def _probe(self, p: ProbeSettings) -> Reading:
        labels = {"probe": p.name}
        t0 = time.perf_counter()
        try:
            answer = self._getters[p.name].get(p.timeout_s, MAX_BODY, deadline=t0 + p.timeout_s)
        except HttpError as e:
            if e.kind == "timeout":
                return self._down(p, labels, f"probe {p.name}: no answer within {p.timeout_s:g} s")
            if e.kind in ("refused", "connect"):
                reason = "connection refused" if e.kind == "refused" else "cannot connect"
                return self._down(p, labels, f"probe {p.name}: {reason}")
            return self._down(p, labels, f"probe {p.name}: {e}")
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        status = answer.status
        ok = 200 <= status < 400
        values = {"app.up": float(ok), "app.status": float(status), "app.response_ms": elapsed_ms,
                  "app.availability_percent": self._days.add(p.name, self._wall(), ok)}
        return Reading(values, labels, error=None if ok else f"probe {p.name}: HTTP {status}")

    def _down(self, p: ProbeSettings, labels: dict, error: str) -> Reading:
        # The URL (which may hold a token) is never in the error: the probe's name is.
        values = {"app.up": 0.0, "app.status": 0.0,
                  "app.availability_percent": self._days.add(p.name, self._wall(), False)}
        return Reading(values, labels, error=error)

    def collect(self) -> list[Reading]:
        now = self._clock()
        due = [p for p in self.probes if now >= self._next.get(p.name, 0.0) - 0.05 * p.interval_s]
        for p in due:
            self._next[p.name] = now + p.interval_s
        # One probe due (the usual case): probed here, not handed to the pool and waited for.
        readings = [self._probe(due[0])] if len(due) == 1 else list(self._pool.map(self._probe, due))
        for p, r in zip(due, readings):
            self._last[p.name] = r.error or f"up, {r.values['app.response_ms']:.0f} ms"
        return readings

    def check_notes(self) -> list[str]:
        return [f"probe {p.name}: every {p.interval_s:g} s, timeout {p.timeout_s:g} s; last: "
                f"{self._last.get(p.name, 'not run yet')}" for p in self.probes]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for g in self._getters.values():
            g.close()
        self._days.close()
