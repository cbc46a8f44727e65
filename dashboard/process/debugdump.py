"""A leak-hunting hook for the gunicorn worker, OFF unless asked for by the environment.

With ``DASHBOARD_DEBUG_DUMP=/some/file.json`` set, SIGUSR2 sent to the worker writes there what
``ps`` cannot see from outside: green threads (greenlets) alive, objects tracked by the garbage
collector and the most common types among them, the event hub's timers and listeners, and, if
``DASHBOARD_TRACEMALLOC=<frames>`` is set too, a tracemalloc snapshot next to it, so that two
dumps (after the warm-up, at the end) show which allocation sites grew. ``bench/soak.py`` uses it.

Why a signal and a file, not an endpoint: nothing new is reachable over HTTP, the file is the
worker user's own, and without the variable nothing is installed (SIGUSR2 keeps gunicorn's
default). tracemalloc costs memory and CPU, so it is a separate switch for leak hunts, never on
while the soak measures RSS.
"""
from __future__ import annotations

import collections
import gc
import json
import os
import re
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Mapping

ENV_PATH = "DASHBOARD_DEBUG_DUMP"
ENV_TRACEMALLOC = "DASHBOARD_TRACEMALLOC"
_dumps = 0


def install_from_env(env: Mapping[str, str] | None = None) -> bool:
    """Install the SIGUSR2 handler if ``DASHBOARD_DEBUG_DUMP`` is set; True when installed.

    Must run in the main thread (signal handlers can only be set there)."""
    env = os.environ if env is None else env
    path = env.get(ENV_PATH, "")
    if not path:
        return False
    frames = int(env.get(ENV_TRACEMALLOC, "0") or 0)
    if frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    target = Path(path)

    def on_signal(_signum: int, _frame: Any) -> None:
        try:
            write(target)
        except Exception as e:  # noqa: BLE001 - a debug aid must never take the worker down
            print(f"debugdump: could not write {target}: {e}", file=sys.stderr)

    signal.signal(signal.SIGUSR2, on_signal)
    return True


def _greenlets(objects: list) -> int | None:
    mod = sys.modules.get("greenlet")
    kind = getattr(mod, "greenlet", None) if mod else None
    if kind is None:
        return None
    return sum(1 for o in objects if isinstance(o, kind) and not getattr(o, "dead", False))


def _dead_threads(objects: list) -> dict[str, int]:
    """Finished Thread objects something still holds, by name with numbers folded ("collect-db",
    "Thread-N (_run)"): the name says who started them."""
    dead = collections.Counter(re.sub(r"\d+", "N", o.name) for o in objects
                               if isinstance(o, threading.Thread) and not o.is_alive())
    return dict(dead.most_common(20))


def _hub() -> dict[str, int] | None:
    """eventlet's hub: scheduled timers and file descriptors it listens on (None elsewhere)."""
    hubs = sys.modules.get("eventlet.hubs")
    if hubs is None:
        return None
    try:
        hub = hubs.get_hub()
        return {"timers": len(getattr(hub, "timers", ())) + len(getattr(hub, "next_timers", ())),
                "listeners": sum(len(v) for v in getattr(hub, "listeners", {}).values())}
    except Exception:  # noqa: BLE001
        return None


def snapshot() -> dict[str, Any]:
    """The figures of one dump (also usable in-process by tests)."""
    objects = gc.get_objects()       # excludes what gc.freeze() moved to the permanent generation
    types = collections.Counter(type(o).__qualname__ for o in objects)
    out: dict[str, Any] = {
        "pid": os.getpid(), "time": time.time(),
        "objects": len(objects), "frozen": gc.get_freeze_count(),
        "gc_counts": list(gc.get_count()),
        "gc_collections": [g["collections"] for g in gc.get_stats()],
        "greenlets": _greenlets(objects), "threads": threading.active_count(),
        "dead_threads": _dead_threads(objects),
        "hub": _hub(),
        # every type with at least 20 live objects: two dumps diffed show what accumulates
        "types": {k: n for k, n in types.most_common() if n >= 20},
    }
    del objects
    return out


def write(path: Path) -> None:
    """One dump, written atomically (the reader never sees half a file). With tracemalloc on,
    the snapshot goes next to it (``<path>.<n>.tracemalloc``, ``Snapshot.load``-able), so the
    reader compares whichever two it wants (after warm-up vs the end)."""
    global _dumps
    _dumps += 1
    data = snapshot()
    data["dump"] = _dumps
    if tracemalloc.is_tracing():
        snap_path = path.with_name(f"{path.name}.{_dumps}.tracemalloc")
        tracemalloc.take_snapshot().dump(str(snap_path))
        current, peak = tracemalloc.get_traced_memory()
        data["tracemalloc"] = {"current": current, "peak": peak, "snapshot": str(snap_path)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
