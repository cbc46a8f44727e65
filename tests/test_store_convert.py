"""A data dir written by the version-1 layout is converted on the first start (issue 15): every
rollup minute and every raw sample within the retention comes back once, with its sequence
number; a kill -9 mid-conversion is finished by the next start; several processes starting on
the same old data dir convert it once."""
from __future__ import annotations

import math
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard.model import Sample, series_key
from dashboard.store import Store, sketch
from dashboard.store.history_reads import HistoryReads
from tests.support.v1_store import V1Writer

ROOT = Path(__file__).resolve().parent.parent
SERIES = [("host.cpu_percent", {}), ("queue.pending", {"queue": "emails"}),
          ("queue.pending", {"queue": "orders"})]
HOURS = 3


def fill_v1(data_dir: Path, series=SERIES, hours=HOURS, raw=400) -> dict:
    """A version-1 data dir: ``hours`` of minutes per series rolled up, 50 samples older than the
    raw retention and ``raw`` recent ones. Returns what a reader must get back."""
    rnd = random.Random(7)
    now = time.time()
    hour0 = int(now // 3600) * 3600 - (hours + 2) * 3600
    w = V1Writer(data_dir)
    minutes: dict[str, dict[int, tuple]] = {}
    values_of: dict[str, list[float]] = {}
    for metric, labels in series:
        rows = minutes.setdefault(series_key(metric, labels), {})
        for m in range(hour0, hour0 + hours * 3600, 60):
            values = [round(rnd.uniform(0, 100), 1) for _ in range(60)]
            w.minute(metric, labels, m, values)
            rows[m] = (60, sum(values) / 60, min(values), max(values))
            values_of.setdefault(f"{series_key(metric, labels)}@{m - m % 3600}", []).extend(values)
    w.rolled_until(hour0 + hours * 3600)
    for i in range(50):                               # past the 48 h raw retention: left out
        w.sample(now - 3 * 86400 + i, "host", {"host.cpu_percent": 1.0})
    recent = {}
    for i in range(raw):
        ts = now - 600 + i
        if i % 2:
            seq = w.sample(ts, "queue", {"queue.pending": float(i)}, {"queue": "emails"})
        else:
            seq = w.sample(ts, "host", {"host.cpu_percent": i / 10})
        recent[seq] = ts
    w.close()
    return {"hour0": hour0, "minutes": minutes, "recent": recent, "last_seq": max(recent),
            "values": values_of}


def check_converted(store: Store, want: dict) -> None:
    hour0 = want["hour0"]
    for metric in {m for m, _ in SERIES}:
        got = store.rollups(metric, hour0, hour0 + HOURS * 3600 - 1)
        for key, rows in got.items():
            exp = want["minutes"][key]
            assert len(rows) == len(exp)                     # every minute, once
            for r in rows:
                n, avg, lo, hi = exp[r["minute"]]
                assert (r["n"], r["min"], r["max"]) == (n, lo, hi)
                assert r["avg"] == pytest.approx(avg, rel=1e-12)
        assert set(got) == {k for k in want["minutes"] if k.startswith(metric)}
    samples = store.after(0)
    assert [s.seq for s in samples] == sorted(want["recent"])     # with their own numbers, once
    assert all(s.ts == pytest.approx(want["recent"][s.seq]) for s in samples)
    assert {s.source for s in samples} == {"host", "queue"}
    assert any(s.labels == {"queue": "emails"} for s in samples)
    conn = store.connect()
    try:
        left = conn.execute("SELECT name FROM sqlite_master WHERE name IN "
                            "('samples', 'rollup_1m', 'latest_samples')").fetchall()
        assert left == []                                          # the old tables are gone
        reads = HistoryReads(conn)
        assert reads.rolled_until() == hour0 + HOURS * 3600         # the rollup job goes on from there
    finally:
        conn.close()


def test_a_version_1_data_dir_is_converted_on_first_start(tmp_path, capsys):
    want = fill_v1(tmp_path / "data")
    store = Store(tmp_path / "data")
    try:
        check_converted(store, want)
        # New ticks number on from the old samples: a page that resumes sees no number twice.
        [new] = store.append([Sample("host", time.time(), {"host.cpu_percent": 3.0})])
        assert new.seq == want["last_seq"] + 1
    finally:
        store.close()
    err = capsys.readouterr().err
    assert "converting the history" in err and "history converted" in err
    # A second start has nothing to convert and says nothing.
    Store(tmp_path / "data").close()
    assert "converting" not in capsys.readouterr().err


def test_the_sketches_give_the_hours_p95_as_the_old_minutes_did(tmp_path):
    want = fill_v1(tmp_path / "data", series=SERIES[:1], raw=2)
    store = Store(tmp_path / "data")
    conn = store.connect()
    try:
        hour = want["hour0"] + 3600
        got = HistoryReads(conn).rolled_series("host.cpu_percent", "", hour, hour + 3600, [], 1.0)
        assert got is not None and got.minutes == 60       # the whole hour, with its sketch
        values = sorted(want["values"][f"host.cpu_percent@{hour}"])
        exact = values[math.ceil(0.95 * len(values)) - 1]
        assert sketch.quantile(got.sketch, 0.95) == pytest.approx(exact, rel=0.01)
    finally:
        conn.close()
        store.close()


CHILD = """
import os, signal, sys
from dashboard.store import Store, convert
from dashboard.store import history
where, after = sys.argv[2], int(sys.argv[3])
convert.BLOCKS_PER_WRITE, convert.RAW_PER_BATCH = 1, 50
calls = {"n": 0}
def dying(real):
    def call(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == after:                     # fault injection: kill -9 right after a commit
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return call
name = "write_rollup_blocks" if where == "rollups" else "append_converted"
setattr(history.Store, name, dying(getattr(history.Store, name)))
Store(sys.argv[1])
"""


@pytest.mark.parametrize("where,after", [("rollups", 2), ("raw", 3)])
def test_a_kill_9_mid_conversion_is_finished_by_the_next_start(tmp_path, where, after):
    want = fill_v1(tmp_path / "data")
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "data"), where, str(after)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr          # it died mid-way, as a kill -9 does
    store = Store(tmp_path / "data")
    try:
        check_converted(store, want)
    finally:
        store.close()


OPENER = """
import sys
from dashboard.store import Store, sketch
Store(sys.argv[1]).close()
"""


def test_several_processes_starting_on_an_old_data_dir_convert_it_once(tmp_path):
    want = fill_v1(tmp_path / "data")
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(tmp_path / "data")], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert sum("converting the history" in err for _, err in outs) == 1
    store = Store(tmp_path / "data")
    try:
        check_converted(store, want)
    finally:
        store.close()
