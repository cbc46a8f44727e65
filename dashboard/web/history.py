"""The raw part of ``/api/history``: stored rows -> columns per series, built for large
installations (issue 9: 50 hosts and 200 queues are ~300 samples and ~1,600 values a tick,
1.4 million values in a 15-minute window).

Rows come from the store as (ts, label text, values); a series' key and labels are worked out
once per (metric, label text), not once per value. With ``view=live`` the answer holds only
what the live page draws (dashboard.panels), and host metrics of one host: this dashboard's own
(no ``host`` label) or, with ``host=NAME``, that agent's; other agents' host rows are skipped
without being decoded. Queue panels draw the busiest queues only (``QUEUE_LIMIT`` by jobs pending
now, or the ones named by ``queue=NAME``): 200 queues x 5 panels x 900 points was most of the
answer (12 MB of JSON, 626 series) and of the page's drawing time; the rows of the other queues
are skipped on their label text, once per label set (in the store: once per sample shape).
Alerting and /api/latest still see every queue; the page lists them all in a table.

``history_doc`` builds the whole answer on a store view of its own (``Store.reading``), in an OS
thread (dashboard/web/reads.py): windows over an hour come from the one-minute rollups merged
per bucket, and no series has more than ``downsample.MAX_POINTS`` points (issue 15).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import repeat
from operator import add, mul, truediv
from typing import Any, Callable, Iterable

from dashboard.model import series_key
from dashboard.store.history_reads import BucketColumns
from dashboard.web import downsample
from dashboard.web.panels import PANELS

Row = tuple[float, str, dict[str, float]]    # ts, labels (JSON text, "" for none), values


@dataclass(frozen=True)
class LiveView:
    """What the live page draws: the panels' metrics; host metrics of one host only."""

    metrics: frozenset[str]
    host: str | None = None           # None: this dashboard's own host (no "host" label)
    queues: frozenset[str] | None = None   # None: every queue

    def keeps(self, metric: str, labels: dict[str, str]) -> bool:
        if metric not in self.metrics:
            return False
        if metric.startswith("host."):
            return labels.get("host") == self.host
        if self.queues is not None and "queue" in labels:
            return labels["queue"] in self.queues
        return True

    def skips_labels(self, labels_text: str) -> bool:
        """True for the rows of a queue that is not drawn (asked once per label text)."""
        if self.queues is None or '"queue"' not in labels_text:
            return False
        q = json.loads(labels_text).get("queue")
        return q is not None and q not in self.queues

    def skips_row(self, labels_text: str, values: dict[str, float]) -> bool:
        """True for a row only of other hosts' host metrics."""
        if '"host"' not in labels_text:
            return False
        if self.host is not None and json.loads(labels_text).get("host") == self.host:
            return False
        return all(k.startswith("host.") for k in values)


QUEUE_LIMIT = 10     # queues drawn on the live page; the rest are listed in its queue table
RAW_MAX_WINDOW_S = 3600          # longer windows are drawn from one-minute rollups
RANK_WINDOW_S = 300              # the busiest queues are ranked on samples this recent


def busiest_queues(latest: Iterable[Any]) -> list[str]:
    """Every queue: those whose newest sample is an error (it could not be read) first, so
    they are drawn and their reason is in view; then the most jobs pending; then by name."""
    depth: dict[str, float] = {}
    failing: set[str] = set()
    for s in latest:
        q = s.labels.get("queue")
        if s.source != "queue" or q is None or "priority" in s.labels:
            continue
        if s.error:
            failing.add(q)
        depth[q] = max(depth.get(q, 0.0), float(s.values.get("queue.pending") or 0.0))
    return sorted(depth, key=lambda q: (q not in failing, -depth[q], q))


def live_view(host: str | None, queues: Iterable[str] | None = None) -> LiveView:
    return LiveView(frozenset(m for p in PANELS for m in p.metrics), host,
                    None if queues is None else frozenset(queues))


