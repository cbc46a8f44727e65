"""The time-series layout (issue 15): what goes in comes back, exactly, whatever the numbers."""
from __future__ import annotations

import math
import random
import sqlite3
import time

import pytest

from dashboard.model import Sample
from dashboard.store import Store, blocks, columns, migrations, rollups, sketch
from dashboard.store.blocks import Minutes
from dashboard.store.catalog import Catalog
from dashboard.store.history import SchemaTooNew
from dashboard.store.history_reads import HistoryReads
from dashboard.store.rollups import HourBlock

# Each test on SQLite, then on PostgreSQL (tests/support/pg.py).
pytestmark = pytest.mark.usefixtures("store_backend")
# A test of what only one backend has (the codec alone, a SQLite file's own layout).
only_sqlite = pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)

HOUR = 1_800_000_000            # a whole hour (epoch seconds)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path)
    yield s
    s.close()


@pytest.mark.parametrize("values", [
    [0.0, 1.0, 2.0, 1.0, 300.0],                           # whole counts
    [35.12, 35.2, 34.99, 0.01, 99.99],                     # percents, two decimals
    [1e300, -1e300, 5e-324, 1e-12, 0.1 + 0.2],            # full precision, extremes
    [2.0 ** 53 + 2, 12.5, -7.0],                           # past what a float counts exactly
    [random.Random(1).gauss(0, 1e6) for _ in range(60)],
])
@only_sqlite
def test_a_column_of_floats_comes_back_bit_for_bit(values):
    packed = columns.pack_floats(values)
    back, end = columns.unpack_floats(packed, 0, len(values))
    assert end == len(packed)
    assert [v.hex() for v in back] == [float(v).hex() for v in values]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_by_the_codec_and_the_bulk_write(store, bad):
    with pytest.raises(ValueError):
        columns.pack_floats([1.0, bad])
    block = HourBlock("db.x", {}, HOUR, {HOUR: (2, bad, 1.0, 2.0)}, {sketch.bucket_of(1.0): 2})
    with pytest.raises(ValueError):
        store.write_rollup_blocks([block])
    assert list(store.rollup_metrics_between(HOUR, HOUR + 3600)) == []
    # A tick's non-finite values are left out, as they always were.
    [s] = store.append([Sample("db", HOUR + 1.0, {"db.x": bad, "db.y": 2.0})])
    assert s.values == {"db.y": 2.0} == store.after(0)[0].values


def test_a_counter_that_resets_is_stored_as_it_went(store):
    readings = [100.0, 250.0, 900.0, 3.0, 40.0, 1e12, 0.0]   # restarts go down, not up
    for i, v in enumerate(readings):
        store.append([Sample("db", HOUR + 10.0 * i, {"db.questions": v})])
    assert [s.values["db.questions"] for s in store.after(0)] == readings
    store.rollup(now=HOUR + 3600)
    [(_, rows)] = store.rollups("db.questions", HOUR, HOUR + 3600).items()
    first, second = rows
    assert (first["n"], first["min"], first["max"]) == (6, 3.0, 1e12)
    assert (second["n"], second["min"], second["max"]) == (1, 0.0, 0.0)


def test_a_block_keeps_only_the_minutes_that_had_samples(store):
    minutes = {HOUR + 60 * m: (3, 3.0 * m, m - 0.5, m + 0.5) for m in (0, 1, 7, 59)}
    back = blocks.decode_minutes(HOUR, blocks.encode_minutes(HOUR, Minutes.of(minutes)))
    assert back.as_dict() == minutes
    store.append([Sample("host", HOUR + 5.0, {"host.load1": 1.0})])
    store.append([Sample("host", HOUR + 7200.0 + 5, {"host.load1": 3.0})])   # an empty hour between
    store.rollup(now=HOUR + 7200 + 120)
    [rows] = store.rollups("host.load1", HOUR, HOUR + 3 * 3600).values()
    assert [(r["minute"], r["avg"]) for r in rows] == [(HOUR, 1.0), (HOUR + 7200, 3.0)]
    with HistoryReads(store.connect()) as reads:
        day = reads.rolled_series("host.load1", "", HOUR, HOUR + 3 * 3600, (), 1.0)
        assert (day.minutes, day.n, day.lo_at, day.hi_at) == (2, 2, HOUR, HOUR + 7200)


