"""A store filled with hours of history through its own interface (``Store.append`` with explicit
times, then ``Store.rollup``), for tests and benches of long reads (issue 15).

``hosts`` agent hosts each send one sample of ``metrics`` values every ``step_s`` seconds; every
value is a saw-tooth with one spike per host and metric in the middle of the span, so a reader
that averages buckets without keeping their maximum loses it."""
from __future__ import annotations

import time
from pathlib import Path

from dashboard.model import Sample
from dashboard.store import Store

SPIKE = 1000.0


def value(i: int, host: int, metric: int) -> float:
    """The value of tick ``i``: 0..96, or ``SPIKE`` once in the middle of the span."""
    return float((i + host + metric) % 97)


def fill(data_dir: Path, hosts: int, metrics: int, hours: float, step_s: float = 60.0,
         now: float | None = None, store_url: str | None = None) -> int:
    """Fill ``data_dir``'s store (or ``store_url``'s), ending two minutes before ``now``; returns
    the ticks written."""
    now = time.time() if now is None else now
    store = Store(data_dir, store_url=store_url)
    try:
        ticks = int((hours * 3600 - 120) // step_s)
        spike_at = ticks // 2
        for i in range(ticks):
            ts = now - 120 - (ticks - i) * step_s
            store.append([Sample("agents", ts, {
                f"host.m{m}": SPIKE if i == spike_at else value(i, h, m) for m in range(metrics)},
                {"host": f"h{h:03d}"}) for h in range(hosts)])
        store.rollup(now)
    finally:
        store.close()
    return ticks
