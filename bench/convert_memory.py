"""The conversion of a version-1 data dir (issue 15): its time and its peak memory, on a file of
``--series`` series x ``--days`` days of one-minute rollups written in the old layout.

    .venv/bin/python bench/convert_memory.py [--series 40] [--days 14]
"""
from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.store import Store  # noqa: E402
from tests.support.v1_store import SCHEMA  # noqa: E402


def fill(data_dir: Path, series: int, days: int) -> int:
    conn = sqlite3.connect(str(data_dir / "history.sqlite3"), isolation_level=None)
    conn.executescript(SCHEMA)
    end = int(time.time()) // 60 * 60
    start = end - days * 86400
    conn.execute("BEGIN")
    for i in range(series):
        conn.executemany("INSERT INTO rollup_1m VALUES (?,?,?,?,?,?,?,?)", (
            (f"m.{i}", "", m, 60, 60.0 * (m % 97), float(m % 97), float(m % 97 + 3),
             f"{m % 50}:30,{m % 50 + 1}:30") for m in range(start, end, 60)))
    conn.execute("INSERT INTO meta VALUES ('rollup_done_until', ?)", (str(end),))
    conn.execute("COMMIT")
    conn.close()
    return series * days * 1440


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=40)
    ap.add_argument("--days", type=int, default=14)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="convert-") as tmp:
        minutes = fill(Path(tmp), args.series, args.days)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        Store(tmp).close()
        took = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.series} series x {args.days} d = {minutes:,} minutes converted in {took:.1f} s; "
          f"peak RSS {before:.0f} MiB before, {after:.0f} MiB after; "
          f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
