"""The application's own signals over real sockets: StatsD over UDP, HTTP probes, PHP-FPM."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from dashboard.collectors.phpfpm import PhpFpmCollector
from dashboard.collectors.probes import ProbeCollector
from dashboard.collectors.statsd import MAX_NAMES, StatsdCollector, StatsdListener
from dashboard.config import load as config
from dashboard.model import CollectorError
from dashboard.runtime import Runtime
from dashboard.store import Store
from tests.support.util import wait_until


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# --- StatsD ----------------------------------------------------------------------------------


@pytest.fixture
def statsd() -> Iterator[tuple[StatsdCollector, FakeClock, socket.socket]]:
    clock = FakeClock()
    collector = StatsdCollector(StatsdListener("127.0.0.1:0"), interval_s=1, window_s=10, clock=clock)
    collector.start()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(collector.listener.address)
    try:
        yield collector, clock, sender
    finally:
        sender.close()
        collector.close()


def _send_all(collector: StatsdCollector, sender: socket.socket, packets: list[bytes]) -> None:
    before = collector.listener.packets_total
    for p in packets:
        sender.send(p)
    wait_until(lambda: collector.listener.packets_total >= before + len(packets), timeout=10,
               message=lambda: f"{collector.listener.packets_total - before} of {len(packets)} packets")


def test_statsd_counters_and_timers_become_rates_and_percentiles_as_sent(statsd):
    collector, clock, sender = statsd
    packets = [b"shop.requests:1|c"] * 990 + [b"shop.requests:10|c|@1"]   # 1000 requests
    packets += [b"shop.errors:1|c"] * 5 + [b"shop.errors:1|c|@0.1"]        # 5 + 10 = 15 errors
    packets += [b"checkout.success:1|c"] * 95 + [b"checkout.failure:5|c"]
    packets += [f"shop.response_time:{ms}|ms".encode() for ms in range(1, 101)]
    packets += [b"shop.queue_depth:7|g", b"shop.queue_depth:+3|g",
                b"signup:1|c\nsignup:1|c\nsignup:1|c"]                     # three lines, one packet
    _send_all(collector, sender, packets)
    clock.t += 10
    readings = collector.collect()
    v = readings[0].values
    assert v["app.requests_per_s"] == pytest.approx(100.0)
    assert v["app.error_rate"] == pytest.approx(1.5)
    assert v["app.checkout_success_rate"] == pytest.approx(95.0)
    assert v["app.response_ms"] == pytest.approx(50.5)
    assert v["app.response_ms_p50"] == 50
    assert v["app.response_ms_p95"] == 95
    assert v["statsd.packets_per_s"] == pytest.approx(len(packets) / 10)
    assert v["statsd.malformed"] == 0
    others = {(r.labels["name"], k): x for r in readings[1:] for k, x in r.values.items()}
    assert others[("signup", "statsd.count_per_s")] == pytest.approx(0.3)
    assert others[("shop.queue_depth", "statsd.gauge")] == 10
    # a sliding window: 5 s later half of it is still in; 10 s later it has all slid out
    clock.t += 5
    v = collector.collect()[0].values
    assert v["app.requests_per_s"] == pytest.approx(1000 / 15) and v["app.response_ms_p95"] == 95
    clock.t += 10
    v = collector.collect()[0].values
    assert v["app.requests_per_s"] == 0 and "app.error_rate" not in v and "app.response_ms_p95" not in v


def test_statsd_exposes_the_first_50_names_and_counts_the_rest(statsd):
    collector, clock, sender = statsd
    _send_all(collector, sender, [f"signup{i:03d}:1|c".encode() for i in range(MAX_NAMES + 7)]
              + [f"depth{i:03d}:1|g".encode() for i in range(MAX_NAMES + 3)])
    clock.t += 10
    readings = collector.collect()
    kinds = [k for r in readings[1:] for k in r.values]
    assert kinds.count("statsd.count_per_s") == kinds.count("statsd.gauge") == MAX_NAMES
    assert readings[0].values["statsd.names_not_shown"] == 10


def test_malformed_statsd_packets_are_counted_and_ignored(statsd):
    collector, clock, sender = statsd
    bad = [b"garbage", b"no_type:1", b"bad_type:1|zz", b"not_a_number:abc|c", b"bad_rate:1|c|@2",
           b":1|c", b"nan:nan|ms", b"\xff\xfe:1|c", b"<b>x</b>:1|c"]
    good = [b"requests:4|c", b"errors:1|c"]
    _send_all(collector, sender, bad + good + [b"requests:4|c\nbroken"])
    clock.t += 10
    v = collector.collect()[0].values
    assert v["statsd.malformed"] == len(bad) + 1
    assert v["statsd.malformed_per_s"] == pytest.approx((len(bad) + 1) / 10)
    assert v["app.error_rate"] == pytest.approx(12.5)                 # 1 of 8 requests


def test_statsd_lines_sent_before_a_tick_count_in_that_tick(statsd):
    collector, clock, sender = statsd
    collector.collect()                      # a first tick, as the runner gives them
    for _ in range(200):
        sender.send(b"shop.requests:1|c")    # loopback UDP: queued at the listener on return
    clock.t += 10
    v = collector.collect()[0].values
    assert v["app.requests_per_s"] == pytest.approx(200 / 10)


FLOOD_SENDER = """
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
line = b"shop.requests:1|c"
while True:
    try:
        s.sendto(line, ("127.0.0.1", port))
    except OSError:
        pass
