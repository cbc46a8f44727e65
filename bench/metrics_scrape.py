"""What one Prometheus scrape of /metrics costs with a full hour of history in the store.

    .venv/bin/python -m bench.metrics_scrape [--hours 1] [--scrapes 30]

Fills a temporary store with samples at 1 s (host with 3 mounts, db, cache, 5 queues, 3 probes,
statsd, phpfpm: the shape of tests/test_prometheus.py), then scrapes /metrics in-process and
prints the median and p95 time of a scrape, the part spent in Store.latest(), and the page size.
Prints figures only; asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def tick(ts: float) -> list:
    from dashboard.model import Sample
    from tests.test_prometheus import platform_samples

    out = platform_samples(ts)
    out += [Sample("queue", ts, {"queue.pending": 5.0, "queue.failed": 0.0}, {"queue": f"q{i}"})
            for i in range(3)]
    out += [Sample("host", ts, {"host.disk_percent": 40.0}, {"mount": "/srv"})]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--scrapes", type=int, default=30)
    args = ap.parse_args()

    from dashboard.app import create_app
    from dashboard.config.load import from_dict
    from dashboard.runtime import Runtime

    with tempfile.TemporaryDirectory() as d:
        settings = from_dict({"data_dir": d, "async_mode": "threading", "metrics_public": True})
        runtime = Runtime(settings, [])
        app = create_app(settings, runtime, async_mode="threading")
        now = time.time()
        n = int(args.hours * 3600)
        t0 = time.perf_counter()
        rows = 0
        for k in range(n):
            rows += len(runtime.store.append(tick(now - n + k + 1)))
        fill_s = time.perf_counter() - t0
        rows += len(runtime.store.append(tick(time.time())))   # a current tick, as in production
        client = app.test_client()
        scrape_ms, latest_ms = [], []
        size = 0
        for _ in range(args.scrapes):
            t = time.perf_counter()
            runtime.store.latest()
            latest_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            r = client.get("/metrics")
            scrape_ms.append((time.perf_counter() - t) * 1000)
            size = len(r.get_data())
        p95 = sorted(scrape_ms)[int(0.95 * (len(scrape_ms) - 1))]
        print(f"store: {rows} samples over {args.hours:g} h (filled in {fill_s:.1f} s)")
        print(f"/metrics scrape: median {statistics.median(scrape_ms):.1f} ms, p95 {p95:.1f} ms "
              f"({args.scrapes} scrapes), page {size / 1024:.1f} KiB")
        print(f"  of which Store.latest(): median {statistics.median(latest_ms):.1f} ms")
        runtime.stop()


if __name__ == "__main__":
    main()
