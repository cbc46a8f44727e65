"""The values that flow through the dashboard: samples, metric descriptions, errors.

A collector returns plain ``Reading``s; the scheduler stamps them into ``Sample``s (source and
time), the store gives each a sequence number, and everything downstream (alerts, Socket.IO,
reports) works on ``Sample``s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


class CollectorError(Exception):
    """A collector could not reach or read its target. The message is shown to operators,
    so it must never contain a secret (DSN password, token)."""


@dataclass(frozen=True)
class Reading:
    """What a collector measured for one label set, e.g. one queue or one mount."""

    values: Mapping[str, float]
    labels: Mapping[str, str] = field(default_factory=dict)
    # Why this label set could not be read (one queue's query timed out) while the collector as
    # a whole still works; shown with the sample, secret-free like CollectorError messages.
    error: str | None = None
    # When it was measured, if not "now": an agent's sample arrives a moment after it was taken.
    ts: float | None = None


@dataclass(frozen=True)
class Sample:
    """One collector's reading at one time, as stored and as pushed to browsers."""

    source: str
    ts: float
    values: Mapping[str, float]
    labels: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    seq: int | None = None

    def to_wire(self) -> dict:
        """The shape of the Socket.IO ``samples`` event and of ``/api`` responses."""
        d = {"seq": self.seq, "ts": self.ts, "source": self.source,
             "values": dict(self.values), "labels": dict(self.labels)}
        if self.error:
            d["error"] = self.error
        return d


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means, declared once next to the collector that measures it.

    The page, ``/metrics`` and the README's reference are generated from these.
    """

    name: str                      # dotted contract name, e.g. "db.pool_utilization"
    unit: str                      # "%", "ms", "/s", "bytes/s", "s", "count", "bool"
    description: str
    labels: tuple[str, ...] = ()   # label names, e.g. ("queue",)


def series_key(metric: str, labels: Mapping[str, str] | None) -> str:
    """The canonical name of one series: ``metric`` or ``metric{a="x",b="y"}`` (sorted)."""
    if not labels:
        return metric
    inner = ",".join(f'{k}="{labels[k]}"' for k in sorted(labels))
    return f"{metric}{{{inner}}}"