def add_rows(series: dict[str, dict[str, Any]], rows: Iterable[Row],
             rnd: Callable[[float], float] | None, view: LiveView | None = None) -> None:
    """Append every (ts, value) of ``rows`` to ``series`` (key -> {metric, labels, t, v}), each
    value through ``rnd``; None: ``round_values`` over each series' ``v`` column once all are in
    (a C-level pass: ``round(v, 4)`` a value was a third of the time here)."""
    labels_of: dict[str, dict[str, str]] = {}
    # (metric, label text) -> the appends of its series' t and v columns; None: not wanted
    targets: dict[tuple[str, str], tuple[Callable[[float], None], Callable[[float], None]] | None]
    targets = {}
    added: dict[int, tuple[dict[str, Any], int]] = {}     # series appended to, and from where
    skipped: dict[str, bool] = {}                                 # label text -> queue not drawn
    loads = json.loads
    for ts, labels_text, values in rows:
        if view is not None:
            skip = skipped.get(labels_text)
            if skip is None:
                skip = skipped[labels_text] = view.skips_labels(labels_text)
            if skip or view.skips_row(labels_text, values):
                continue
        t = round(ts, 3)
        for metric, value in values.items():
            to = targets.get((metric, labels_text), ...)
            if to is ...:
                labels = labels_of.get(labels_text)
                if labels is None:
                    labels = labels_of[labels_text] = loads(labels_text) if labels_text else {}
                to = None
                if view is None or view.keeps(metric, labels):
                    key = series_key(metric, labels)
                    s = series.get(key)
                    if s is None:
                        s = series[key] = {"metric": metric, "labels": labels, "t": [], "v": []}
                    if id(s) not in added:
                        added[id(s)] = (s, len(s["v"]))
                    to = (s["t"].append, s["v"].append)
                targets[(metric, labels_text)] = to
            if to is not None:
                to[0](t)
                to[1](value if rnd is None else rnd(value))
    if rnd is None:
        for s, start in added.values():          # only what this call appended
            s["v"][start:] = round_values(s["v"][start:])


def live_rows(store: Any, since: float, view: LiveView, known: Iterable[str] = (),
              until: float | None = None) -> list[Row]:
    """``store.rows_between(since)`` less rows ``add_rows`` would skip for ``view``, left out in
    the store by their shape (``Store.rows_since``): the rows of queues not drawn and of other
    agents' hosts (250,000 of 275,000 rows in 15 minutes of 200 queues and 50 agents) never
    become Python objects.
    The drawn queues' rows are picked by their label text as the store writes it (sorted keys,
    compact JSON). Should that text ever differ, a queue in ``known`` (seen in the store's newest
    samples) gets no row: the unfiltered read is used then, slower but never showing less."""
    texts: dict[str, str] = {}
    if view.queues is not None:
        texts = {json.dumps({"queue": q}, separators=(",", ":")): q for q in view.queues}
    if view.queues is None and view.host is not None:
        return store.rows_between(since, until)     # nothing to leave out
    # With this dashboard's own host drawn, skips_row in SQL for the agents' rows.
    rows = store.rows_since(since, None if view.queues is None else list(texts),
                            other_agents_hosts=view.host is not None, until=until)
    must = set(known) & set(texts.values())
    if must:
        got = {texts[lt] for _, lt, _ in rows if lt in texts}
        if must - got:
            return store.rows_between(since, until)
    return rows


DECIMALS = 4          # a value as answered: more than a chart or a script needs


def round_value(v: float) -> float:
    return round(v, DECIMALS)


