"""The host collector reads /proc itself on Linux: its figures must be psutil's figures."""
from __future__ import annotations

import sys

import psutil
import pytest

from dashboard.collectors import host
from dashboard.collectors.host import HostCollector, _ProcReader
from tests.support.util import wait_until

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")


def _psutil_disk() -> tuple[int, int]:
    io = psutil.disk_io_counters()
    return io.read_bytes, io.write_bytes


@linux
def test_disk_and_network_byte_counts_are_psutils_taken_between_two_psutil_readings():
    reader = _ProcReader()
    # Counters only grow: ours, read between two psutil readings, lies between them.
    d0, n0 = _psutil_disk(), host._psutil_net_bytes()
    disk, net = reader.disk_bytes(), reader.net_bytes()
    d1, n1 = _psutil_disk(), host._psutil_net_bytes()
    assert disk is not None
    for i in (0, 1):
        assert d0[i] <= disk[i] <= d1[i]
        assert n0[i] <= net[i] <= n1[i]


@linux
def test_memory_and_swap_percent_are_psutils():
    mem, swap = _ProcReader().memory()
    assert mem == pytest.approx(psutil.virtual_memory().percent, abs=0.5)
    assert swap == pytest.approx(psutil.swap_memory().percent, abs=0.5)


def test_without_proc_the_collector_falls_back_to_psutil_with_the_same_metrics(monkeypatch):
    fast = HostCollector()
    monkeypatch.setattr(_ProcReader, "usable", staticmethod(lambda: False))
    slow = HostCollector()
    assert slow._proc is None
    # Rates need two readings, host.cpu_percent some CPU-clock ticks between them: collect until
    # both kinds are there.
    def settled(c):
        return wait_until(lambda: (r := c.collect()) and {"host.cpu_percent", "host.net_rx_bps"}
                          <= r[0].values.keys() and r, timeout=5, interval=0.1)
    names = [sorted(settled(c)[0].values) for c in (fast, slow)]
    assert names[0] == names[1]
    assert "host.disk_write_bps" in names[0] and "host.net_rx_bps" in names[0]


def _diskstats(*disks: tuple[str, int, int]) -> bytes:
    # major minor name reads merged sectors_read ms writes merged sectors_written ...
    return "".join(f"   8       0 {n} 1 0 {r} 0 1 0 {w} 0 0 0 0\n" for n, r, w in disks).encode()


def test_a_disk_attached_between_two_ticks_is_counted_from_its_first_tick(monkeypatch):
    reader = _ProcReader()
    stats = {"/proc/diskstats": _diskstats(("vda", 100, 200), ("vda1", 100, 200))}
    monkeypatch.setattr(_ProcReader, "_read", staticmethod(lambda path: stats[path]))
    whole = {b"/sys/block/vda", b"/sys/block/vdb", b"/sys/block/cciss!c0d0"}
    asked = []
    monkeypatch.setattr(host.os.path, "exists", lambda p: asked.append(p) or p in whole)
    assert reader.disk_bytes() == (100 * 512, 200 * 512)          # the partition is not added
    stats["/proc/diskstats"] += _diskstats(("vdb", 10, 20), ("cciss/c0d0", 1, 2))
    assert reader.disk_bytes() == (111 * 512, 222 * 512)          # both new disks at once
    reader.disk_bytes()
    # Each name is looked up once, when first seen; psutil's "/" -> "!" naming is followed.
    assert sorted(asked) == sorted([b"/sys/block/vda", b"/sys/block/vda1", b"/sys/block/vdb",
                                    b"/sys/block/cciss!c0d0"])
