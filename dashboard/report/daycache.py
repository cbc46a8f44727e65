"""Per-day totals of the report's series, kept once a day is completely rolled up.

The trend (7 days) and the runway (14 days) need each earlier day's count, sum, min and max per
series. Scanning 14 days of one-minute rows for every series on every report costs more than the
rest of the report; a day whose minutes are all behind the rollup watermark never changes
again (``Store.rollup`` only writes minutes after the watermark), so its totals are computed
once and kept in ``report_day_series`` (this module's own table in the store's file). A day not
completely rolled up yet is computed each time and not kept.

Days are local days of a time zone, so the zone is part of the key.
"""
from __future__ import annotations

import sqlite3
from typing import Sequence

from dashboard.report.days import Day
from dashboard.report.reader import rollup_label_sets

SCHEMA = """
CREATE TABLE IF NOT EXISTS report_day_series (
    tz TEXT NOT NULL, day TEXT NOT NULL, metric TEXT NOT NULL, labels TEXT NOT NULL,
    minutes INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL,
    max REAL NOT NULL,
    PRIMARY KEY (tz, day, metric, labels)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS report_day_done (
    tz TEXT NOT NULL, day TEXT NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (tz, day)
) WITHOUT ROWID;
"""

Totals = tuple   # (minutes, n, sum, min, max)


def _compute(conn: sqlite3.Connection, day: Day, metrics: Sequence[str],
             label_sets: dict[str, list[str]]) -> dict[tuple[str, str], Totals]:
    out = {}
    for metric in metrics:
        for lab in label_sets[metric]:
            row = conn.execute(
                "SELECT COUNT(*), SUM(n), SUM(sum), MIN(min), MAX(max) FROM rollup_1m WHERE"
                " metric = ? AND labels = ? AND minute >= ? AND minute < ?",
                (metric, lab, int(day.start), int(day.end))).fetchone()
            if row[0]:
                out[(metric, lab)] = tuple(row)
    return out


def day_totals(conn: sqlite3.Connection, days: Sequence[Day], metrics: Sequence[str],
               watermark: float | None) -> list[dict[tuple[str, str], Totals]]:
    """For each day: {(metric, label text): (minutes, n, sum, min, max)} of the series with data."""
    conn.executescript(SCHEMA)
    signature = ",".join(sorted(metrics))
    label_sets: dict[str, list[str]] | None = None
    out = []
    for day in days:
        tz, key = day.tz.key, day.date.isoformat()
        done = conn.execute("SELECT metrics FROM report_day_done WHERE tz = ? AND day = ?",
                            (tz, key)).fetchone()
        if done is not None and done[0] == signature:
            out.append({(m, lab): tuple(rest) for m, lab, *rest in conn.execute(
                "SELECT metric, labels, minutes, n, sum, min, max FROM report_day_series"
                " WHERE tz = ? AND day = ?", (tz, key))})
            continue
        if label_sets is None:
            label_sets = {m: rollup_label_sets(conn, m) for m in metrics}
        totals = _compute(conn, day, metrics, label_sets)
        out.append(totals)
        if watermark is not None and day.end <= watermark:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM report_day_series WHERE tz = ? AND day = ?", (tz, key))
                conn.executemany("INSERT INTO report_day_series VALUES (?,?,?,?,?,?,?,?,?)",
                                 [(tz, key, m, lab, *t) for (m, lab), t in totals.items()])
                conn.execute("INSERT OR REPLACE INTO report_day_done VALUES (?, ?, ?)",
                             (tz, key, signature))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    return out