"""


def test_a_tick_during_a_statsd_flood_is_taken_without_waiting_for_the_flood_to_end():
    """An app that sends faster than the listener parses: the tick's reading still comes at once
    with what arrived so far (the rest counts in the next ticks), never after the flood."""
    listener = StatsdListener("127.0.0.1:0")
    listener.start()
    port = listener.address[1]
    senders = [subprocess.Popen([sys.executable, "-c", FLOOD_SENDER, str(port)]) for _ in range(4)]
    try:
        wait_until(lambda: listener.packets_total > 50_000, timeout=30,
                   message=lambda: f"only {listener.packets_total} packets arrived")
        taken: list = []
        t = threading.Thread(target=lambda: taken.append(listener.take()), daemon=True)
        t.start()
        t.join(10)        # a reading takes milliseconds; the flood goes on until the senders stop
        assert taken, "take() still reading the flood after 10 s"
        assert taken[0].packets > 0
        assert all(p.poll() is None for p in senders)      # the flood was still on
    finally:
        for p in senders:
            p.kill()
            p.wait()
        listener.stop()


def test_the_statsd_listener_starts_and_stops_with_the_runtime(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = config.from_dict({"statsd": {"bind": f"127.0.0.1:{port}"}, "data_dir": str(tmp_path)})
    runtime = Runtime(settings)
    [collector] = [c for c in runtime.runner.collectors if c.source == "statsd"]
    assert not collector.listener.running                              # nothing at construction
    runtime.start()
    try:
        assert collector.listener.running
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"requests:1|c", ("127.0.0.1", port))
        wait_until(lambda: collector.listener.packets_total == 1, timeout=5)
    finally:
        runtime.stop()
    assert not collector.listener.running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))                                # the port was released


def test_a_statsd_port_in_use_is_an_error_sample_not_a_crash():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        collector = StatsdCollector(StatsdListener(f"127.0.0.1:{taken.getsockname()[1]}"))
        collector.start()
        with pytest.raises(CollectorError, match="cannot listen on udp"):
            collector.collect()
        collector.close()


# --- a local HTTP server for probes and the PHP-FPM status page --------------------------------


class Site:
    """200 on /ok, 500 on /broken, an answer only after the test ends on /slow, FPM JSON."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.fpm: dict | str = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/slow"):
                    site.release.wait(30)          # beyond any probe timeout; freed at teardown
                    status, body = 200, b"late"
                elif self.path.startswith("/broken"):
                    status, body = 500, b"oops"
                elif self.path.startswith("/fpm-status"):
                    status = 200
                    body = (site.fpm if isinstance(site.fpm, str) else json.dumps(site.fpm)).encode()
                    site.last_fpm_path = self.path
                else:
                    status, body = 200, b"ok"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass                           # the probe gave up on /slow

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    try:
        yield s
    finally:
        s.close()


def test_probes_report_response_time_status_and_up_for_200_500_and_a_timeout(site, tmp_path):
    probes = config.from_dict({"probes": [
        {"name": "home", "url": f"{site.base}/ok"},
        {"name": "api", "url": f"{site.base}/broken?token=abc123"},
        {"name": "search", "url": f"{site.base}/slow", "timeout_s": 0.5}]}).probes
    collector = ProbeCollector(probes, tmp_path)
    try:
        assert collector.interval_s == 30                       # the docs' cadence by default
        by_probe = {r.labels["probe"]: r for r in collector.collect()}
    finally:
        collector.close()
    home, api, search = by_probe["home"], by_probe["api"], by_probe["search"]
    assert home.values["app.up"] == 1 and home.values["app.status"] == 200
    assert 0 < home.values["app.response_ms"] < 500 and home.error is None
    assert api.values["app.up"] == 0 and api.values["app.status"] == 500
    assert api.error == "probe api: HTTP 500" and "abc123" not in api.error
    assert search.values["app.up"] == 0 and "app.response_ms" not in search.values
    assert search.error == "probe search: no answer within 0.5 s"


