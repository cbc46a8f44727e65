"""Long reads hold the cyclic garbage collector off while they build an answer
(``offload.gc_paused``); it must be back on once the last of them ends, or cycles would pile up
for the life of the worker."""
from __future__ import annotations

import gc
import threading

from dashboard import offload


def test_the_collector_is_back_on_after_reads_that_overlap_and_after_one_that_fails():
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def long_read() -> None:
        with offload.gc_paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=long_read)
    t.start()
    inside.wait(10)
    with offload.gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()           # the other read still builds its answer
    release.set()
    t.join(10)
    assert gc.isenabled()
    try:
        with offload.gc_paused():
            raise ValueError("the read failed")
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_collector_turned_off_elsewhere_stays_off():
    gc.disable()
    try:
        with offload.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
