"""Timing: one tick loop per collector interval, plus APScheduler for the maintenance jobs.

One thread per distinct interval wakes on the grid and hands each of its collectors a collection,
which runs in the collector's own thread; the collections that finish within ``gather_s`` are
published together as one tick (one store transaction, one alert pass, one Socket.IO event). The
loop never waits longer than that on any collector: one that is slower publishes from its own
thread when it finishes, one that raises or hangs yields a sample with ``<source>.up = 0`` and the
error (the loop wakes at its ``timeout_s`` to say so), and neither delays another collector. A
hung call is not started again while it is still hanging; each tick meanwhile reports "still not
answering" so the page and the alert engine see the outage as it lasts. (Issue 19: one APScheduler
job per collector -- its dispatch, an executor thread blocked on each collection and the hand-over
of seven ticks into one -- cost more than some of the collections.)

Everything here uses ``threading``, which eventlet and gevent monkey-patch into green threads, so
the module works the same in every async mode.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Callable, Sequence

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from dashboard import beat
from dashboard.collectors.base import Collector
from dashboard.config import redact
from dashboard.model import CollectorError, Reading, Sample

log = logging.getLogger(__name__)
# APScheduler logs every skipped run of a hung job at WARNING; we report hangs ourselves.
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)

Publish = Callable[[list[Sample]], object]       # what it returns is not used


class _Call:
    """One collection: started by a round, run by the collector's own thread, waited for."""

    def __init__(self, source: str, ts: float, late: Callable[["_Call"], None]) -> None:
        self.started = time.time()
        self.source = source
        self.ts = ts                 # the round's time stamp
        self.done = threading.Event()
        self.result: list[Reading] | None = None
        self.error: BaseException | None = None
        self.picked = False          # its thread has begun it
        # Set (under the runner's hand-over lock) once the round has stopped waiting for it;
        # the collector's thread then publishes it itself via ``late``.
        self.orphaned = False
        self.timed_out = False       # its time-out was published: the result is dropped
        self._late = late

    def run(self, collector: Collector) -> None:
        self.picked = True
        try:
            self.result = collector.collect()
        except BaseException as e:  # noqa: BLE001 - any failure becomes an error sample
            self.error = e
        finally:
            self.done.set()
            self._late(self)


class _CollectorThread:
    """The thread a collector's collections run in, one after the other, for as long as it lives.

    A thread per collection cost a thread's set-up and tear-down each tick (Thread, its start
    Event and the interpreter's bookkeeping): at 1 s ticks, measured as a tenth of the
    dashboard's whole CPU budget. A hung collection holds only this thread; the runner does not
    hand it another collection until the hung one returns.
    """

    def __init__(self, collector: Collector) -> None:
        self._collector = collector
        self._pending: _Call | None = None
        self._ready = threading.Semaphore(0)
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=f"collect-{collector.source}",
                                        daemon=True)
        self._thread.start()

    def start(self, call: _Call) -> None:
        self._pending = call
        self._ready.release()

    def stop(self) -> None:
        self._stopped = True
        self._ready.release()

    def _loop(self) -> None:
        while True:
            self._ready.acquire()
            call, self._pending = self._pending, None
            if self._stopped:
                if call is not None:           # handed over just as the runner stopped
                    call.error = CollectorError(f"{self._collector.source} collector stopped")
                    call.done.set()
                return
            if call is not None:
                call.run(self._collector)


def _only_when(func: Callable[[], object], when: Callable[[], bool]) -> Callable[[], object]:
    def run() -> object:
        return func() if when() else None
    run.__name__ = getattr(func, "__name__", "job")
    return run


def _error_text(e: BaseException) -> str:
    if isinstance(e, CollectorError):
        return str(e)
    # Unexpected exceptions are logged with their traceback but shown by type and message only.
    return f"{type(e).__name__}: {e}"