def history_doc(store: Any, window: float, now: float, live: bool, host: str | None,
                pinned: list[str], fixed: bool = False) -> dict[str, Any]:
    """``/api/history``'s answer for the ``window`` seconds before ``now``: every series (with
    ``live``: what the live page draws, ``host``'s host metrics, the ``pinned`` queues or the
    busiest) in columns ``t``, ``v``, plus ``min`` and ``max`` where a point stands for a bucket
    (``bucket_s`` seconds; one minute at least for rollups). Rollup buckets come on a grid
    (``_gridded``: ``t0``, ``dt``, ``t`` only for the points off it; ``points`` reads it back).
    ``fixed``: ``now`` is a past moment (``until=``, the live page's fixed window): nothing after
    it is read."""
    until = now if fixed else None
    view = None
    queues: dict[str, Any] | None = None
    seen: dict[str, float] = {}        # queue -> time of its newest sample
    if live:
        # Ranked on the last few minutes, whatever the window: a queue removed days ago must not
        # take a slot with its last depth (nor force live_rows' unfiltered read, as it has no rows).
        latest = store.latest(within_s=min(window, RANK_WINDOW_S))
        ranked = busiest_queues(latest)
        shown = list(dict.fromkeys(pinned)) if pinned else ranked[:QUEUE_LIMIT]
        for s in latest:
            if s.source == "queue" and "queue" in s.labels and "priority" not in s.labels:
                seen[s.labels["queue"]] = max(seen.get(s.labels["queue"], 0.0), s.ts)
        queues = {"shown": shown, "total": len(ranked), "limit": QUEUE_LIMIT,
                  "pinned": bool(pinned)}
        view = live_view(host, shown if pinned or len(ranked) > QUEUE_LIMIT else None)
    since = now - window
    series: dict[str, dict[str, Any]] = {}
    last_seq = store.last_seq()

    def rows(after: float) -> list:
        if view is None:
            return store.rows_between(after, until)
        # Only a queue with a sample since ``after`` must have rows in the read (else the
        # label text differs and live_rows reads everything).
        return live_rows(store, after, view, {q for q, ts in seen.items() if ts >= after}
                         if until is None else (), until)

    if window <= RAW_MAX_WINDOW_S:
        resolution, bucket_s = "raw", downsample.bucket_width(window, 1)
        add_rows(series, rows(since), None, view)
        for s in series.values():
            if len(s["t"]) > downsample.MAX_POINTS:
                downsample.merge(s, since, bucket_s)
                _round(s)
    else:
        resolution, bucket_s = "1m", downsample.bucket_width(window, 60)
        if bucket_s >= downsample.HOURLY_FROM_S:
            # Days: the hours' stored summaries, no minute decoded (7 days of 300 series are
            # 50,400 hour blocks); at most 1,500 points still, an hour or more each.
            bucket_s = downsample.bucket_width(window, 3600)     # still from the 1m rollups
            columns = store.rollup_hour_columns(since, now, bucket_s)
        else:
            columns = store.rollup_bucket_columns(since, now, bucket_s)
        rolled_until = _add_buckets(series, columns, bucket_s, view, since)
        recent: dict[str, dict[str, Any]] = {}
        add_rows(recent, rows(rolled_until), None, view)   # not rolled up yet: raw, as they come
        for key, s in recent.items():
            if len(s["t"]) > downsample.MAX_POINTS:          # the rollups are far behind
                downsample.merge(s, rolled_until, bucket_s)
                _round(s)
            else:
                s["min"] = s["max"] = s["v"]
            into = series.setdefault(key, {"metric": s["metric"], "labels": s["labels"], "t": [],
                                           "v": [], "min": [], "max": []})
            for col in ("t", "v", "min", "max"):
                into[col].extend(s[col])   # explicit points after the grid, if any
        for s in series.values():
            if "t0" in s and s["min"] == s["v"] and s["max"] == s["v"]:   # each bucket one value
                del s["min"], s["max"]
    extra = {} if queues is None else {"queues": queues}
    return dict(now=now, window_s=window, resolution=resolution, bucket_s=bucket_s,
                last_seq=last_seq, series=series, **extra)


def _add_buckets(series: dict[str, dict[str, Any]], columns: Iterable[BucketColumns],
                 bucket_s: int, view: LiveView | None, since: float) -> float:
    """Add ``Store.rollup_bucket_columns`` to ``series`` (``_gridded``), each point at the
    middle of what its bucket covers (its minute's, for a bucket of one minute), column by
    column; returns where the rollups end. A day of 300 series is 432,000 buckets: every column
    is made by C-level passes (``map``), no Python per bucket."""
    rolled_until = since
    for metric, labels_text, c, lasts in columns:
        rolled_until = max(rolled_until, lasts[-1] + 60)
        labels = json.loads(labels_text) if labels_text else {}
        if view is not None and not view.keeps(metric, labels):
            continue
        series[series_key(metric, labels)] = {
            "metric": metric, "labels": labels,
            # Extremes are values as collected and stored exactly: no float noise to round off.
            **_gridded(c.minute, lasts, bucket_s, _means(c.total, c.n), c.lo, c.hi)}
    return rolled_until


