"""eventlet's epoll hub without the wake-ups for cancelled timers (issue 19).

Every green wait with a time-out schedules a timer on the hub: a socket read with its socket
time-out (PyMySQL, Redis, http.client), an ``Event.wait(timeout)`` (the tick loop's gather, a
collector's time-out). When the wait ends early -- the answer came, as it nearly always does --
the timer is cancelled but stays in the hub's heap, and the hub's ``sleep_until`` still returns
its time: the worker woke at every such deadline (seconds later, often between two ticks) only
to drop it. On this VM each wake-up of an idle process costs ~0.1-0.2 ms of CPU.

``Hub.sleep_until`` here drops cancelled timers from the top of the heap first, with the
accounting eventlet's ``fire_timers`` does for them (``timers_canceled``); the hub then sleeps
until the next live timer or I/O. Nothing else differs. Installed by gworker.py in the worker
after gunicorn chose its hub (``use_hub``), before any hub exists in the process.
"""
from __future__ import annotations

import heapq
import sys

from eventlet import hubs
from eventlet.hubs import epolls

is_available = epolls.is_available


class Hub(epolls.Hub):
    def sleep_until(self) -> float | None:
        timers = self.timers
        while timers and timers[0][1].called:     # cancelled (a fired one is popped already)
            heapq.heappop(timers)
            self.timers_canceled -= 1
        return timers[0][0] if timers else None


def install() -> None:
    """Make this the hub of the calling thread (before anything created one)."""
    hubs.use_hub(sys.modules[__name__])
