"""The store's write of a large tick (issue 9: 50 hosts and 200 queues in one tick)."""
from __future__ import annotations

import time

from dashboard.model import Sample
from dashboard.store import Store


def big_tick(ts: float, n: int = 300) -> list[Sample]:
    return [Sample("queue", ts, {"queue.pending": float(i), "queue.up": 1.0}, {"queue": f"q{i:03d}"})
            for i in range(n)]


def test_each_sample_of_a_large_tick_gets_the_sequence_number_it_is_stored_under(tmp_path):
    store = Store(tmp_path)
    try:
        now = time.time()
        store.append([Sample("host", now - 1, {"host.cpu_percent": 5.0})])
        stored = store.append(big_tick(now))
        replay = store.after(stored[0].seq - 1)
        assert [(s.seq, s.labels, s.values) for s in replay] == \
            [(s.seq, s.labels, s.values) for s in stored]
        assert [s.seq for s in stored] == list(range(stored[0].seq, stored[0].seq + 300))
        # The newest sample of each series is the one /api/latest and /metrics read.
        latest = {s.labels.get("queue"): s.seq for s in store.latest() if s.source == "queue"}
        assert latest["q123"] == stored[123].seq
    finally:
        store.close()


def test_values_of_every_kind_are_stored_as_numbers_or_left_out(tmp_path):
    store = Store(tmp_path)
    try:
        [s] = store.append([Sample("db", 1.0, {"db.up": True, "db.n": 3, "db.x": float("inf"),
                                               "db.y": None, "db.z": 0.5})])
        [back] = store.after(s.seq - 1)
        assert s.values == back.values == {"db.up": 1.0, "db.n": 3.0, "db.z": 0.5}
        assert all(type(v) is float for v in back.values.values())
    finally:
        store.close()
