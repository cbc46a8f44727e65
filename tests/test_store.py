from __future__ import annotations

import threading

import pytest

from dashboard.model import Sample
from dashboard.store import Store, sketch
from dashboard.store.history_reads import HistoryReads
from tests.support.util import kill_9_writer

# Each test on SQLite, then on PostgreSQL (tests/support/pg.py).
pytestmark = pytest.mark.usefixtures("store_backend")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path)
    yield s
    s.close()


def host(ts, cpu, **extra):
    return Sample("host", ts, {"host.cpu_percent": cpu, **extra})


def test_append_gives_increasing_sequence_numbers_and_after_replays_them(store):
    first = store.append([host(100.0, 10), Sample("host", 100.0, {"host.disk_percent": 40}, {"mount": "/"})])
    second = store.append([host(101.0, 20)])
    assert [s.seq for s in first + second] == sorted({s.seq for s in first + second})
    replay = store.after(first[0].seq)
    assert [s.seq for s in replay] == [first[1].seq, second[0].seq]
    assert replay[0].labels == {"mount": "/"}


def test_non_numbers_are_not_stored_as_values(store):
    [s] = store.append([Sample("db", 1.0, {"db.up": 1.0, "db.x": float("nan"), "db.y": None})])
    assert s.values == {"db.up": 1.0}


def test_series_filters_by_metric_time_and_labels(store):
    store.append([Sample("host", 10.0, {"host.disk_percent": 40}, {"mount": "/"}),
                  Sample("host", 10.0, {"host.disk_percent": 70}, {"mount": "/var"})])
    store.append([Sample("host", 20.0, {"host.disk_percent": 41}, {"mount": "/"})])
    assert store.series("host.disk_percent", 0, 30, {"mount": "/"}) == {
        'host.disk_percent{mount="/"}': [(10.0, 40.0), (20.0, 41.0)]}
    assert store.series("host.disk_percent", 15, 30) == {'host.disk_percent{mount="/"}': [(20.0, 41.0)]}


def test_rollup_keeps_count_min_avg_max_and_a_p95_per_minute(store):
    t0 = 1_800_000_000 // 60 * 60
    values = list(range(60))                                   # 0..59 in the first minute
    for i, v in enumerate(values):
        store.append([host(t0 + i, float(v))])
    store.append([host(t0 + 60, 1000.0)])                      # the next minute, not complete yet
    assert store.rollup(now=t0 + 62) == 0                      # minute ended, late samples may come
    assert store.rollup(now=t0 + 66) == 1                      # only the complete minute
    [(key, rows)] = store.rollups("host.cpu_percent", t0, t0 + 3600).items()
    (r,) = rows
    assert (r["n"], r["min"], r["max"], r["avg"]) == (60, 0.0, 59.0, 29.5)
    # The sketch is kept per hour (issue 15); this hour holds the one minute rolled up.
    with HistoryReads(store.connect()) as reads:
        hour = reads.rolled_series("host.cpu_percent", "", t0, t0 + 3600, (), 1.0)
    assert abs(sketch.quantile(hour.sketch, 0.95) - 56) <= 1.2
    assert store.rollup(now=t0 + 200) == 2                     # catches up, idempotently
    assert len(store.rollups("host.cpu_percent", t0, t0 + 3600)[key]) == 2


def test_prune_removes_raw_samples_past_retention_and_keeps_recent_ones(tmp_path):
    s = Store(tmp_path, raw_retention_h=1)
    s.append([host(1000.0, 1)])
    s.append([host(1000.0 + 3000, 2)])
    s.append([host(1000.0 + 3700, 3)])
    assert s.prune(now=1000.0 + 3700) == 1
    assert [x.values["host.cpu_percent"] for x in s.between(0)] == [2.0, 3.0]


def test_history_survives_a_restart_and_sequence_numbers_keep_growing(tmp_path):
    a = Store(tmp_path)
    [x] = a.append([host(1.0, 5)])
    a.close()
    b = Store(tmp_path)
    [y] = b.append([host(2.0, 6)])
    assert y.seq > x.seq
    assert b.last_seq() == y.seq
    assert [s.values["host.cpu_percent"] for s in b.between(0)] == [5.0, 6.0]