def test_probe_availability_counts_the_day_and_survives_a_restart(site, tmp_path):
    probes = config.from_dict({"probes": [{"name": "home", "url": f"{site.base}/ok", "interval_s": 1},
                                          {"name": "api", "url": f"{site.base}/broken",
                                           "interval_s": 1}]}).probes
    clock = FakeClock()
    first = ProbeCollector(probes, tmp_path, clock=clock)
    try:
        for _ in range(3):
            first.collect()
            clock.t += 1
    finally:
        first.close()
    probes = config.from_dict({"probes": [{"name": "home", "url": f"{site.base}/broken", "interval_s": 1},
                                          {"name": "api", "url": f"{site.base}/ok", "interval_s": 1}]}).probes
    second = ProbeCollector(probes, tmp_path)
    try:
        by_probe = {r.labels["probe"]: r.values for r in second.collect()}
    finally:
        second.close()
    assert by_probe["home"]["app.availability_percent"] == pytest.approx(75.0)   # 3 of 4 up
    assert by_probe["api"]["app.availability_percent"] == pytest.approx(25.0)    # 1 of 4 up


def test_php_fpm_utilisation_is_of_max_children_when_known(site):
    site.fpm = {"pool": "www", "process manager": "dynamic", "accepted conn": 1000,
                "listen queue": 3, "idle processes": 10, "active processes": 50,
                "total processes": 60, "max children reached": 2}
    clock = FakeClock()
    with_limit = PhpFpmCollector(f"{site.base}/fpm-status", max_children=200, clock=clock)
    without = PhpFpmCollector(f"{site.base}/fpm-status?full")
    try:
        v = with_limit.collect()[0].values
        assert site.last_fpm_path == "/fpm-status?json"
        assert v["app.worker_utilization"] == pytest.approx(25.0)
        assert v["app.listen_queue"] == 3
        site.fpm = {**site.fpm, "accepted conn": 1600, "max children reached": 3}
        clock.t += 60
        v = with_limit.collect()[0].values
        assert v["app.accepted_per_s"] == pytest.approx(10.0)
        assert v["app.max_children_reached_per_min"] == pytest.approx(1.0)
        assert without.collect()[0].values["app.worker_utilization"] == pytest.approx(50 / 60 * 100)
        assert site.last_fpm_path == "/fpm-status?full&json"
        assert any("max_children is not set" in n for n in without.check_notes())
        site.fpm = "pool: www\nactive processes: 5\n"       # the plain-text page
        with pytest.raises(CollectorError, match="not JSON"):
            without.collect()
    finally:
        with_limit.close()
        without.close()


def test_one_max_children_reached_event_counts_1_for_the_following_minute_then_0(site):
    """Issue 17: a per-minute figure is how many in the last minute, not a 1 s delta x 60
    (which read 60/min for one second and 0 the next)."""
    site.fpm = {"accepted conn": 10, "active processes": 5, "total processes": 5,
                "max children reached": 4}
    clock = FakeClock()
    c = PhpFpmCollector(f"{site.base}/fpm-status", clock=clock)
    try:
        c.collect()
        site.fpm = {**site.fpm, "max children reached": 5}
        seen = []
        for _ in range(62):
            clock.t += 1
            seen.append(c.collect()[0].values["app.max_children_reached_per_min"])
        assert seen[:60] == [1.0] * 60 and seen[-1] == 0.0
    finally:
        c.close()


def test_runtime_collects_probes_into_the_store_as_app_samples(site, tmp_path):
    settings = config.from_dict({"probes": [{"name": "home", "url": f"{site.base}/ok"}],
                                 "data_dir": str(tmp_path)})
    store = Store(tmp_path)
    runtime = Runtime(settings, store=store)
    assert [c.source for c in runtime.runner.collectors if c.source == "app"] == ["app"]
    published: list = []
    runtime.sinks.append(published.append)
    runtime.runner.start()
    try:
        [app, *_] = wait_until(lambda: [[s for s in t if s.source == "app"] for t in published
                                         if any(s.source == "app" for s in t)],
                               timeout=20, message="no probe tick")
    finally:
        runtime.runner.stop()
    assert {(s.source, s.labels.get("probe")) for s in app} == {("app", None), ("app", "home")}
    assert Path(tmp_path / "history.sqlite3").exists()
    assert store.latest()


def test_probe_day_counts_reach_the_file_every_flush_period_without_a_clean_close(tmp_path):
    from zoneinfo import ZoneInfo

    from dashboard.collectors.probes import DayCounts
    now = 1_700_000_000.0
    kept = DayCounts(tmp_path, ZoneInfo("UTC"), flush_every_s=3600)
    often = DayCounts(tmp_path, ZoneInfo("UTC"), flush_every_s=0.0)
    for ok in (True, True, False):
        kept.add("home", now, ok)
        often.add("api", now, ok)
    # Another process (a restart after kill -9) reads the file: the flushed probe is all there,
    # the other one not yet (at most flush_every_s of a day's counts are at risk).
    reader = DayCounts(tmp_path, ZoneInfo("UTC"))
    assert reader.add("api", now, True) == pytest.approx(75.0)        # 3 of 4 up
    assert reader.add("home", now, True) == pytest.approx(100.0)      # its 3 not yet written
    kept.close()
    assert DayCounts(tmp_path, ZoneInfo("UTC")).add("home", now, False) == pytest.approx(50.0)
