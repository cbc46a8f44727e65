"""Top statements over a window, from the increments between digest snapshots.

Readers (``mysql_digests``) hand in what each statement did between two snapshots (calls, time,
max, rows) -- never since-boot totals. This book keeps:

* the last hour of increments in memory (the 5-minute and 1-hour windows, and the 60 s window
  behind ``db.avg_query_ms``), and the 5 minutes before it, so a page can say which statements
  grew most in its last 5 minutes against the whole hour before (``growth``);
* per-day and per-hour totals in the store (``dashboard.store.statements``), so "today" survives
  a restart and the 2x-regression flag can compare the last hour with the 24 hours before it;
* each statement's text and when we first saw it (``NULL`` = already there when monitoring
  began, so a fresh install does not flag every statement as new).

It also holds the "running now" list the status collector reads from the process list, and the
notices the page shows (source in use and how to enable a better one, digests lost).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Callable, Iterable

from dashboard.store.statements import StatementsRepo

WINDOWS = {"5m": 300.0, "1h": 3600.0, "today": None}
SORTS = ("total_ms", "calls", "avg_ms", "max_ms", "share_pct", "rows_examined", "rows_sent")
TEXT_MAX = 1024                # performance_schema's own digest length
KEEP_DAYS = 31                 # day totals, and the texts of statements called in them
REGRESSION_FACTOR = 2.0
REGRESSION_MIN_MS = 1.0        # 0.01 ms -> 0.02 ms is noise, not a regression
BASELINE_MIN_CALLS = 10
NEW_FOR_S = 86400.0
GROWTH_RECENT_S = 300.0        # a page's "what changed": these last minutes...
GROWTH_BASE_S = 3600.0         # ...against this long before them

# --- the book ----------------------------------------------------------------------------------

@dataclass
class Inc:
    """What one statement did between two snapshots."""

    calls: float
    total_ms: float
    max_ms: float
    rows_examined: float = 0.0
    rows_sent: float = 0.0


def _row(key: str, schema: str | None, calls: float, total: float, mx: float, rex: float,
         rsent: float) -> dict:
    return {"id": key, "schema": schema, "calls": int(calls), "total_ms": round(total, 3),
            "avg_ms": round(total / calls, 3) if calls else None, "max_ms": round(mx, 3),
            "rows_examined": int(rex), "rows_sent": int(rsent)}


class StatementBook:
    def __init__(self, slow_ms: float, tz: tzinfo, repo: StatementsRepo | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.slow_ms = slow_ms
        self.tz = tz
        self._clock = clock
        self._lock = threading.RLock()
        self._repo = repo or StatementsRepo()        # no store: kept in memory
        self._known: set[str] = self._repo.keys()
        # Texts kept "since monitoring began" (first_seen NULL) age from here, so a fresh
        # install does not drop (and later call "new") statements it has not seen run yet.
        if self.meta("texts_since") is None:
            self.set_meta("texts_since", repr(clock()))
        self._intervals: deque[tuple[float, dict[str, Inc]]] = deque()
        self._older: deque[tuple[float, dict[str, Inc]]] = deque()   # the 5 min before the hour
        self._hour: dict[str, list[float]] = {}      # running 1 h totals: calls, total, rex, rsent
        self._since: float | None = None             # first snapshot of this process (window start)
        self._baseline: dict[str, float] = {}
        self._baseline_at = float("-inf")
        self.source = "starting"
        self.source_note = ""
        self.notices: dict[str, str] = {}            # topic -> text, shown above the table
        self.now_rows: list[dict] = []
        self.now_error: str | None = None
        self.version = 0                             # bumps when the top tables change
        self.now_version = 0

    # --- persistence helpers -----------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            return self._repo.meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._repo.set_meta(key, value)

    def knows(self, key: str) -> bool:
        return key in self._known

    def has_history(self) -> bool:
        return bool(self._known)

    def texts(self, keys: list[str]) -> dict[str, str]:
        """The stored texts of ``keys`` (those the book knows)."""
        with self._lock:
            return {k: t for k, (_s, t, _f) in self._repo.texts(keys).items()} if keys else {}

    # --- feeding -------------------------------------------------------------------------------

    def start(self, ts: float) -> None:
        """The first snapshot was taken: windows begin here."""
        with self._lock:
            if self._since is None:
                self._since = ts

    def add(self, ts: float, incs: dict[str, Inc],
            texts: Iterable[tuple[str, str | None, str]] = (), baseline: bool = False) -> None:
        """Record one interval's increments and any newly seen texts ``(key, schema, text)``.

        ``baseline``: the texts were already there before monitoring began (not "new").
        """
        day = datetime.fromtimestamp(ts, self.tz).date().isoformat()
        hour = int(ts // 3600) * 3600
        with self._lock:
            self.start(ts)
            new = [(k, s, t[:TEXT_MAX], None if baseline else ts)
                   for k, s, t in texts if k not in self._known]
            self._repo.add(day, hour, new, ((k, i.calls, i.total_ms, i.max_ms, i.rows_examined,
                                             i.rows_sent) for k, i in incs.items()))
            self._known.update(k for k, _, _, _ in new)
            if incs:
                self._intervals.append((ts, incs))
                for k, i in incs.items():
                    t = self._hour.setdefault(k, [0.0, 0.0, 0.0, 0.0])
                    t[0] += i.calls; t[1] += i.total_ms; t[2] += i.rows_examined; t[3] += i.rows_sent
            self._expire(ts)
            self.version += 1

    def _expire(self, now: float) -> None:
        while self._intervals and self._intervals[0][0] <= now - 3600:
            ts, incs = self._intervals.popleft()
            self._older.append((ts, incs))
            for k, i in incs.items():
                t = self._hour.get(k)
                if t is None:
                    continue
                t[0] -= i.calls; t[1] -= i.total_ms; t[2] -= i.rows_examined; t[3] -= i.rows_sent
                if t[0] <= 0.5:
                    del self._hour[k]
        while self._older and self._older[0][0] <= now - GROWTH_RECENT_S - GROWTH_BASE_S:
            self._older.popleft()

    def set_now(self, rows: list[dict], error: str | None) -> None:
        with self._lock:
            if rows or self.now_rows or error != self.now_error:
                self.now_version += 1
            self.now_rows, self.now_error = rows, error

    def prune(self, now: float | None = None) -> None:
        """Hour buckets for the regression baseline (2 days); day totals for a month, and the
        texts of statements not called in that month: applications that build varying SQL (IN
        lists of every length, generated aliases) make new digests forever."""
        now = self._clock() if now is None else now
        with self._lock:
            cutoff = datetime.fromtimestamp(now - KEEP_DAYS * 86400, self.tz).date().isoformat()
            if self._repo.prune(now - 50 * 3600, cutoff, now - KEEP_DAYS * 86400,
                                float(self.meta("texts_since") or now)):
                self._known = self._repo.keys()

    # --- reading -------------------------------------------------------------------------------

    def avg_query_ms(self, window_s: float = 60.0) -> float | None:
        """Σtime / Σcalls over the last ``window_s`` seconds of increments (None: no calls)."""
        now = self._clock()
        calls = total = 0.0
        with self._lock:
            for ts, incs in reversed(self._intervals):
                if ts < now - window_s:
                    break
                for i in incs.values():
                    calls += i.calls
                    total += i.total_ms
        return total / calls if calls else None

    def growth(self, at: float, recent_s: float = GROWTH_RECENT_S, base_s: float = GROWTH_BASE_S,
               limit: int = 3, text_max: int = 200,
               run: Callable[..., dict] = lambda fn, *args: fn(*args)) -> dict | None:
        """The ``limit`` statements whose total time per minute grew most in the ``recent_s``
        before ``at`` against the ``base_s`` before that (a page's "what changed around it"),
        from the increments in memory. The lock is held only to take the list of intervals
        (never changed once added) and to read the texts: ``run`` may do the sums in another OS
        thread (``dashboard.offload.run``). None before the first snapshot."""
        with self._lock:
            since, intervals = self._since, [*self._older, *self._intervals]
        if since is None:
            return None
        top = run(grown, intervals, since, at, recent_s, base_s, limit)
        with self._lock:
            texts = self._repo.texts([r["id"] for r in top["rows"]])
        for r in top["rows"]:
            schema, text, _ = texts.get(r["id"], (None, "", None))
            r["schema"] = schema
            r["text"] = text[:text_max]
        return top

    def _window_rows(self, window: str) -> tuple[list[dict], float]:
        now = self._clock()
        if window == "today":
            day = datetime.fromtimestamp(now, self.tz).date().isoformat()
            midnight = datetime.fromisoformat(day).replace(tzinfo=self.tz).timestamp()
            rows = [_row(k, None, *r) for k, r in self._repo.day(day).items()]
            return rows, now - midnight
        span = WINDOWS[window] or 0.0
        span_covered = min(span, now - self._since) if self._since is not None else 0.0
        if window == "1h":
            acc = {k: [t[0], t[1], 0.0, t[2], t[3]] for k, t in self._hour.items()}
            for _ts, incs in self._intervals:
                for k, i in incs.items():
                    if k in acc and i.max_ms > acc[k][2]:
                        acc[k][2] = i.max_ms
        else:
            acc = {}
            for ts, incs in self._intervals:
                if ts <= now - span:
                    continue
                for k, i in incs.items():
                    a = acc.setdefault(k, [0.0, 0.0, 0.0, 0.0, 0.0])
                    a[0] += i.calls; a[1] += i.total_ms; a[2] = max(a[2], i.max_ms)
                    a[3] += i.rows_examined; a[4] += i.rows_sent
        return [_row(k, None, *a) for k, a in acc.items() if a[0] >= 0.5], max(span_covered, 0.0)

    def _refresh_baseline(self, now: float) -> None:
        # The 24 hours before the last hour, from whole hour buckets (so up to an hour longer).
        if now - self._baseline_at < 600:
            return
        self._baseline = self._repo.average_ms(now - 26 * 3600, now - 7200, BASELINE_MIN_CALLS)
        self._baseline_at = now

    def top(self, window: str = "1h", sort: str = "total_ms", limit: int = 50,
            descending: bool = True, text_limit: int = TEXT_MAX) -> dict:
        """The top statements of a window, with flags; what the API and the page show."""
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        now = self._clock()
        with self._lock:
            rows, span = self._window_rows(window)
            total_time = sum(r["total_ms"] for r in rows)
            calls = sum(r["calls"] for r in rows)
            for r in rows:
                r["share_pct"] = round(100.0 * r["total_ms"] / total_time, 2) if total_time else 0.0
            rows.sort(key=lambda r: (r[sort] is not None, r[sort] or 0), reverse=descending)
            rows = rows[:limit]
            self._refresh_baseline(now)
            texts = self._repo.texts([r["id"] for r in rows])
            for r in rows:
                schema, text, first_seen = texts.get(r["id"], (None, "", None))
                r["schema"] = schema
                r["text"] = text[:text_limit]
                flags = []
                slow = r["avg_ms"] is not None and r["avg_ms"] >= self.slow_ms
                if first_seen is not None and now - first_seen < NEW_FOR_S and slow:
                    flags.append("new_and_slow")
                elif slow:
                    flags.append("slow")
                base = self._baseline.get(r["id"])
                last_hour = self._hour.get(r["id"])
                if base is not None and last_hour and last_hour[0] >= 1:
                    avg_hour = last_hour[1] / last_hour[0]
                    r["baseline_avg_ms"] = round(base, 3)
                    if avg_hour >= REGRESSION_FACTOR * base and avg_hour - base >= REGRESSION_MIN_MS:
                        flags.append("regressed")
                r["flags"] = flags
            return {"window": window, "span_s": round(span, 1), "sort": sort,
                    "total_ms": round(total_time, 3), "calls": int(calls),
                    "avg_ms": round(total_time / calls, 3) if calls else None, "rows": rows}

    def status(self) -> dict:
        """Source in use, how to get a better one, and notices: the header of the view."""
        with self._lock:
            return {"source": self.source, "source_note": self.source_note,
                    "notices": list(self.notices.values()), "slow_ms": self.slow_ms}

    def now(self) -> dict:
        with self._lock:
            return {"rows": list(self.now_rows), "error": self.now_error, "slow_ms": self.slow_ms}


def grown(intervals: list[tuple[float, dict[str, Inc]]], since: float, at: float, recent_s: float,
          base_s: float, limit: int) -> dict:
    """``StatementBook.growth``'s sums over ``intervals`` (the book's first snapshot at ``since``).
    Rates are per minute of what the book covers, so a book younger than the baseline still
    compares like with like; no baseline yet (less than a minute, or half ``base_s`` if shorter)
    ranks by the recent rate alone (``before_ms_per_min`` None). Only statements that grew."""
    recent_from = at - recent_s
    base_from = max(at - recent_s - base_s, since)
    recent_min = max(min(recent_s, at - since), 1.0) / 60
    enough = min(60.0, base_s / 2)
    base_min = (recent_from - base_from) / 60 if recent_from - base_from >= enough else None
    recent: dict[str, list[float]] = {}
    base: dict[str, float] = {}
    for ts, incs in intervals:
        if ts > at or ts <= base_from:
            continue
        for k, i in incs.items():
            if ts > recent_from:
                acc = recent.setdefault(k, [0.0, 0.0])
                acc[0] += i.total_ms
                acc[1] += i.calls
            else:
                base[k] = base.get(k, 0.0) + i.total_ms
    rows: list[dict] = []
    for k, (total, calls) in recent.items():
        now_rate = total / recent_min
        before = base.get(k, 0.0) / base_min if base_min else None
        grew = now_rate - (before or 0.0)
        if grew > 0:
            rows.append({"id": k, "ms_per_min": round(now_rate, 3),
                         "before_ms_per_min": None if before is None else round(before, 3),
                         "growth_ms_per_min": round(grew, 3), "calls": int(calls)})
    rows.sort(key=lambda r: -r["growth_ms_per_min"])
    return {"recent_s": recent_s, "base_s": round(recent_from - base_from, 1), "rows": rows[:limit]}


def day_top(heaviest: dict | None) -> dict | None:
    """The heaviest statements (total time) of one local day, as ``StatementsRepo``'s
    ``heaviest_of_day`` reads them, for the daily summary (issue 6). None when no statement was
    ever recorded."""
    if heaviest is None:
        return None
    total_ms, calls = heaviest["total_ms"], heaviest["calls"]
    rows = []
    for key, c, total, mx, rex, rsent, schema, text in heaviest["rows"]:
        r = _row(key, schema, c, total, mx, rex, rsent)
        r["text"] = text or ""
        r["share_pct"] = round(100.0 * total / total_ms, 2) if total_ms else 0.0
        rows.append(r)
    return {"total_ms": round(total_ms, 3), "calls": int(calls), "rows": rows}
