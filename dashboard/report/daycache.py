"""Per-day totals of the report's series, kept once a day is completely rolled up.

The trend (7 days) and the runway (14 days) need each earlier day's count, sum, min and max per
series. Scanning 14 days of one-minute rows for every series on every report costs more than the
rest of the report; a day whose minutes are all behind the rollup watermark never changes
again (``Store.rollup`` only writes minutes after the watermark), so its totals are computed
once and kept in the store (``ReportsRepo.keep_day``). A day not completely rolled up yet is
computed each time and not kept.

Days are local days of a time zone, so the zone is part of the key.
"""
from __future__ import annotations

from typing import Sequence

from dashboard.report.days import Day
from dashboard.store.history_reads import HistoryReads
from dashboard.store.reports import ReportsRepo, Totals


def _compute(history: HistoryReads, day: Day, metrics: Sequence[str],
             label_sets: dict[str, list[str]]) -> dict[tuple[str, str], Totals]:
    out = {}
    for metric in metrics:
        for lab in label_sets[metric]:
            totals = history.rolled_totals(metric, lab, day.start, day.end)
            if totals is not None:
                out[(metric, lab)] = totals
    return out


def day_totals(repo: ReportsRepo, days: Sequence[Day], metrics: Sequence[str],
               watermark: float | None) -> list[dict[tuple[str, str], Totals]]:
    """For each day: {(metric, label text): (minutes, n, sum, min, max)} of the series with data."""
    signature = ",".join(sorted(metrics))
    label_sets: dict[str, list[str]] | None = None
    out = []
    for day in days:
        tz, key = day.tz.key, day.date.isoformat()
        kept = repo.kept_day(tz, key, signature)
        if kept is not None:
            out.append(kept)
            continue
        if label_sets is None:
            label_sets = {m: repo.history.label_sets(m) for m in metrics}
        totals = _compute(repo.history, day, metrics, label_sets)
        out.append(totals)
        if watermark is not None and day.end <= watermark:
            repo.keep_day(tz, key, signature, totals)
    return out