def _gridded(starts: list[int], lasts: list[int], width: int, v: list[float], lo: list[float],
             hi: list[float]) -> dict[str, Any]:
    """Buckets as the answer carries them: the points whose time is their bucket's middle on a
    grid, ``t0`` (the first one's time) and ``dt`` (``width``), with ``null`` for a bucket
    without values, then the points at other times (a bucket that ends early: the hour still
    being rolled up) in ``t``: point ``i < len(v) - len(t)`` is at ``t0 + i * dt``, the others at
    ``t[i - (len(v) - len(t))]``. A day of one-minute buckets carries no time per point (it was
    a third of the answer)."""
    half = width // 2
    if width == 60:                  # a one-minute bucket's minute is all it covers
        regular = len(starts)
    else:
        # A bucket's middle: of what it covers, so a partial one (the hour being rolled up,
        # or minutes missing at a bucket's end) stays before the samples that follow it,
        # never ahead.
        ends = list(map(min, map(add, starts, repeat(width)), map(add, lasts, repeat(60))))
        full = list(map(add, starts, repeat(width)))
        regular = len(starts) if ends == full else next(
            i for i, (e, f) in enumerate(zip(ends, full)) if e != f)
    if not regular:
        return {"t": _middles(starts, lasts, width), "v": v, "min": lo, "max": hi}
    first = starts[0]
    t = _middles(starts[regular:], lasts[regular:], width)
    if starts[regular - 1] - first == (regular - 1) * width:       # no bucket missing
        return {"t0": first + half, "dt": width, "t": t, "v": v, "min": lo, "max": hi}
    slots = (starts[regular - 1] - first) // width + 1
    cols: list[list[float | None]] = [[None] * slots, [None] * slots, [None] * slots]
    for i in range(regular):
        at = (starts[i] - first) // width
        cols[0][at], cols[1][at], cols[2][at] = v[i], lo[i], hi[i]
    gv, glo, ghi = cols
    return {"t0": first + half, "dt": width, "t": t, "v": gv + v[regular:],
            "min": glo + lo[regular:], "max": ghi + hi[regular:]}


def _middles(starts: list[int], lasts: list[int], bucket_s: int) -> list[float]:
    """Each bucket's point: the middle of what it covers (``_gridded``)."""
    ends = map(min, map(add, starts, repeat(bucket_s)), map(add, lasts, repeat(60)))
    return list(map(truediv, map(add, starts, ends), repeat(2)))


def points(s: dict[str, Any]) -> dict[str, list[float]]:
    """One series of the answer as explicit columns ``t``, ``v`` (and ``min``, ``max`` if it has
    them), its empty buckets left out: what a reader of ``/api/history`` makes of ``t0``/``dt``
    (the live page does the same, live.js ``expandSeries``). A series on a grid without ``min``
    and ``max`` has them equal to ``v``."""
    if s.get("t0") is None:
        return {k: s[k] for k in ("t", "v", "min", "max") if k in s}
    s = {"min": s["v"], "max": s["v"], **s}
    grid = len(s["v"]) - len(s["t"])
    times = [s["t0"] + i * s["dt"] for i in range(grid)] + list(s["t"])
    keep = [i for i, v in enumerate(s["v"]) if v is not None]
    return {k: [col[i] for i in keep] for k, col in
            (("t", times), ("v", s["v"]), ("min", s["min"]), ("max", s["max"]))}


_SCALE = 10.0 ** DECIMALS


def _means(totals: list[float], counts: list[int]) -> list[float]:
    """Each bucket's mean, rounded as ``round_values`` rounds. Buckets that all hold as many
    values (a steady collector's minutes) are scaled in the same pass."""
    if counts and counts.count(counts[0]) == len(counts):
        try:
            return list(map(truediv, map(round, map(mul, totals, repeat(_SCALE / counts[0]))),
                            repeat(_SCALE)))
        except OverflowError:
            pass
    return round_values(list(map(truediv, totals, counts)))


def round_values(values: list[float]) -> list[float]:
    """``round_value`` of each of ``values`` (finite floats), as ``round(v * 10**DECIMALS) /
    10**DECIMALS`` in C-level passes: three times faster than ``round(v, DECIMALS)`` (which formats
    each float as a decimal string), the same value but at an exact tie of the fifth decimal."""
    try:
        return list(map(truediv, map(round, map(mul, values, repeat(_SCALE))), repeat(_SCALE)))
    except OverflowError:                 # beyond 1e304: as they are, to DECIMALS
        return [round_value(v) for v in values]


def _round(s: dict[str, Any]) -> None:
    s["t"] = [round(t, 3) for t in s["t"]]
    s["v"] = [round_value(v) for v in s["v"]]
