"""When each part of the demo workload happens, and the shortened alert timings that go with it.

One cycle, repeated until Ctrl-C (times from the start of the workload, normal speed):

    0:20  connection surge to 85 % of the pool, held 50 s  -> db_pool_utilization fires, resolves
    0:35  slow reports: SELECT SLEEP(1.5) and heavy digests -> slow queries, avg query time, workers
    0:40  checkout trouble: the payment step fails 1 in 6     -> error rate, checkout success
    1:20  cold cache: product pages for keys never cached     -> cache_hit_rate under 60 %
    1:30  one e-mail job bounces                              -> queue_failed
    1:45  mail outage + newsletter: 75 jobs, no consumer      -> queue_pending past 50, then drains

The alert rules keep their thresholds but hold for ``for_s`` = 20 s (instead of 60-120 s) and
resolve after ``keep_firing_for_s`` = 15 s of calm, so every alert fires *and* resolves within
the five minutes a newcomer watches. ``--fast`` (the tests) scales every time by 0.4: the same
phases and code paths in about a minute and a half.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    start: float        # seconds into the cycle
    end: float
    what: str           # one line for the console and the README

    def active(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Timing:
    """Every duration of the demo, derived from one scale factor."""

    scale: float = 1.0

    def s(self, seconds: float) -> float:
        return round(seconds * self.scale, 1)

    @property
    def for_s(self) -> float:            # alert hold: "tens of seconds"
        return self.s(20)

    @property
    def keep_firing_s(self) -> float:    # calm needed before "resolved"
        return self.s(15)

    @property
    def window_s(self) -> float:         # cache hit-rate window, queue window (config minimum 5)
        return max(5.0, self.s(20))

    @property
    def probe_interval_s(self) -> float:
        return max(1.0, self.s(5))

    @property
    def digest_interval_s(self) -> float:
        return max(2.0, self.s(10))

    @property
    def phases(self) -> tuple[Phase, ...]:
        f, w = self.for_s, self.window_s
        surge = (self.s(20), self.s(20) + 2 * f + self.s(10))
        cache_start = surge[1] + self.s(10)
        backlog_start = cache_start + self.s(25)
        return (
            Phase("surge", *surge, "connection surge to 85 % of the pool (mysql.pool_capacity), "
                  "then released -> db_pool_utilization fires and resolves"),
            Phase("slow", self.s(35), self.s(75), "slow reports: SELECT SLEEP(1.5) and heavy "
                  "statements on 7 of 8 shop workers -> slow queries, average query time, "
                  "worker utilisation, response time"),
            Phase("checkout", self.s(40), self.s(65), "checkout trouble: 1 payment in 6 fails "
                  "-> app error rate and checkout success rate"),
            Phase("cache", cache_start, cache_start + w + 2 * f, "cold cache: product pages "
                  "for keys never cached, plus a bulk import -> cache_hit_rate under 60 %"),
            Phase("backlog", backlog_start, backlog_start + 2 * f + self.s(10),
                  "mail outage and a newsletter: 75 jobs queued with no consumer -> "
                  "queue_pending past 50, then the backlog drains"),
            Phase("failure", cache_start + self.s(10), cache_start + self.s(10) + 1,
                  "one e-mail job bounces and goes to the failed list -> queue_failed"),
        )

    @property
    def cycle_s(self) -> float:
        last = max(p.end for p in self.phases)
        # after the last phase: the window empties, the calm holds, then a quiet stretch
        return math.ceil(last + self.window_s + self.keep_firing_s + self.s(30))


def fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Schedule:
    """Which phases are active now; the workload's threads ask it instead of sleeping in step."""

    def __init__(self, timing: Timing, clock=time.monotonic) -> None:
        self.timing = timing
        self.clock = clock
        self.started = clock()
        self.phases = {p.name: p for p in timing.phases}

    def position(self) -> tuple[int, float]:
        """(cycle number from 0, seconds into that cycle)."""
        elapsed = self.clock() - self.started
        return int(elapsed // self.timing.cycle_s), elapsed % self.timing.cycle_s

    def active(self, name: str) -> bool:
        return self.phases[name].active(self.position()[1])

    def cycle(self) -> int:
        return self.position()[0]

    def reached(self, name: str) -> tuple[int, bool]:
        """(this cycle, whether the phase has started in it): for one-off events."""
        cycle, t = self.position()
        return cycle, t >= self.phases[name].start

    def lines(self) -> list[str]:
        return [f"{fmt(p.start)}{'-' + fmt(p.end) if p.end - p.start > 1 else '     '}  {p.what}"
                for p in sorted(self.timing.phases, key=lambda p: p.start)]
