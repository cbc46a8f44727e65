"""What every queue reader shares: what it saw of one queue (``QueueRead``), the error that says a
whole backend is down (``BackendDown``), and the reader interface the collector drives."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from dashboard.model import CollectorError


@dataclass
class QueueRead:
    """What a reader saw of one queue (or one discovered RQ queue) in one tick."""

    label: str
    pending: float | None = None
    failed: float | None = None
    enqueued_total: float | None = None        # a counter of every job ever added, if any
    oldest_age_s: float | None = None
    extra: dict[str, float] = field(default_factory=dict)            # processing, workers, ...
    by_priority: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    window_s: float = 60.0                     # the queue's window_s option


class BackendDown(CollectorError):
    """A whole backend (a Redis server, a MySQL server) cannot be reached."""


class Reader(Protocol):
    def read(self) -> list[QueueRead]: ...
    def notes(self) -> list[str]: ...
    def not_shown(self) -> int | None: ...      # None: this reader discovers no queues
    def close(self) -> None: ...
