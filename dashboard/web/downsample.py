"""Bounded answers for long windows (issue 15): at most ``MAX_POINTS`` points per series.

A chart a few hundred pixels wide cannot show more, and a week of one-minute rollups for every
series was megabytes of JSON. Points are merged into buckets of equal width, each keeping its
count-weighted mean, its minimum and its maximum, so a one-second spike in a week still shows as
the bucket's maximum (the page draws min..max as a band around the mean).

One rule for the width (``bucket_width``) whatever merges: SQLite merges the one-minute rollups
(``Store.rollup_buckets``), ``merge`` below merges raw samples.
"""
from __future__ import annotations

import math
from typing import Any

MAX_POINTS = 1500


# A rollup window whose minute buckets would be this wide or wider (windows over ~5 days) is
# answered from the hours' stored summaries instead, in buckets of whole hours.
HOURLY_FROM_S = 300


def bucket_width(window_s: float, base_s: int) -> int:
    """The smallest multiple of ``base_s`` (1 for raw samples, 60 for rollups) that cuts
    ``window_s`` into at most ``MAX_POINTS - 1`` buckets (one more: the window rarely starts on
    a bucket's edge)."""
    return base_s * max(1, math.ceil(window_s / base_s / (MAX_POINTS - 1)))


def merge(series: dict[str, Any], start: float, width: float) -> None:
    """Merge ``series``' points (``t``, ``v`` columns, in time order) into buckets of ``width``
    seconds counted from ``start``, in place: ``t`` becomes each bucket's middle, ``v`` its
    mean, and ``min`` / ``max`` columns are added."""
    ts, vs, lo, hi = [], [], [], []
    bucket, total, n = None, 0.0, 0
    for t, v in zip(series["t"], series["v"]):
        b = (t - start) // width
        if b != bucket:
            if n:
                vs.append(total / n)
            bucket, total, n = b, 0.0, 0
            ts.append(start + (b + 0.5) * width)
            lo.append(v)
            hi.append(v)
        total += v
        n += 1
        if v < lo[-1]:
            lo[-1] = v
        elif v > hi[-1]:
            hi[-1] = v
    if n:
        vs.append(total / n)
    series.update(t=ts, v=vs, min=lo, max=hi)
