"""Ticks the store cannot write (dashboard/store/spool.py), on a real disk that fills up: they
are numbered on from the last stored one, kept ``store_buffer_s``, dropped beyond that (counted,
and said once a minute), and written with their numbers once space is back."""
from __future__ import annotations

import logging

from dashboard.model import Sample
from dashboard.store import Store
from dashboard.store.spool import Spool
from tests.support.alert_helpers import Clock
from tests.support.disk import fill, small_tmpfs

KEEP_S = 10


def tick(i: int, ts: float) -> list[Sample]:
    return [Sample("host", ts, {"host.cpu_percent": float(i)}),
            Sample("host", ts, {"host.disk_percent": float(i)}, {"mount": "/"})]


def test_append_with_first_seq_stores_those_numbers_and_later_appends_follow_them(tmp_path):
    store = Store(tmp_path)
    try:
        assert [s.seq for s in store.append(tick(1, 1.0))] == [1, 2]
        assert [s.seq for s in store.append(tick(2, 2.0), first_seq=7)] == [7, 8]
        assert [s.seq for s in store.append(tick(3, 3.0))] == [9, 10]
        assert [(s.seq, s.ts) for s in store.after(0)] == [
            (1, 1.0), (2, 1.0), (7, 2.0), (8, 2.0), (9, 3.0), (10, 3.0)]
    finally:
        store.close()


def test_a_full_disk_numbers_ticks_on_keeps_the_last_store_buffer_s_and_writes_them_back(
        tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="dashboard.store.spool")
    clock = Clock(1_800_000_000.0)
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        store = Store(disk / "data")
        try:
            spool = Spool(store, KEEP_S, clock=clock)
            handed: list[Sample] = spool.append(tick(0, clock.now))
            assert spool.up
            filler = fill(disk)
            for i in range(1, 200):              # until a write needs a byte the disk lacks
                handed += spool.append(tick(i, clock.advance(1)))
                if not spool.up:
                    break
            assert not spool.up, "the store kept writing on a full disk"
            stored_before = [s.seq for s in store.after(0)]
            for _ in range(70):                  # 70 s of ticks, past a minute and the buffer
                handed += spool.append(tick(len(handed) // 2, clock.advance(1)))

            seqs = [s.seq for s in handed]
            assert seqs == list(range(1, len(handed) + 1))       # numbered on, no gap
            st = spool.status()
            assert st["status"] == "error" and "full" in st["error"]
            assert st["buffered_ticks"] == KEEP_S + 1 and st["buffered_s"] == KEEP_S
            kept = seqs[-2 * (KEEP_S + 1):]
            lost = set(seqs) - set(stored_before) - set(kept)
            assert st["dropped_samples"] == len(lost) > 0
            said = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
            assert len(said) == 2, said                           # once a minute
            # A page resuming now gets the stored samples and the kept ones; the dropped are
            # a gap, never made up.
            assert [s.seq for s in spool.after(0)] == stored_before + kept

            filler.unlink()
            handed += spool.append(tick(999, clock.advance(1)))
            assert spool.up and spool.status()["buffered_ticks"] == 0
        finally:
            store.close()
        store = Store(disk / "data")
        try:
            back = store.after(0)
        finally:
            store.close()
    # The last store_buffer_s of ticks (the recovering one included) are stored once, with
    # the numbers and contents the page got; the older ones are counted as dropped.
    written = [s.seq for s in handed[-2 * (KEEP_S + 1):]]
    assert [s.seq for s in back] == stored_before + written
    assert spool.dropped_samples == len(handed) - len(back)
    by_seq = {s.seq: s for s in handed}
    assert all((s.ts, s.labels, s.values) == (by_seq[s.seq].ts, by_seq[s.seq].labels,
                                              by_seq[s.seq].values) for s in back)
    assert "store writes again" in caplog.text