class CollectorRunner:
    def __init__(self, collectors: Sequence[Collector], publish: Publish,
                 clock: Callable[[], float] = time.time, gather_s: float = 0.0) -> None:
        self.collectors = list(collectors)
        self._publish = publish
        # A round starts the collections of one interval together; those done within
        # ``gather_s`` are published as one tick: one store transaction, one alert pass and one
        # Socket.IO event instead of one per collector (issue 9: 7 collectors at 1 s). The round
        # waits only while some are still running: a slower one does not hold the others back.
        self.gather_s = gather_s
        self._clock = clock
        self._inflight: dict[str, _Call] = {}
        self._threads: dict[str, _CollectorThread] = {}
        self._status: dict[str, dict] = {
            c.source: {"status": "starting", "last_sample_ts": None, "error": None,
                       "interval_s": c.interval_s} for c in self.collectors}
        self._scheduler: BackgroundScheduler | None = None
        self._anchor: datetime | None = None
        self._started_at: float | None = None
        self._stopped = False
        self._extra_jobs: list[tuple[Callable, dict]] = []
        # When each collector last answered (returned or raised within its timeout) and that
        # tick was published: what the watchdog (dashboard/watchdog.py) calls "ticking". A
        # collection that hangs, or a publish that sticks, leaves it behind.
        self._answered: dict[str, float] = {}
        self._handoff = threading.Lock()        # a call's done/orphaned/timed_out, loop vs thread
        self._loops: list[tuple[threading.Thread, threading.Event]] = []
        self._grid: tuple[float, float] | None = None   # (first tick, shortest interval): the beat

    # --- samples ---------------------------------------------------------------------------------

    def _samples(self, source: str, ts: float, readings: list[Reading]) -> list[Sample]:
        up_key = f"{source}.up"
        # A label set's error (one queue's driver message) may quote a DSN, as whole-collector
        # errors may: scrubbed the same way before it is stored, pushed or shown.
        out = [Sample(source, r.ts or ts, dict(r.values), dict(r.labels),
                      redact.scrub(r.error) if r.error else r.error) for r in readings]
        # "<source>.up" on the unlabelled sample says the collector reached its target.
        plain = next((s for s in out if not s.labels), None)
        if plain is None:
            out.insert(0, Sample(source, ts, {up_key: 1.0}))
        elif up_key not in plain.values:
            plain.values[up_key] = 1.0  # type: ignore[index]  # our own fresh dict
        self._status[source].update(status="ok", last_sample_ts=ts, error=None)
        return out

    def _error_sample(self, source: str, ts: float, error: str) -> Sample:
        error = redact.scrub(error) or error      # a driver message may quote a DSN (issue 7)
        self._status[source].update(status="error", last_sample_ts=ts, error=error)
        return Sample(source, ts, {f"{source}.up": 0.0}, {}, error)

    # --- the tick loop ---------------------------------------------------------------------------

    def _loop(self, interval: float, collectors: list[Collector], first: float,
              stop: threading.Event) -> None:
        """Every ``interval`` s from ``first`` (wall clock, the grid the maintenance jobs share):
        one round over ``collectors``. In between, wakes only at a pending call's time-out."""
        next_at = first
        while not stop.is_set():
            now = time.time()
            if now >= next_at:
                try:
                    self.collect_round(collectors)
                except Exception:  # noqa: BLE001 - a round's failure must not end the loop
                    log.exception("collection round failed")
                now = time.time()
                next_at += interval
                if next_at <= now:                 # fell behind: skip to the grid (coalesce)
                    next_at += interval * ((now - next_at) // interval + 1)
            wake = next_at
            for c in collectors:
                call = self._inflight.get(c.source)
                if call is not None and not call.timed_out and not call.done.is_set():
                    wake = min(wake, call.started + c.timeout_s)
            if stop.wait(max(0.0, wake - time.time())):
                return
            self._time_outs(collectors)

    def collect_round(self, collectors: Sequence[Collector],
                      wait_s: float | None = None) -> list[Sample]:
        """One round over ``collectors``, the one the tick loop runs every interval: hands each
        collector a collection (one still running within its time-out is skipped, one past it
        is reported as still not answering), publishes those done within ``wait_s`` (default
        ``gather_s``) as one tick and returns them. One not done by then publishes from its
        own thread when it ends. (Benches call it directly with a long ``wait_s``: one tick,
        timed, without the loop's thread; without the loop, no time-out is reported.)"""
        wait_s = self.gather_s if wait_s is None else wait_s
        ts = self._clock()
        batch: list[Sample] = []
        started: list[tuple[Collector, _Call]] = []
        for c in collectors:
            if self._stopped:                     # stop() ran meanwhile: start nothing more
                return []
            source = c.source
            call = self._inflight.get(source)
            if call is not None and not call.done.is_set():
                if call.timed_out:
                    batch.append(self._error_sample(
                        source, ts, f"{source} collector still not answering after "
                                    f"{ts - call.started:.0f} s"))
                continue                          # within its time-out: skipped this round
            call = _Call(source, ts, self._late)
            self._inflight[source] = call
            thread = self._threads.get(source)
            if thread is None:
                thread = self._threads[source] = _CollectorThread(c)
            thread.start(call)
            started.append((c, call))
        until = time.time() + wait_s
        answered: list[str] = []
        for c, call in started:
            done = call.done.is_set() or (wait_s > 0 and
                                          call.done.wait(max(0.0, until - time.time())))
            with self._handoff:
                if not (done or call.done.is_set()):
                    call.orphaned = True          # its thread publishes it when it is done
                    continue
            batch.extend(self._finished(c.source, call))
            answered.append(c.source)
        if not batch or self._stopped:            # stopped meanwhile: nothing more goes out
            return []
        self._publish_quietly(batch)
        self._mark_answered(answered)
        return batch

    def _mark_answered(self, sources: list[str]) -> None:
        """Collections that ended in time and whose samples were published (the watchdog's
        "ticking"): a hung collection, or a publish that sticks, leaves its source behind."""
        now = self._clock()
        for source in sources:
            self._answered[source] = now

    def _finished(self, source: str, call: _Call) -> list[Sample]:
        if self._inflight.get(source) is call:
            del self._inflight[source]
        if call.error is not None:
            if not isinstance(call.error, CollectorError):
                log.error("collector %s failed", source, exc_info=call.error)
            return [self._error_sample(source, call.ts, _error_text(call.error))]
        return self._samples(source, call.ts, call.result or [])

    def _late(self, call: _Call) -> None:
        """In the collector's thread, as a collection ends: published here if the loop has
        stopped waiting for it, dropped if its time-out was published meanwhile."""
        with self._handoff:
            if not call.orphaned or call.timed_out:
                return
            call.orphaned = False
        if not self._stopped:
            self._publish_quietly(self._finished(call.source, call))
            self._mark_answered([call.source])

    def _time_outs(self, collectors: list[Collector]) -> None:
        now = time.time()
        for c in collectors:
            call = self._inflight.get(c.source)
            if call is None or call.timed_out or now < call.started + c.timeout_s:
                continue
            with self._handoff:
                if call.done.is_set():
                    continue                      # just finished: its thread publishes it
                call.timed_out = True
            if not self._stopped:
                self._publish_quietly([self._error_sample(
                    c.source, self._clock(),
                    f"{c.source} collector timed out after {c.timeout_s:g} s")])

    def _publish_quietly(self, samples: list[Sample]) -> None:
        try:
            self._publish(samples)
        except Exception:  # noqa: BLE001 - a failing sink must not kill the tick loop
            log.exception("publishing %d samples failed", len(samples))

    # --- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, dict]:
        now = self._clock()
        out = {}
        for source, st in self._status.items():
            d = dict(st)
            last = st["last_sample_ts"]
            d["age_s"] = None if last is None else round(now - last, 3)
            # No sample for three intervals is "stale", never "ok".
            if last is not None and now - last > 3 * max(st["interval_s"], 1.0) + 5:
                d["status"] = "stale"
            out[source] = d
        return out

    def last_answers(self) -> list[tuple[str, float, float, float]]:
        """(source, interval_s, timeout_s, when it last answered) of each collector; before its
        first answer, when the runner started (so a collector hung from the start counts)."""
        started = self._started_at if self._started_at is not None else self._clock()
        return [(c.source, float(c.interval_s), float(c.timeout_s),
                 self._answered.get(c.source, started)) for c in self.collectors]

    # --- scheduling ------------------------------------------------------------------------------

    def add_job(self, func: Callable, **trigger: object) -> None:
        """Register a maintenance job (rollup, prune, reports...) to start with the collectors.

        ``trigger`` takes APScheduler's arguments, e.g. ``trigger="interval", seconds=60``, and
        ``when``: a callable; the job is skipped while it returns false (rollup and prune while
        the store cannot write: they would only fail with a traceback each time).
        """
        self._extra_jobs.append((func, trigger))
        if self._scheduler is not None:
            self._add(func, trigger)

    def _add(self, func: Callable, trigger: dict) -> None:
        assert self._scheduler is not None
        opts = dict(trigger)
        kind = opts.pop("trigger", "interval")
        when = opts.pop("when", None)
        if when is not None:
            func = _only_when(func, when)
        opts.setdefault("max_instances", 1)
        opts.setdefault("coalesce", True)
        opts.setdefault("misfire_grace_time", 30)
        if kind == "interval" and "start_date" not in opts and self._anchor is not None:
            # On the collectors' grid: a job every N s wakes the process together with a tick
            # instead of at a moment of its own (each wake-up of an idle process costs
            # ~0.1-0.2 ms of CPU on a VM; at 1 s that is a sizeable part of issue 2's budget).
            # First run one interval after the start, as without a start date.
            every = timedelta(weeks=opts.get("weeks", 0), days=opts.get("days", 0),
                              hours=opts.get("hours", 0), minutes=opts.get("minutes", 0),
                              seconds=opts.get("seconds", 0))
            opts["start_date"] = self._anchor + every
        first_run = opts.get("next_run_time")
        if kind == "interval" and isinstance(first_run, datetime) and self._grid is not None:
            # A first run "now" would give the job a phase of its own for good: the next beat
            # after it (or after now, when that is past: a run may not be put off for good).
            t = max(first_run.timestamp(), time.time())
            opts["next_run_time"] = datetime.fromtimestamp(beat.next_beat(self._grid, t))
        self._scheduler.add_job(func, kind, **opts)

    def start(self) -> None:
        if self._scheduler is not None:
            return
        self._stopped = False
        self._started_at = self._clock()
        workers = len(self._extra_jobs) + 4
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 5},
        )
        self._anchor = datetime.now() + timedelta(seconds=0.05)
        first = self._anchor.timestamp()
        by_interval: dict[float, list[Collector]] = {}
        for c in self.collectors:
            by_interval.setdefault(float(c.interval_s), []).append(c)
        if by_interval:          # other periodic work of the process wakes with the ticks
            self._grid = (first, min(by_interval))
            beat.set_grid(*self._grid)
        for interval, group in sorted(by_interval.items()):
            stop = threading.Event()
            loop = threading.Thread(target=self._loop, args=(interval, group, first, stop),
                                    name=f"tick-{interval:g}s", daemon=True)
            self._loops.append((loop, stop))
            loop.start()
        for func, trigger in self._extra_jobs:
            self._add(func, trigger)
        self._scheduler.start()

    def stop(self) -> None:
        self._stopped = True
        if self._grid is not None:
            beat.clear(self._grid)                # unless another runner set its own since
            self._grid = None
        for _, stop in self._loops:
            stop.set()
        self._loops.clear()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for thread in self._threads.values():
            thread.stop()
        self._threads.clear()
        # A collection still running (hung) is remembered: after a restart its collector is
        # reported as not answering until it returns. One never begun is forgotten.
        self._inflight = {s: c for s, c in self._inflight.items() if c.picked and not c.done.is_set()}
        for c in self.collectors:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                log.exception("closing collector %s", c.source)
