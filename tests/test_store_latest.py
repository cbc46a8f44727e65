"""The newest sample of each series (/api/latest, /metrics, the fleet view) as the store keeps it
per source's newest tick (dashboard/store/latest.py), and what a tick's values are stored as."""
from __future__ import annotations

import json
import random

import pytest

from dashboard.model import Sample
from dashboard.store import Store
from dashboard.store.catalog import Catalog
from dashboard.store.ticks import TickReads
from tests.support.util import kill_9_writer

# Each test on SQLite, then on PostgreSQL (tests/support/pg.py).
pytestmark = pytest.mark.usefixtures("store_backend")


def newest_by_brute_force(store: Store) -> dict[tuple[str, str], int]:
    """Every stored sample read back in sequence order: the last one of each series wins."""
    conn = store.history_connect()
    try:
        return {(shape.source, shape.labels_text): seq
                for seq, shape, *_ in TickReads(conn, Catalog()).samples(float("-inf"))}
    finally:
        conn.close()


def latest_seqs(store: Store) -> dict[tuple[str, str], int]:
    return {(s.source, json.dumps(s.labels, separators=(",", ":")) if s.labels else ""): s.seq
            for s in store.latest(within_s=1e12)}


def queues(ts: float, names, source: str = "queue") -> list[Sample]:
    return [Sample(source, ts, {"queue.pending": float(i)}, {"queue": n}) for i, n in enumerate(names)]


def test_a_queue_missing_from_the_newest_tick_keeps_its_last_sample_as_the_newest(tmp_path):
    store = Store(tmp_path)
    try:
        store.append(queues(1.0, ["a", "b", "c"]))
        second = store.append(queues(2.0, ["a", "b", "c"]))
        store.append(queues(3.0, ["a"]))                           # b and c went away
        store.append([Sample("queue", 4.0, {"queue.up": 0.0}, {}, "unreachable")])
        latest = {s.labels.get("queue"): s for s in store.latest(within_s=1e12)}
        assert latest["b"].seq == second[1].seq and latest["c"].seq == second[2].seq
        assert latest["a"].ts == 3.0 and latest[None].error == "unreachable"
        assert latest_seqs(store) == newest_by_brute_force(store)
    finally:
        store.close()


def test_latest_is_right_when_two_processes_take_turns_writing(tmp_path):
    # A collector leader hands over to a standby and takes back over: each one's memory of the
    # previous tick is stale when it writes again.
    rnd = random.Random(5)
    a, b = Store(tmp_path), Store(tmp_path)
    try:
        names = [f"q{i}" for i in range(8)]
        for i in range(60):
            writer = a if rnd.random() < 0.5 else b
            tick = queues(float(i), rnd.sample(names, rnd.randint(0, 8)))
            tick += queues(float(i), rnd.sample(names, rnd.randint(0, 3)), source="agents")
            if not tick or rnd.random() < 0.2:
                tick.append(Sample("queue", float(i), {"queue.up": 0.0}, {}, "down"))
            writer.append(tick)
            assert latest_seqs(a) == latest_seqs(b) == newest_by_brute_force(a), i
    finally:
        a.close()
        b.close()


def test_after_kill_9_the_newest_samples_are_those_of_the_committed_ticks(tmp_path):
    kill_9_writer(tmp_path, """
        names = range(10) if i % 3 else range(i % 7)     # queues come and go
        out = s.append([Sample("queue", float(i), {"queue.pending": float(i)}, {"queue": f"q{n}"})
                        for n in names] + [Sample("host", float(i), {"host.cpu_percent": 1.0})])
        print(out[-1].seq, flush=True)
    """, ticks=200)
    store = Store(tmp_path)
    try:
        assert latest_seqs(store) == newest_by_brute_force(store)
        store.append(queues(1e6, ["q1"]))
        assert latest_seqs(store) == newest_by_brute_force(store)
    finally:
        store.close()


def test_values_of_a_large_tick_read_back_as_written_whatever_the_metric_names(tmp_path):
    store = Store(tmp_path)
    try:
        odd = {'app.50%_"quoted"': 1.5, "app.},{": 2.0, "app.é": -0.0, "app.big": 1e300}
        tick = queues(1.0, [f"q{i}" for i in range(100)])
        tick[40] = Sample("app", 1.0, odd, {"probe": "x"})
        tick[70] = Sample("cache", 1.0, {"cache.clients": 4, "cache.nan": float("nan"), "cache.ok": 1.0})
        stored = store.append(tick)
        back = store.after(stored[0].seq - 1)
        assert [s.values for s in back] == [s.values for s in stored]
        assert back[40].values == odd
        assert back[70].values == {"cache.clients": 4.0, "cache.ok": 1.0}
    finally:
        store.close()
