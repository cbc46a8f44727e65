"""A small mergeable quantile sketch (log-scaled buckets, ~1 % relative error).

One-minute rollups keep one of these per series so that a p95 over an hour, a day or a week is
computed from merged buckets, not from an average of per-minute p95s (which is wrong).
Values are bucketed by ``ceil(log_gamma(|v|))``; zero and near-zero go to their own bucket.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Mapping

from dashboard.store import columns

GAMMA = 1.02                      # bucket width: relative error of a quantile <= 1 %
_LOG_GAMMA = math.log(GAMMA)
_ZERO = 1e-9


def bucket_of(v: float) -> int:
    """Bucket number: 0 for |v| < 1e-9, +k for positive values, -k for negative values."""
    a = abs(v)
    if a < _ZERO:
        return 0
    k = math.ceil(math.log(a / _ZERO) / _LOG_GAMMA)  # k >= 1
    return k if v > 0 else -k


def value_of(bucket: int) -> float:
    """A representative value for a bucket (its geometric midpoint)."""
    if bucket == 0:
        return 0.0
    k = abs(bucket)
    v: float = _ZERO * GAMMA ** (k - 0.5)
    return v if bucket > 0 else -v


def build(values: Iterable[float]) -> Counter[int]:
    return Counter(bucket_of(v) for v in values)


def merge(sketches: Iterable[Mapping[int, int]]) -> Counter[int]:
    total: Counter[int] = Counter()
    for s in sketches:
        total.update(s)
    return total


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The value range a bucket covers (see ``bucket_of``)."""
    if bucket == 0:
        return -_ZERO, _ZERO
    k = abs(bucket)
    lo, hi = _ZERO * GAMMA ** (k - 1), _ZERO * GAMMA ** k
    return (lo, hi) if bucket > 0 else (-hi, -lo)


def quantile(sketch: Mapping[int, int], q: float, lo: float | None = None,
             hi: float | None = None) -> float | None:
    """The q-quantile (0..1) of everything in the sketch, or None when it is empty.

    The answer is in the bucket holding rank q*(n-1): its representative value, or, when the
    data's exact minimum ``lo`` and/or maximum ``hi`` are known (rollups keep them), the middle
    of that bucket narrowed to [lo, hi]. The true quantile is in that range, so the error stays
    within the sketch's 1 %, and a series that never moved reports its own value, not the
    bucket's midpoint next to it.
    """
    n = sum(sketch.values())
    if n == 0:
        return None
    rank = q * (n - 1)
    seen = 0
    for b in sorted(sketch):         # without a break (q > 1): the top bucket
        seen += sketch[b]
        if seen > rank:
            break
    if lo is None and hi is None:
        return value_of(b)
    blo, bhi = bucket_bounds(b)
    a = blo if lo is None else max(blo, lo)
    z = bhi if hi is None else min(bhi, hi)
    if a <= z:
        return (a + z) / 2
    # min/max disagree with the bucket (they came from other rows): stay inside the data.
    v = value_of(b)
    v = v if lo is None else max(v, lo)
    return v if hi is None else min(v, hi)


def encode(sketch: Mapping[int, int]) -> bytes:
    """Compact binary form for the store: how many buckets, their numbers, their counts
    (``columns``: mostly a byte each), deflated."""
    keys = sorted(k for k, c in sketch.items() if c)
    return columns.deflate(b"".join((len(keys).to_bytes(4, "little"), columns.pack_ints(keys),
                                     columns.pack_ints([sketch[k] for k in keys]))))


def decode(blob: bytes) -> Counter[int]:
    keys, counts = decode_columns(blob)
    return Counter(dict(zip(keys, counts)))


def decode_columns(blob: bytes) -> tuple[list[int], list[int]]:
    """The bucket numbers and counts of an encoded sketch (``merge_columns`` adds up many)."""
    body = columns.inflate(blob)
    count = int.from_bytes(body[:4], "little")
    keys, at = columns.unpack_ints(body, 4, count)
    counts, _ = columns.unpack_ints(body, at, count)
    return keys, counts


def merge_columns(keys: Iterable[int], counts: Iterable[int]) -> Counter[int]:
    """Buckets and counts, repeated buckets added: one pass, cheaper than updating a Counter
    per sketch (a day of a series is 24 of them)."""
    out: dict[int, int] = {}
    get = out.get
    for k, c in zip(keys, counts):
        out[k] = get(k, 0) + c
    return Counter(out)