def test_kill_9_loses_at_most_the_tick_being_written(tmp_path):
    # A writer process prints every tick's sequence number once its transaction committed;
    # after SIGKILL every printed tick must be in the file.
    committed = kill_9_writer(tmp_path, """
        out = s.append([Sample("host", time.time(), {"host.cpu_percent": i}),
                        Sample("host", time.time(), {"host.disk_percent": i}, {"mount": "/"})])
        print(out[-1].seq, flush=True)
    """, ticks=300)
    s = Store(tmp_path)
    stored = {x.seq for x in s.between(0)}
    assert set(committed) <= stored
    # Ticks are whole: no tick has one sample without the other.
    assert len(stored) % 2 == 0


def test_a_second_process_on_the_same_file_learns_metrics_stored_after_it_started(tmp_path):
    # A web-only instance opens the store before the collector leader stores a new metric.
    web = Store(tmp_path)
    collector = Store(tmp_path)
    collector.append([Sample("queue", 5.0, {"queue.drain_eta_s": 30.0}, {"queue": "emails"})])
    assert web.knows("queue.drain_eta_s")
    assert web.series("queue.drain_eta_s", 0) == {'queue.drain_eta_s{queue="emails"}': [(5.0, 30.0)]}
    assert not web.knows("queue.no_such_metric")


def test_an_instance_with_a_data_dir_of_its_own_reads_the_collector_s_history(tmp_path, store_backend):
    # On PostgreSQL a web instance on another machine (nothing shared on disk) serves the
    # collector's history, resume and rollups; on SQLite the two share the data dir.
    collector = Store(tmp_path / "a")
    web = Store(tmp_path / ("b" if store_backend == "postgresql" else "a"))
    try:
        t0 = 1_800_000_000.0
        for i in range(180):
            collector.append([host(t0 + i, float(i)),
                              Sample("queue", t0 + i, {"queue.pending": 1.0}, {"queue": "q"})])
        collector.rollup(now=t0 + 180 + 60)
        assert web.last_seq() == collector.last_seq() == 360
        assert [s.seq for s in web.after(350)] == list(range(351, 361))
        assert web.knows("queue.pending")
        [minutes] = web.rollups("host.cpu_percent", t0, t0 + 180).values()
        assert [m["n"] for m in minutes] == [60, 60, 60]
        with web.reading() as view:                   # a long read's own connection
            assert len(view.rows_since(t0)) == 360
    finally:
        collector.close()
        web.close()


def test_two_writers_at_once_number_every_sample_once_and_a_follower_misses_none(tmp_path):
    # A leader handover overlaps: two processes append at once. Numbers stay unique and
    # become visible in order, so a resume cursor that follows along never steps past one.
    writers = [Store(tmp_path), Store(tmp_path)]
    follower = Store(tmp_path)
    done = threading.Event()
    seen: list[int] = []
    failures: list[BaseException] = []

    def write(store: Store, name: str) -> None:
        try:
            for i in range(150):
                store.append([Sample(name, 1e9 + i, {"host.cpu_percent": float(i)}, {"k": str(k)})
                              for k in range(3)])
        except BaseException as e:       # noqa: BLE001 - reported below
            failures.append(e)

    def follow() -> None:
        cursor = 0
        while True:
            last = done.is_set()
            for s in follower.after(cursor):
                seen.append(s.seq)
                cursor = s.seq
            if last:
                return

    threads = [threading.Thread(target=write, args=(w, f"w{n}")) for n, w in enumerate(writers)]
    reader = threading.Thread(target=follow)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    reader.join(120)
    try:
        assert not failures
        assert seen == list(range(1, 2 * 150 * 3 + 1))
        assert sorted(s.seq for s in follower.between(0)) == seen
    finally:
        for s in (*writers, follower):
            s.close()
