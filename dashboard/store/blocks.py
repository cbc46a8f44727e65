"""One series' hour of one-minute rollups, and its quantile sketch, as two small blobs.

A row per series-minute with a JSON sketch cost ~230 B (issue 15); here an hour of a series is
one row: the minutes present, then the columns count, sum, min and max (``columns.py``: steady
series pack into a byte or two per value), deflated. The quantile sketch is kept per hour, not
per minute: the buckets (``sketch.py``) of an hour as two packed columns, bucket number and count.
A p95 over any whole hours merges those exactly as it merged minutes; a window that cuts an hour
uses that hour's minutes (``approx_sketch``).

A minute's sum of values with ``k`` decimals is kept as its ``k``-decimal value when the float
additions only rounded it (``columns.near_decimals``): the sum comes back within the float
rounding of its additions, and a steady sum packs like the values.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

from dashboard.store import columns, sketch


@dataclass
class Minutes:
    """One series' rolled-up minutes within one block, as columns (minute = epoch seconds)."""

    minute: list[int]
    n: list[int]
    total: list[float]
    lo: list[float]
    hi: list[float]

    def as_dict(self) -> dict[int, tuple[int, float, float, float]]:
        return {m: (n, s, a, b) for m, n, s, a, b in
                zip(self.minute, self.n, self.total, self.lo, self.hi)}

    @classmethod
    def of(cls, rows: Mapping[int, tuple[int, float, float, float]]) -> Minutes:
        keys = sorted(rows)
        vals = [rows[k] for k in keys]
        return cls(keys, [v[0] for v in vals], [v[1] for v in vals], [v[2] for v in vals],
                   [v[3] for v in vals])


def _sum_slack(totals: list[float], counts: list[int]) -> list[float]:
    """How far float additions of ``n`` values may have rounded each sum."""
    return [n * math.ulp(s) for s, n in zip(totals, counts)]


def encode_minutes(hour: int, m: Minutes) -> bytes:
    """The block of minutes ``m`` (all within the hour starting at ``hour``)."""
    count = len(m.minute)
    if not 0 < count <= 60:
        raise ValueError(f"a block holds 1-60 minutes, not {count}")
    offsets = [(t - hour) // 60 for t in m.minute]
    lo = columns.decimals(m.lo)
    hi = columns.decimals(m.hi)
    digits = max(lo[0] if lo else 0, hi[0] if hi else 0)
    total = None
    if lo is not None and hi is not None:
        scaled = columns.near_decimals(m.total, digits, _sum_slack(m.total, m.n))
        total = None if scaled is None else (digits, scaled)
    # A whole hour (the usual block) needs no offsets: they are 0..59.
    body = b"".join((bytes((count,)), b"" if count == 60 else columns.pack_ints(offsets),
                     columns.pack_ints(m.n),
                     columns.pack_floats(m.total, total), columns.pack_floats(m.lo, lo),
                     columns.pack_floats(m.hi, hi)))
    return columns.deflate(body)


def decode_minutes(hour: int, blob: bytes) -> Minutes:
    body = columns.inflate(blob)
    count = body[0]
    if count == 60:
        minute, at = list(range(hour, hour + 3600, 60)), 1
    else:
        offsets, at = columns.unpack_ints(body, 1, count)
        minute = [hour + 60 * o for o in offsets]
    n, at = columns.unpack_ints(body, at, count)
    total, at = columns.unpack_floats(body, at, count)
    lo, at = columns.unpack_floats(body, at, count)
    hi, at = columns.unpack_floats(body, at, count)
    return Minutes(minute, n, total, lo, hi)


def extend_minutes(hour: int, blob: bytes, into: Minutes) -> None:
    """``decode_minutes`` appended to ``into``'s columns, each straight from its packed bytes
    (the long reads join a series' blocks: a day of 300 series is 7,200 blocks). A column packed
    to the same bytes as the one before it (a minute of one sample: its sum, minimum and maximum
    are one value) is decoded once."""
    body = columns.inflate(blob)
    count = body[0]
    at = 1
    if count == 60:
        into.minute.extend(range(hour, hour + 3600, 60))
    else:
        offsets, at = columns.unpack_ints(body, 1, count)
        into.minute.extend([hour + 60 * o for o in offsets])
    at = columns.extend_ints(into.n, body, at, count)
    prev, prev_col, prev_at = b"", into.total, 0
    for col in (into.total, into.lo, into.hi):
        end = columns.float_column_end(body, at, count)
        packed = body[at:end]
        if packed == prev:
            col.extend(prev_col[prev_at:])
        else:
            prev, prev_col, prev_at = packed, col, len(col)
            columns.extend_floats(col, body, at, count)
        at = end


def approx_sketch(m: Minutes) -> Counter[int]:
    """Buckets for some minutes of a block, when the block's sketch covers more than them: each
    minute's minimum and maximum as they are, its other values at their mean (exact for up to
    three values a minute; otherwise the minute's spread narrowed to its mean)."""
    out: Counter[int] = Counter()
    for n, s, a, b in zip(m.n, m.total, m.lo, m.hi):
        out[sketch.bucket_of(a)] += 1
        if n > 1:
            out[sketch.bucket_of(b)] += 1
        if n > 2:
            out[sketch.bucket_of((s - a - b) / (n - 2))] += n - 2
    return out

