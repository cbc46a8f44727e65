"""The leak-hunting hook (dashboard/process/debugdump.py): off unless DASHBOARD_DEBUG_DUMP is set; when
set, SIGUSR2 to the real gunicorn worker writes its figures (and a tracemalloc snapshot on
request) without disturbing it."""
from __future__ import annotations

import json
import os
import signal
import tracemalloc

import psutil

from dashboard.process import debugdump
from tests.support.server import DashboardServer
from tests.support.util import wait_until


def test_without_the_variable_nothing_is_installed_and_sigusr2_keeps_its_handler():
    before = signal.getsignal(signal.SIGUSR2)
    assert debugdump.install_from_env({}) is False
    assert debugdump.install_from_env({"DASHBOARD_DEBUG_DUMP": ""}) is False
    assert signal.getsignal(signal.SIGUSR2) is before
    assert not tracemalloc.is_tracing()


def test_sigusr2_makes_the_worker_write_its_green_threads_objects_and_allocations(tmp_path):
    dump = tmp_path / "dump.json"
    server = DashboardServer(tmp_path / "data", env={"DASHBOARD_DEBUG_DUMP": str(dump),
                                                     "DASHBOARD_TRACEMALLOC": "4"})
    server.start()
    try:
        worker = psutil.Process(server.proc.pid).children()[0]
        os.kill(worker.pid, signal.SIGUSR2)
        first = wait_until(lambda: dump.exists() and json.loads(dump.read_text()), timeout=20,
                           message="no dump written")
        assert first["pid"] == worker.pid and first["dump"] == 1
        assert first["greenlets"] >= 1            # eventlet: the hub and the scheduler's threads
        assert first["objects"] > 0 and first["types"]
        assert first["hub"]["timers"] >= 0
        snap = tracemalloc.Snapshot.load(first["tracemalloc"]["snapshot"])
        assert snap.statistics("filename")

        os.kill(worker.pid, signal.SIGUSR2)
        wait_until(lambda: json.loads(dump.read_text())["dump"] == 2, timeout=20)
        assert server.healthz()["status"] == "ok"   # the worker carried on
        assert worker.is_running()
    finally:
        server.stop()
