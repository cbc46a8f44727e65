"""The backtest's time and peak memory over a long history (issue 18, item 4): reads must be
bounded, so a week costs about the memory of a day.

Runs ``python -m dashboard backtest --format json`` on ``--data-dir`` (a history made by
``bench/synthetic_history.py``, e.g. 300 series over 168 hours) for each ``--since``, each in a
process of its own, and prints its wall time, its peak RSS (``wait4``'s ``ru_maxrss``), that
peak less the one of a 1-minute backtest (the interpreter, the imports and the store opened),
the resolution and the episodes found; then the week's figures as ratios to the day's, measured
in this one run.

    .venv/bin/python bench/backtest_memory.py --data-dir DIR [--since 1m 1d 7d] [--config FILE]
                                              [--fill SERIES]

``--fill N`` first fills an empty ``--data-dir`` with N series that every one is judged: agent
hosts' ``host.cpu_percent`` (rule ``host_cpu``), a value every 10 s, wandering with breaches,
one-minute rollups for the 7 days (written as hour blocks) and the newest 24 h raw too.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEP_S = 10
RAW_H = 24
DAYS = 7


def fill(data_dir: Path, series: int) -> None:
    """``series`` CPU series over ``DAYS`` days: rollups for all of it, raw for the last hours."""
    import random

    from dashboard.model import Sample
    from dashboard.store import Store
    from dashboard.store.rollups import HourBlock

    rng = random.Random(18)
    end = int(time.time()) // 3600 * 3600
    start = end - DAYS * 86400
    raw_from = end - RAW_H * 3600
    level = [50.0] * series
    store = Store(data_dir)
    try:
        for hour in range(start, end, 3600):
            blocks, ticks = [], []
            per_minute: list[dict[int, tuple[int, float, float, float]]] = [{} for _ in range(series)]
            for t in range(hour, hour + 3600, STEP_S):
                tick = []
                for i in range(series):
                    # a random walk pulled to 50, with a burst now and then (pages, flaps)
                    level[i] += rng.gauss(0, 2) + (50 - level[i]) * 0.01
                    v = min(100.0, max(0.0, level[i] + (40 if rng.random() < 0.002 else 0)))
                    m = t // 60 * 60
                    n, total, lo, hi = per_minute[i].get(m, (0, 0.0, v, v))
                    per_minute[i][m] = (n + 1, total + v, min(lo, v), max(hi, v))
                    if t >= raw_from:
                        tick.append(Sample("agents", float(t), {"host.cpu_percent": v},
                                           {"host": f"h{i:03d}"}))
                if tick:
                    ticks.append(tick)
            for i in range(series):
                blocks.append(HourBlock("host.cpu_percent", {"host": f"h{i:03d}"}, hour,
                                        per_minute[i], {}))
            store.write_rollup_blocks(blocks, rolled_until=hour + 3600)
            if ticks:
                store.append_many(ticks)
    finally:
        store.close()


def run(data_dir: Path, since: str, config: str | None) -> dict:
    argv = [sys.executable, "-m", "dashboard"]
    if config:
        argv += ["--config", config]
    argv += ["backtest", "--since", since, "--format", "json"]
    env = dict(os.environ, DASHBOARD_DATA_DIR=str(data_dir))
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode() if p.stderr else ""
        if p.returncode:
            raise SystemExit(f"backtest --since {since} failed ({p.returncode}): {err}")
        out.seek(0)
        doc = json.loads(out.read())
    return {"since": since, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "maxrss_mib": usage.ru_maxrss / 1024, "resolution": doc["resolution"],
            "label_sets": len(doc["rules"]), "episodes": sum(len(r["episodes"]) for r in doc["rules"])}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--since", nargs="+", default=["1m", "1d", "7d"])
    p.add_argument("--config")
    p.add_argument("--fill", type=int, metavar="SERIES")
    a = p.parse_args()
    if a.fill:
        if (a.data_dir / "history.sqlite3").exists():
            raise SystemExit(f"--fill: {a.data_dir} already holds a history")
        t0 = time.perf_counter()
        # In a process of its own: a child forked from a parent that grew while filling would
        # start with the parent's peak RSS (Linux keeps it across exec), hiding the backtest's.
        subprocess.run([sys.executable, "-c", "import sys; from bench.backtest_memory import fill;"
                        " from pathlib import Path; fill(Path(sys.argv[1]), int(sys.argv[2]))",
                        str(a.data_dir), str(a.fill)], cwd=ROOT, check=True)
        print(f"filled {a.data_dir}: {a.fill} series x {DAYS} d (raw the last {RAW_H} h, every "
              f"{STEP_S} s) in {time.perf_counter() - t0:.0f} s")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} cores, data {a.data_dir}")
    rows = [run(a.data_dir, s, a.config) for s in a.since]
    floor = rows[0]["maxrss_mib"]
    print(f"{'since':>6} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'less floor':>10} "
          f"{'label sets':>10} {'episodes':>9}  resolution")
    for r in rows:
        print(f"{r['since']:>6} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['maxrss_mib']:9.1f} "
              f"{r['maxrss_mib'] - floor:10.1f} {r['label_sets']:10d} {r['episodes']:9d}  "
              f"{r['resolution']}")
    if len(rows) >= 3:
        day, week = rows[-2], rows[-1]
        extra_day = max(day["maxrss_mib"] - floor, 0.1)
        print(f"{week['since']} / {day['since']}: time x{week['wall_s'] / day['wall_s']:.2f}, "
              f"peak RSS x{week['maxrss_mib'] / day['maxrss_mib']:.2f}, "
              f"peak above the floor x{(week['maxrss_mib'] - floor) / extra_day:.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
