"""The collector runner: one tick loop per interval, failures and hangs isolated."""
from __future__ import annotations

import threading

import pytest

from dashboard.collectors.host import HostCollector
from dashboard.config.load import from_dict
from dashboard.model import CollectorError, Reading
from dashboard.runtime import Runtime
from tests.support.util import wait_until


class HangingCollector:
    """Fault injection: a target that stops answering for 30 s."""
    source = "db"
    interval_s = 1.0
    timeout_s = 1.0
    metrics = ()

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def collect(self) -> list[Reading]:
        self.calls += 1
        self.release.wait(30)
        return [Reading({"db.threads_connected": 1})]

    def close(self) -> None:
        self.release.set()


class FailingCollector:
    source = "cache"
    interval_s = 0.2
    timeout_s = 1.0
    metrics = ()

    def collect(self) -> list[Reading]:
        raise CollectorError("cannot connect to redis at 127.0.0.1:1 (connection refused)")

    def close(self) -> None:
        pass


@pytest.fixture
def runtime(tmp_path):
    made = []

    def make(collectors):
        rt = Runtime(from_dict({"data_dir": str(tmp_path), "async_mode": "threading"}), collectors)
        made.append(rt)
        return rt
    yield make
    for rt in made:
        rt.stop()


def host_samples(rt):
    return [s for s in rt.store.between(0, sources=["host"]) if not s.labels]


def test_a_collector_hanging_for_30_s_never_delays_the_host_collector(runtime):
    hang = HangingCollector()
    rt = runtime([HostCollector(interval_s=1.0), hang])
    rt.start()
    # Six host samples arrive while the database collector hangs...
    wait_until(lambda: len(host_samples(rt)) >= 6, timeout=20,
               message=lambda: f"host samples: {len(host_samples(rt))}")
    ts = [s.ts for s in host_samples(rt)]
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    assert max(gaps) < 2.0, gaps          # ...one a second, never held up for the hang
    db = rt.store.between(0, sources=["db"])
    assert db and all(s.values == {"db.up": 0.0} for s in db)
    assert "timed out after 1 s" in db[0].error
    assert any("still not answering" in (s.error or "") for s in db[1:])
    assert hang.calls == 1                # never started again while still hanging
    hang.release.set()


def test_a_failing_collector_reports_up_0_with_its_error(runtime):
    rt = runtime([FailingCollector()])
    rt.start()
    wait_until(lambda: rt.store.between(0, sources=["cache"]), timeout=10)
    s = rt.store.between(0, sources=["cache"])[0]
    assert s.values == {"cache.up": 0.0}
    assert s.error == "cannot connect to redis at 127.0.0.1:1 (connection refused)"
    st = rt.runner.status()["cache"]
    assert st["status"] == "error" and "connection refused" in st["error"]


def test_a_working_collector_is_marked_up(runtime):
    rt = runtime([HostCollector(interval_s=0.2)])
    rt.start()
    wait_until(lambda: host_samples(rt), timeout=10)
    assert host_samples(rt)[0].values["host.up"] == 1.0
    assert rt.runner.status()["host"]["status"] == "ok"


def test_every_contract_host_metric_is_collected():
    c = HostCollector()
    c.collect()
    # Rates need two readings some CPU-clock ticks apart.
    readings = wait_until(lambda: (r := c.collect()) and "host.cpu_percent" in r[0].values and r,
                          timeout=5, interval=0.1)
    plain = readings[0].values
    for m in ("host.cpu_percent", "host.load1", "host.mem_percent", "host.swap_percent",
              "host.net_rx_bps", "host.net_tx_bps", "host.disk_read_bps", "host.disk_write_bps"):
        assert m in plain, m
    mounts = [r for r in readings if "host.disk_percent" in r.values]
    assert mounts and all("mount" in r.labels for r in mounts)
    assert all(0 <= r.values["host.disk_percent"] <= 100 for r in mounts)


def test_cpu_busy_is_measured_even_though_each_collection_runs_in_a_new_thread():
    c = HostCollector()
    burn_until = __import__("time").monotonic() + 0.3
    while __import__("time").monotonic() < burn_until:
        pass                                   # keep one core busy between two samples
    result = {}
    t = threading.Thread(target=lambda: result.update(r=c.collect()))
    t.start()
    t.join()
    assert result["r"][0].values["host.cpu_percent"] > 20


class CountingCollector:
    source = "cache"
    interval_s = 0.2
    timeout_s = 1.0
    metrics = ()

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> list[Reading]:
        self.calls += 1
        return [Reading({"cache.hit_rate": 99.0})]

    def close(self) -> None:
        pass


def test_a_collection_handed_over_as_the_runner_stops_ends_as_stopped_not_as_a_hang():
    from dashboard.scheduler import _Call, _CollectorThread
    c = CountingCollector()
    thread = _CollectorThread(c)
    thread._stopped = True                # stop() lands between the hand-over and the wake-up
    call = _Call("cache", 0.0, late=lambda call: None)
    thread.start(call)
    assert call.done.wait(5)
    assert "stopped" in str(call.error) and c.calls == 0


def test_a_stopped_and_restarted_runner_collects_again(runtime):
    c = CountingCollector()
    rt = runtime([c])
    rt.runner.start()
    wait_until(lambda: c.calls >= 2, timeout=10)
    rt.runner.stop()
    rt.runner.start()
    stored = len(rt.store.between(0, sources=["cache"]))
    wait_until(lambda: len(rt.store.between(0, sources=["cache"])) >= stored + 2, timeout=10,
               message="no samples after the restart")
    assert all(s.values.get("cache.up") == 1.0 for s in rt.store.between(0, sources=["cache"]))


def test_maintenance_jobs_first_run_one_interval_after_the_start(runtime):
    import time
    rt = runtime([CountingCollector()])
    runs: list[float] = []
    rt.runner.add_job(lambda: runs.append(time.time()), trigger="interval", seconds=2)
    started = time.time()
    rt.runner.start()
    wait_until(lambda: runs, timeout=15, message="the job never ran")
    assert runs[0] >= started + 1.9      # not at start-up (a prune pass on every restart)


def test_a_job_with_when_is_skipped_while_when_is_false(runtime):
    """Rollup and prune wait while the store cannot write (``when``), instead of failing with a
    traceback each time; they run again once it can."""
    rt = runtime([CountingCollector()])
    asked: list[bool] = []
    writable = threading.Event()
    runs: list[int] = []

    def when() -> bool:
        asked.append(writable.is_set())
        return writable.is_set()
    rt.runner.add_job(lambda: runs.append(1), trigger="interval", seconds=0.1, when=when)
    rt.runner.start()
    wait_until(lambda: len(asked) >= 3, timeout=15, message="the job was never due")
    assert runs == []
    writable.set()
    wait_until(lambda: runs, timeout=15, message="the job never ran once allowed")