def test_a_label_set_that_appears_late_is_replayed_rolled_up_and_known_to_other_processes(tmp_path):
    writer, reader = Store(tmp_path), Store(tmp_path)
    try:
        for i in range(120):
            tick = [Sample("queue", HOUR + i, {"queue.pending": float(i)}, {"queue": "emails"})]
            if i >= 90:                                    # a queue added to the config
                tick.append(Sample("queue", HOUR + i, {"queue.pending": 7.0}, {"queue": "late"}))
            writer.append(tick)
        assert reader.knows("queue.pending")
        late = [s for s in reader.after(0) if s.labels == {"queue": "late"}]
        assert [s.ts for s in late] == [HOUR + i for i in range(90, 120)]
        writer.rollup(now=HOUR + 130)
        got = reader.rollups("queue.pending", HOUR, HOUR + 3600, {"queue": "late"})
        assert [(r["minute"], r["n"]) for r in got['queue.pending{queue="late"}']] == \
            [(HOUR + 60, 30)]
    finally:
        writer.close()
        reader.close()


def test_the_p95_of_whole_hours_is_within_one_percent_of_the_exact_value(store):
    rnd = random.Random(15)
    values = []
    for i in range(3 * 3600 // 5):                         # three hours at 5 s, long-tailed
        v = round(rnd.lognormvariate(3, 1), 2)
        values.append(v)
        store.append([Sample("app", HOUR + 5.0 * i, {"app.response_ms": v}, {"probe": "home"})])
    store.rollup(now=HOUR + 3 * 3600 + 60)
    with HistoryReads(store.connect()) as reads:
        for hours in (1, 2, 3):
            r = reads.rolled_series("app.response_ms", '{"probe":"home"}', HOUR,
                                    HOUR + 3600 * hours, (), 1.0)
            window = sorted(values[:hours * 720])
            exact = window[math.floor(0.95 * (len(window) - 1))]
            assert r.n == len(window) and r.hi == window[-1]
            assert abs(sketch.quantile(r.sketch, 0.95, r.lo, r.hi) - exact) / exact < 0.01


def test_an_explicit_first_sequence_number_numbers_the_tick_from_it(store):
    [a] = store.append([Sample("host", 1.0, {"host.cpu_percent": 1.0})])
    buffered = store.append([Sample("host", 2.0, {"host.cpu_percent": 2.0}),
                             Sample("host", 2.0, {"host.disk_percent": 9.0}, {"mount": "/"})],
                            first_seq=a.seq + 10)
    assert [s.seq for s in buffered] == [a.seq + 10, a.seq + 11]
    [c] = store.append([Sample("host", 3.0, {"host.cpu_percent": 3.0})])
    assert c.seq == a.seq + 12
    assert [s.seq for s in store.after(a.seq)] == [a.seq + 10, a.seq + 11, a.seq + 12]
    with pytest.raises(ValueError):
        store.append([Sample("host", 4.0, {"host.cpu_percent": 4.0})], first_seq=a.seq + 11)
    assert store.last_seq() == c.seq


def test_an_append_spanning_hours_is_read_back_by_time_range(store):
    batch = [Sample("db", HOUR + 30.0 * i, {"db.up": 1.0, "db.x": float(i)}) for i in range(240)]
    stored = store.append(batch)
    assert [s.seq for s in stored] == list(range(stored[0].seq, stored[0].seq + 240))
    mid = store.between(HOUR + 3000, HOUR + 4000)
    assert [s.values["db.x"] for s in mid] == [float(i) for i in range(100, 134)]
    assert store.prune(now=HOUR + 7200 + 48 * 3600) == 240


def test_the_bulk_paths_read_back_as_the_tick_and_rollup_paths_do(tmp_path):
    ticks = [[Sample("cache", HOUR + s, {"cache.hit_rate": round(80 + (s % 7) / 3, 2)}),
              Sample("queue", HOUR + s, {"queue.pending": float(s % 5)}, {"queue": "q"})]
             for s in range(600)]
    one, bulk = Store(tmp_path / "one"), Store(tmp_path / "bulk")
    try:
        for t in ticks:
            one.append(t)
        assert bulk.append_many(ticks) == 1200
        assert [(s.seq, s.values) for s in bulk.after(0)] == [(s.seq, s.values) for s in one.after(0)]
        one.rollup(now=HOUR + 610)
        rolled = list(one.rollup_metrics_between(HOUR, HOUR + 3600))
        minutes: dict[tuple[str, str], dict[int, tuple[int, float, float, float]]] = {}
        for m, lab, minute, n, total, lo, hi in rolled:
            minutes.setdefault((m, lab.get("queue", "")), {})[minute] = (n, total, lo, hi)
        bulk.write_rollup_blocks(
            [HourBlock(m, {"queue": q} if q else {}, HOUR, rows,
                       sketch.build(t[0 if m.startswith("cache") else 1].values[m]
                                    for t in ticks[:600]))
             for (m, q), rows in minutes.items()], rolled_until=HOUR + 600)
        assert list(bulk.rollup_metrics_between(HOUR, HOUR + 3600)) == rolled
        with HistoryReads(one.connect()) as a, HistoryReads(bulk.connect()) as b:
            assert a.rolled_until() == b.rolled_until() == HOUR + 600
            assert a.rolled_series("cache.hit_rate", "", HOUR, HOUR + 3600, (), 1.0) == \
                b.rolled_series("cache.hit_rate", "", HOUR, HOUR + 3600, (), 1.0)
    finally:
        one.close()
        bulk.close()


def test_a_file_of_a_newer_schema_is_refused_in_one_line(tmp_path, store_backend):
    store = Store(tmp_path)
    conn = store.connect()
    if store_backend == "postgresql":       # the history area's version (migrations.py)
        conn.execute("UPDATE schema_version SET version = version + 1 WHERE area = 'history'")
    else:
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'history.schema'")
    conn.close()
    store.close()
    with pytest.raises((SchemaTooNew, migrations.SchemaTooNew)) as e:
        Store(tmp_path)
    assert ("history schema 3" in str(e.value) or "'history' is at version 2" in str(e.value))
    assert "\n" not in str(e.value)


@only_sqlite
def test_sequence_numbers_go_on_from_a_version_1_file(tmp_path):
    # Numbering continues past the previous layout's samples, also once they are converted.
    conn = sqlite3.connect(str(tmp_path / "history.sqlite3"))
    conn.executescript("CREATE TABLE samples (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL,"
                       " source TEXT, labels TEXT, vals TEXT, error TEXT);"
                       "INSERT INTO samples VALUES (41, 1.0, 'host', '', '{}', NULL);")
    conn.close()
    store = Store(tmp_path)
    try:
        assert store.last_seq() == 41
    finally:
        store.close()
    store = Store(tmp_path)       # converted (nothing recent to keep): the floor stays
    try:
        assert store.last_seq() == 41
        [s] = store.append([Sample("host", 2.0, {"host.cpu_percent": 1.0})])
        assert s.seq == 42
    finally:
        store.close()


def test_the_hours_summaries_equal_their_minutes_as_the_rollup_job_and_the_bulk_path_write_them(
        tmp_path):
    """Windows of days read each hour's stored summary instead of its minutes: it must be what
    the minutes say, whether the block grew a minute at a time (the rollup job) or was written
    whole (the bulk path)."""
    store = Store(tmp_path)
    hour = int(time.time() // 3600) * 3600 - 5 * 3600
    rnd = random.Random(3)
    try:
        for t in range(hour, hour + 2 * 3600, 10):            # two hours at 10 s, rolled up
            store.append([Sample("host", t, {"host.cpu_percent": round(rnd.uniform(0, 99), 1)})])
        store.rollup(hour + 2 * 3600 + 60)
        minutes = {hour + 2 * 3600 + 60 * i: (1, float(i), float(i), float(i)) for i in range(60)}
        store.write_rollup_blocks([HourBlock("queue.pending", {"queue": "q"}, hour + 2 * 3600,
                                             minutes, sketch.build(range(60)))])
        since, until = hour, hour + 3 * 3600
        hours = {(m, lab): c for m, lab, c, _ in store.rollup_hour_columns(since, until, 3600)}
        for (metric, _labels), c in hours.items():
            [rows] = store.rollups(metric, since, until - 1).values()
            for h, n, total, lo, hi in zip(c.minute, c.n, c.total, c.lo, c.hi):
                mine = [r for r in rows if h <= r["minute"] < h + 3600]
                assert n == sum(r["n"] for r in mine)
                assert total == pytest.approx(sum(r["avg"] * r["n"] for r in mine))
                assert (lo, hi) == (min(r["min"] for r in mine), max(r["max"] for r in mine))
        assert sorted(len(c.minute) for c in hours.values()) == [1, 2]
        # Buckets of two hours merge the summaries.
        [(_, _, c2, _)] = [x for x in store.rollup_hour_columns(since, until, 7200)
                           if x[0] == "host.cpu_percent"]
        one = hours[("host.cpu_percent", "")]
        assert c2.n == [sum(one.n)] and c2.hi == [max(one.hi)]
    finally:
        store.close()


def test_a_taken_sequence_number_is_an_integrity_error_as_a_taken_key_is(store):
    """What the outage buffer catches to drop a tick another process numbered meanwhile."""
    [a] = store.append([Sample("host", 1.0, {"host.cpu_percent": 1.0})])
    with pytest.raises(sqlite3.IntegrityError):
        store.append([Sample("host", 2.0, {"host.cpu_percent": 2.0})], first_seq=a.seq)


def test_pruning_everything_twice_keeps_the_numbering_going(store):
    [a] = store.append([Sample("host", 1.0, {"host.cpu_percent": 1.0})])
    store.prune(now=10 ** 9)
    store.prune(now=10 ** 9)                    # nothing left to prune: the floor must stay
    assert store.last_seq() == a.seq
    [b] = store.append([Sample("host", 2.0, {"host.cpu_percent": 1.0})])
    assert b.seq == a.seq + 1


def test_a_range_another_process_rolled_up_meanwhile_is_not_counted_twice(tmp_path, monkeypatch):
    """Two collectors during a leader handover may run the rollup job at once: the blocks add
    what they are given, so the second must see the first's watermark and skip the range."""
    a, b = Store(tmp_path), Store(tmp_path)
    hour = int(time.time() // 3600) * 3600 - 2 * 3600
    try:
        for t in range(hour, hour + 600, 10):
            a.append([Sample("host", t, {"host.cpu_percent": 1.0})])
        real_roll = rollups.roll
        calls = {"n": 0}

        def roll_after_the_other(reads, start, end):       # fault injection: b commits first
            calls["n"] += 1
            if calls["n"] == 1:
                b.rollup(hour + 700)
            return real_roll(reads, start, end)

        monkeypatch.setattr(rollups, "roll", roll_after_the_other)
        a.rollup(hour + 700)
        monkeypatch.setattr(rollups, "roll", real_roll)
        [rows] = a.rollups("host.cpu_percent", hour, hour + 600).values()
        assert [r["n"] for r in rows] == [6] * 10           # six samples a minute, once
    finally:
        a.close()
        b.close()


def test_a_reader_catches_up_with_names_another_process_adds_while_it_reads(tmp_path):
    """A store view (a long read in an OS thread) reads the catalog while the collector adds a
    label set and a shape: both or neither, never a shape whose label set it missed."""
    writer = Store(tmp_path)
    reader = Store(tmp_path)
    conn = reader.connect()

    class AddsAfterTheFirstRead:            # fault injection: a write between two of the reads
        def __init__(self) -> None:
            self.reads = 0

        @property                           # type: ignore[misc]
        def __class__(self):                # the connection's engine, as isinstance sees it
            return type(conn)

        def __getattr__(self, name):
            return getattr(conn, name)

        def execute(self, sql, *args):
            out = conn.execute(sql, *args)
            if sql.lstrip().startswith("SELECT"):
                self.reads += 1
                if self.reads == 1:
                    rows = out.fetchall()
                    writer.append([Sample("agents", 1.0, {"host.cpu_percent": 1.0},
                                          {"host": f"late-{len(rows)}"})])
                    return iter(rows)
            return out

    try:
        catalog = Catalog()
        catalog.refresh(AddsAfterTheFirstRead())      # type: ignore[arg-type]
        assert all(s.labels_text in catalog.labels_by_text for s in catalog.shapes.values())
        catalog.refresh(conn)                          # the next read sees what was added
        assert any(s.labels == {"host": "late-0"} for s in catalog.shapes.values())
    finally:
        conn.close()
        reader.close()
        writer.close()


def test_a_chart_s_buckets_hold_what_each_series_minutes_hold(store):
    """/api/history's read of a day (Store.rollup_bucket_columns): every series' minutes, and
    merged into wider buckets, whether the blocks are read a series at a time or all at once
    (PostgreSQL: one query)."""
    minutes = {HOUR + 60 * i: (2, 2.0 * i + 1, float(i), float(i) + 1) for i in range(60)}
    store.write_rollup_blocks([HourBlock("queue.pending", {"queue": f"q{k}"}, HOUR + 3600 * h,
                                         {m + 3600 * h: (n, s + k, lo, hi + k)
                                          for m, (n, s, lo, hi) in minutes.items()}, {})
                               for k in range(3) for h in range(2)])
    since, until = HOUR + 1800, HOUR + 5400
    for width in (60, 300):
        got = {lab: (list(c.minute), c.n, c.total, c.lo, c.hi)
               for _, lab, c, _ in store.rollup_bucket_columns(since, until, width)}
        want = {}
        for k in range(3):
            rows = store.rollups("queue.pending", since, until - 1, {"queue": f"q{k}"})
            [mins] = rows.values()
            keys = sorted({HOUR + 1800 + (r["minute"] - since) // width * width for r in mins})
            part = [[r for r in mins if key <= r["minute"] < key + width] for key in keys]
            want[f'{{"queue":"q{k}"}}'] = (keys, [sum(r["n"] for r in p) for p in part],
                                           [sum(r["avg"] * r["n"] for r in p) for p in part],
                                           [min(r["min"] for r in p) for p in part],
                                           [max(r["max"] for r in p) for p in part])
        assert got == want
