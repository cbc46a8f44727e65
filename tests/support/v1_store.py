"""A data dir in the version-1 layout, as the dashboard wrote it before issue 15: one JSON row
per sample (``samples``), one row per series-minute with a text sketch (``rollup_1m``). The
schema is the old code's, verbatim; rows are written the way it wrote them."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Mapping

from dashboard.store import sketch

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    ts     REAL NOT NULL,
    source TEXT NOT NULL,
    labels TEXT NOT NULL,
    vals   TEXT NOT NULL,
    error  TEXT
);
CREATE INDEX IF NOT EXISTS samples_source_ts ON samples(source, ts);
CREATE INDEX IF NOT EXISTS samples_ts ON samples(ts);
CREATE TABLE IF NOT EXISTS rollup_1m (
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,
    minute INTEGER NOT NULL,            -- epoch seconds of the minute's start
    n      INTEGER NOT NULL,
    sum    REAL NOT NULL,
    min    REAL NOT NULL,
    max    REAL NOT NULL,
    sketch TEXT NOT NULL,
    PRIMARY KEY (metric, labels, minute)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_minute ON rollup_1m(minute);
CREATE TABLE IF NOT EXISTS metric_sources (
    metric TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (metric, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS latest_samples (
    source TEXT NOT NULL,
    labels TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (source, labels)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest_ticks (
    source    TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
) WITHOUT ROWID;
"""


def labels_text(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":")) if labels else ""


class V1Writer:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(data_dir / "history.sqlite3"), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA)

    def sample(self, ts: float, source: str, values: Mapping[str, float],
               labels: Mapping[str, str] | None = None) -> int:
        cur = self.conn.execute(
            "INSERT INTO samples (ts, source, labels, vals, error) VALUES (?,?,?,?,NULL)",
            (ts, source, labels_text(labels or {}), json.dumps(dict(values), separators=(",", ":"))))
        return int(cur.lastrowid or 0)

    def minute(self, metric: str, labels: Mapping[str, str], minute: int,
               values: list[float]) -> None:
        text = ",".join(f"{b}:{c}" for b, c in sorted(sketch.build(values).items()))
        self.conn.execute("INSERT INTO rollup_1m VALUES (?,?,?,?,?,?,?,?)",
                          (metric, labels_text(labels), minute, len(values), sum(values),
                           min(values), max(values), text))

    def rolled_until(self, ts: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_done_until', ?)", (str(ts),))

    def close(self) -> None:
        self.conn.close()
