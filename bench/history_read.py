"""How long the live page's long windows take to answer (issue 15 targets: 300 series, 24 h
window <= 300 ms, 7 days <= 1 s), on a data dir filled by ``bench/synthetic_history.py``.

``GET /api/history?window_s=...`` through the app (threading mode: the read runs in this thread,
as it does in the web worker's OS thread), median of ``--runs`` (wall time, and the CPU time of
this process: less swayed by other processes on a shared machine); then ``Store.rollup_buckets``
alone, to say how much of it is the store's read and how much building the answer; then what
the live page asks (``view=live``, gzipped: the browser's ``Accept-Encoding``) and the whole
answer gzipped.

    .venv/bin/python bench/synthetic_history.py --data-dir /tmp/h7 --series 300 --hours 168 \\
        --interval 60
    .venv/bin/python bench/history_read.py --data-dir /tmp/h7 [--runs 5] [--store-url URL]

``--store-url postgresql://...``: the history filled there (``synthetic_history.py
--store-url``), read through the app with that ``store_url``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.app import create_app  # noqa: E402
from dashboard.config.load import from_dict  # noqa: E402
from dashboard.runtime import Runtime  # noqa: E402
from dashboard.web import downsample, history  # noqa: E402
from tests.support.auth_helpers import logged_in_client  # noqa: E402

WINDOWS = ((86400, 0.3), (7 * 86400, 1.0))      # window, target (s)


CPU: list[float] = []       # the last timed call's CPU seconds per run (this process's threads)


def timed(fn, runs: int) -> tuple[float, float, object]:
    out, times = None, []
    CPU.clear()
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        CPU.append(time.process_time() - c0)
    return statistics.median(times), max(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--store-url", help="postgresql://user:pass@host:port/db (default: the data "
                    "dir's SQLite file)")
    args = ap.parse_args()
    settings = from_dict({"data_dir": str(args.data_dir), "async_mode": "threading",
                          "auth": {"api_rate_limit": "100000 per minute"},
                          **({"store_url": args.store_url} if args.store_url else {})})
    rt = Runtime(settings, [])
    client = logged_in_client(create_app(settings, rt, async_mode="threading"),
                              name=f"bench-{os.getpid()}-{time.time_ns()}")
    print(f"load average {os.getloadavg()[0]:.2f}; {len(rt.store.metrics())} metrics")
    for window, target in WINDOWS:
        med, worst, resp = timed(lambda w=window: client.get(f"/api/history?window_s={w}"),
                                 args.runs)
        doc = resp.get_json()  # type: ignore[union-attr]
        points = max((len(history.points(s)["t"]) for s in doc["series"].values()), default=0)
        verdict = "met" if med <= target else "MISSED"
        print(f"  /api/history window {window / 3600:g} h: median {med * 1000:.0f} ms, "
              f"max {worst * 1000:.0f} ms, CPU {statistics.median(CPU) * 1000:.0f} ms, "
              f"{len(doc['series'])} series, at most {points} points "
              f"a series, {len(resp.get_data()) / 1e6:.1f} MB (target <= {target * 1000:.0f} ms: "  # type: ignore[union-attr]
              f"{verdict})")
        now = time.time()
        width = downsample.bucket_width(window, 60)       # as /api/history chooses its read
        read = rt.store.rollup_bucket_columns
        if width >= downsample.HOURLY_FROM_S:
            width, read = downsample.bucket_width(window, 3600), rt.store.rollup_hour_columns
        med, worst, rows = timed(lambda w=window, b=width, t=now, f=read: f(t - w, t, b),
                                 args.runs)
        buckets = sum(len(c.minute) for _, _, c, _ in rows)  # type: ignore[union-attr]
        print(f"    of which the store's read, Store.{read.__name__} ({width} s buckets): "
              f"median {med * 1000:.0f} ms, {buckets:,} buckets")
        for query in ("", "&view=live"):
            med, worst, resp = timed(lambda w=window, q=query: client.get(
                f"/api/history?window_s={w}{q}", headers={"Accept-Encoding": "gzip"}), args.runs)
            print(f"    {query[1:] or 'every series'}, gzipped: median {med * 1000:.0f} ms, "
                  f"{len(resp.get_data()) / 1e6:.1f} MB")  # type: ignore[union-attr]
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
