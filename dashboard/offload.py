"""Blocking work off the event loop: the one helper every long call of a web worker goes through.

The web worker is one eventlet (or gevent) hub: whatever runs on it without yielding (a scrypt
check, a SQLite read of a day of rollups, decoding its rows) freezes every socket, ``/healthz``
and, in a single process, the collection (issue 15: one 24 h history read froze the live charts
of every other viewer for 6.5 s). ``run`` hands such work to a real OS thread, picked by the
async mode the worker was started in: eventlet's ``tpool``, gevent's hub thread pool, or, under
plain threading (tests, the collector-only process), a plain call, since the request already has
a thread of its own. SQLite and zlib release the GIL, so the loop keeps going beside them.

The async library is only used when the worker already loaded and patched it (wsgi.py,
wsgi_gevent.py); nothing here imports it otherwise. Work handed over must not touch the hub's
own objects: green locks, green sockets, or a SQLite connection the hub uses: ``read`` runs a
store read on a connection of its own (``Store.reading``).
"""
from __future__ import annotations

import gc
import importlib
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")


def _pool() -> Callable[[Callable[..., Any], tuple], Any] | None:
    """How to run a call in an OS thread in this process, or None when no hub is in the way."""
    ev = sys.modules.get("eventlet.patcher")
    if ev is not None and ev.is_monkey_patched("thread"):
        tpool = importlib.import_module("eventlet.tpool")
        return lambda fn, args: tpool.execute(fn, *args)
    gm = sys.modules.get("gevent.monkey")
    if gm is not None and gm.is_module_patched("threading"):
        return lambda fn, args: sys.modules["gevent"].get_hub().threadpool.apply(fn, args)
    return None


def run(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a real OS thread when the process runs on an event loop; the calling
    green thread waits (others run meanwhile) and gets the result or the exception."""
    pool = _pool()
    return fn(*args) if pool is None else pool(fn, args)


def read(store: Any, fn: Callable[..., T], *args: Any) -> T:
    """``fn(view, *args)`` off the loop, ``view`` being ``store`` on a connection of its own
    (``store.reading()``): the history, series, reports, fleet and resume reads (issue 15)."""
    def work() -> T:
        with store.reading() as view:
            return fn(view, *args)
    return run(work)


_pausing: list[int] = []     # reads holding the collector off (list ops are atomic under the GIL)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector held off while a long read builds its answer. Its young
    generation held the answer's growing lists (a day of 300 series: 432,000 numbers a column),
    and each collection walked them again: 25-50 ms of a 250 ms read. Reference counting frees
    everything as usual meanwhile; only cycles wait for the last such read to end. A collector
    someone else turned off is left off."""
    if not gc.isenabled() and not _pausing:
        yield
        return
    _pausing.append(1)
    gc.disable()
    try:
        yield
    finally:
        _pausing.pop()
        if not _pausing:
            gc.enable()
