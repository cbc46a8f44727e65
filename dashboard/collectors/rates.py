"""Counters become rates and ratios here, and only here.

Every collector that reads a since-boot counter (bytes sent, Slow_queries, keyspace_hits, ...)
turns it into a per-second rate or a windowed ratio through these two classes, so resets,
first samples and wrap-arounds are handled the same way everywhere. A since-boot ratio is never
reported as "current".
"""
from __future__ import annotations

from collections import deque
from typing import Hashable


class RateTracker:
    """Per-second rate of monotonically increasing counters, keyed by name.

    The first observation of a key yields ``None`` (no rate yet). A counter that goes down
    (server restart, counter reset) also yields ``None`` and restarts from the new value,
    instead of reporting a huge negative or bogus rate.
    """

    def __init__(self) -> None:
        self._last: dict[Hashable, tuple[float, float]] = {}

    def rate(self, key: Hashable, value: float, ts: float, per: float = 1.0) -> float | None:
        """Rate of ``key`` since its previous observation, per ``per`` seconds."""
        prev = self._last.get(key)
        self._last[key] = (ts, value)
        if prev is None:
            return None
        prev_ts, prev_value = prev
        dt = ts - prev_ts
        if dt <= 0 or value < prev_value:
            return None
        return (value - prev_value) / dt * per

    def delta(self, key: Hashable, value: float) -> float | None:
        """Increase of ``key`` since its previous observation (None at first or after a reset)."""
        prev = self._last.get(key)
        self._last[key] = (prev[0] if prev else 0.0, value)
        if prev is None or value < prev[1]:
            return None
        return value - prev[1]

    def forget(self, key: Hashable) -> None:
        self._last.pop(key, None)


class WindowedCounters:
    """Increase of several counters over a sliding time window, from counter snapshots.

    Used for ratios such as the cache hit rate: ``hits / (hits + misses)`` over the last
    ``window_s`` seconds, computed from ``keyspace_hits`` and ``keyspace_misses`` deltas. A reset
    (any counter going down) drops the history, so a restart never produces a negative delta.
    """

    # Snapshots kept per window, whatever the sampling rate: one per window_s / MAX_SNAPSHOTS
    # (6 s for the one-hour connections window), the newest replacing the last within a step.
    # The window then spans at most one step more than window_s (0.17 %), and memory no longer
    # grows with the sampling rate (bench/soak.py: 36,000 snapshots an hour at 0.1 s, ~3 MB).
    MAX_SNAPSHOTS = 600

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._step = window_s / self.MAX_SNAPSHOTS
        self._snaps: deque[tuple[float, tuple[float, ...]]] = deque()

    def observe(self, ts: float, *counters: float) -> tuple[float, ...] | None:
        """Record a snapshot; return each counter's increase over the window (None if < 2 snapshots)."""
        if self._snaps and any(c < p for c, p in zip(counters, self._snaps[-1][1])):
            self._snaps.clear()
        if len(self._snaps) >= 2 and ts - self._snaps[-2][0] < self._step:
            self._snaps[-1] = (ts, tuple(counters))
        else:
            self._snaps.append((ts, tuple(counters)))
        # Keep the newest snapshot that is at least window_s old as the baseline.
        while len(self._snaps) > 2 and self._snaps[1][0] <= ts - self.window_s:
            self._snaps.popleft()
        if len(self._snaps) < 2:
            return None
        base = self._snaps[0][1]
        return tuple(c - b for c, b in zip(counters, base))

    def span_s(self) -> float:
        """How many seconds the current window really covers (less than window_s while filling)."""
        if len(self._snaps) < 2:
            return 0.0
        return self._snaps[-1][0] - self._snaps[0][0]


class TrailingCounts:
    """How many events a since-boot counter counted over the trailing window, per key.

    What every ``..._per_min`` figure is (issue 17): a person reads "per minute" as "how many in
    the last minute". A 1 s delta x 60 made one slow statement read 60/min for one second and 0
    the next, so a chart sawed and a headline read 0; here one event counts 1 for the whole
    minute after it. While the window fills the count is of the time seen so far, never
    extrapolated. Built on ``WindowedCounters``, so a reset restarts the window.
    """

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._windows: dict[Hashable, WindowedCounters] = {}

    def count(self, key: Hashable, value: float, ts: float) -> float | None:
        """Increase of ``key`` over the trailing window (None at its first observation)."""
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = WindowedCounters(self.window_s)
        inc = w.observe(ts, value)
        return None if inc is None else inc[0]
