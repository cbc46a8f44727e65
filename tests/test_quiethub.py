"""The worker's eventlet hub (dashboard/process/quiethub.py) sleeps until the next live timer:
a wait that ended early (its timer cancelled) no longer wakes the idle worker at its deadline."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in a child: a hub belongs to a thread, and this process must keep eventlet's defaults.
SCRIPT = """
import sys
from eventlet import hubs
from dashboard.process import quiethub
if sys.argv[1] == "quiet":
    quiethub.install()
hub = hubs.get_hub()
early = hub.schedule_call_global(2.0, print, "early")   # a socket read's time-out, say
late = hub.schedule_call_global(9.0, print, "late")     # the next tick
hub.prepare_timers()                                    # on the heap, as while the hub waits
early.cancel()                                          # the answer came first
print(hub.sleep_until() - hub.clock() > 5.0)
"""


def _wakes_late(hub: str) -> bool:
    out = subprocess.run([sys.executable, "-c", SCRIPT, hub], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.strip() == "True"


def test_the_worker_hub_sleeps_past_a_cancelled_timer_to_the_next_live_one():
    assert _wakes_late("quiet")


def test_eventlets_own_hub_would_wake_at_the_cancelled_timer():
    # what quiethub is for: if eventlet ever stops waking for cancelled timers, it can go
    assert not _wakes_late("default")
