"""One agent stream entry, checked before anything of it is believed.

An agent host is a machine the dashboard does not control: whoever owns it can write any bytes
into its stream entries. An entry is turned into readings only when every part of it is what an
agent sends (``dashboard.agent.message``), else it is refused as a whole with a fixed reason
(never the entry's own text, which goes into logs):

* times: finite, at most ``MAX_FUTURE_S`` ahead of the collector's clock (a host whose entries
  claim the far future would never look silent: no ``host_down``) and at most ``MAX_AGE_S``
  behind it (clock skew, plus a backlog read after a collector outage; the stream keeps ~30 min);
* ``interval_s``: finite, within the range the settings allow (``host_down`` waits 3 of them);
* metric names: those of the collectors an agent runs (host, PHP-FPM), from their ``METRICS``;
  values finite numbers;
* labels: only those collectors' label names, values printable and at most
  ``MAX_LABEL_LEN`` characters; at most ``MAX_READINGS`` readings and ``MAX_ENTRY_BYTES`` per entry.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Mapping

from dashboard.collectors import host as host_collector
from dashboard.collectors import phpfpm
from dashboard.config.settings import INTERVAL_S_RANGE
from dashboard.model import Reading

MAX_FUTURE_S = 300.0
MAX_AGE_S = 3600.0
MAX_READINGS = 64
MAX_LABEL_LEN = 256
MAX_ENTRY_BYTES = 64 * 1024
_SPECS = (*host_collector.METRICS, *phpfpm.METRICS)
METRIC_NAMES = frozenset(m.name for m in _SPECS)
LABEL_NAMES = frozenset(label for m in _SPECS for label in m.labels)


class Refused(ValueError):
    """The entry is not believed; ``str()`` is a fixed reason, safe to log."""


@dataclass(frozen=True)
class Entry:
    host: str
    retire: bool = False
    ts: float = 0.0
    interval_s: float = 0.0
    readings: tuple[Reading, ...] = ()


def _text(fields: Mapping) -> dict[str, str]:
    if sum(len(k) + len(v) for k, v in fields.items()) > MAX_ENTRY_BYTES:
        raise Refused("entry too large")
    try:
        return {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                for k, v in fields.items()}
    except UnicodeDecodeError:
        raise Refused("not UTF-8") from None


def _number(text: str | None, what: str, low: float, high: float) -> float:
    try:
        x = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Refused(f"{what} is not a number") from None
    if not (math.isfinite(x) and low <= x <= high):
        raise Refused(f"{what} out of range")
    return x


def _value(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Refused("value is not a number")
    try:
        x = float(v)
    except OverflowError:
        raise Refused("value out of range") from None
    if not math.isfinite(x):
        raise Refused("value out of range")
    return x


def _reading(r: object, host: str, ts: float) -> Reading:
    if not isinstance(r, dict) or not isinstance(r.get("values", {}), dict) \
            or not isinstance(r.get("labels", {}), dict):
        raise Refused("reading is not an object of values and labels")
    values = r.get("values", {})
    labels = r.get("labels", {})
    if not METRIC_NAMES.issuperset(values):
        raise Refused("unknown metric")
    if not LABEL_NAMES.issuperset(labels):
        raise Refused("unknown label")
    for v in labels.values():
        if not (isinstance(v, str) and 0 < len(v) <= MAX_LABEL_LEN and v.isprintable()):
            raise Refused("label value not printable or too long")
    return Reading({k: _value(v) for k, v in values.items()}, {**labels, "host": host}, ts=ts)


def parse(fields: Mapping, host: str, now: float) -> Entry:
    """The meaning of an entry of ``host``'s stream, or ``Refused``; ``now`` is the collector's
    clock. The stream says whose entry it is: one naming another host is refused."""
    f = _text(fields)
    if f.get("host") != host:
        raise Refused("entry names another host")
    if f.get("retire") == "1":
        return Entry(host, retire=True)
    ts = _number(f.get("ts"), "ts", now - MAX_AGE_S, now + MAX_FUTURE_S)
    interval = _number(f.get("interval_s"), "interval_s", *INTERVAL_S_RANGE)
    try:
        raw = json.loads(f.get("readings", ""))
    except (ValueError, RecursionError):   # RecursionError: "[[[[..." nested too deep
        raise Refused("readings are not JSON") from None
    if not isinstance(raw, list):
        raise Refused("readings are not a list")
    if len(raw) > MAX_READINGS:
        raise Refused("too many readings")
    return Entry(host, False, ts, interval, tuple(_reading(r, host, ts) for r in raw))
