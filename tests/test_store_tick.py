"""The store's write of a large tick (issue 9: 50 hosts and 200 queues in one tick)."""
from __future__ import annotations

import time

import pytest

from dashboard.model import Sample
from dashboard.store import Store

# Each test on SQLite, then on PostgreSQL (tests/support/pg.py).
pytestmark = pytest.mark.usefixtures("store_backend")


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


def test_a_sample_with_a_non_finite_time_is_dropped_and_the_rest_of_the_tick_is_stored(tmp_path):
    """Whatever the source (an agent's entry, a buggy collector): a sample stamped inf/nan would
    never be pruned and would put ``Infinity`` (not JSON) into history and live messages; an
    integer too large for a float must not fail the whole tick."""
    store = Store(tmp_path)
    try:
        now = time.time()
        stored = store.append([Sample("agents", float("inf"), {"host.cpu_percent": 1.0}),
                               Sample("agents", float("nan"), {"host.cpu_percent": 2.0}),
                               Sample("agents", now, {"host.cpu_percent": 10**400, "host.load1": 0.5}),
                               Sample("host", now, {"host.cpu_percent": 3.0})])
        assert [(s.source, s.values) for s in stored] == \
            [("agents", {"host.load1": 0.5}), ("host", {"host.cpu_percent": 3.0})]
        assert [(s.seq, s.ts, s.values) for s in store.after(0)] == \
            [(s.seq, s.ts, s.values) for s in stored]
        assert store.dropped_samples == 2
    finally:
        store.close()
