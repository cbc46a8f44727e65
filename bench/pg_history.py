"""The history on PostgreSQL against SQLite, in one run (issue 16): the tick write and the 24 h
history read at 300 series.

For each backend, on a store of its own (a temporary data dir; for PostgreSQL a fresh database
of ``--store-url``, by default a private cluster started for the run, ``bench/pgstore.py``):

1. the tick write: ``Store.append`` of the large installation's tick (``bench/store_size.py``:
   the local host, 50 agent hosts, 200 queues, db, cache), ``--ticks`` of them, wall p50/p95;
2. a history of ``--series`` series x ``--hours`` h at ``--interval`` s filled through the
   store's bulk interface (``bench/synthetic_history.py``), then ``GET /api/history?window_s=
   86400`` through the app (threading mode: the read in this thread, as in the web worker's OS
   thread), median of ``--runs``, and the store's part of it (``Store.rollup_bucket_columns``).

Then the ratios PostgreSQL / SQLite. Figures, not assertions; the load average is printed
before and after.

    .venv/bin/python bench/pg_history.py [--store-url URL|private] [--series 300] [--hours 24]
        [--interval 60] [--ticks 300] [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, pgstore, store_size, synthetic_history  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.config.load import from_dict  # noqa: E402
from dashboard.runtime import Runtime  # noqa: E402
from dashboard.store import Store  # noqa: E402
from dashboard.web import downsample  # noqa: E402
from tests.support.auth_helpers import logged_in_client  # noqa: E402

WINDOW = 86400


def median_ms(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times), max(times)


def read_24h(tmp: Path, url: str | None, args: argparse.Namespace) -> dict[str, float]:
    data = tmp / "read"
    store = Store(data, store_url=url)
    try:
        t = time.perf_counter()
        filled = synthetic_history.fill(store, synthetic_history.series_list(args.series),
                                        args.hours, args.interval, min(args.hours, 48.0), 15)
        took = time.perf_counter() - t
    finally:
        store.close()
    print(f"   filled {args.series} series x {args.hours:g} h at {args.interval:g} s "
          f"({filled.raw_samples:,} raw samples, {filled.blocks:,} blocks) in {took:.1f} s")
    settings = from_dict({"data_dir": str(data), "async_mode": "threading",
                          "auth": {"api_rate_limit": "100000 per minute"},
                          **({"store_url": url} if url else {})})
    rt = Runtime(settings, [])
    try:
        client = logged_in_client(create_app(settings, rt, async_mode="threading"),
                                  name=f"bench-{os.getpid()}-{time.time_ns()}")
        sizes: list[int] = []

        def answer() -> None:
            r = client.get(f"/api/history?window_s={WINDOW}")
            assert r.status_code == 200, r.get_data()[:200]
            sizes.append(len(r.json["series"]))  # type: ignore[index]
        med, worst = median_ms(answer, args.runs)
        width = downsample.bucket_width(WINDOW, 60)
        now = time.time()
        store_med, _ = median_ms(lambda: rt.store.rollup_bucket_columns(now - WINDOW, now, width),
                                 args.runs)
    finally:
        rt.store.close()
    print(f"   GET /api/history?window_s=86400: median {med:.0f} ms, max {worst:.0f} ms, "
          f"{sizes[-1]} series; of which Store.rollup_bucket_columns median {store_med:.0f} ms")
    return {"read": med, "store_read": store_med}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store-url", default=pgstore.PRIVATE, help=pgstore.HELP)
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(harness.machine_line(), f"load average {os.getloadavg()}")
    figures: dict[str, dict[str, float]] = {}
    with pgstore.databases(args.store_url) as database:
        for name, url in (("sqlite", None), ("postgresql", database())):
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-pg-history-{name}-"))
            try:
                print(f"{name}: {pgstore.masked(url)}")
                wrote = store_size.bench_write(tmp, args.ticks, url)
                figures[name] = {**wrote, **read_24h(tmp, url if url is None else database(),
                                                     args)}
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    s, p = figures["sqlite"], figures["postgresql"]
    print(f"PostgreSQL / SQLite: tick write ({int(s['samples'])} samples) p50 {p['p50']:.2f} / "
          f"{s['p50']:.2f} ms = {p['p50'] / s['p50']:.1f}x, p95 {p['p95']:.2f} / {s['p95']:.2f} ms; "
          f"24 h read {p['read']:.0f} / {s['read']:.0f} ms = {p['read'] / s['read']:.2f}x "
          f"(the store's part {p['store_read']:.0f} / {s['store_read']:.0f} ms)")
    print(f"load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
