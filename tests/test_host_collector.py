"""The host collector reads /proc itself on Linux: its figures must be psutil's figures."""
from __future__ import annotations

import sys

import psutil
import pytest

from dashboard.collectors import host
from dashboard.collectors.host import HostCollector, _ProcReader

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")


def _psutil_disk() -> tuple[int, int]:
    io = psutil.disk_io_counters()
    return io.read_bytes, io.write_bytes


@linux
def test_disk_and_network_byte_counts_are_psutils_taken_between_two_psutil_readings():
    reader = _ProcReader()
    # Counters only grow: ours, read between two psutil readings, lies between them.
    d0, n0 = _psutil_disk(), host._psutil_net_bytes()
    disk, net = reader.disk_bytes(0.0), reader.net_bytes()
    d1, n1 = _psutil_disk(), host._psutil_net_bytes()
    assert disk is not None
    for i in (0, 1):
        assert d0[i] <= disk[i] <= d1[i]
        assert n0[i] <= net[i] <= n1[i]


@linux
def test_memory_and_swap_percent_are_psutils():
    mem, swap = _ProcReader().memory(0.0)
    assert mem == pytest.approx(psutil.virtual_memory().percent, abs=0.5)
    assert swap == pytest.approx(psutil.swap_memory().percent, abs=0.5)


def test_without_proc_the_collector_falls_back_to_psutil_with_the_same_metrics(monkeypatch):
    fast = HostCollector()
    monkeypatch.setattr(_ProcReader, "usable", staticmethod(lambda: False))
    slow = HostCollector()
    assert slow._proc is None
    for c in (fast, slow):
        c.collect()
    names = [sorted(c.collect()[0].values) for c in (fast, slow)]
    assert names[0] == names[1]
    assert "host.disk_write_bps" in names[0] and "host.net_rx_bps" in names[0]


@linux
def test_whole_disks_are_listed_again_after_a_minute_not_on_every_tick(monkeypatch):
    reader = _ProcReader()
    listed = []
    real = host.os.listdir
    monkeypatch.setattr(host.os, "listdir", lambda p: listed.append(p) or real(p))
    for now in (0.0, 1.0, 30.0, 59.0):
        reader.disk_bytes(now)
    assert listed == ["/sys/block"]
    reader.disk_bytes(60.0)
    assert listed == ["/sys/block", "/sys/block"]
