"""The process's beat: the wall-clock grid its tick loops wake on (dashboard/scheduler.py).

Issue 19: on this VM every wake-up of an idle process costs ~0.1-0.15 ms of CPU before any work
is done (an eventlet process that only sleeps: 106-157 us a wake-up, ``bench/wakeups.py``). The
collector process woke ~10 times a second, most of them for a few microseconds of work: the
StatsD listener's reads, the live sockets' login poll, gunicorn's heartbeat, each on a phase of
its own. Work that has to come back every second or so sleeps until a beat instead: it then runs
in the same wake-up as the tick, for the price of its own work.

``CollectorRunner.start`` sets the grid (its first tick and the shortest collector interval);
a process without one (a web-only instance) has no beat, and the helpers fall back to plain
periods.
"""
from __future__ import annotations

import math
import time

_grid: tuple[float, float] | None = None      # (a beat's wall-clock time, seconds between beats)


def set_grid(anchor: float, unit: float) -> None:
    global _grid
    _grid = (anchor, unit) if unit > 0 else None


def clear(grid: tuple[float, float] | None = None) -> None:
    """No beat any more; with ``grid``, only if that is still the beat (a runner stopping must
    not take another's)."""
    global _grid
    if grid is None or _grid == grid:
        _grid = None


def grid() -> tuple[float, float] | None:
    return _grid


def sleep_within(most: float, now: float | None = None) -> float:
    """Seconds to sleep to wake no later than ``most`` seconds from now: until the last beat in
    that span, or ``most`` when there is none (no grid, or beats further apart)."""
    g = _grid
    if g is None:
        return most
    anchor, unit = g
    now = time.time() if now is None else now
    last = anchor + math.floor((now + most - anchor) / unit) * unit
    return last - now if last > now else most


def next_beat(grid: tuple[float, float], t: float) -> float:
    """The first beat of ``grid`` (anchor, unit) strictly after ``t``."""
    anchor, unit = grid
    return anchor + (math.floor((t - anchor) / unit) + 1) * unit


def sleep_to_next(now: float | None = None) -> float | None:
    """Seconds until the next beat (strictly after now), or None without a grid."""
    g = _grid
    if g is None:
        return None
    now = time.time() if now is None else now
    return next_beat(g, now) - now
