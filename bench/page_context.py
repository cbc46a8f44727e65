"""What a firing page's context costs the alert path (issue 18): ``AlertContext.build`` on a
statement book full to its 65 minutes (a digest every 15 s, STATEMENTS statements in each) and a
store holding an hour of cache samples a second. Prints the median and the worst of RUNS builds,
and the book's ``growth`` alone.

    .venv/bin/python bench/page_context.py [STATEMENTS]
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alerts.rules import build_rules  # noqa: E402
from dashboard.alert_context import AlertContext  # noqa: E402
from dashboard.collectors.mysql.statements import Inc, StatementBook  # noqa: E402
from dashboard.config import load as config  # noqa: E402
from dashboard.model import Sample  # noqa: E402
from dashboard.store import Store  # noqa: E402

RUNS = 30


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    now = time.time()
    book = StatementBook(1000.0, timezone.utc, clock=lambda: now)
    texts = [(f"k{i}", "shop", f"SELECT * FROM t{i} WHERE id = ?") for i in range(n)]
    for j in range(65 * 4):
        ts = now - 3900 + 15 * (j + 1)
        late = j >= 65 * 4 - 20                   # the last 5 minutes: every tenth one grows
        book.add(ts, {f"k{i}": Inc(3, 2.5 * (1 + (i % 7)) * (3 if late and i % 10 == 0 else 1), 4.0)
                      for i in range(n)}, texts if j == 0 else ())
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d))
        store.append_many([[Sample("cache", now - 3900 + s, {"cache.hit_rate": 95.0})]
                           for s in range(3900)])
        why = AlertContext("http://dash", store, lambda: book)
        why.observe([Sample("cache", now, {"cache.hit_rate": 80.0}),
                     Sample("host", now, {"host.cpu_percent": 20.0, "host.load1": 1.0})])
        rule = build_rules(config.from_dict({"data_dir": d}))["db_pool_utilization"]
        builds, growths = [], []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            ctx = why.build(rule, {}, now - 60, now)
            builds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            book.growth(now)
            growths.append(time.perf_counter() - t0)
        store.close()
    assert ctx["statements"]["rows"] and ctx["cache_hit_rate"]["hour_before"] == 95.0
    print(f"statements per interval: {n}, intervals kept: {65 * 4}")
    print(f"AlertContext.build: median {statistics.median(builds) * 1000:.1f} ms, "
          f"worst {max(builds) * 1000:.1f} ms over {RUNS}")
    print(f"StatementBook.growth alone: median {statistics.median(growths) * 1000:.1f} ms, "
          f"worst {max(growths) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
