"""What a collector is: a small object with one job.

A collector has a ``source`` name (the prefix of its metrics: ``host``, ``db``, ``cache``,
``queue``, ``app``), its own ``interval_s`` and ``timeout_s``, a tuple of ``MetricSpec``s it may
produce, and ``collect()`` which returns plain ``Reading``s or raises ``CollectorError``.
It owns no thread, no retry loop, no thresholds and no presentation: the scheduler times it,
the store keeps its history and the alert engine judges it. Inputs (clients, paths, settings)
come in through the constructor so tests can hand in real clients pointed at test servers.

Where the monitored system chooses the label values (StatsD names, discovered RQ queues), each
new value is a new series kept for days: ``capped`` keeps the first few by name, and the number
left out is reported as a metric (``statsd.names_not_shown``, ``queue.not_shown``).
"""
from __future__ import annotations

from typing import Iterable, Protocol, Sequence

from dashboard.model import MetricSpec, Reading


class Collector(Protocol):
    source: str
    interval_s: float
    timeout_s: float
    metrics: Sequence[MetricSpec]

    def collect(self) -> list[Reading]:
        """Measure once. Raise ``CollectorError`` (with a secret-free message) when the target
        cannot be reached or read."""
        ...

    def close(self) -> None:
        """Release connections; called at shutdown."""
        ...


def capped(names: Iterable[str], limit: int) -> tuple[list[str], int]:
    """The first ``limit`` of ``names`` by name (stable from tick to tick), and how many more."""
    ordered = sorted(names)
    return ordered[:limit], max(0, len(ordered) - limit)
