"""Collectors that share an interval are published as one tick (issue 9: the per-tick cost of
the store, the alert engine and Socket.IO is paid once a second, not once per collector), and a
slow collector never holds the others' samples back."""
from __future__ import annotations

import threading

from dashboard.collectors.host import HostCollector
from dashboard.config.load import from_dict
from dashboard.model import Reading
from dashboard.runtime import Runtime
from tests.support.util import wait_until


class SteadyCollector:
    """Answers at once, like Redis INFO on loopback."""

    interval_s = 0.5
    timeout_s = 2.0
    metrics = ()

    def __init__(self, source: str) -> None:
        self.source = source

    def collect(self) -> list[Reading]:
        return [Reading({f"{self.source}.value": 1.0})]

    def close(self) -> None:
        pass


class SlowCollector(SteadyCollector):
    """Fault injection: a target that takes 1.5 s to answer every time."""

    timeout_s = 5.0

    def __init__(self) -> None:
        super().__init__("queue")
        self.stop = threading.Event()

    def collect(self) -> list[Reading]:
        self.stop.wait(1.5)
        return super().collect()

    def close(self) -> None:
        self.stop.set()


def recording_runtime(tmp_path, collectors):
    settings = from_dict({"data_dir": str(tmp_path), "interval_s": 0.5})
    rt = Runtime(settings, collectors)
    ticks: list[list[str]] = []
    rt.sinks.append(lambda samples: ticks.append(sorted({s.source for s in samples})))
    return rt, ticks


class Held:
    """Fault injection: a collection that cannot finish before every collector of the round has
    started its own (a barrier), so the test does not depend on APScheduler starting the three
    jobs within the 50 ms gather window."""

    def __init__(self, inner, barrier: threading.Barrier) -> None:
        self.inner, self.barrier = inner, barrier
        self.source, self.interval_s, self.timeout_s = inner.source, inner.interval_s, 5.0
        self.metrics = inner.metrics

    def collect(self) -> list[Reading]:
        self.barrier.wait()
        return self.inner.collect()

    def close(self) -> None:
        self.barrier.abort()                   # release anyone still waiting at stop
        self.inner.close()


def test_collectors_of_one_interval_reach_the_sinks_as_one_tick(tmp_path):
    together = threading.Barrier(3, timeout=10)
    rt, ticks = recording_runtime(tmp_path, [
        Held(HostCollector(interval_s=0.5), together), Held(SteadyCollector("cache"), together),
        Held(SteadyCollector("app"), together)])
    # All three are running before any finishes; what is left is the hand-over of finished
    # collections to the first one's batch, which a deadline no thread wake-up reaches covers.
    rt.runner.gather_s = 5.0
    rt.start()
    try:
        wait_until(lambda: len(ticks) >= 3, timeout=20)
    finally:
        rt.stop()
    # Each tick carries all three sources together, instead of three ticks of one source.
    assert ticks[:3] == [["app", "cache", "host"]] * 3


def test_a_slow_collector_does_not_hold_back_the_others(tmp_path):
    slow = SlowCollector()
    rt, ticks = recording_runtime(tmp_path, [SteadyCollector("cache"), slow])
    rt.start()
    try:
        wait_until(lambda: sum("queue" in t for t in ticks) >= 2, timeout=20)
    finally:
        rt.stop()
    # Meanwhile the cache's samples went out every interval, without waiting for the queue's.
    assert sum(t == ["cache"] for t in ticks) >= 3
