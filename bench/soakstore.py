"""The soak's view of the store: size on disk, row counts, and whether retention bounds them.

Read from outside the server through a read-only SQLite connection to the same file (WAL lets
it read while the worker writes), opened and closed at each reading so it never holds a
snapshot that would stop the worker's checkpoints.

Expected size: the raw table holds at most ``rows/s x (raw retention + prune period)`` rows
(``dashboard.store.prune_period_s``); rollups are one row per series per minute (kept 400 days,
so they grow through a short soak, linearly); alert, outbox and statement tables grow with what
happened. The expected file size is those row counts times the bytes per row the B-trees use
now (SQLite's ``dbstat``), and the file should not grow once the raw table has reached its bound
by more than the rollups and the other tables explain.
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from dashboard.store import prune_period_s

SIZE_SLACK = 1.25          # B-tree pages are not full, freed pages wait on the freelist


@dataclass
class StoreReading:
    db_bytes: int
    wal_bytes: int
    raw_rows: int                  # raw samples (a tick row holds many)
    max_seq: int
    oldest_age_s: float
    rollup_rows: int               # rollup blocks (a series' hour)
    alert_rows: int
    outbox_rows: int
    tables: dict[str, int] = field(default_factory=dict)


def prune_every_s(raw_retention_s: float) -> float:
    return prune_period_s(raw_retention_s)


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def read(path: Path) -> StoreReading:
    conn = _ro(path)
    try:
        names = [n for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        counts = {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}
        samples, oldest, max_seq = conn.execute(
            "SELECT COALESCE(SUM(n), 0), MIN(ts), MAX(seq + n - 1) FROM ticks").fetchone()
    finally:
        conn.close()
    size = lambda p: p.stat().st_size if p.exists() else 0  # noqa: E731
    return StoreReading(
        db_bytes=size(path), wal_bytes=size(path.with_name(path.name + "-wal")),
        raw_rows=samples, max_seq=max_seq or 0,
        oldest_age_s=time.time() - oldest if oldest else 0.0,
        rollup_rows=counts.get("rollups", 0),
        alert_rows=sum(n for t, n in counts.items() if t.startswith("alert_")),
        outbox_rows=sum(n for t, n in counts.items() if t.startswith("outbox_")),
        tables=counts)


def bytes_by_table(path: Path) -> tuple[dict[str, int], int, int]:
    """Bytes of B-tree pages per table (its indexes included), freelist pages, page size."""
    conn = _ro(path)
    try:
        owner = {n: t for n, t in conn.execute("SELECT name, tbl_name FROM sqlite_master")}
        out: dict[str, int] = {}
        for name, pages in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            t = owner.get(name, name)
            out[t] = out.get(t, 0) + int(pages)
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return out, free * page, page


def verdict(ts: list[float], rs: list[StoreReading], retention_s: float, path: Path) -> bool:
    """Print the store's figures against retention; True when bounded as computed."""
    period = prune_every_s(retention_s)
    mb = lambda b: b / 2**20  # noqa: E731
    span = ts[-1] - ts[0]
    rows_per_s = (rs[-1].max_seq - rs[0].max_seq) / span if span > 0 else 0.0
    bound_rows = rows_per_s * (retention_s + period)
    full_at = retention_s + period + 60          # the raw table has reached its bound by then
    print(f"\nstore: {rows_per_s:.0f} raw rows/s written; raw retention {retention_s / 60:g} min, "
          f"pruned every {period:g} s -> at most {bound_rows:,.0f} raw rows "
          f"(rows/s x (retention + prune period))")
    ok = True
    later = [(t, r) for t, r in zip(ts, rs) if t >= full_at]
    max_rows = max(r.raw_rows for r in rs)
    max_age = max(r.oldest_age_s for r in rs)
    met = max_rows <= bound_rows * 1.05 and max_age <= retention_s + period + 30
    ok &= met
    print(f"  raw rows: max {max_rows:,} (bound {bound_rows:,.0f}); oldest raw sample at most "
          f"{max_age / 60:.1f} min old (bound {(retention_s + period) / 60:.1f} min): "
          f"{'bounded' if met else 'NOT BOUNDED'}")
    per_table, free_bytes, page = bytes_by_table(path)
    last = rs[-1]
    raw_bpr = per_table.get("ticks", 0) / max(last.raw_rows, 1)
    expected = raw_bpr * bound_rows + sum(b for t, b in per_table.items() if t != "ticks")
    print(f"  bytes per raw sample (tick rows + index): {raw_bpr:.1f}; "
          f"rollups {mb(per_table.get('rollups', 0)):.1f} MB "
          f"for {last.rollup_rows:,} blocks (one per series per hour, kept "
          f"400 days: they grow through a short soak); other tables "
          f"{mb(sum(b for t, b in per_table.items() if t not in ('ticks', 'rollups'))):.1f} MB; "
          f"freelist {mb(free_bytes):.1f} MB")
    met = last.db_bytes <= expected * SIZE_SLACK
    ok &= met
    print(f"  database file: {mb(last.db_bytes):.1f} MB; expected from retention {mb(expected):.1f} MB "
          f"(x{SIZE_SLACK:g} for page slack: {mb(expected * SIZE_SLACK):.1f} MB): "
          f"{'as computed' if met else 'LARGER'}")
    print(f"  WAL: at most {mb(max(r.wal_bytes for r in rs)):.1f} MB "
          f"(auto-checkpoint every 1000 pages = {mb(1000 * page):.1f} MB)")
    if len(later) >= 3:
        (t1, r1), (t2, r2) = later[0], later[-1]
        grew = r2.db_bytes - r1.db_bytes
        other_bpr = {t: per_table.get(t, 0) / max(n, 1) for t, n in last.tables.items()}
        explained = sum(other_bpr[t] * (r2.tables.get(t, 0) - r1.tables.get(t, 0))
                        for t in last.tables if t != "ticks")
        met = grew <= explained + 0.1 * r1.db_bytes
        ok &= met
        print(f"  once the raw table was full ({t1 / 60:.1f} -> {t2 / 60:.1f} min): file "
              f"{mb(r1.db_bytes):.1f} -> {mb(r2.db_bytes):.1f} MB ({mb(grew):+.1f} MB), "
              f"rollups and other tables' new rows explain {mb(explained):+.1f} MB: "
              f"{'bounded' if met else 'GROWING'}")
    else:
        print(f"  the soak is too short to see the raw table full (needs > {full_at / 60:.1f} min "
              f"+ 3 readings)")
    grew_tables = {t: (rs[0].tables.get(t, 0), last.tables[t]) for t in sorted(last.tables)
                   if t not in ("ticks", "rollups") and last.tables[t] != rs[0].tables.get(t, 0)}
    if grew_tables:
        print("  other tables (rows, first -> last reading): " + ", ".join(
            f"{t} {a}->{b}" for t, (a, b) in grew_tables.items()))
    return ok
