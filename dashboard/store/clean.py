"""What a tick's samples are stored as: finite float values, a finite time, sequence numbers.

Checked with a few C-level passes per tick (one sum over all values, one over all times) on the
usual path; a sample that fails them is cleaned value by value.
"""
from __future__ import annotations

import math
from itertools import chain
from typing import Iterable, Mapping, Sequence

from dashboard.model import Sample

_FLOAT_ONLY = frozenset({float})


def _finite_floats(values: Iterable[Mapping[str, float]]) -> bool:
    """Whether every value is a float and finite (a sum is finite only if every term is, or it
    overflowed: then the caller checks again, value by value)."""
    flat = chain.from_iterable
    return (_FLOAT_ONLY.issuperset(map(type, flat(v.values() for v in values)))
            and math.isfinite(sum(flat(v.values() for v in values))))


def clean_tick(values: Sequence[Mapping[str, float]], chunk: int = 32) -> list[dict[str, float]]:
    """Each sample's values as stored: copies, finite floats only. Checked 32 samples at a time:
    one collector that reports an int (Redis INFO) leaves the other chunks on the fast path."""
    out: list[dict[str, float]] = []
    for i in range(0, len(values), chunk):
        part = values[i:i + chunk]
        if _finite_floats(part):
            out.extend(map(dict, part))
        else:
            out.extend(dict(v) if _finite_floats((v,)) else _finite(v) for v in part)
    return out


# Sample is a frozen dataclass: its __init__ sets each of its six fields through
# object.__setattr__, 1 us a sample, 0.3 ms of a 306-sample tick. The samples append hands back
# are built by filling the new instance's __dict__: the same object at a third of the cost, while
# Sample keeps exactly these fields and no __slots__ or __post_init__ (else: the constructor).
_FAST_SAMPLE = (tuple(getattr(Sample, "__dataclass_fields__", ())) ==
                ("source", "ts", "values", "labels", "error", "seq")
                and not hasattr(Sample, "__slots__") and not hasattr(Sample, "__post_init__"))


def stored_samples(samples: Sequence[Sample], values: list[dict[str, float]],
                    first: int) -> list[Sample]:
    """The samples as stored (clean values, sequence numbers), for the sinks."""
    if not _FAST_SAMPLE:
        return [Sample(s.source, s.ts, v, dict(s.labels), s.error, first + i)
                for i, (s, v) in enumerate(zip(samples, values))]
    out = []
    new = object.__new__
    for seq, (s, v) in enumerate(zip(samples, values), first):
        o = new(Sample)
        d = o.__dict__
        d["source"] = s.source
        d["ts"] = s.ts
        d["values"] = v
        d["labels"] = dict(s.labels)
        d["error"] = s.error
        d["seq"] = seq
        out.append(o)
    return out


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    """Only real numbers are stored: None / NaN / inf mean "no value this tick"."""
    out = {}
    for k, v in values.items():
        if v is None or isinstance(v, bool):
            if isinstance(v, bool):
                out[k] = float(v)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError, OverflowError):   # 10**400 from an agent's JSON
            continue
        if math.isfinite(f):
            out[k] = f
    return out


def _finite_time(ts: object) -> bool:
    try:
        return math.isfinite(ts)  # type: ignore[arg-type]
    except (TypeError, OverflowError):
        return False


def timed(samples: Sequence[Sample]) -> Sequence[Sample]:
    """The samples whose time is a finite number. A sample stamped inf or nan would never be
    pruned, sorts anywhere and turns into ``Infinity``/``NaN`` (not JSON) in history and live
    messages. Checked with one sum on the usual path, like the values."""
    times = [s.ts for s in samples]
    if _FLOAT_ONLY.issuperset(map(type, times)) and math.isfinite(sum(times)):
        return samples
    return [s for s in samples if _finite_time(s.ts)]


