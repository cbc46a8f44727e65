"""The history on PostgreSQL when the server goes away (issue 16): a stopped server degrades as a
full disk does (dashboard/store/spool.py): ticks are numbered on in memory, kept
``store_buffer_s``, and written with their numbers once the server answers again; the store's
connections come back by themselves."""
from __future__ import annotations

import logging

from dashboard.model import Sample
from dashboard.store import Store
from dashboard.store.spool import Spool
from tests.support.alert_helpers import Clock
from tests.support.pg import PgCluster

KEEP_S = 10


def tick(i: int, ts: float) -> list[Sample]:
    return [Sample("host", ts, {"host.cpu_percent": float(i)}),
            Sample("queue", ts, {"queue.pending": float(i)}, {"queue": "q1"})]


def test_a_stopped_server_keeps_the_last_store_buffer_s_of_ticks_and_writes_them_back(
        pg_cluster: PgCluster, pg_url: str, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="dashboard.store.spool")
    clock = Clock(1_800_000_000.0)
    store = Store(tmp_path, store_url=pg_url)
    web = Store(tmp_path / "web", store_url=pg_url)      # another machine's instance
    try:
        spool = Spool(store, KEEP_S, clock=clock)
        handed: list[Sample] = []
        for i in range(5):
            handed += spool.append(tick(i, clock.advance(1)))
        stored_before = [s.seq for s in handed]
        pg_cluster.stop()
        for i in range(5, 40):                    # 35 s without a server: past the buffer
            handed += spool.append(tick(i, clock.advance(1)))
        assert not spool.up and "PostgreSQL" in (spool.status()["error"] or "")
        seqs = [s.seq for s in handed]
        assert seqs == list(range(1, len(handed) + 1))         # numbered on, no gap
        kept = seqs[-2 * (KEEP_S + 1):]
        assert [s.seq for s in spool.after(0)] == kept          # resume from memory meanwhile

        pg_cluster.start()
        handed += spool.append(tick(99, clock.advance(1)))
        assert spool.up and spool.status()["buffered_ticks"] == 0
        back = web.after(0)
        written = [s.seq for s in handed[-2 * (KEEP_S + 1):]]
        assert [s.seq for s in back] == stored_before + written
        by_seq = {s.seq: s for s in handed}
        assert all((s.ts, s.labels, s.values) == (by_seq[s.seq].ts, by_seq[s.seq].labels,
                                                  by_seq[s.seq].values) for s in back)
        assert spool.dropped_samples == len(handed) - len(back)
        assert "store writes again" in caplog.text
        # The store's own connection is back: the next tick follows on.
        [a, b] = store.append(tick(100, clock.advance(1)))
        assert (a.seq, b.seq) == (handed[-1].seq + 1, handed[-1].seq + 2)
    finally:
        if not pg_cluster.running:
            pg_cluster.start()
        store.close()
        web.close()
