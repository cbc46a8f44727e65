"""What a store that cannot write costs (issue 15): the spool's per-tick cost while the disk is
full, the memory of ``store_buffer_s`` of kept ticks, and the one tick that writes them back
when space returns (Runtime.publish's lock is held that long: the page's next tick waits).

A tick is 306 samples (issue 9's installation: this host, 50 agents' hosts, 200 queues, db,
cache) of synthetic values. The full disk is injected (the store's append raises SQLite's
"database or disk is full" while ``full`` is set): this measures the spool, not SQLite's own
failing write (tests/test_store_outage.py fills a real tmpfs).

    .venv/bin/python bench/store_outage.py [--ticks 300] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard.model import Sample  # noqa: E402
from dashboard.store import Store  # noqa: E402
from dashboard.store.spool import Spool  # noqa: E402


class FullDisk(Store):
    """The store, with its appends failing as on a full disk while ``full`` is set."""

    full = False

    def append(self, samples, first_seq=None):  # type: ignore[no-untyped-def]
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return super().append(samples, first_seq)


def tick(ts: float, i: int) -> list[Sample]:
    out = [Sample("host", ts, {f"host.m{k}": float(i + k) for k in range(10)})]
    out += [Sample("agents", ts, {f"host.m{k}": float(i * h + k) for k in range(10)},
                   {"host": f"app-{h}"}) for h in range(50)]
    out += [Sample("queue", ts, {"queue.pending": float(q), "queue.failed": 0.0,
                                 "queue.oldest_pending_age_s": float(i)}, {"queue": f"q{q}"})
            for q in range(200)]
    out += [Sample(src, ts, {f"{src}.m{k}": float(k) for k in range(12)}) for src in
            ("db", "cache", "statsd", "phpfpm", "app")]
    out += [Sample("host", ts, {"host.disk_percent": float(m)}, {"mount": f"/m{m}"})
            for m in range(50)]
    return out


TICK = len(tick(0.0, 0))


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"p50 {statistics.median(xs) * 1e3:.2f} ms, p95 {xs[int(0.95 * (len(xs) - 1))] * 1e3:.2f}"
            f" ms, max {xs[-1] * 1e3:.2f} ms")


def run(ticks: int, trace: bool = False) -> dict[str, object]:
    """One outage of ``ticks`` ticks; with ``trace``, the memory kept (tracemalloc slows the
    ticks: their times are then not reported)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = FullDisk(tmp)
        spool = Spool(store, keep_s=ticks + 10)
        t0 = time.time()
        up, down = [], []
        for i in range(60):                                   # warm: shapes, labels known
            spool.append(tick(t0 + i, i))
        for i in range(60, 120):
            s = time.perf_counter()
            spool.append(tick(t0 + i, i))
            up.append(time.perf_counter() - s)
        store.full = True
        if trace:
            tracemalloc.start()
        for i in range(120, 120 + ticks):
            s = time.perf_counter()
            spool.append(tick(t0 + i, i))
            down.append(time.perf_counter() - s)
        kept_bytes = tracemalloc.get_traced_memory()[0] if trace else 0
        tracemalloc.stop()
        s = time.perf_counter()              # as web/live.py asks: 15 min, 5,000 samples (+1)
        resumed = spool.after(TICK * 60, since_ts=t0 + 120 + ticks - 900, limit=5_001)
        resume_s = time.perf_counter() - s
        store.full = False
        s = time.perf_counter()
        spool.append(tick(t0 + 120 + ticks, 0))
        back_s = time.perf_counter() - s
        assert spool.up and store.last_seq() == TICK * (121 + ticks)
        store.close()
    return {"up": up, "down": down, "kept_mb": kept_bytes / 2**20, "back_s": back_s,
            "resume_s": resume_s, "resumed": len(resumed)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=300, help="ticks kept (store_buffer_s at 1 s)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{TICK}-sample ticks; {args.ticks} ticks kept while the disk is full; load average"
          f" {os.getloadavg()[0]:.2f}", flush=True)
    for n in range(args.runs):
        r = run(args.ticks)
        print(f"run {n + 1}: tick written (store up): {ms(r['up'])}")        # type: ignore[arg-type]
        print(f"       tick kept (disk full):     {ms(r['down'])}")          # type: ignore[arg-type]
        print(f"       resume from store + memory ({r['resumed']} samples):"
              f" {r['resume_s'] * 1e3:.1f} ms; write-back of the {args.ticks} ticks when space"
              f" returns: {r['back_s']:.2f} s", flush=True)
    print(f"memory of {args.ticks} kept ticks: {run(args.ticks, trace=True)['kept_mb']:.1f} MiB;"
          f" load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
