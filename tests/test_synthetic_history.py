"""bench/synthetic_history.py: the data dir it fills is one the dashboard reads as its own
history: raw samples only within the configured raw retention, rollups for every hour, the
rollup job going on from where the script left it, values a collector could have reported."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard.model import Sample
from dashboard.store import Store
from dashboard.store.history_reads import HistoryReads

ROOT = Path(__file__).resolve().parent.parent
HOURS = 3


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, float, str]:
    """6 series x 3 h with a raw retention of 1 h (the environment's, as a user would set it):
    the data dir, the times before and after the run, and what the script printed."""
    data = tmp_path_factory.mktemp("synthetic")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env["DASHBOARD_RAW_RETENTION_H"] = "1"
    before = time.time()
    run = subprocess.run([sys.executable, "bench/synthetic_history.py", "--data-dir", str(data),
                          "--series", "6", "--hours", str(HOURS)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return data, before, time.time(), run.stdout


@pytest.fixture
def store(filled: tuple[Path, float, float, str]):
    s = Store(filled[0], raw_retention_h=1)
    yield s
    s.close()


def test_raw_samples_cover_the_raw_retention_and_no_more(filled, store):
    _, before, after, out = filled
    samples = store.between(0)
    times = [s.ts for s in samples]
    assert before - 3600 <= min(times) <= before - 3600 + 5      # the newest hour, all of it
    assert max(times) <= after
    assert "raw the newest 1 h" in out
    # each second a sample of each source and label set: db, cache, a host, a queue
    assert len(set(times)) in (3600, 3601) and len(samples) == 4 * len(set(times))


def test_rollups_cover_every_hour_up_to_the_watermark(filled, store):
    _, before, after, _ = filled
    with HistoryReads(store.connect()) as reads:
        until = reads.rolled_until()
    assert until is not None and before - 65 <= until <= after
    minutes: dict[tuple[str, str], list[int]] = {}
    for metric, labels, minute, *_ in store.rollup_metrics_between(0, after + 60):
        minutes.setdefault((metric, str(sorted(labels.items()))), []).append(minute)
    assert len(minutes) == 6
    first = int((before - HOURS * 3600) // 60) * 60
    for series, got in minutes.items():
        # every minute from the first of the history to the watermark, none after it
        assert got[0] in (first, first + 60) and got == list(range(got[0], int(until), 60)), series
    hours = {m // 3600 for got in minutes.values() for m in got}
    assert hours == set(range(first // 3600, (int(until) - 60) // 3600 + 1))


def test_series_carry_real_names_and_labels_and_plausible_values(filled, store):
    *_, after, _ = filled
    metrics = {m for m, *_ in store.rollup_metrics_between(0, after + 60)}
    assert {m.split(".")[0] for m in metrics} == {"host", "queue", "db", "cache"}
    seen = {}
    for metric in metrics:
        for key, rows in store.rollups(metric, after - 4 * 3600, after).items():
            seen[key] = rows
            for r in rows:
                assert 0 <= r["min"] <= r["avg"] <= r["max"] and 1 <= r["n"] <= 60
                if metric.endswith("_percent") or metric == "cache.hit_rate":
                    assert r["max"] <= 100
                if metric.endswith(".up"):
                    assert r["min"] in (0.0, 1.0) and r["max"] in (0.0, 1.0)
            assert sum(r["n"] == 60 for r in rows) >= len(rows) - 1     # a value every second
    assert any('host="app01"' in k for k in seen) and any('queue="q001"' in k for k in seen)
    # the daily summary's read finds them too
    host_metric = next(m for m in metrics if m.startswith("host."))
    with HistoryReads(store.connect()) as reads:
        got = reads.rolled_series(host_metric, '{"host":"app01"}', after - 4 * 3600, after,
                                  [("above", False, 0.0)], 1.0)
    assert got is not None and got.minutes >= (HOURS * 60 - 2) and got.sketch


def test_the_raw_hours_rollups_are_what_the_rollup_job_makes_of_them(filled, store, tmp_path):
    _, before, _, _ = filled
    with HistoryReads(store.connect()) as reads:
        until = reads.rolled_until()
    assert until is not None
    replay = Store(tmp_path)
    try:
        replay.append_many([[Sample(s.source, s.ts, s.values, s.labels)] for s in store.between(0)])
        replay.rollup(now=until + 5)
        since = int((before - 3600) // 60) * 60 + 120       # minutes wholly within the raw hour
        metrics = {m for m, *_ in store.rollup_metrics_between(since, until)}
        assert len(metrics) == 6
        for metric in metrics:
            assert store.rollups(metric, since, until) == replay.rollups(metric, since, until)
    finally:
        replay.close()


def test_the_rollup_job_goes_on_from_where_the_script_stopped(filled, tmp_path):
    data, _, after, _ = filled
    shutil.copytree(data, tmp_path / "copy")          # the job writes: leave the others theirs
    store = Store(tmp_path / "copy", raw_retention_h=1)
    try:
        with HistoryReads(store.connect()) as reads:
            until = reads.rolled_until()
        assert until is not None
        assert store.rollup(now=after + 65) >= 1       # the raw minutes after the watermark
        for metric in ("db.up", "cache.up"):
            [(_, rows)] = store.rollups(metric, after - 4 * 3600, after + 120).items()
            minutes = [r["minute"] for r in rows]
            assert minutes == sorted(set(minutes)) and minutes[-1] >= until
            assert all(r["n"] <= 60 for r in rows)          # no minute rolled up twice
    finally:
        store.close()
