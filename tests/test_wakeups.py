"""The collector process sleeps between its ticks (issue 19).

On a VM every wake-up of an idle process costs ~0.1-0.2 ms of CPU before any work
(``bench/wakeups.py``): the worker used to wake ~7 times a second beside its tick -- the StatsD
listener three times (its receive buffer never got past the system's cap), the live sockets' login
poll, gunicorn's heartbeat, the gather timer the tick had cancelled -- each for microseconds of
work. Now that work wakes on the tick's beat (dashboard/beat.py) and the hub skips cancelled
timers (dashboard/process/quiethub.py).

A real gunicorn with the host and StatsD collectors at 1 s, a logged-in live screen and a StatsD
sender; the worker's threads' voluntary context switches (each one a sleep, so each one a wake-up)
are counted over ten ticks as the screen receives them.
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import psutil
import pytest
import socketio

from dashboard import beat
from dashboard.auth.accounts import Accounts
from dashboard.collectors.statsd import RCVBUF, StatsdListener
from dashboard.demo.services import free_port
from dashboard.store import Store
from tests.support.server import DashboardServer
from tests.support.util import wait_until

ROOT = Path(__file__).resolve().parent.parent
TICKS = 10
MOST_PER_TICK = 3.0             # the tick, and room for a slow reply or a late timer


def _voluntary_switches(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            continue                               # a thread that ended meanwhile
    return total


def _token(data_dir: Path) -> str:
    store = Store(data_dir)
    accounts = Accounts(store.connect)
    try:
        return accounts.create_token("viewer", "wall-screen", created_by="test")[1]
    finally:
        accounts.close()
        store.close()


RMEM_MAX = int(Path("/proc/sys/net/core/rmem_max").read_text())


@pytest.mark.skipif(os.geteuid() != 0 and RMEM_MAX < RCVBUF,
                    reason="the StatsD buffer needs root or deploy/sysctl.d's net.core.rmem_max")
def test_the_worker_wakes_about_once_a_tick_with_statsd_and_a_live_screen(tmp_path):
    statsd_port = free_port()
    config = tmp_path / "dashboard.toml"
    config.write_text(f'[statsd]\nbind = "127.0.0.1:{statsd_port}"\n')
    data = tmp_path / "data"
    server = DashboardServer(data, env={"DASHBOARD_INTERVAL_S": "1"}, config=config)
    stop = threading.Event()
    client = socketio.Client(reconnection=False)
    ticks: list[int] = []
    client.on("samples", lambda batch: ticks.append(len(batch)), namespace="/live")

    def trickle() -> None:            # ~20 packets a second, as a small shop sends
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not stop.wait(0.05):
                s.sendto(b"shop.requests:1|c\nshop.response_time:42|ms", ("127.0.0.1", statsd_port))

    sender = threading.Thread(target=trickle, daemon=True)
    with server:
        try:
            sender.start()
            client.connect(server.url, namespaces=["/live"], transports=["websocket"],
                           wait_timeout=10, auth={"token": _token(data)})
            wait_until(lambda: len(ticks) >= 3, timeout=30, message="no samples reach the screen")
            workers = psutil.Process(server.proc.pid).children(recursive=True)
            worker = next(p for p in workers if "dashboard" in " ".join(p.cmdline()))
            # counted from one tick's arrival to the tenth after it
            first = len(ticks)
            wait_until(lambda: len(ticks) > first, timeout=10)
            before = _voluntary_switches(worker.pid)
            start = len(ticks)
            wait_until(lambda: len(ticks) >= start + TICKS, timeout=TICKS * 3,
                       message=lambda: f"{len(ticks) - start} of {TICKS} ticks")
            woke = _voluntary_switches(worker.pid) - before
        finally:
            stop.set()
            sender.join(5)
            client.disconnect()
    assert woke / TICKS <= MOST_PER_TICK, f"the worker slept and woke {woke} times in {TICKS} ticks"


@pytest.mark.skipif(os.geteuid() != 0 or RMEM_MAX > 1 << 28,
                    reason="only root may pass net.core.rmem_max (and only if it can be passed)")
def test_as_root_the_statsd_buffer_is_the_size_asked_for_past_the_systems_cap():
    asked = max(RCVBUF, 4 * RMEM_MAX)
    listener = StatsdListener("127.0.0.1:0", rcvbuf=asked)
    listener.start()
    try:
        sock = listener._sock
        assert sock is not None
        # Linux doubles what it is given (its bookkeeping): the cap alone gives 2 x rmem_max
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 2 * asked
    finally:
        listener.stop()


def test_the_shipped_sysctl_lets_an_unprivileged_listener_have_the_buffer_it_asks_for():
    text = (ROOT / "deploy" / "sysctl.d" / "60-dashboard-statsd.conf").read_text()
    values = dict(line.replace(" ", "").split("=", 1) for line in text.splitlines()
                  if line.strip() and not line.lstrip().startswith("#"))
    assert int(values["net.core.rmem_max"]) >= RCVBUF


def test_periodic_work_sleeps_to_the_last_beat_it_may_wait_for_and_never_longer():
    beat.set_grid(100.0, 1.0)
    try:
        assert beat.sleep_within(1.0, now=100.3) == pytest.approx(0.7)    # the next beat
        assert beat.sleep_within(2.5, now=100.3) == pytest.approx(1.7)    # the last of two
        assert beat.sleep_within(0.5, now=100.3) == 0.5                   # none that soon
        assert beat.sleep_within(1.0, now=100.0) == pytest.approx(1.0)    # on a beat: the next
        assert beat.sleep_within(0.5, now=100.0) == 0.5
        assert beat.sleep_within(1.0, now=50.25) == pytest.approx(0.75)   # before the anchor
        assert beat.sleep_to_next(now=100.0) == pytest.approx(1.0)
        assert beat.sleep_to_next(now=100.999) == pytest.approx(0.001)
        beat.clear((7.0, 1.0))                  # another runner's grid: this one stays
        assert beat.grid() == (100.0, 1.0)
    finally:
        beat.clear((100.0, 1.0))
    assert beat.sleep_within(1.0) == 1.0 and beat.sleep_to_next() is None  # no grid: plain
