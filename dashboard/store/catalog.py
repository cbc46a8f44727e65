"""Series, label sets and sample shapes, each stored once and referred to by a small integer.

* a **label set** is its sorted compact JSON text ("" for none), the form every reader keys on;
* a **series** is a metric with a label set: what rollups are kept for and what the report and
  ``/api/series`` ask for (the source that sent it does not split it, as it never did);
* a **shape** is what one sample looks like: its source, its label set and its metrics in order.
  A raw tick stores a shape number per sample and then only the sample's values.

The ids are given inside the writer's transaction, so two processes writing the same file (a
collector leader and a standby that took over) agree on them; each process caches them and reads
the tables again when it meets an id it does not know (written by another process since).
On PostgreSQL (``history_pg.py``) the ids come from identity columns under the history's write
lock, and the three tables are read in one ``REPEATABLE READ`` snapshot.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from dashboard.store.txn import Connection, is_pg

SCHEMA = """
CREATE TABLE IF NOT EXISTS label_sets (
    id   INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE          -- sorted compact JSON, "" for none
);
CREATE TABLE IF NOT EXISTS series (
    id     INTEGER PRIMARY KEY,
    metric TEXT NOT NULL,
    labels INTEGER NOT NULL,           -- label_sets.id
    UNIQUE (metric, labels)
);
CREATE TABLE IF NOT EXISTS shapes (
    id     INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    labels INTEGER NOT NULL,           -- label_sets.id
    series TEXT NOT NULL,              -- the series ids of the sample's values, in order
    UNIQUE (source, labels, series)
);
"""

ShapeKey = tuple[str, str, tuple[str, ...]]        # source, label text, metrics in order


def labels_text(labels: Mapping[str, str]) -> str:
    """The stored text of a label set: sorted compact JSON, "" for none."""
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":")) if labels else ""


@dataclass(frozen=True)
class Shape:
    id: int
    source: str
    labels_text: str
    labels: dict[str, str]             # shared by the samples decoded with it: callers copy
    metrics: tuple[str, ...]
    series: tuple[int, ...]


class Catalog:
    """This process's copy of the three tables, read from ``conn`` as needed."""

    def __init__(self) -> None:
        self.labels: dict[int, str] = {}
        self.labels_by_text: dict[str, int] = {}
        self.series: dict[int, tuple[str, int]] = {}
        self.series_by_key: dict[tuple[str, int], int] = {}
        self.shapes: dict[int, Shape] = {}
        self.shapes_by_key: dict[ShapeKey, int] = {}
        self._dicts: dict[int, dict[str, str]] = {}

    def forget(self) -> None:
        """After a rolled-back write: ids given in it were never stored."""
        for d in (self.labels, self.labels_by_text, self.series, self.series_by_key,
                  self.shapes, self.shapes_by_key, self._dicts):
            d.clear()

    def refresh(self, conn: Connection) -> None:
        """Read what was added since the last read (by this process or another), the three
        tables in one snapshot: a shape another process added between two of the reads would
        name a label set this read did not see."""
        if conn.in_transaction:                 # the caller's write transaction is the snapshot
            self._read_new(conn)
            return
        # PostgreSQL's default (READ COMMITTED) takes a snapshot per statement
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if is_pg(conn) else "BEGIN")
        try:
            self._read_new(conn)
        finally:
            conn.execute("COMMIT")

    def _read_new(self, conn: Connection) -> None:
        top = max(self.labels, default=0)
        for i, text in conn.execute("SELECT id, text FROM label_sets WHERE id > ?", (top,)):
            self.labels[i] = text
            self.labels_by_text[text] = i
            self._dicts[i] = json.loads(text) if text else {}
        top = max(self.series, default=0)
        for i, metric, lab in conn.execute(
                "SELECT id, metric, labels FROM series WHERE id > ?", (top,)):
            self.series[i] = (metric, lab)
            self.series_by_key[(metric, lab)] = i
        top = max(self.shapes, default=0)
        for i, source, lab, ids in conn.execute(
                "SELECT id, source, labels, series FROM shapes WHERE id > ?", (top,)):
            sids = tuple(int(x) for x in ids.split(",")) if ids else ()
            metrics = tuple(self.series[s][0] for s in sids)
            self.shapes[i] = Shape(i, source, self.labels[lab], self._dicts[lab], metrics, sids)
            self.shapes_by_key[(source, self.labels[lab], metrics)] = i

    def shape(self, conn: Connection, shape_id: int) -> Shape:
        """The shape ``shape_id``, reading the tables again if another process added it."""
        s = self.shapes.get(shape_id)
        if s is None:
            self.refresh(conn)
            s = self.shapes[shape_id]
        return s

    def series_id(self, conn: Connection, metric: str, labels: str) -> int | None:
        lab = self.labels_by_text.get(labels)
        sid = None if lab is None else self.series_by_key.get((metric, lab))
        if sid is None:
            self.refresh(conn)
            lab = self.labels_by_text.get(labels)
            sid = None if lab is None else self.series_by_key.get((metric, lab))
        return sid

    def label_dict(self, lab: int) -> dict[str, str]:
        return self._dicts[lab]

    def _label_set(self, conn: Connection, text: str) -> int:
        lab = self.labels_by_text.get(text)
        if lab is None:
            lab = _insert(conn, "INSERT INTO label_sets(text) VALUES (?)", (text,))
            self.labels[lab] = text
            self.labels_by_text[text] = lab
            self._dicts[lab] = json.loads(text) if text else {}
        return lab

    def _series(self, conn: Connection, metric: str, lab: int) -> int:
        sid = self.series_by_key.get((metric, lab))
        if sid is None:
            sid = _insert(conn, "INSERT INTO series(metric, labels) VALUES (?,?)", (metric, lab))
            self.series[sid] = (metric, lab)
            self.series_by_key[(metric, lab)] = sid
        return sid

    def add_series(self, conn: Connection, metric: str, labels: Mapping[str, str]) -> int:
        """The id of a series, given one if it has none; inside the caller's write transaction."""
        text = labels_text(labels)
        lab = self.labels_by_text.get(text)
        sid = None if lab is None else self.series_by_key.get((metric, lab))
        if sid is None:
            self.refresh(conn)
            sid = self._series(conn, metric, self._label_set(conn, text))
        return sid

    def add_shapes(self, conn: Connection, keys: list[ShapeKey]) -> None:
        """Give ids to shapes not known yet; inside the caller's write transaction."""
        self.refresh(conn)
        for source, text, metrics in keys:
            if (source, text, metrics) in self.shapes_by_key:
                continue
            lab = self._label_set(conn, text)
            sids = tuple(self._series(conn, metric, lab) for metric in metrics)
            i = _insert(conn, "INSERT INTO shapes(source, labels, series) VALUES (?,?,?)",
                        (source, lab, ",".join(map(str, sids))))
            self.shapes[i] = Shape(i, source, text, self._dicts[lab], metrics, sids)
            self.shapes_by_key[(source, text, metrics)] = i

    def metric_sources(self) -> set[tuple[str, str]]:
        return {(m, s.source) for s in self.shapes.values() for m in s.metrics}


def _insert(conn: Connection, sql: str, args: tuple[object, ...]) -> int:
    if is_pg(conn):
        return int(conn.execute(sql + " RETURNING id", args).fetchone()[0])
    rowid = conn.execute(sql, args).lastrowid
    assert rowid is not None
    return rowid
